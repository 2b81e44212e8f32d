package dev.berth.image;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.Channels;
import java.nio.channels.ClosedByInterruptException;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The wire part of {@link ContainerEngine}: one HTTP/1.1 exchange per connection ({@code
 * Connection: close}) with the engine, over a unix socket or plain TCP.
 */
final class EngineHttp implements AutoCloseable {
  static final String API_PREFIX = "/v1.41";
  private static final Duration CONNECT_TIMEOUT = Duration.ofSeconds(5);
  private static final int MAX_HEAD_LINE = 64 * 1024;

  private final String address;
  private final SocketAddress socket;
  private final Set<SocketChannel> open = ConcurrentHashMap.newKeySet();

  private EngineHttp(String address, SocketAddress socket) {
    this.address = address;
    this.socket = socket;
  }

  /** An engine at {@code unix:///path} or {@code tcp://host[:port]} (port 2375 when left out). */
  static EngineHttp forHost(String host) {
    if (host.startsWith("unix://") && host.length() > "unix://".length()) {
      return new EngineHttp(host, UnixDomainSocketAddress.of(host.substring("unix://".length())));
    }
    if (host.startsWith("tcp://")) {
      try {
        URI uri = new URI(host);
        if (uri.getHost() != null) {
          int port = uri.getPort() < 0 ? 2375 : uri.getPort();
          return new EngineHttp(host, InetSocketAddress.createUnresolved(uri.getHost(), port));
        }
      } catch (URISyntaxException e) {
        throw ContainerEngineUnavailableException.unsupported(
            host, "'" + host + "' is not a valid URI", e);
      }
    }
    throw ContainerEngineUnavailableException.unsupported(
        host, "Berth cannot use the container engine address '" + host + "'", null);
  }

  String address() {
    return address;
  }

  /** Reads an answer; may throw I/O errors, which the caller maps to Berth's exceptions. */
  @FunctionalInterface
  interface AnswerReader<T> {
    T read(Answer answer) throws IOException;
  }

  /** Writes a request body. */
  @FunctionalInterface
  interface BodyWriter {
    void writeTo(OutputStream out) throws IOException;
  }

  /** A request body with its media type and exact length. */
  record Body(String contentType, long length, BodyWriter writer) {
    static Body json(byte[] json) {
      return new Body("application/json", json.length, out -> out.write(json));
    }

    static Body file(Path file, String contentType) throws IOException {
      return new Body(contentType, Files.size(file), out -> Files.copy(file, out));
    }
  }

  /** The engine's answer: status, headers (names in lower case) and the decoded body. */
  record Answer(int status, String reason, Map<String, String> headers, InputStream body) {
    String header(String name) {
      return headers.get(name.toLowerCase(Locale.ROOT));
    }

    boolean ok() {
      return status / 100 == 2;
    }
  }

  /**
   * Sends one request to {@code API_PREFIX + target} and hands the answer to {@code reader}; the
   * connection is closed when the reader returns. A connection that cannot be made throws {@link
   * ContainerEngineUnavailableException}; {@code body} may be null.
   */
  <T> T exchange(String method, String target, Body body, AnswerReader<T> reader)
      throws IOException {
    SocketChannel channel = connect();
    open.add(channel);
    try (channel) {
      OutputStream out = new BufferedOutputStream(Channels.newOutputStream(channel), 64 * 1024);
      StringBuilder head = new StringBuilder();
      head.append(method).append(' ').append(API_PREFIX).append(target).append(" HTTP/1.1\r\n");
      head.append("Host: docker\r\nUser-Agent: berth\r\nConnection: close\r\n");
      if (body != null) {
        head.append("Content-Type: ").append(body.contentType()).append("\r\n");
        head.append("Content-Length: ").append(body.length()).append("\r\n");
      } else if (!method.equals("GET") && !method.equals("HEAD") && !method.equals("DELETE")) {
        head.append("Content-Length: 0\r\n");
      }
      out.write(head.append("\r\n").toString().getBytes(StandardCharsets.ISO_8859_1));
      if (body != null) {
        body.writer().writeTo(out);
      }
      out.flush();
      InputStream in = new BufferedInputStream(Channels.newInputStream(channel), 64 * 1024);
      return reader.read(readAnswer(in, method));
    } finally {
      open.remove(channel);
    }
  }

