package dev.berth.llm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.ServeSettings;
import dev.berth.runtime.ServingMetrics;
import dev.berth.server.BerthServer;
import dev.berth.server.OtlpReceiver;
import dev.berth.server.Tracing;
import io.opentelemetry.proto.common.v1.AnyValue;
import io.opentelemetry.proto.trace.v1.Span;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An OpenAI request's trace, received by an OTLP receiver: the server span continues the client's
 * {@code traceparent}; under it the wait for a sequence ({@code berth.queue}) and the generation, a
 * GenAI span ({@code chat tiny}, {@code text_completion tiny}) carrying the operation, the model,
 * the token counts the answer's usage gives, the finish reason and the time to the first token.
 */
class OpenAiTracingIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final HttpClient CLIENT = HttpClient.newHttpClient();
  private static final HexFormat HEX = HexFormat.of();

  @TempDir static Path repo;
  private static OtlpReceiver receiver;
  private static Tracing tracing;
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
        llm:
          context-size: 1024
          parallel: 1
          threads: 2
          defaults: {max-tokens: 6, temperature: 0}
        """);
    receiver = OtlpReceiver.http();
    tracing =
        Tracing.configure(
            ServeSettings.of(Map.of(ServeSettings.TRACING_ENDPOINT, receiver.endpoint())),
            Map.of("OTEL_BSP_SCHEDULE_DELAY", "50"),
            "berth-llm-it");
    server =
        BerthServer.builder(InferenceService.load(repo, new ServingMetrics()))
            .host("127.0.0.1")
            .port(0)
            .tracing(tracing)
            .build()
            .start();
  }

  @AfterAll
  static void stop() {
    server.close();
    tracing.close();
    receiver.close();
  }

  private record ClientSpan(String traceId, String spanId) {
    static ClientSpan next() {
      ThreadLocalRandom r = ThreadLocalRandom.current();
      return new ClientSpan(
          HEX.toHexDigits(r.nextLong() | 1) + HEX.toHexDigits(r.nextLong()),
          HEX.toHexDigits(r.nextLong() | 1));
    }
  }

  private static JsonNode post(String path, String body, ClientSpan client) throws Exception {
    HttpResponse<String> r =
        CLIENT.send(
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + path))
                .timeout(Duration.ofSeconds(60))
                .header("Content-Type", "application/json")
                .header("traceparent", "00-" + client.traceId() + "-" + client.spanId() + "-01")
                .POST(HttpRequest.BodyPublishers.ofString(body))
                .build(),
            HttpResponse.BodyHandlers.ofString());
    assertEquals(200, r.statusCode(), r.body());
    return JSON.readTree(r.body());
  }

  /** The trace of a client span once its server span, wait and generation have arrived. */
  private static List<OtlpReceiver.Received> trace(ClientSpan client) {
    receiver.await(
        spans -> spans.stream().filter(s -> s.traceId().equals(client.traceId())).count() >= 3);
    return receiver.trace(client.traceId());
  }

  private static OtlpReceiver.Received named(List<OtlpReceiver.Received> spans, String name) {
    List<OtlpReceiver.Received> found = spans.stream().filter(s -> s.name().equals(name)).toList();
    assertEquals(1, found.size(), "one span named " + name + " in " + names(spans));
    return found.get(0);
  }

  private static List<String> names(List<OtlpReceiver.Received> spans) {
    return spans.stream().map(OtlpReceiver.Received::name).toList();
  }

  /** Checks a generation's trace against the answer's usage; returns the generation span. */
  private static OtlpReceiver.Received generation(
      List<OtlpReceiver.Received> spans,
      ClientSpan client,
      String route,
      String operation,
      JsonNode usage) {
    OtlpReceiver.Received server = named(spans, "POST " + route);
    assertEquals(Span.SpanKind.SPAN_KIND_SERVER, server.span().getKind());
    assertEquals(client.spanId(), server.parentId(), "the server span continues the client's");
    assertEquals("berth-llm-it", server.service());
    assertEquals("tiny", server.string("berth.model"));
    assertEquals(200, server.integer("http.response.status_code"));

    OtlpReceiver.Received queue = named(spans, "berth.queue");
    assertEquals(server.spanId(), queue.parentId());
    OtlpReceiver.Received g = named(spans, operation + " tiny");
    assertEquals(server.spanId(), g.parentId(), "the generation is a child of the server span");
    assertEquals(operation, g.string("gen_ai.operation.name"));
    assertEquals("tiny", g.string("gen_ai.request.model"));
    assertEquals(usage.get("prompt_tokens").asLong(), g.integer("gen_ai.usage.input_tokens"));
    assertEquals(usage.get("completion_tokens").asLong(), g.integer("gen_ai.usage.output_tokens"));
    assertEquals(6, g.integer("gen_ai.request.max_tokens"));
    double ttft =
        g.attribute("berth.time_to_first_token").map(AnyValue::getDoubleValue).orElseThrow();
    assertTrue(ttft > 0, "time to first token " + ttft);
    assertTrue(
        g.span().getEventsList().stream().anyMatch(e -> e.getName().equals("berth.first_token")),
        "the first token is an event on the generation");
    // the wait ends where the generation starts, both within the server span
    assertEquals(queue.span().getEndTimeUnixNano(), g.span().getStartTimeUnixNano());
    assertTrue(server.span().getStartTimeUnixNano() <= queue.span().getStartTimeUnixNano());
    assertTrue(g.span().getEndTimeUnixNano() <= server.span().getEndTimeUnixNano());
    return g;
  }

  @Test
  void aChatCompletionIsAServerSpanWithItsWaitAndAGenAiGeneration() throws Exception {
    ClientSpan client = ClientSpan.next();
    JsonNode answer =
        post(
            "/v1/chat/completions",
            "{\"model\":\"tiny\",\"messages\":[{\"role\":\"user\",\"content\":\"Hello\"}],"
                + "\"temperature\":0,\"seed\":7}",
            client);
    OtlpReceiver.Received g =
        generation(trace(client), client, "/v1/chat/completions", "chat", answer.get("usage"));
    assertEquals(7, g.integer("gen_ai.request.seed"));
    String finish = answer.get("choices").get(0).get("finish_reason").asText();
    assertEquals(
        List.of(finish),
        g
            .attribute("gen_ai.response.finish_reasons")
            .orElseThrow()
            .getArrayValue()
            .getValuesList()
            .stream()
            .map(AnyValue::getStringValue)
            .toList());
  }

  @Test
  void aStreamedTextCompletionIsTracedAlike() throws Exception {
    ClientSpan client = ClientSpan.next();
    HttpResponse<String> r =
        CLIENT.send(
            HttpRequest.newBuilder(
                    URI.create("http://127.0.0.1:" + server.port() + "/v1/completions"))
                .timeout(Duration.ofSeconds(60))
                .header("Content-Type", "application/json")
                .header("traceparent", "00-" + client.traceId() + "-" + client.spanId() + "-01")
                .POST(
                    HttpRequest.BodyPublishers.ofString(
                        "{\"model\":\"tiny\",\"prompt\":\"Once\",\"stream\":true,"
                            + "\"stream_options\":{\"include_usage\":true}}"))
                .build(),
            HttpResponse.BodyHandlers.ofString());
    assertEquals(200, r.statusCode(), r.body());
    JsonNode usage = null;
    for (String block : r.body().split("\n\n")) {
      String data = block.substring("data: ".length());
      if (!data.equals("[DONE]") && JSON.readTree(data).hasNonNull("usage")) {
        usage = JSON.readTree(data).get("usage");
      }
    }
    generation(trace(client), client, "/v1/completions", "text_completion", usage);
  }
}
