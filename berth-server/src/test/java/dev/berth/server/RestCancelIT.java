package dev.berth.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
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
  @TempDir static Path dir;
  private static MiniLmServer server;

  @BeforeAll
  static void start() {
    server = MiniLmServer.startOneSlot(dir);
  }

  @AfterAll
  static void stop() {
    server.server().close();
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
    double before = server.metric("berth_batch_size_count", Map.of());
    double given = server.metric("berth_requests_total", Map.of("protocol", "rest", "code", "499"));
    CompletableFuture<MiniLmServer.Response> busy = server.busy();
    try (Socket socket = new Socket("127.0.0.1", server.server().port())) {
      socket.getOutputStream().write(inferRequest("given up on"));
      socket.getOutputStream().flush();
      // the request is in: queued behind the long one
      server.awaitInflight(2);
    }
    server.awaitGivenUp("rest", "499", (int) given + 1, busy);

    // the long request's client stayed: it is answered, however long it waited
    assertEquals(200, busy.get(120, TimeUnit.SECONDS).status());
    // only the long request reached the engine
    assertEquals(before + 1, server.metric("berth_batch_size_count", Map.of()));
    assertEquals(0, server.metric("berth_inflight_requests", Map.of()));
  }

  @Test
  void aBurstOfClientsThatLeaveLeavesTheGaugesTrue() throws Exception {
    double given = server.metric("berth_requests_total", Map.of("protocol", "rest", "code", "499"));
    CompletableFuture<MiniLmServer.Response> busy = server.busy();
    List<Socket> clients = new java.util.ArrayList<>();
    try {
      for (int i = 0; i < 16; i++) {
        Socket socket = new Socket("127.0.0.1", server.server().port());
        clients.add(socket);
        socket.getOutputStream().write(inferRequest("burst " + i));
        socket.getOutputStream().flush();
      }
      server.awaitInflight(17);
      assertEquals(16, server.metric("berth_queue_size", Map.of()));
    } finally {
      for (Socket socket : clients) {
        socket.close();
      }
    }
    // the gauges are true again within a second, while the engine still runs the long request
    server.awaitGivenUp("rest", "499", (int) given + 16, busy);
    assertEquals(200, busy.get(120, TimeUnit.SECONDS).status());
    assertEquals(0, server.metric("berth_inflight_requests", Map.of()));
  }

  @Test
  void aRequestSentOnTheConnectionWhileTheFirstWaitsIsAnsweredWhole() throws Exception {
    CompletableFuture<MiniLmServer.Response> busy = server.busy();
    try (Socket socket = new Socket("127.0.0.1", server.server().port())) {
      socket.setSoTimeout(120_000);
      socket.getOutputStream().write(inferRequest("first"));
      socket.getOutputStream().flush();
      server.awaitInflight(2);
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
