package dev.berth.client.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The incremental parser, fed answers cut at every possible place, as a selector delivers them. */
class ResponseParserTest {
  private static final String CHUNKED =
      "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n"
          + "4\r\n{\"er\r\na;name=value\r\nror\":\"busy\r\n2\r\n\"}\r\n0\r\nX-Trailer: 1\r\n\r\n";
  private static final String LENGTH =
      "HTTP/1.1 100 Continue\r\n\r\n"
          + "HTTP/1.1 200 OK\r\nCONTENT-LENGTH: 11\r\nX-Request-Id: ab\r\n\r\n{\"ok\":true}";

  /**
   * Feeds {@code text} in two parts cut at {@code cut}; returns the parser once the answer ends.
   */
  private static ResponseParser parse(String text, int cut, boolean keepBody) throws IOException {
    byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
    ResponseParser p = new ResponseParser();
    p.start(keepBody);
    ByteBuffer first = ByteBuffer.wrap(bytes, 0, cut);
    p.feed(first);
    assertFalse(first.hasRemaining() && !p.done());
    if (!p.done()) {
      ByteBuffer second = ByteBuffer.wrap(bytes, cut, bytes.length - cut);
      p.feed(second);
      assertFalse(second.hasRemaining(), "bytes left after the answer");
    }
    return p;
  }

  @Test
  void aChunkedAnswerCutAnywhere() throws IOException {
    for (int cut = 0; cut <= CHUNKED.length(); cut++) {
      ResponseParser p = parse(CHUNKED, cut, false);
      assertTrue(p.done(), "cut at " + cut);
      assertEquals(503, p.status());
      assertEquals("{\"error\":\"busy\"}", p.bodyText(), "cut at " + cut);
      assertTrue(p.keepAlive());
    }
  }

  @Test
  void aLengthDelimitedAnswerAfterAnInterimOneCutAnywhere() throws IOException {
    for (int cut = 0; cut <= LENGTH.length(); cut++) {
      ResponseParser p = parse(LENGTH, cut, true);
      assertTrue(p.done(), "cut at " + cut);
      assertEquals(200, p.status());
      assertEquals("{\"ok\":true}", p.bodyText());
      ResponseParser skipped = parse(LENGTH, cut, false);
      assertEquals("", skipped.bodyText(), "a 2xx body is not kept unless asked for");
    }
  }

  @Test
  void aBodyToTheEndOfTheConnection() throws IOException {
    ResponseParser p = new ResponseParser();
    p.start(true);
    p.feed(
        ByteBuffer.wrap(
            "HTTP/1.1 200 OK\nContent-Type: text/plain\n\nuntil the end"
                .getBytes(StandardCharsets.UTF_8)));
    assertFalse(p.done());
    p.endOfStream();
    assertTrue(p.done());
    assertEquals("until the end", p.bodyText());
    assertFalse(p.keepAlive());
  }

  @Test
  void aCutAnswerOrGarbageIsAnError() throws IOException {
    ResponseParser p = new ResponseParser();
    p.start(false);
    p.feed(
        ByteBuffer.wrap(
            "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".getBytes(StandardCharsets.UTF_8)));
    assertThrows(EOFException.class, p::endOfStream);
    ResponseParser q = new ResponseParser();
    q.start(false);
    assertThrows(
        IOException.class,
        () ->
            q.feed(
                ByteBuffer.wrap(
                    "HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n"
                        .getBytes(StandardCharsets.UTF_8))));
    ResponseParser r = new ResponseParser();
    r.start(false);
    assertThrows(
        IOException.class,
        () ->
            r.feed(
                ByteBuffer.wrap(
                    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"
                        .getBytes(StandardCharsets.UTF_8))));
  }
}
