package dev.berth.cli;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.berth.kube.Dashboard;
import dev.berth.kube.Monitoring;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The shipped dashboard and alert rules against a real Prometheus (Debian's {@code prometheus},
 * started here on 127.0.0.1) scraping a running {@code berth serve} under load, with MiniLM and a
 * language model: every query of the dashboard and every signal of the rules returns data, so none
 * names a metric or label Berth does not export, and Prometheus evaluates every rule without error.
 */
class MonitoringLiveIT {
  private static final String NAME = "shop";
  private static final HttpClient HTTP = HttpClient.newHttpClient();

  @TempDir Path dir;

  @Test
  void everyDashboardQueryAndRuleSignalReturnsDataFromALiveServer() throws Exception {
    Path service = TinyLlmService.write(dir, "");
    // the same service, named and with MiniLM beside the language model
    Files.writeString(
        service,
        Files.readString(service)
            .replace("name: tiny-llm", "name: " + NAME)
            .replace(
                "  - path: models/tiny\n",
                "  - path: models/tiny\n  - path: "
                    + BerthProcess.examples().resolve("minilm")
                    + "\n    versions: [1]\n"));
    Path monitoring = dir.resolve("monitoring");
    BerthProcess.Finished export =
        BerthProcess.run(
            dir,
            Duration.ofSeconds(60),
            "deploy",
            service.toString(),
            "--export",
            "monitoring",
            monitoring.toString());
    assertEquals(0, export.code(), export.err());
    Path rules = monitoring.resolve(NAME + "-rules.yaml");
    assertTrue(Files.isRegularFile(rules), export.out());

    try (BerthProcess berth =
            BerthProcess.start(
                dir, "serve", service.toString(), "--port", "0", "--grpc-port", "0");
        ExecutorService load = Executors.newVirtualThreadPerTaskExecutor()) {
      String url = berth.awaitServing();
      String log = Files.readString(berth.stderr);
      assertTrue(log.contains("\"status_page\":\"" + url + "/\""), log);
      AtomicBoolean running = new AtomicBoolean(true);
      AtomicInteger answered = new AtomicInteger();
      List<Future<Void>> clients = new ArrayList<>();
      for (int c = 0; c < 2; c++) {
        clients.add(load.submit(() -> loop(running, answered, () -> infer(url))));
      }
      clients.add(load.submit(() -> loop(running, answered, () -> complete(url))));
      try (Prometheus prometheus = Prometheus.start(dir.resolve("prometheus"), rules, url)) {
        List<String> queries = new ArrayList<>();
        for (String q : Dashboard.queries(NAME)) {
          queries.add(Dashboard.asSent(q, "1m"));
        }
        for (Monitoring.Alert a : Monitoring.alerts(NAME)) {
          queries.addAll(a.signals());
        }
        Set<String> empty = new LinkedHashSet<>(queries);
        await()
            .atMost(Duration.ofSeconds(120))
            .pollInterval(Duration.ofSeconds(1))
            .failFast("berth stopped", () -> !berth.process.isAlive())
            .failFast("a load client failed", () -> clients.stream().anyMatch(Future::isDone))
            .untilAsserted(
                () -> {
                  for (String q : List.copyOf(empty)) {
                    if (prometheus.api.hasData(q)) {
                      empty.remove(q);
                    }
                  }
                  assertTrue(
                      empty.isEmpty(),
                      "queries without data after "
                          + answered.get()
                          + " requests:\n"
                          + String.join("\n", empty));
                });

        // the figures say what happened: a tenth of MiniLM's requests were malformed (400), none
        // failed in the server, none was refused
        String errorsByCode =
            Dashboard.asSent(
                Dashboard.rows(NAME).get(0).panels().get(1).queries().get(0).expr(), "1m");
        Set<String> codes = new java.util.TreeSet<>();
        for (JsonNode sample : prometheus.api.query(errorsByCode)) {
          if (sample.path("metric").path("model").asText().equals("minilm")) {
            codes.add(sample.path("metric").path("code").asText());
          }
        }
        assertEquals(Set.of("400"), codes, errorsByCode);
        for (String alert : List.of("BerthErrorRatioHigh", "BerthOverloaded")) {
          String share =
              Monitoring.alerts(NAME).stream()
                  .filter(a -> a.name().equals(alert))
                  .findFirst()
                  .orElseThrow()
                  .signals()
                  .get(0);
          JsonNode minilm = null;
          for (JsonNode sample : prometheus.api.query(share)) {
            if (sample.path("metric").path("model").asText().equals("minilm")) {
              minilm = sample;
            }
          }
          assertTrue(minilm != null, share);
          assertEquals("0", minilm.path("value").path(1).asText(), alert + ": " + share);
        }

        JsonNode evaluated = prometheus.api.rules("berth-" + NAME);
        assertEquals(Monitoring.alerts(NAME).size(), evaluated.size(), evaluated.toString());
        await()
            .atMost(Duration.ofSeconds(30))
            .pollInterval(Duration.ofSeconds(1))
            .untilAsserted(
                () -> {
                  for (JsonNode rule : prometheus.api.rules("berth-" + NAME)) {
                    assertEquals(
                        "ok", rule.path("health").asText(), rule.path("name") + ": " + rule);
                  }
                });
      } finally {
        running.set(false);
      }
      for (Future<Void> client : clients) {
        client.get(60, java.util.concurrent.TimeUnit.SECONDS); // a client's failure fails the test
      }
    }
  }

