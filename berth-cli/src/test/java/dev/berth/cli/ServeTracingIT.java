package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.server.OtlpReceiver;
import io.opentelemetry.proto.trace.v1.Span;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code berth serve} traced through the standard OpenTelemetry variables alone: it says where its
 * spans go, and the spans still buffered when SIGTERM comes are exported before it exits.
 */
class ServeTracingIT {
  @TempDir Path work;

  @Test
  void theStandardVariablesTurnTracingOnAndSigtermExportsWhatIsBuffered() throws Exception {
    String traceId = "0af7651916cd43dd8448eb211c80319c";
    String clientSpan = "b7ad6b7169203331";
    try (OtlpReceiver receiver = OtlpReceiver.http();
        BerthProcess berth =
            BerthProcess.start(
                work,
                Map.of(
                    "OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint(),
                    "OTEL_SERVICE_NAME", "serve-it",
                    // no scheduled export while the test runs: only the flush at SIGTERM sends
                    "OTEL_BSP_SCHEDULE_DELAY", "600000"),
                "serve",
                BerthProcess.examples().toString(),
                "--port",
                "0",
                "--grpc-port",
                "0",
                "--log-format",
                "json");
        HttpClient http = HttpClient.newHttpClient()) {
      String url = berth.awaitServing();
      assertTrue(
          Files.readString(berth.stderr)
              .contains(
                  "tracing: spans of service 'serve-it' to " + receiver.endpoint() + "/v1/traces"),
          Files.readString(berth.stderr));
      HttpResponse<String> answer =
          http.send(
              HttpRequest.newBuilder(URI.create(url + "/v2/models/minilm/infer"))
                  .header("traceparent", "00-" + traceId + "-" + clientSpan + "-01")
                  .POST(
                      HttpRequest.BodyPublishers.ofString(
                          "{\"inputs\":[{\"name\":\"text\",\"shape\":[1],\"datatype\":\"BYTES\","
                              + "\"data\":[\"Traced from the command line\"]}]}"))
                  .build(),
              HttpResponse.BodyHandlers.ofString());
      assertEquals(200, answer.statusCode(), answer.body());
      assertTrue(receiver.spans().isEmpty(), "nothing is exported before the flush");

      berth.process.destroy(); // SIGTERM
      assertTrue(berth.process.waitFor(60, TimeUnit.SECONDS), "berth did not exit after SIGTERM");
      assertEquals(0, berth.process.exitValue(), Files.readString(berth.stderr));

      List<OtlpReceiver.Received> spans =
          receiver.await(s -> s.stream().anyMatch(x -> x.name().equals("berth.batch")));
      List<OtlpReceiver.Received> trace =
          spans.stream().filter(s -> s.traceId().equals(traceId)).toList();
      OtlpReceiver.Received server =
          trace.stream()
              .filter(s -> s.span().getKind() == Span.SpanKind.SPAN_KIND_SERVER)
              .findFirst()
              .orElseThrow(() -> new AssertionError("no server span in " + trace));
      assertEquals("POST /v2/models/{model}/infer", server.name());
      assertEquals(clientSpan, server.parentId());
      assertEquals("serve-it", server.service());
      Set<String> children =
          trace.stream()
              .filter(s -> s.parentId().equals(server.spanId()))
              .map(OtlpReceiver.Received::name)
              .collect(Collectors.toSet());
      assertEquals(
          Set.of(
              "berth.queue",
              "berth.preprocess",
              "berth.engine",
              "berth.batch",
              "berth.postprocess"),
          children,
          "a request alone in its batch has the engine call's batch span as a child too");
    }
  }
}
