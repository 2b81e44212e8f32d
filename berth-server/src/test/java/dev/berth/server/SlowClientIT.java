package dev.berth.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Clients that send half a body and stall, or trickle it, are cut off at the body timeout: the
 * connection ends (with a 408 when it can still be written), and the server keeps serving.
 */
class SlowClientIT {
  private static final Duration BODY_TIMEOUT = Duration.ofSeconds(1);

  @TempDir static Path dir;
  private static MiniLmServer server;

  @BeforeAll
  static void start() {
    server =
        MiniLmServer.start(
            MiniLmServer.repository(dir),
            b -> b.limits(ServerLimits.builder().bodyTimeout(BODY_TIMEOUT).build()));
  }

  @AfterAll
  static void stop() {
    server.server().close();
  }

  /** Everything the server sends until it closes the connection. */
  private static String untilClosed(Socket s) throws IOException {
    ByteArrayOutputStream got = new ByteArrayOutputStream();
    InputStream in = s.getInputStream();
    byte[] buf = new byte[4096];
    try {
      for (int n; (n = in.read(buf)) >= 0; ) {
        got.write(buf, 0, n);
      }
    } catch (java.net.SocketException e) {
      // a reset is a close too
    }
    return got.toString(StandardCharsets.ISO_8859_1);
  }

  private static String head(int contentLength) {
    return "POST /v2/models/minilm/infer HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        + "Content-Type: application/json\r\nContent-Length: "
        + contentLength
        + "\r\n\r\n";
  }

  @Test
  void aStalledBodyIsCutOffAtTheBodyTimeout() {
    assertTimeoutPreemptively(
        Duration.ofSeconds(30),
        () -> {
          try (Socket s = new Socket("127.0.0.1", server.server().port())) {
            OutputStream out = s.getOutputStream();
            out.write((head(100) + "{\"inputs\":").getBytes(StandardCharsets.US_ASCII));
            out.flush();
            long start = System.nanoTime();
            String answer = untilClosed(s); // the client sends nothing more
            long waited = (System.nanoTime() - start) / 1_000_000;
            assertTrue(waited >= BODY_TIMEOUT.toMillis() - 50, "cut off after " + waited + " ms");
            assertTrue(
                answer.isEmpty() || answer.startsWith("HTTP/1.1 408"),
                "either the connection ends or a 408 comes: " + answer);
          }
        });
    assertEquals(1, server.embed(List.of("still serving")).length);
  }

  @Test
  void aTricklingBodyIsCutOffToo() {
    ScheduledExecutorService pace = Executors.newSingleThreadScheduledExecutor();
    try {
      assertTimeoutPreemptively(
          Duration.ofSeconds(30),
          () -> {
            try (Socket s = new Socket("127.0.0.1", server.server().port())) {
              OutputStream out = s.getOutputStream();
              out.write(head(10_000).getBytes(StandardCharsets.US_ASCII));
              out.flush();
              long start = System.nanoTime();
              // one byte every 200 ms: always moving, never done within the body timeout
              pace.scheduleAtFixedRate(
                  () -> {
                    try {
                      out.write(' ');
                      out.flush();
                    } catch (IOException e) {
                      throw new java.io.UncheckedIOException(e); // closed: stop trickling
                    }
                  },
                  0,
                  200,
                  TimeUnit.MILLISECONDS);
              String answer = untilClosed(s);
              long waited = (System.nanoTime() - start) / 1_000_000;
              assertTrue(
                  waited >= BODY_TIMEOUT.toMillis() - 50 && waited < 15_000,
                  "a trickling client was served for " + waited + " ms");
              assertTrue(
                  answer.isEmpty() || answer.startsWith("HTTP/1.1 408"),
                  "either the connection ends or a 408 comes: " + answer);
            }
          });
    } finally {
      pace.shutdownNow();
    }
    assertEquals(1, server.embed(List.of("still serving")).length);
  }
}
