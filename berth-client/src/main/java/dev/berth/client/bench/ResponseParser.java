package dev.berth.client.bench;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Locale;

/**
 * An incremental HTTP/1.1 response parser: fed whatever bytes have arrived, it says when the answer
 * is complete, with its status, whether the connection may carry another request, and (when asked,
 * or when the status is not 2xx) the body. Bodies are delimited by Content-Length, chunked transfer
 * coding, or the connection's end; interim 1xx answers are skipped. One answer at a time: {@link
 * #start} before each.
 */
final class ResponseParser {
  /** Most bytes of a body kept: error messages, metadata and metrics fit. */
  static final int MAX_KEPT_BODY = 8 << 20;

  private static final int MAX_LINE = 64 * 1024;

  private enum State {
    STATUS,
    HEADERS,
    BODY,
    CHUNK_SIZE,
    CHUNK_DATA,
    CHUNK_END,
    TRAILERS,
    UNTIL_CLOSE,
    DONE
  }

  private State state = State.DONE;
  private byte[] line = new byte[512];
  private int lineLength;
  private int status;
  private boolean keepAlive;
  private long contentLength;
  private boolean chunked;
  private long remaining;
  private boolean keepRequested;
  private boolean keep;
  private byte[] body = new byte[0];
  private int bodyLength;

  /** Readies the parser for the next answer. */
  void start(boolean keepBody) {
    state = State.STATUS;
    lineLength = 0;
    keepRequested = keepBody;
    bodyLength = 0;
    status = 0;
  }

  boolean done() {
    return state == State.DONE;
  }

  int status() {
    return status;
  }

  /** Whether the server lets the connection carry another request. */
  boolean keepAlive() {
    return keepAlive;
  }

  /** The body, when it was kept (at most {@link #MAX_KEPT_BODY} bytes). */
  byte[] body() {
    return Arrays.copyOf(body, bodyLength);
  }

  String bodyText() {
    return new String(body, 0, bodyLength, StandardCharsets.UTF_8);
  }

  /**
   * Consumes bytes of {@code in} (advancing its position) until the answer is complete or {@code
   * in} is empty; bytes after a complete answer are left in {@code in}.
   *
   * @throws IOException when the bytes are not an HTTP/1.x answer
   */
  void feed(ByteBuffer in) throws IOException {
    while (state != State.DONE && in.hasRemaining()) {
      switch (state) {
        case BODY, CHUNK_DATA -> {
          int n = (int) Math.min(remaining, in.remaining());
          take(in, n);
          remaining -= n;
          if (remaining == 0) {
            state = state == State.BODY ? State.DONE : State.CHUNK_END;
          }
        }
        case UNTIL_CLOSE -> take(in, in.remaining());
        default -> {
          if (readLine(in)) {
            onLine();
          }
        }
      }
    }
  }

  /** The connection ended: completes a body that runs to the end, else the answer was cut. */
  void endOfStream() throws EOFException {
    if (state == State.UNTIL_CLOSE) {
      state = State.DONE;
      return;
    }
    if (state != State.DONE) {
      throw new EOFException(
          state == State.STATUS && lineLength == 0
              ? "the server closed the connection"
              : "the connection closed before the answer's end");
    }
  }

  private void take(ByteBuffer in, int n) {
    if (keep && bodyLength < MAX_KEPT_BODY) {
      int k = Math.min(n, MAX_KEPT_BODY - bodyLength);
      if (bodyLength + k > body.length) {
        body =
            Arrays.copyOf(body, Math.min(MAX_KEPT_BODY, Math.max(bodyLength + k, body.length * 2)));
      }
      in.get(body, bodyLength, k);
      bodyLength += k;
      in.position(in.position() + n - k);
    } else {
      in.position(in.position() + n);
    }
  }

  /** Adds bytes up to a line feed to the line; true when the line is whole (CR LF not kept). */
  private boolean readLine(ByteBuffer in) throws IOException {
    int p = in.position();
    int limit = in.limit();
    int end = p;
    while (end < limit && in.get(end) != '\n') {
      end++;
    }
    boolean whole = end < limit;
    int n = end - p;
    if (lineLength + n > MAX_LINE) {
      throw new IOException("an answer's header line is longer than " + MAX_LINE + " bytes");
    }
    if (lineLength + n > line.length) {
      line = Arrays.copyOf(line, Math.max(lineLength + n, line.length * 2));
    }
    in.get(line, lineLength, n);
    lineLength += n;
    if (whole) {
      in.get(); // the line feed
      if (lineLength > 0 && line[lineLength - 1] == '\r') {
        lineLength--;
      }
    }
    return whole;
  }

