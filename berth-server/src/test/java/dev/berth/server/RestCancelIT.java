package dev.berth.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An HTTP/1.1 client that closes its connection while its request waits frees its slot at once: the
 * request leaves the queue unrun and is counted with status 499. A client that stays keeps its
 * connection, however long it waits, and a request it sends meanwhile on the same connection is
 * answered whole.
 */
class RestCancelIT {
  private static final Map<String, String> MINILM = Map.of("model", MiniLmServer.MODEL);

  @TempDir static Path dir;
  private static MiniLmServer server;

  @BeforeAll
  static void start() {
    // one engine instance, so that a second request waits in the queue behind the first
    server =
        MiniLmServer.start(
            MiniLmServer.repository(dir, MiniLmServer.modelYaml("{max-batch-size: 256}", "120s")));
  }

  @AfterAll
  static void stop() {
    server.server().close();
  }

  private static double metric(String name, Map<String, String> labels) {
    return MiniLmServer.value(server.metrics(), name, labels);
  }

  /** A request of 128 sentences of about 250 tokens: it keeps the engine busy for seconds. */
  private static CompletableFuture<MiniLmServer.Response> busy() {
    List<String> sentences = new ArrayList<>();
    for (int i = 0; i < 128; i++) {
      sentences.add(("sentence " + i + " keeps the engine busy for a while; ").repeat(25));
    }
    CompletableFuture<MiniLmServer.Response> busy =
        server.postAsync("/v2/models/minilm/infer", MiniLmServer.textRequest(sentences).toString());
    await()
        .atMost(Duration.ofSeconds(30))
        .until(() -> metric("berth_inflight_requests", MINILM) == 1);
    return busy;
  }

  private static byte[] inferRequest(String sentence) {
    byte[] body =
        MiniLmServer.textRequest(List.of(sentence)).toString().getBytes(StandardCharsets.UTF_8);
    byte[] head =
        ("POST /v2/models/minilm/infer HTTP/1.1\r\nHost: localhost\r\n"
                + "Content-Type: application/json\r\nContent-Length: "
                + body.length
                + "\r\n\r\n")
            .getBytes(StandardCharsets.US_ASCII);
    byte[] request = new byte[head.length + body.length];
    System.arraycopy(head, 0, request, 0, head.length);
    System.arraycopy(body, 0, request, head.length, body.length);
    return request;
  }

  @Test
  void aClientThatDisconnectsWhileQueuedFreesItsSlotUnrun() throws Exception {
    double before = metric("berth_batch_size_count", MINILM);
    CompletableFuture<MiniLmServer.Response> busy = busy();
    try (Socket socket = new Socket("127.0.0.1", server.server().port())) {
      socket.getOutputStream().write(inferRequest("given up on"));
      socket.getOutputStream().flush();
      // the request is in: queued behind the long one
      await()
          .atMost(Duration.ofSeconds(30))
          .until(() -> metric("berth_inflight_requests", MINILM) == 2);
    }
    await()
        .atMost(Duration.ofSeconds(30))
        .until(() -> metric("berth_inflight_requests", MINILM) == 1);
    await()
        .atMost(Duration.ofSeconds(30))
        .until(
            () ->
                metric(
                        "berth_requests_total",
                        Map.of("model", "minilm", "protocol", "rest", "code", "499"))
                    == 1);
    assertFalse(busy.isDone(), "the slot must be freed while the long request still runs");

    // the long request's client stayed: it is answered, however long it waited
    assertEquals(200, busy.get(120, TimeUnit.SECONDS).status());
    // only the long request reached the engine
    assertEquals(before + 1, metric("berth_batch_size_count", MINILM));
    assertEquals(0, metric("berth_inflight_requests", MINILM));
  }

  @Test
  void aRequestSentOnTheConnectionWhileTheFirstWaitsIsAnsweredWhole() throws Exception {
    CompletableFuture<MiniLmServer.Response> busy = busy();
    try (Socket socket = new Socket("127.0.0.1", server.server().port())) {
      socket.setSoTimeout(120_000);
      socket.getOutputStream().write(inferRequest("first"));
      socket.getOutputStream().flush();
      await()
          .atMost(Duration.ofSeconds(30))
          .until(() -> metric("berth_inflight_requests", MINILM) == 2);
      // pipelined while the first waits: the server reads ahead a byte of it and must keep it
      socket.getOutputStream().write(inferRequest("second"));
      socket.getOutputStream().flush();

      InputStream in = socket.getInputStream();
      String first = readResponse(in);
      String second = readResponse(in);
      assertTrue(first.startsWith("HTTP/1.1 200"), first);
      assertTrue(second.startsWith("HTTP/1.1 200"), second);
      assertTrue(first.contains("\"outputs\""), first);
      assertTrue(second.contains("\"outputs\""), second);
    }
    assertEquals(200, busy.get(120, TimeUnit.SECONDS).status());
  }

  /** One HTTP/1.1 response with a Content-Length body, as text. */
  private static String readResponse(InputStream in) throws IOException {
    ByteArrayOutputStream head = new ByteArrayOutputStream();
    while (!head.toString(StandardCharsets.US_ASCII).endsWith("\r\n\r\n")) {
      int b = in.read();
      if (b < 0) {
        throw new IOException("connection closed mid-response: " + head);
      }
      head.write(b);
    }
    String text = head.toString(StandardCharsets.US_ASCII);
    int length = 0;
    for (String line : text.split("\r\n")) {
      if (line.toLowerCase(java.util.Locale.ROOT).startsWith("content-length:")) {
        length = Integer.parseInt(line.substring(15).trim());
      }
    }
    return text + new String(in.readNBytes(length), StandardCharsets.UTF_8);
  }
}
