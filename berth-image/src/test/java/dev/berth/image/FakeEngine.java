package dev.berth.image;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * A stand-in container engine on a real unix socket (or, with a null path, on TCP at 127.0.0.1):
 * each request gets a scripted answer.
 */
final class FakeEngine implements AutoCloseable {
  /** One request as the fake engine read it. */
  record Request(String method, String target, Map<String, String> headers, byte[] body) {
    String bodyText() {
      return new String(body, StandardCharsets.UTF_8);
    }
  }

  /** Writes the raw HTTP answer to a request. */
  @FunctionalInterface
  interface Script {
    void answer(Request request, OutputStream out) throws Exception;
  }

  private final ServerSocketChannel server;
  private final String host;
  private final List<Request> requests = new CopyOnWriteArrayList<>();

  FakeEngine(Path socket, Script script) throws IOException {
    if (socket == null) {
      server = ServerSocketChannel.open();
      server.bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0));
      host = "tcp://127.0.0.1:" + ((InetSocketAddress) server.getLocalAddress()).getPort();
    } else {
      server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
      server.bind(UnixDomainSocketAddress.of(socket));
      host = "unix://" + socket;
    }
    Thread.ofPlatform().daemon().start(() -> acceptLoop(script));
  }

  String host() {
    return host;
  }

  List<Request> requests() {
    return requests;
  }

  /** An answer with a Content-Length body. */
  static byte[] answer(int status, String contentType, String body) {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    String head =
        "HTTP/1.1 "
            + status
            + " Status\r\nContent-Type: "
            + contentType
            + "\r\nContent-Length: "
            + bytes.length
            + "\r\n\r\n";
    byte[] all = new byte[head.length() + bytes.length];
    System.arraycopy(head.getBytes(StandardCharsets.ISO_8859_1), 0, all, 0, head.length());
    System.arraycopy(bytes, 0, all, head.length(), bytes.length);
    return all;
  }

  /** A chunked answer, one chunk per part. */
  static byte[] chunked(int status, String contentType, byte[]... parts) {
    ByteArrayOutputStream all = new ByteArrayOutputStream();
    String head =
        "HTTP/1.1 "
            + status
            + " Status\r\nContent-Type: "
            + contentType
            + "\r\nTransfer-Encoding: chunked\r\n\r\n";
    all.writeBytes(head.getBytes(StandardCharsets.ISO_8859_1));
    for (byte[] part : parts) {
      all.writeBytes(
          (Integer.toHexString(part.length) + "\r\n").getBytes(StandardCharsets.ISO_8859_1));
      all.writeBytes(part);
      all.writeBytes("\r\n".getBytes(StandardCharsets.ISO_8859_1));
    }
    all.writeBytes("0\r\n\r\n".getBytes(StandardCharsets.ISO_8859_1));
    return all.toByteArray();
  }

  /** One frame of the multiplexed log stream. */
  static byte[] frame(int stream, String text) {
    byte[] payload = text.getBytes(StandardCharsets.UTF_8);
    ByteBuffer frame = ByteBuffer.allocate(8 + payload.length);
    frame.put((byte) stream).put(new byte[3]).putInt(payload.length).put(payload);
    return frame.array();
  }

  private void acceptLoop(Script script) {
    while (server.isOpen()) {
      try {
        SocketChannel channel = server.accept();
        Thread.ofPlatform().daemon().start(() -> serve(channel, script));
      } catch (IOException closed) {
        return;
      }
    }
  }

  private void serve(SocketChannel channel, Script script) {
    try (channel) {
      InputStream in = new BufferedInputStream(Channels.newInputStream(channel));
      String[] requestLine = EngineHttp.readLine(in).split(" ");
      Map<String, String> headers = new HashMap<>();
      for (String line = EngineHttp.readLine(in); !line.isEmpty(); line = EngineHttp.readLine(in)) {
        int colon = line.indexOf(':');
        headers.put(
            line.substring(0, colon).toLowerCase(Locale.ROOT), line.substring(colon + 1).strip());
      }
      int length = Integer.parseInt(headers.getOrDefault("content-length", "0"));
      Request request =
          new Request(requestLine[0], requestLine[1], Map.copyOf(headers), in.readNBytes(length));
      requests.add(request);
      OutputStream out = Channels.newOutputStream(channel);
      script.answer(request, out);
      out.flush();
    } catch (Exception e) {
      // the client went away, or the script ended the exchange on purpose
    }
  }

  @Override
  public void close() throws IOException {
    server.close();
  }
}
