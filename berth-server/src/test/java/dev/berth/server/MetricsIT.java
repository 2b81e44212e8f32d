package dev.berth.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * GET /metrics after real traffic: every serving metric is there, in a format Prometheus accepts.
 */
class MetricsIT {
  private static final int REQUESTS = 5;
  private static final Map<String, String> MINILM = Map.of("model", "minilm", "version", "1");

  @TempDir static Path dir;
  private static MiniLmServer server;

  @BeforeAll
  static void startAndServe() {
    server = MiniLmServer.start(MiniLmServer.repository(dir));
    server.server().service().metrics().withJvmMetrics(); // as berth serve does
    for (int i = 0; i < REQUESTS; i++) {
      server.embed(List.of("Request number " + i + " for the metrics."));
    }
    server.post("/v1/models/minilm:predict", "{\"instances\": [\"over TF Serving\"]}").json(200);
    server.post("/v2/models/minilm/infer", "{\"inputs\": []}").json(400);
    // Request counters are written once the answer is on its way: wait until the last is counted.
    await()
        .atMost(Duration.ofSeconds(10))
        .until(() -> samples("berth_requests_total", Map.of("code", "400")) > 0);
  }

  @AfterAll
  static void stop() {
    server.close();
  }

  private static double samples(String name, Map<String, String> labels) {
    return MiniLmServer.value(server.metrics(), name, labels);
  }

  @Test
  void promtoolAcceptsTheExposition(@TempDir Path tmp) throws Exception {
    MiniLmServer.Response r = server.get("/metrics");
    assertEquals(200, r.status());
    assertTrue(
        r.headers().firstValue("Content-Type").orElse("").startsWith("text/plain"),
        () -> "Content-Type " + r.headers().firstValue("Content-Type"));
    for (String jvm : new String[] {"jvm_memory_used_bytes{", "process_cpu_seconds_total "}) {
      assertTrue(r.body().contains(jvm), jvm + " missing from /metrics");
    }
    Path exposition = Files.writeString(tmp.resolve("metrics.txt"), r.body());

    Process promtool =
        new ProcessBuilder(promtool().toString(), "check", "metrics")
            .redirectInput(exposition.toFile())
            .redirectErrorStream(true)
            .start();
    String output = new String(promtool.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(promtool.waitFor(60, TimeUnit.SECONDS), "promtool did not finish");
    assertEquals(
        0, promtool.exitValue(), () -> "promtool check metrics:\n" + output + "\n" + r.body());
  }

  /** promtool from PATH; the test fails, never skips, when it is not there. */
  private static Path promtool() {
    String path = System.getenv().getOrDefault("PATH", "");
    return Stream.of(path.split(File.pathSeparator))
        .filter(d -> !d.isEmpty())
        .map(d -> Path.of(d, "promtool"))
        .filter(Files::isExecutable)
        .findFirst()
        .orElseGet(
            () -> {
              if ("true".equalsIgnoreCase(System.getenv("CI"))) {
                return fail(
                    "promtool is not on PATH of this CI machine; add the 'prometheus' package to"
                        + " the CI image (apt-get install prometheus)");
              }
              return fail(
                  "promtool is not on PATH; install it with 'sudo apt-get install prometheus' (or"
                      + " put the promtool binary of a Prometheus release on PATH) and run again");
            });
  }

  @Test
  void requestsAreCountedByModelProtocolAndCode() {
    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(
            () -> {
              List<MiniLmServer.Sample> m = server.metrics();
              assertEquals(
                  REQUESTS,
                  MiniLmServer.value(
                      m,
                      "berth_requests_total",
                      Map.of(
                          "model", "minilm", "version", "1", "protocol", "rest", "code", "200")));
              assertEquals(
                  1,
                  MiniLmServer.value(
                      m,
                      "berth_requests_total",
                      Map.of("model", "minilm", "protocol", "tfserving", "code", "200")));
              assertEquals(
                  1,
                  MiniLmServer.value(
                      m,
                      "berth_requests_total",
                      Map.of("model", "minilm", "protocol", "rest", "code", "400")));
            });
    List<MiniLmServer.Sample> m = server.metrics();
    assertEquals(
        REQUESTS + 2,
        MiniLmServer.value(
            m, "berth_request_duration_seconds_bucket", Map.of("model", "minilm", "le", "+Inf")));
  }

  @Test
  void batcherRecordsQueueTimeComputeTimeAndBatchSize() {
    List<MiniLmServer.Sample> m = server.metrics();
    int engineRuns = REQUESTS + 1; // the bad request never reached the engine
    assertEquals(engineRuns, MiniLmServer.value(m, "berth_queue_duration_seconds_count", MINILM));
    assertTrue(hasSeries(m, "berth_queue_duration_seconds_bucket", MINILM));
    assertTrue(MiniLmServer.value(m, "berth_compute_duration_seconds_count", MINILM) >= 1);
    assertTrue(MiniLmServer.value(m, "berth_compute_duration_seconds_sum", MINILM) > 0);
    assertTrue(hasSeries(m, "berth_compute_duration_seconds_bucket", MINILM));
    assertEquals(engineRuns, MiniLmServer.value(m, "berth_batch_size_sum", MINILM));
    assertTrue(hasSeries(m, "berth_batch_size_bucket", MINILM));
  }

  @Test
  void inflightRequestsReturnToZero() {
    await()
        .atMost(Duration.ofSeconds(10))
        .untilAsserted(
            () -> {
              List<MiniLmServer.Sample> m = server.metrics();
              assertTrue(hasSeries(m, "berth_inflight_requests", Map.of("model", "minilm")));
              assertEquals(
                  0, MiniLmServer.value(m, "berth_inflight_requests", Map.of("model", "minilm")));
            });
  }

  @Test
  void modelLoadTimeAndStateAreExported() {
    List<MiniLmServer.Sample> m = server.metrics();
    assertTrue(MiniLmServer.value(m, "berth_model_load_duration_seconds", MINILM) > 0);
    assertEquals(1, MiniLmServer.value(m, "berth_model_state", with(MINILM, "state", "ready")));
    for (String other : List.of("loading", "unavailable", "unloaded")) {
      assertTrue(hasSeries(m, "berth_model_state", with(MINILM, "state", other)), other);
      assertEquals(
          0, MiniLmServer.value(m, "berth_model_state", with(MINILM, "state", other)), other);
    }
  }

  private static boolean hasSeries(
      List<MiniLmServer.Sample> m, String name, Map<String, String> labels) {
    return m.stream().anyMatch(s -> s.name().equals(name) && s.has(labels));
  }

  private static Map<String, String> with(Map<String, String> labels, String key, String value) {
    Map<String, String> out = new HashMap<>(labels);
    out.put(key, value);
    return out;
  }
}