  @FunctionalInterface
  private interface Call {
    int send() throws Exception;
  }

  private static Void loop(AtomicBoolean running, AtomicInteger answered, Call call)
      throws Exception {
    while (running.get()) {
      call.send();
      answered.incrementAndGet();
    }
    return null;
  }

  private static final AtomicInteger SENT = new AtomicInteger();

  /** A MiniLM request; every tenth one is malformed, so that errors by code have a 400 to show. */
  private static int infer(String url) throws Exception {
    boolean bad = SENT.incrementAndGet() % 10 == 0;
    String body =
        bad
            ? "{\"inputs\":[{\"name\":\"text\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}]}"
            : "{\"inputs\":[{\"name\":\"text\",\"shape\":[1],\"datatype\":\"BYTES\","
                + "\"data\":[\"ships leave the berth at dawn\"]}]}";
    HttpResponse<String> r = post(url + "/v2/models/minilm/infer", body);
    if (r.statusCode() != (bad ? 400 : 200)) {
      throw new AssertionError(r.statusCode() + " " + r.body());
    }
    return r.statusCode();
  }

  private static HttpResponse<String> post(String url, String json) throws Exception {
    return HTTP.send(
        java.net.http.HttpRequest.newBuilder(URI.create(url))
            .timeout(Duration.ofSeconds(30))
            .header("Content-Type", "application/json")
            .POST(java.net.http.HttpRequest.BodyPublishers.ofString(json))
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }

  private static int complete(String url) throws Exception {
    HttpResponse<String> r =
        post(
            url + "/v1/completions",
            "{\"model\":\"tiny\",\"prompt\":\"the harbour\",\"max_tokens\":8}");
    if (r.statusCode() != 200) {
      throw new AssertionError(r.statusCode() + " " + r.body());
    }
    return r.statusCode();
  }

  /** Debian's Prometheus on 127.0.0.1, scraping one berth server every second under job NAME. */
  private static final class Prometheus implements AutoCloseable {
    private final Process process;
    final PrometheusApi api;

    private Prometheus(Process process, PrometheusApi api) {
      this.process = process;
      this.api = api;
    }

    static Prometheus start(Path dir, Path rules, String berthUrl) throws Exception {
      Files.createDirectories(dir);
      Files.copy(rules, dir.resolve(rules.getFileName()));
      String target = URI.create(berthUrl).getAuthority();
      Files.writeString(
          dir.resolve("prometheus.yml"),
          """
          global: {scrape_interval: 1s, evaluation_interval: 1s}
          rule_files: [%s]
          scrape_configs:
            - job_name: %s
              static_configs: [{targets: ['%s']}]
          """
              .formatted(rules.getFileName(), NAME, target));
      int port = PrometheusApi.freePort();
      Path log = dir.resolve("prometheus.log");
      Process p =
          new ProcessBuilder(
                  "prometheus",
                  "--config.file=" + dir.resolve("prometheus.yml"),
                  "--storage.tsdb.path=" + dir.resolve("data"),
                  "--web.listen-address=127.0.0.1:" + port)
              .redirectErrorStream(true)
              .redirectOutput(log.toFile())
              .start();
      Prometheus prometheus = new Prometheus(p, new PrometheusApi("http://127.0.0.1:" + port));
      try {
        await()
            .atMost(Duration.ofSeconds(60))
            .pollInterval(Duration.ofMillis(200))
            .failFast("prometheus exited", () -> !p.isAlive())
            .ignoreExceptions()
            .until(() -> prometheus.api.status("/-/ready") == 200);
      } catch (RuntimeException | AssertionError e) {
        prometheus.close();
        throw new AssertionError("prometheus did not start:\n" + Files.readString(log), e);
      }
      return prometheus;
    }

    @Override
    public void close() {
      process.destroy();
      try {
        if (!process.waitFor(10, java.util.concurrent.TimeUnit.SECONDS)) {
          process.destroyForcibly();
        }
      } catch (InterruptedException e) {
        process.destroyForcibly();
        Thread.currentThread().interrupt();
      }
    }
  }
}