  private SocketChannel connect() throws ClosedByInterruptException {
    SocketChannel channel = null;
    try {
      if (socket instanceof InetSocketAddress tcp) {
        channel = SocketChannel.open();
        InetSocketAddress resolved = new InetSocketAddress(tcp.getHostString(), tcp.getPort());
        channel.socket().connect(resolved, (int) CONNECT_TIMEOUT.toMillis());
      } else {
        channel = SocketChannel.open(socket);
      }
      return channel;
    } catch (ClosedByInterruptException e) {
      throw e; // the caller was interrupted: not a missing engine
    } catch (IOException e) {
      closeQuietly(channel);
      Path path = socket instanceof UnixDomainSocketAddress unix ? unix.getPath() : null;
      boolean forbidden = path != null && Files.exists(path) && !Files.isWritable(path);
      throw ContainerEngineUnavailableException.notAnswering(address, forbidden, e);
    }
  }

  private static void closeQuietly(SocketChannel channel) {
    if (channel != null) {
      try {
        channel.close();
      } catch (IOException ignored) {
        // nothing more to do with a channel that failed to connect
      }
    }
  }

  static Answer readAnswer(InputStream in, String method) throws IOException {
    String statusLine = readLine(in);
    if (statusLine == null) {
      throw new EOFException("the engine closed the connection without answering");
    }
    String[] parts = statusLine.split(" ", 3);
    if (parts.length < 2 || !parts[0].startsWith("HTTP/1.")) {
      throw new IOException("not an HTTP answer: " + statusLine);
    }
    int status;
    try {
      status = Integer.parseInt(parts[1]);
    } catch (NumberFormatException e) {
      throw new IOException("not an HTTP status line: " + statusLine, e);
    }
    Map<String, String> headers = new HashMap<>();
    for (String line = readLine(in); line != null && !line.isEmpty(); line = readLine(in)) {
      int colon = line.indexOf(':');
      if (colon > 0) {
        headers.put(
            line.substring(0, colon).strip().toLowerCase(Locale.ROOT),
            line.substring(colon + 1).strip());
      }
    }
    InputStream body;
    String length = headers.get("content-length");
    if (method.equals("HEAD") || status / 100 == 1 || status == 204 || status == 304) {
      body = InputStream.nullInputStream();
    } else if ("chunked".equalsIgnoreCase(headers.get("transfer-encoding"))) {
      body = new ChunkedInputStream(in);
    } else if (length != null) {
      try {
        body = new LengthLimitedInputStream(in, Long.parseLong(length));
      } catch (NumberFormatException e) {
        throw new IOException("bad Content-Length: " + length, e);
      }
    } else {
      body = in; // the body ends when the engine closes the connection
    }
    return new Answer(status, parts.length > 2 ? parts[2] : "", Map.copyOf(headers), body);
  }

  /** One CRLF- (or LF-) terminated line in ISO-8859-1, without the terminator; null at EOF. */
  static String readLine(InputStream in) throws IOException {
    StringBuilder line = new StringBuilder();
    for (int c = in.read(); c != '\n'; c = in.read()) {
      if (c < 0) {
        return line.isEmpty() ? null : line.toString();
      }
      if (line.length() >= MAX_HEAD_LINE) {
        throw new IOException(
            "line longer than " + MAX_HEAD_LINE + " bytes in the engine's answer");
      }
      line.append((char) c);
    }
    int end = line.length();
    return line.substring(0, end > 0 && line.charAt(end - 1) == '\r' ? end - 1 : end);
  }

  /** Closes the connections still open, which ends exchanges blocked reading a stream. */
  @Override
  public void close() {
    for (SocketChannel channel : open) {
      closeQuietly(channel);
    }
  }

  /** A body of exactly {@code Content-Length} bytes. */
  private static final class LengthLimitedInputStream extends InputStream {
    private final InputStream in;
    private long remaining;

    LengthLimitedInputStream(InputStream in, long length) {
      this.in = in;
      this.remaining = length;
    }

    @Override
    public int read() throws IOException {
      byte[] one = new byte[1];
      return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      if (remaining <= 0) {
        return -1;
      }
      int n = in.read(b, off, (int) Math.min(len, remaining));
      if (n < 0) {
        throw new EOFException(remaining + " bytes of the body missing: the engine closed early");
      }
      remaining -= n;
      return n;
    }

    @Override
    public int available() throws IOException {
      return (int) Math.min(in.available(), remaining);
    }
  }
}