  private void onLine() throws IOException {
    int n = lineLength;
    lineLength = 0;
    switch (state) {
      case STATUS -> {
        if (n < 12
            || !startsWith("HTTP/1.")
            || line[8] != ' '
            || !isDigit(line[9])
            || !isDigit(line[10])
            || !isDigit(line[11])) {
          throw new IOException("not an HTTP/1.x answer: '" + text(0, Math.min(n, 80)) + "'");
        }
        status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
        keepAlive = line[7] != '0'; // HTTP/1.0 closes unless it says keep-alive
        contentLength = -1;
        chunked = false;
        state = State.HEADERS;
      }
      case HEADERS -> {
        if (n == 0) {
          endOfHead();
        } else {
          header(n);
        }
      }
      case CHUNK_SIZE -> {
        int end = 0;
        while (end < n && line[end] != ';' && line[end] != ' ' && line[end] != '\t') {
          end++;
        }
        long size;
        try {
          size = Long.parseLong(text(0, end), 16);
        } catch (NumberFormatException e) {
          throw new IOException("bad chunk size '" + text(0, Math.min(n, 40)) + "'", e);
        }
        if (size < 0) {
          throw new IOException("bad chunk size " + size);
        }
        if (size == 0) {
          state = State.TRAILERS;
        } else {
          remaining = size;
          state = State.CHUNK_DATA;
        }
      }
      case CHUNK_END -> {
        if (n != 0) {
          throw new IOException("a chunk did not end with CRLF");
        }
        state = State.CHUNK_SIZE;
      }
      case TRAILERS -> {
        if (n == 0) {
          state = State.DONE;
        }
      }
      default -> throw new IllegalStateException(state.name());
    }
  }

  private void endOfHead() {
    if (status >= 100 && status < 200 && status != 101) {
      state = State.STATUS; // an interim answer: the real one follows
      return;
    }
    keep = keepRequested || status < 200 || status >= 300;
    if (status == 204 || status == 304 || status == 101) {
      state = State.DONE;
    } else if (chunked) {
      state = State.CHUNK_SIZE;
    } else if (contentLength >= 0) {
      remaining = contentLength;
      state = contentLength == 0 ? State.DONE : State.BODY;
    } else {
      keepAlive = false;
      state = State.UNTIL_CLOSE;
    }
  }

  private void header(int n) throws IOException {
    if (headerIs(n, "content-length")) {
      String v = value(n);
      try {
        contentLength = Long.parseLong(v);
        if (contentLength < 0) {
          throw new NumberFormatException();
        }
      } catch (NumberFormatException e) {
        throw new IOException("bad Content-Length '" + v + "'", e);
      }
    } else if (headerIs(n, "transfer-encoding")) {
      chunked = value(n).toLowerCase(Locale.ROOT).contains("chunked");
    } else if (headerIs(n, "connection")) {
      String v = value(n).toLowerCase(Locale.ROOT);
      if (v.contains("close")) {
        keepAlive = false;
      } else if (v.contains("keep-alive")) {
        keepAlive = true;
      }
    }
  }

  private boolean headerIs(int n, String lowerName) {
    int k = lowerName.length();
    if (n <= k || line[k] != ':') {
      return false;
    }
    for (int i = 0; i < k; i++) {
      int c = line[i];
      if (c >= 'A' && c <= 'Z') {
        c += 'a' - 'A';
      }
      if (c != lowerName.charAt(i)) {
        return false;
      }
    }
    return true;
  }

  private String value(int n) {
    int colon = 0;
    while (line[colon] != ':') {
      colon++;
    }
    return text(colon + 1, n).trim();
  }

  private boolean startsWith(String prefix) {
    for (int i = 0; i < prefix.length(); i++) {
      if (line[i] != prefix.charAt(i)) {
        return false;
      }
    }
    return true;
  }

  private static boolean isDigit(byte b) {
    return b >= '0' && b <= '9';
  }

  private String text(int from, int to) {
    return new String(line, from, to - from, StandardCharsets.ISO_8859_1);
  }
}
