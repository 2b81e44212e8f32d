package dev.berth.llm;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.ServingMetrics;
import dev.berth.server.BerthServer;
import io.prometheus.metrics.model.snapshots.CounterSnapshot;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The status page's figures of a language model (a random-weight llama GGUF on llama.cpp): it is
 * marked as one, and its tokens per second over the window are the tokens the server generated.
 */
class StatusFiguresIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final HttpClient CLIENT = HttpClient.newHttpClient();

  @TempDir static Path repo;
  private static ServingMetrics metrics;
  private static BerthServer server;

  @BeforeAll
  static void start() throws Exception {
    Path version = Files.createDirectories(repo.resolve("tiny/1"));
    GgufWriter.tiny().contextLength(2048).write(version.resolve("model.gguf"));
    Files.writeString(
        repo.resolve("tiny/model.yaml"),
        """
        apiVersion: berth.dev/v1
        kind: Model
        llm: {context-size: 1024, parallel: 2, threads: 2, defaults: {temperature: 0}}
        """);
    metrics = new ServingMetrics();
    server = BerthServer.builder(InferenceService.load(repo, metrics)).port(0).build().start();
  }

  @AfterAll
  static void stop() {
    server.close();
  }

  private static HttpResponse<String> send(HttpRequest.Builder request) throws Exception {
    return CLIENT.send(
        request.timeout(Duration.ofSeconds(60)).build(), HttpResponse.BodyHandlers.ofString());
  }

  private static JsonNode status() throws Exception {
    HttpResponse<String> r = send(HttpRequest.newBuilder(URI.create(url("/status/models"))).GET());
    assertEquals(200, r.statusCode(), r.body());
    return JSON.readTree(r.body()).path("models").get(0);
  }

  private static String url(String path) {
    return "http://127.0.0.1:" + server.port() + path;
  }

  private static double generatedTokens() {
    double sum = 0;
    for (var m : metrics.registry().scrape()) {
      if (m.getMetadata().getPrometheusName().equals("berth_llm_generation_tokens")) {
        for (var p : ((CounterSnapshot) m).getDataPoints()) {
          sum += p.getValue();
        }
      }
    }
    return sum;
  }

  @Test
  void tokensPerSecondAreTheTokensGeneratedInTheWindow() throws Exception {
    JsonNode first = status(); // starts the window
    assertEquals("tiny", first.path("name").asText());
    assertTrue(first.path("generates_text").asBoolean(), "a language model");
    assertTrue(first.path("versions").get(0).path("tokens_per_second").isNull(), "measuring");

    int completions = 0;
    for (int i = 0; i < 2; i++) {
      HttpResponse<String> r =
          send(
              HttpRequest.newBuilder(URI.create(url("/v1/chat/completions")))
                  .header("Content-Type", "application/json")
                  .POST(
                      HttpRequest.BodyPublishers.ofString(
                          "{\"model\":\"tiny\",\"max_tokens\":12,\"messages\":"
                              + "[{\"role\":\"user\",\"content\":\"Say hello.\"}]}")));
      assertEquals(200, r.statusCode(), r.body());
      completions += JSON.readTree(r.body()).path("usage").path("completion_tokens").asInt();
    }
    assertTrue(completions > 0);

    AtomicReference<JsonNode> seen = new AtomicReference<>();
    await()
        .atMost(Duration.ofSeconds(10))
        .pollInterval(Duration.ofMillis(200))
        .until(
            () -> {
              seen.set(
                  JSON.readTree(
                      send(HttpRequest.newBuilder(URI.create(url("/status/models")))).body()));
              return !seen.get().path("window_seconds").isNull();
            });
    double window = seen.get().path("window_seconds").asDouble();
    assertTrue(window >= 1 && window < 10, "window " + window);
    JsonNode v1 = seen.get().path("models").get(0).path("versions").get(0);
    // every token the server generated is in the window: the rate times the window gives them
    double tokens = generatedTokens();
    assertTrue(tokens >= completions, tokens + " generated, " + completions + " answered");
    assertEquals(tokens, v1.path("tokens_per_second").asDouble() * window, 1e-6, "" + v1);
    assertEquals(2.0, v1.path("requests_per_second").asDouble() * window, 1e-6, "" + v1);
    assertTrue(!v1.path("p99_latency_seconds").isNull(), "" + v1);
    assertTrue(v1.path("mean_batch_size").isNull(), "a language model runs no tensor batches");
  }
}
