package dev.berth.client.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The HTTP/1.1 reader, over byte streams standing in for a socket. */
class HttpConnectionTest {
  private static final byte[] GET =
      HttpConnection.request("GET", "127.0.0.1:8080", "/v2", null, null);

  private final ByteArrayOutputStream sent = new ByteArrayOutputStream();

  private HttpConnection answering(String answers) {
    return answering(new ByteArrayInputStream(answers.getBytes(StandardCharsets.UTF_8)));
  }

  private HttpConnection answering(InputStream in) {
    return new HttpConnection(in, sent, () -> {});
  }

  @Test
  void encodesARequestOnce() {
    byte[] post =
        HttpConnection.request(
            "POST",
            "h:1",
            "/v2/models/m/infer",
            "application/json",
            "{\"a\":1}".getBytes(StandardCharsets.UTF_8));
    assertEquals(
        "POST /v2/models/m/infer HTTP/1.1\r\nHost: h:1\r\nContent-Type: application/json\r\n"
            + "Content-Length: 7\r\n\r\n{\"a\":1}",
        new String(post, StandardCharsets.UTF_8));
    assertEquals(
        "GET /v2 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
        new String(GET, StandardCharsets.UTF_8));
  }

  @Test
  void readsAnswersOneAfterAnotherOnOneConnection() throws IOException {
    HttpConnection c =
        answering(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}"
                + "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 16\r\nRetry-After: 1\r\n\r\n{\"error\":\"busy\"}"
                + "HTTP/1.1 204 No Content\r\n\r\n"
                + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi");
    assertEquals(200, c.exchange(GET, false));
    assertEquals("", c.bodyText(), "a 2xx body is skipped unless asked for");
    assertEquals(503, c.exchange(GET, false));
    assertEquals("{\"error\":\"busy\"}", c.bodyText(), "an error's body is kept");
    assertEquals(204, c.exchange(GET, false));
    assertEquals(200, c.exchange(GET, true));
    assertEquals("hi", c.bodyText());
    assertTrue(c.keepAlive());
    assertEquals(4 * GET.length, sent.size(), "each request written whole");
  }

  @Test
  void readsChunkedBodies() throws IOException {
    HttpConnection c =
        answering(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nTrailer: x\r\n\r\n"
                + "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nnext");
    assertEquals(200, c.exchange(GET, true));
    assertEquals("hello, world", c.bodyText());
    assertEquals(200, c.exchange(GET, true));
    assertEquals("nex", c.bodyText());
  }

  @Test
  void aBodyWithoutLengthRunsToTheCloseAndEndsTheConnection() throws IOException {
    HttpConnection c = answering("HTTP/1.0 200 OK\r\n\r\nall of it");
    assertEquals(200, c.exchange(GET, true));
    assertEquals("all of it", c.bodyText());
    assertFalse(c.keepAlive());
    HttpConnection closing =
        answering("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    assertEquals(200, closing.exchange(GET, false));
    assertFalse(closing.keepAlive());
  }

  @Test
  void skipsInterimAnswers() throws IOException {
    HttpConnection c =
        answering("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    assertEquals(201, c.exchange(GET, false));
  }

  @Test
  void readsAnswersThatArriveAByteAtATimeAndHeadersLongerThanOneRead() throws IOException {
    String big = "x".repeat(12_000);
    String answers =
        "HTTP/1.1 200 OK\r\nX-Big: "
            + big
            + "\r\nContent-Length: 5\r\n\r\nfirst"
            + "HTTP/1.1 200 OK\r\nX-Big: "
            + big
            + "\r\nContent-Length: 6\r\n\r\nsecond";
    byte[] bytes = answers.getBytes(StandardCharsets.UTF_8);
    InputStream trickle =
        new ByteArrayInputStream(bytes) {
          @Override
          public synchronized int read(byte[] b, int off, int len) {
            return super.read(b, off, Math.min(len, 7));
          }
        };
    HttpConnection c = answering(trickle);
    assertEquals(200, c.exchange(GET, true));
    assertEquals("first", c.bodyText());
    assertEquals(200, c.exchange(GET, true));
    assertEquals("second", c.bodyText());
  }

  @Test
  void aCutAnswerIsATransportFailure() {
    assertThrows(
        EOFException.class,
        () -> answering("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort").exchange(GET, false));
    assertThrows(EOFException.class, () -> answering("").exchange(GET, false));
    IOException e =
        assertThrows(
            IOException.class, () -> answering("SSH-2.0-OpenSSH\r\n\r\n").exchange(GET, false));
    assertTrue(e.getMessage().contains("not an HTTP/1.x answer"), e.getMessage());
    assertEquals("closed", LoadLoop.kind(new EOFException("x")));
  }
}
