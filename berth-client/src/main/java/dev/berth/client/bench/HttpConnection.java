package dev.berth.client.bench;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;

/**
 * A blocking HTTP/1.1 keep-alive connection, for what happens once or twice per step: the model's
 * metadata, the first request, {@code /metrics}. The load itself goes through {@link EventLoop}.
 * Both read answers with {@link ResponseParser}.
 */
final class HttpConnection implements Closeable {
  private final InputStream in;
  private final OutputStream out;
  private final Closeable resource;
  private final byte[] bytes = new byte[16384];
  private final ByteBuffer buf = ByteBuffer.wrap(bytes).limit(0);
  private final ResponseParser parser = new ResponseParser();

  HttpConnection(InputStream in, OutputStream out, Closeable resource) {
    this.in = in;
    this.out = out;
    this.resource = resource;
  }

  /** Connects to {@code host:port}; {@code timeout} bounds the connect and every read. */
  static HttpConnection open(String host, int port, Duration timeout) throws IOException {
    Socket socket = new Socket();
    try {
      int millis = (int) Math.min(Integer.MAX_VALUE, Math.max(1, timeout.toMillis()));
      socket.setTcpNoDelay(true);
      socket.connect(new InetSocketAddress(host, port), millis);
      socket.setSoTimeout(millis);
      return new HttpConnection(socket.getInputStream(), socket.getOutputStream(), socket);
    } catch (IOException | RuntimeException e) {
      socket.close();
      throw e;
    }
  }

  /** The bytes of a whole request, to be encoded once and sent many times. */
  static byte[] request(
      String method, String authority, String path, String contentType, byte[] content) {
    return request(method, authority, path, contentType, content, java.util.Map.of());
  }

  /** The bytes of a whole request with more headers, to be encoded once and sent many times. */
  static byte[] request(
      String method,
      String authority,
      String path,
      String contentType,
      byte[] content,
      java.util.Map<String, String> headers) {
    StringBuilder head = new StringBuilder(128);
    head.append(method).append(' ').append(path).append(" HTTP/1.1\r\n");
    head.append("Host: ").append(authority).append("\r\n");
    headers.forEach((k, v) -> head.append(k).append(": ").append(v).append("\r\n"));
    if (content != null) {
      head.append("Content-Type: ").append(contentType).append("\r\n");
      head.append("Content-Length: ").append(content.length).append("\r\n");
    }
    head.append("\r\n");
    byte[] h = head.toString().getBytes(StandardCharsets.US_ASCII);
    if (content == null) {
      return h;
    }
    byte[] all = Arrays.copyOf(h, h.length + content.length);
    System.arraycopy(content, 0, all, h.length, content.length);
    return all;
  }

  /**
   * Sends one request and reads its answer.
   *
   * @param request the whole request, from {@link #request}
   * @param keepBody whether to keep a 2xx answer's body for {@link #body()} (other answers' bodies
   *     are always kept)
   * @return the HTTP status
   * @throws IOException on a transport failure; the connection is then unusable
   */
  int exchange(byte[] request, boolean keepBody) throws IOException {
    out.write(request);
    out.flush();
    parser.start(keepBody);
    while (true) {
      if (!buf.hasRemaining()) {
        int n = in.read(bytes, 0, bytes.length);
        if (n < 0) {
          parser.endOfStream();
          return parser.status();
        }
        buf.position(0).limit(n);
      }
      parser.feed(buf);
      if (parser.done()) {
        return parser.status();
      }
    }
  }

  /** Whether the server lets the connection carry another request. */
  boolean keepAlive() {
    return parser.keepAlive();
  }

  /** The last answer's body, when it was kept. */
  byte[] body() {
    return parser.body();
  }

  String bodyText() {
    return parser.bodyText();
  }

  ResponseParser parser() {
    return parser;
  }

  @Override
  public void close() throws IOException {
    resource.close();
  }
}
