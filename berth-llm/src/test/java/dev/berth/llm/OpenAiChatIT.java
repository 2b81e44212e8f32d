package dev.berth.llm;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.ServingMetrics;
import dev.berth.server.BerthServer;
import io.prometheus.metrics.model.snapshots.CounterSnapshot;
import io.prometheus.metrics.model.snapshots.GaugeSnapshot;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.Socket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The OpenAI-compatible API over a real socket, with a random-weight llama GGUF on llama.cpp: the
 * answers' shapes, Server-Sent Events, usage, max_tokens, stop strings and seeds; a full queue
 * answers 429, and a client that leaves mid-stream frees its sequence at once. The text is
 * gibberish by design: only the protocol is checked.
 */
class OpenAiChatIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final HttpClient CLIENT = HttpClient.newHttpClient();

  @TempDir static Path repo;
  private static ServingMetrics metrics;
  private static BerthServer server;

  @BeforeAll
  static void start() throws IOException {
    Path version = Files.createDirectories(repo.resolve("tiny/1"));
    GgufWriter.tiny().contextLength(8192).write(version.resolve("model.gguf"));
    Files.writeString(
        repo.resolve("tiny/model.yaml"),
        """
        apiVersion: berth.dev/v1
        kind: Model
        llm:
          context-size: 6000
          parallel: 1
          max-waiting: 0
          threads: 2
          defaults: {max-tokens: 16, temperature: 0}
        """);
    metrics = new ServingMetrics();
    server =
        BerthServer.builder(InferenceService.load(repo, metrics))
            .host("127.0.0.1")
            .port(0)
            .build()
            .start();
  }

  @AfterAll
  static void stop() {
    server.close();
  }

  private static HttpResponse<String> post(String path, String body) throws Exception {
    return CLIENT.send(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + path))
            .timeout(Duration.ofSeconds(60))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }

  private static JsonNode json(HttpResponse<String> r, int status) throws IOException {
    assertEquals(status, r.statusCode(), r.body());
    return JSON.readTree(r.body());
  }

  private static final String HELLO =
      "\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},"
          + "{\"role\":\"user\",\"content\":\"Hello there\"}]";

  /** The data of each Server-Sent Event, [DONE] included. */
  private static List<String> events(HttpResponse<String> r) {
    assertEquals(200, r.statusCode(), r.body());
    assertTrue(
        r.headers().firstValue("content-type").orElse("").startsWith("text/event-stream"),
        r.headers().toString());
    List<String> data = new ArrayList<>();
    for (String block : r.body().split("\n\n")) {
      if (!block.isBlank()) {
        assertTrue(block.startsWith("data: "), block);
        data.add(block.substring("data: ".length()));
      }
    }
    return data;
  }

  private static void usageAddsUp(JsonNode usage) {
    assertTrue(usage.get("prompt_tokens").asInt() > 0, usage.toString());
    assertEquals(
        usage.get("prompt_tokens").asInt() + usage.get("completion_tokens").asInt(),
        usage.get("total_tokens").asInt());
  }

  @Test
  void aChatCompletionHasOpenAisShape() throws Exception {
    JsonNode answer =
        json(
            post("/v1/chat/completions", "{\"model\":\"tiny\"," + HELLO + ",\"max_tokens\":8}"),
            200);
    assertTrue(answer.get("id").asText().startsWith("chatcmpl-"));
    assertEquals("chat.completion", answer.get("object").asText());
    assertEquals("tiny", answer.get("model").asText());
    JsonNode choice = answer.get("choices").get(0);
    assertEquals(0, choice.get("index").asInt());
    assertEquals("assistant", choice.get("message").get("role").asText());
    assertTrue(choice.get("message").get("content").isTextual());
    JsonNode usage = answer.get("usage");
    usageAddsUp(usage);
    int completion = usage.get("completion_tokens").asInt();
    // max_tokens is honoured, and "length" says exactly when it ran out
    assertTrue(completion >= 1 && completion <= 8, usage.toString());
    assertEquals(completion == 8 ? "length" : "stop", choice.get("finish_reason").asText());
  }

  @Test
  void aStreamedChatIsTheSameTextInServerSentEvents() throws Exception {
    String request = "{\"model\":\"tiny\"," + HELLO + ",\"max_tokens\":12,\"temperature\":0";
    JsonNode whole = json(post("/v1/chat/completions", request + "}"), 200);
    List<String> events =
        events(
            post(
                "/v1/chat/completions",
                request + ",\"stream\":true,\"stream_options\":{\"include_usage\":true}}"));

    assertEquals("[DONE]", events.get(events.size() - 1));
    JsonNode first = JSON.readTree(events.get(0));
    assertEquals("chat.completion.chunk", first.get("object").asText());
    assertEquals("assistant", first.get("choices").get(0).get("delta").get("role").asText());
    StringBuilder text = new StringBuilder();
    String finish = null;
    JsonNode usage = null;
    for (String e : events.subList(1, events.size() - 1)) {
      JsonNode chunk = JSON.readTree(e);
      assertEquals(first.get("id").asText(), chunk.get("id").asText(), "one id per stream");
      if (chunk.get("choices").isEmpty()) {
        usage = chunk.get("usage");
        continue;
      }
      JsonNode choice = chunk.get("choices").get(0);
      if (choice.get("delta").has("content")) {
        text.append(choice.get("delta").get("content").asText());
      }
      if (!choice.get("finish_reason").isNull()) {
        finish = choice.get("finish_reason").asText();
      }
    }
    JsonNode wholeChoice = whole.get("choices").get(0);
    assertEquals(wholeChoice.get("message").get("content").asText(), text.toString());
    assertEquals(wholeChoice.get("finish_reason").asText(), finish);
    assertEquals(whole.get("usage"), usage, "the usage chunk counts what the whole answer counts");
  }

  @Test
  void aTextCompletionStopsBeforeItsStopString() throws Exception {
    String request =
        "{\"model\":\"tiny\",\"prompt\":\"The model says\",\"max_tokens\":24,\"temperature\":0";
    JsonNode free = json(post("/v1/completions", request + "}"), 200);
    assertEquals("text_completion", free.get("object").asText());
    String text = free.get("choices").get(0).get("text").asText();
    assertTrue(text.length() >= 8, "greedy text: '" + text + "'");
    String stop = text.substring(text.length() / 2, text.length() / 2 + 3);

    JsonNode stopped =
        json(
            post("/v1/completions", request + ",\"stop\":[" + JSON.writeValueAsString(stop) + "]}"),
            200);
    assertEquals(
        text.substring(0, text.indexOf(stop)), stopped.get("choices").get(0).get("text").asText());
    assertEquals("stop", stopped.get("choices").get(0).get("finish_reason").asText());
    usageAddsUp(stopped.get("usage"));
  }

  @Test
  void theSameSeedGivesTheSameText() throws Exception {
    String request =
        "{\"model\":\"tiny\",\"prompt\":\"Once\",\"max_tokens\":16,\"temperature\":1.0,\"seed\":";
    String a =
        json(post("/v1/completions", request + "42}"), 200)
            .get("choices")
            .get(0)
            .get("text")
            .asText();
    String b =
        json(post("/v1/completions", request + "42}"), 200)
            .get("choices")
            .get(0)
            .get("text")
            .asText();
    assertEquals(a, b);
    assertFalse(a.isEmpty());
  }

  @Test
  void unsupportedParametersGet400InOpenAisShape() throws Exception {
    for (String[] bad :
        new String[][] {
          {",\"n\":2", "n"},
          {",\"logprobs\":true", "logprobs"},
          {",\"tools\":[]", "tools"},
          {",\"temperature\":3", "temperature"},
        }) {
      JsonNode error =
          json(post("/v1/chat/completions", "{\"model\":\"tiny\"," + HELLO + bad[0] + "}"), 400)
              .get("error");
      assertEquals(bad[1], error.get("param").asText(), error.toString());
      assertEquals("invalid_request_error", error.get("type").asText());
      assertTrue(error.get("message").asText().contains(bad[1]), error.toString());
      assertTrue(error.has("code"));
    }
  }

  private static double metric(String name) {
    return metrics.registry().scrape().stream()
        .filter(m -> m.getMetadata().getPrometheusName().equals(name))
        .flatMap(m -> m.getDataPoints().stream())
        .mapToDouble(
            p ->
                p instanceof CounterSnapshot.CounterDataPointSnapshot c
                    ? c.getValue()
                    : ((GaugeSnapshot.GaugeDataPointSnapshot) p).getValue())
        .sum();
  }

  @Test
  void aFullQueueAnswers429AndAClientThatLeavesMidStreamFreesItsSequence() throws Exception {
    String longStream =
        "{\"model\":\"tiny\",\"prompt\":\"Go\",\"max_tokens\":5000,\"temperature\":0,\"stream\":true}";
    byte[] body = longStream.getBytes(StandardCharsets.UTF_8);
    double before = metric("berth_llm_generation_tokens");
    try (Socket client = new Socket("127.0.0.1", server.port())) {
      client
          .getOutputStream()
          .write(
              ("POST /v1/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type:"
                      + " application/json\r\nContent-Length: "
                      + body.length
                      + "\r\n\r\n")
                  .getBytes(StandardCharsets.US_ASCII));
      client.getOutputStream().write(body);
      client.getOutputStream().flush();
      BufferedReader in =
          new BufferedReader(
              new InputStreamReader(client.getInputStream(), StandardCharsets.UTF_8));
      for (String line; !(line = in.readLine()).startsWith("data: "); ) {
        // headers, then the first event
      }
      assertEquals(1, metric("berth_llm_sequences_running"));

      // llm.parallel 1 and llm.max-waiting 0: the next request is refused at once
      HttpResponse<String> refused =
          post("/v1/chat/completions", "{\"model\":\"tiny\"," + HELLO + "}");
      assertEquals(429, refused.statusCode(), refused.body());
      assertEquals("1", refused.headers().firstValue("retry-after").orElse(""));
      JsonNode error = JSON.readTree(refused.body()).get("error");
      assertEquals("rate_limit_error", error.get("type").asText());
      assertTrue(error.get("message").asText().contains("llm.max-waiting"), error.toString());
    }
    // the client left mid-stream: its generation stops and its sequence is free at once
    await().atMost(Duration.ofSeconds(10)).until(() -> metric("berth_llm_sequences_running") == 0);
    double generated = metric("berth_llm_generation_tokens") - before;
    assertTrue(generated < 5000, "generation went on after the client left: " + generated);
    JsonNode next =
        json(
            post("/v1/chat/completions", "{\"model\":\"tiny\"," + HELLO + ",\"max_tokens\":4}"),
            200);
    assertNotEquals(0, next.get("usage").get("completion_tokens").asInt());
  }
}
