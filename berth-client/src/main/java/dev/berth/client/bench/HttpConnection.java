package dev.berth.client.bench;

import java.io.Closeable;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Arrays;

/**
 * A lean HTTP/1.1 keep-alive connection for the load loop: it writes a request encoded once, reads
 * the status line and the headers it needs, and skips the body (Content-Length, chunked, or up to
 * the connection's close) without keeping it unless asked or the status is not 2xx. One caller uses
 * it at a time.
 */
final class HttpConnection implements Closeable {
  /** Most bytes of a body kept: error messages, metadata and metrics fit. */
  static final int MAX_KEPT_BODY = 8 << 20;

  private final InputStream in;
  private final OutputStream out;
  private final Closeable resource;
  private final byte[] buf = new byte[16384];
  private int pos;
  private int lim;
  private byte[] body = new byte[0];
  private int bodyLength;
  private boolean keepAlive = true;
  // what the last head said about the body
  private long contentLength;
  private boolean chunked;

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
    StringBuilder head = new StringBuilder(128);
    head.append(method).append(' ').append(path).append(" HTTP/1.1\r\n");
    head.append("Host: ").append(authority).append("\r\n");
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
    int status;
    do {
      status = readHead();
    } while (status >= 100 && status < 200 && status != 101);
    readBody(status, keepBody || status < 200 || status >= 300);
    return status;
  }

  /** Whether the server lets the connection carry another request. */
  boolean keepAlive() {
    return keepAlive;
  }

  /** The last answer's body, when it was kept (at most {@link #MAX_KEPT_BODY} bytes). */
  byte[] body() {
    return Arrays.copyOf(body, bodyLength);
  }

  String bodyText() {
    return new String(body, 0, bodyLength, StandardCharsets.UTF_8);
  }

  @Override
  public void close() throws IOException {
    resource.close();
  }

  private int readHead() throws IOException {
    String statusLine = readLine();
    if (!statusLine.startsWith("HTTP/1.") || statusLine.length() < 12) {
      throw new IOException("not an HTTP/1.x answer: '" + abbreviate(statusLine) + "'");
    }
    int status;
    try {
      status = Integer.parseInt(statusLine.substring(9, 12));
    } catch (NumberFormatException e) {
      throw new IOException("bad status line: '" + abbreviate(statusLine) + "'", e);
    }
    boolean http10 = statusLine.charAt(7) == '0';
    keepAlive = !http10;
    contentLength = -1;
    chunked = false;
    while (true) {
      int end = lineEnd(); // may move the line to the buffer's start
      int start = pos;
      if (end == start) {
        pos = end + 2;
        return status;
      }
      if (headerIs(start, end, "content-length")) {
        contentLength = parseLong(value(start, end));
      } else if (headerIs(start, end, "transfer-encoding")) {
        chunked = value(start, end).toLowerCase(java.util.Locale.ROOT).contains("chunked");
      } else if (headerIs(start, end, "connection")) {
        String v = value(start, end).toLowerCase(java.util.Locale.ROOT);
        if (v.contains("close")) {
          keepAlive = false;
        } else if (v.contains("keep-alive")) {
          keepAlive = true;
        }
      }
      pos = end + 2;
    }
  }

  private void readBody(int status, boolean keep) throws IOException {
    bodyLength = 0;
    if (status == 204 || status == 304 || (status >= 100 && status < 200)) {
      return;
    }
    if (chunked) {
      while (true) {
        String sizeLine = readLine();
        int semi = sizeLine.indexOf(';');
        long size = parseHex(semi < 0 ? sizeLine.trim() : sizeLine.substring(0, semi).trim());
        if (size == 0) {
          while (!readLine().isEmpty()) {
            // trailers
          }
          return;
        }
        transfer(size, keep);
        if (!readLine().isEmpty()) {
          throw new IOException("a chunk did not end with CRLF");
        }
      }
    }
    if (contentLength >= 0) {
      transfer(contentLength, keep);
      return;
    }
    // Neither: the body runs to the end of the connection.
    keepAlive = false;
    while (true) {
      if (pos == lim && !fill()) {
        return;
      }
      int n = lim - pos;
      if (keep) {
        keep(pos, n);
      }
      pos += n;
    }
  }

  private void transfer(long length, boolean keep) throws IOException {
    long left = length;
    while (left > 0) {
      if (pos == lim && !fill()) {
        throw new EOFException("the connection closed " + left + " bytes before the body's end");
      }
      int n = (int) Math.min(left, lim - pos);
      if (keep) {
        keep(pos, n);
      }
      pos += n;
      left -= n;
    }
  }

  private void keep(int from, int n) {
    int room = MAX_KEPT_BODY - bodyLength;
    int take = Math.min(room, n);
    if (take <= 0) {
      return;
    }
    if (bodyLength + take > body.length) {
      body =
          Arrays.copyOf(
              body, Math.min(MAX_KEPT_BODY, Math.max(bodyLength + take, body.length * 2)));
    }
    System.arraycopy(buf, from, body, bodyLength, take);
    bodyLength += take;
  }

  /** Reads a line (without its CRLF). */
  private String readLine() throws IOException {
    int end = lineEnd(); // may move the line to the buffer's start
    int start = pos;
    String line = new String(buf, start, end - start, StandardCharsets.ISO_8859_1);
    pos = end + 2;
    return line;
  }

  /** The index of the CR of the line starting at {@code pos}, filling the buffer as needed. */
  private int lineEnd() throws IOException {
    int scanned = pos;
    while (true) {
      for (int i = scanned; i + 1 < lim; i++) {
        if (buf[i] == '\r' && buf[i + 1] == '\n') {
          return i;
        }
      }
      scanned = Math.max(pos, lim - 1);
      if (pos > 0) {
        // make room: move the unread bytes to the front
        int n = lim - pos;
        System.arraycopy(buf, pos, buf, 0, n);
        scanned -= pos;
        pos = 0;
        lim = n;
      }
      if (lim == buf.length) {
        throw new IOException("a header line is longer than " + buf.length + " bytes");
      }
      if (!fill()) {
        throw new EOFException(
            lim == 0 ? "the server closed the connection" : "the connection closed mid-header");
      }
    }
  }

  /** Reads more bytes after {@code lim}; false at the end of the stream. */
  private boolean fill() throws IOException {
    if (pos == lim) {
      pos = 0;
      lim = 0;
    }
    int n = in.read(buf, lim, buf.length - lim);
    if (n <= 0) {
      return false;
    }
    lim += n;
    return true;
  }

  private boolean headerIs(int start, int end, String lowerName) {
    int n = lowerName.length();
    if (end - start <= n || buf[start + n] != ':') {
      return false;
    }
    for (int i = 0; i < n; i++) {
      int c = buf[start + i];
      if (c >= 'A' && c <= 'Z') {
        c += 'a' - 'A';
      }
      if (c != lowerName.charAt(i)) {
        return false;
      }
    }
    return true;
  }

  private String value(int start, int end) {
    int colon = start;
    while (buf[colon] != ':') {
      colon++;
    }
    return new String(buf, colon + 1, end - colon - 1, StandardCharsets.ISO_8859_1).trim();
  }

  private static long parseLong(String s) throws IOException {
    try {
      long v = Long.parseLong(s);
      if (v < 0) {
        throw new NumberFormatException();
      }
      return v;
    } catch (NumberFormatException e) {
      throw new IOException("bad Content-Length '" + s + "'", e);
    }
  }

  private static long parseHex(String s) throws IOException {
    try {
      return Long.parseLong(s, 16);
    } catch (NumberFormatException e) {
      throw new IOException("bad chunk size '" + abbreviate(s) + "'", e);
    }
  }

  private static String abbreviate(String s) {
    return s.length() > 80 ? s.substring(0, 80) + "..." : s;
  }
}
