package dev.berth.client.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.berth.api.BerthException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The load loop over real sockets against a small stand-in server (the JDK's HttpServer), whose
 * behaviour each test sets: every fifth answer a 503, slow answers, connections closed after each
 * answer. A real Berth server is benched in berth-cli's BenchCommandIT.
 */
class BenchIT {
  private static final String METADATA =
      "{\"name\":\"%s\",\"versions\":[\"1\"],\"platform\":\"test\","
          + "\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[-1,4]}],\"outputs\":[]}";

  private HttpServer server;
  private ExecutorService handlers;
  private URI url;
  private final AtomicInteger inferCalls = new AtomicInteger();
  private final Set<Integer> clientPorts = ConcurrentHashMap.newKeySet();

  @BeforeEach
  void start() throws IOException {
    server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 128);
    handlers = Executors.newCachedThreadPool();
    server.setExecutor(handlers);
    server.createContext("/", this::handle);
    server.start();
    url = URI.create("http://127.0.0.1:" + server.getAddress().getPort());
  }

  @AfterEach
  void stop() {
    server.stop(0);
    handlers.shutdownNow();
  }

  /**
   * Models: "flaky" (every 5th answer a 503), "slow" (200 ms each), "closing" (Connection: close).
   */
  private void handle(HttpExchange ex) throws IOException {
    try (ex) {
      String path = ex.getRequestURI().getPath();
      ex.getRequestBody().readAllBytes();
      String[] p = path.split("/");
      if (path.startsWith("/v2/models/") && p.length == 4) {
        if (!Set.of("flaky", "slow", "closing").contains(p[3])) {
          send(ex, 404, "{\"error\":\"model '" + p[3] + "' is not here\"}", false);
          return;
        }
        send(ex, 200, String.format(METADATA, p[3]), false);
        return;
      }
      if (path.startsWith("/v2/models/") && path.endsWith("/infer")) {
        int n = inferCalls.incrementAndGet();
        clientPorts.add(ex.getRemoteAddress().getPort());
        switch (p[3]) {
          case "flaky" -> {
            if (n % 5 == 0) {
              send(ex, 503, "{\"error\":\"busy, call " + n + "\"}", false);
            } else {
              send(ex, 200, "{\"outputs\":[]}", true);
            }
          }
          case "slow" -> {
            try {
              Thread.sleep(200); // the server under test is slow: that is what is measured
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
            }
            send(ex, 200, "{\"outputs\":[]}", false);
          }
          default -> {
            ex.getResponseHeaders().set("Connection", "close");
            send(ex, 200, "{\"outputs\":[]}", false);
          }
        }
        return;
      }
      send(ex, 404, "{\"error\":\"no such endpoint\"}", false);
    }
  }

  private static void send(HttpExchange ex, int status, String body, boolean chunked)
      throws IOException {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    ex.getResponseHeaders().set("Content-Type", "application/json");
    ex.sendResponseHeaders(status, chunked ? 0 : bytes.length);
    try (OutputStream out = ex.getResponseBody()) {
      out.write(bytes);
    }
  }

  private BenchPlan.Builder plan(String model) {
    return BenchPlan.builder(url, model).timeout(Duration.ofSeconds(10));
  }

  @Test
  void errorsAreCountedByStatusWithTheFirstMessage() {
    BenchResults r =
        Bench.run(
            plan("flaky")
                .steps(List.of(LoadStep.closed(1)))
                .duration(Duration.ofSeconds(1))
                .warmup(Duration.ZERO)
                .build(),
            line -> {});
    StepResult s = r.steps().get(0);
    assertFalse(r.serverMetrics(), "the stand-in has no /metrics");
    assertNull(s.server());
    assertTrue(s.requests() > 20, "requests: " + s.requests());
    // one connection, so answers come in order: exactly every fifth is a 503
    long expected = s.requests() / 5;
    assertTrue(
        Math.abs(s.errors() - expected) <= 1,
        s.errors() + " errors in " + s.requests() + " requests");
    assertEquals(java.util.Map.of("503", s.errors()), s.errorsByStatus());
    assertTrue(s.firstError().startsWith("HTTP 503: {\"error\":\"busy, call "), s.firstError());
    long ok = s.requests() - s.errors();
    assertEquals(ok / s.durationSeconds(), s.throughputPerSecond(), 1e-6);
    LatencyStats l = s.latency();
    assertTrue(
        l.p50Ms() <= l.p90Ms() && l.p90Ms() <= l.p99Ms() && l.p99Ms() <= l.maxMs(), l.toString());
  }

  @Test
  void anOpenLoopSendsExactlyItsSchedule() {
    // 50/s: 25 requests fall due in the 0.5 s warm-up, 50 in the measured second
    BenchResults r =
        Bench.run(
            plan("flaky")
                .steps(List.of(LoadStep.open(50)))
                .duration(Duration.ofSeconds(1))
                .warmup(Duration.ofMillis(500))
                .build(),
            line -> {});
    StepResult s = r.steps().get(0);
    assertEquals(50, s.requests());
    assertEquals(1 + 25 + 50, inferCalls.get(), "the first request, the warm-up's, the step's");
    assertEquals(10, s.errors(), "every fifth of 50 consecutive calls");
  }

  @Test
  void anOpenLoopCountsLatencyFromWhenARequestWasDue() {
    // one connection, 200 ms per answer, 20 requests due per second: they queue in the client,
    // and their latency must show it (a closed loop would report 200 ms)
    StepResult s =
        Bench.run(
                plan("slow")
                    .steps(List.of(LoadStep.open(20)))
                    .duration(Duration.ofSeconds(1))
                    .warmup(Duration.ZERO)
                    .maxConnections(1)
                    .build(),
                line -> {})
            .steps()
            .get(0);
    assertEquals(20, s.requests());
    assertEquals(1, s.connections());
    assertTrue(s.latency().p50Ms() > 1000, "p50 " + s.latency().p50Ms());
    assertTrue(s.latency().maxMs() > 2500, "max " + s.latency().maxMs());
    assertTrue(s.throughputPerSecond() < 6, "throughput " + s.throughputPerSecond());
  }

  @Test
  void anOpenLoopOpensConnectionsAsItNeedsThem() {
    StepResult s =
        Bench.run(
                plan("slow")
                    .steps(List.of(LoadStep.open(20)))
                    .duration(Duration.ofSeconds(2))
                    .warmup(Duration.ofMillis(500))
                    .maxConnections(16)
                    .build(),
                line -> {})
            .steps()
            .get(0);
    assertEquals(40, s.requests());
    // 20/s at 200 ms each needs about 4 connections
    assertTrue(s.connections() >= 4 && s.connections() <= 16, "connections " + s.connections());
    assertTrue(s.latency().p50Ms() < 400, "p50 " + s.latency().p50Ms());
    assertEquals(0, s.errors());
  }

  @Test
  void aServerThatClosesEveryConnectionIsFollowed() {
    StepResult s =
        Bench.run(
                plan("closing")
                    .steps(List.of(LoadStep.closed(2)))
                    .duration(Duration.ofMillis(500))
                    .warmup(Duration.ZERO)
                    .build(),
                line -> {})
            .steps()
            .get(0);
    // The server closes the connection after every answer, so a request sent on a connection it
    // closed would fail: no errors means every request went out on a new one. (Counting distinct
    // client ports cannot tell: on loopback Linux hands a port straight back out, tcp_tw_reuse.)
    assertTrue(s.requests() > 5, "requests " + s.requests());
    assertEquals(0, s.errors(), String.valueOf(s.firstError()));
    assertTrue(inferCalls.get() >= s.requests(), "every request reached the server");
    assertTrue(clientPorts.size() > 1, "more than one connection");
  }

  @Test
  void anUnknownModelOrAnUnreachableServerSaysWhatToDo() throws IOException {
    BerthException unknown =
        assertThrows(BerthException.class, () -> Bench.run(plan("nope").build(), line -> {}));
    assertTrue(
        unknown.getMessage().contains("'nope' is not served at " + url)
            && unknown.getMessage().contains("--model"),
        unknown.getMessage());
    int closedPort;
    try (ServerSocket s = new ServerSocket(0)) {
      closedPort = s.getLocalPort();
    }
    BerthException unreachable =
        assertThrows(
            BerthException.class,
            () ->
                Bench.run(
                    BenchPlan.builder(URI.create("http://127.0.0.1:" + closedPort), "m").build(),
                    line -> {}));
    assertTrue(
        unreachable
            .getMessage()
            .startsWith("cannot reach http://127.0.0.1:" + closedPort + " (refused"),
        unreachable.getMessage());
  }
}
