package dev.berth.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.BerthException;
import dev.berth.runtime.ServeSettings;
import io.opentelemetry.context.propagation.TextMapGetter;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.Test;

/**
 * When Berth traces and where to: nothing unless an endpoint is configured (no SDK, no exporter, no
 * connection); OTEL_SDK_DISABLED and OTEL_TRACES_EXPORTER=none turn it off; a Berth setting wins
 * over its OpenTelemetry variable. With tracing off a call gets no span and its headers are not
 * read.
 */
class TracingTest {
  /** A port nothing listens on; no test here sends a span, so nothing ever connects to it. */
  private static final String COLLECTOR = "http://127.0.0.1:9";

  private static Tracing configure(
      Map<ServeSettings.Setting, String> settings, Map<String, String> env) {
    return Tracing.configure(ServeSettings.of(settings), env, "berth");
  }

  @Test
  void nothingIsTracedWithoutAnEndpoint() {
    Tracing tracing = configure(Map.of(), Map.of("OTEL_SERVICE_NAME", "svc"));
    assertSame(Tracing.off(), tracing);
    assertFalse(tracing.enabled());
    // the other settings alone do not turn it on either
    assertFalse(
        configure(
                Map.of(
                    ServeSettings.TRACING_PROTOCOL, "grpc",
                    ServeSettings.TRACING_SAMPLE_RATIO, "0.5",
                    ServeSettings.TRACING_SERVICE_NAME, "x"),
                Map.of())
            .enabled());
  }

  @Test
  void theStandardVariablesTurnItOnAndOff() {
    try (Tracing generic = configure(Map.of(), Map.of("OTEL_EXPORTER_OTLP_ENDPOINT", COLLECTOR))) {
      assertTrue(generic.enabled());
      assertTrue(
          generic.description().contains(COLLECTOR + "/v1/traces (OTLP http/protobuf"),
          generic.description());
      assertTrue(generic.description().contains("service 'berth'"), generic.description());
    }
    try (Tracing traces =
        configure(
            Map.of(),
            Map.of(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", COLLECTOR + "/custom",
                "OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:8",
                "OTEL_SERVICE_NAME", "svc"))) {
      assertTrue(traces.description().contains(COLLECTOR + "/custom "), traces.description());
      assertTrue(traces.description().contains("service 'svc'"), traces.description());
    }
    try (Tracing grpc =
        configure(
            Map.of(),
            Map.of(
                "OTEL_EXPORTER_OTLP_ENDPOINT", COLLECTOR,
                "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc",
                "OTEL_RESOURCE_ATTRIBUTES", "service.name=from-resource,team=ml"))) {
      assertTrue(grpc.description().contains(COLLECTOR + " (OTLP grpc"), grpc.description());
      assertTrue(grpc.description().contains("service 'from-resource'"), grpc.description());
    }
    assertFalse(
        configure(
                Map.of(ServeSettings.TRACING_ENDPOINT, COLLECTOR),
                Map.of("OTEL_SDK_DISABLED", "true"))
            .enabled());
    assertFalse(
        configure(
                Map.of(ServeSettings.TRACING_ENDPOINT, COLLECTOR),
                Map.of("OTEL_TRACES_EXPORTER", "none"))
            .enabled());
  }

  @Test
  void berthsSettingsWinOverTheVariables() {
    try (Tracing tracing =
        configure(
            Map.of(
                ServeSettings.TRACING_ENDPOINT, COLLECTOR,
                ServeSettings.TRACING_PROTOCOL, "grpc",
                ServeSettings.TRACING_SAMPLE_RATIO, "0.25",
                ServeSettings.TRACING_SERVICE_NAME, "chosen"),
            Map.of(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://127.0.0.1:8/v1/traces",
                "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf",
                "OTEL_TRACES_SAMPLER", "always_off",
                "OTEL_SERVICE_NAME", "svc"))) {
      String d = tracing.description();
      assertTrue(d.contains("to " + COLLECTOR + " (OTLP grpc"), d);
      assertTrue(d.contains("service 'chosen'"), d);
      assertTrue(d.contains("sampler parentbased_traceidratio 0.25)"), d);
    }
  }

  @Test
  void valuesBerthCannotUseAreRefusedByName() {
    BerthException exporter =
        assertThrows(
            BerthException.class,
            () ->
                configure(
                    Map.of(ServeSettings.TRACING_ENDPOINT, COLLECTOR),
                    Map.of("OTEL_TRACES_EXPORTER", "zipkin")));
    assertTrue(
        exporter.getMessage().startsWith("OTEL_TRACES_EXPORTER=zipkin"), exporter.getMessage());
    BerthException protocol =
        assertThrows(
            BerthException.class,
            () ->
                configure(
                    Map.of(),
                    Map.of(
                        "OTEL_EXPORTER_OTLP_ENDPOINT",
                        COLLECTOR,
                        "OTEL_EXPORTER_OTLP_PROTOCOL",
                        "http/json")));
    assertTrue(
        protocol.getMessage().startsWith("OTEL_EXPORTER_OTLP_PROTOCOL"), protocol.getMessage());
    BerthException endpoint =
        assertThrows(
            BerthException.class,
            () -> configure(Map.of(ServeSettings.TRACING_ENDPOINT, "collector:4318"), Map.of()));
    assertTrue(endpoint.getMessage().startsWith("--tracing-endpoint"), endpoint.getMessage());
    BerthException sampler =
        assertThrows(
            BerthException.class,
            () ->
                configure(
                    Map.of(ServeSettings.TRACING_ENDPOINT, COLLECTOR),
                    Map.of("OTEL_TRACES_SAMPLER", "sometimes")));
    assertTrue(sampler.getMessage().contains("sometimes"), sampler.getMessage());
  }

  /** With tracing off a call has no span, its headers are not read, its log line has no ids. */
  @Test
  void offIsANoOpOnTheRequestPath() {
    CallPolicy policy = new CallPolicy(null, ServerLimits.DEFAULTS, Access.open(), Tracing.off());
    TextMapGetter<Object> untouchable =
        (carrier, key) -> {
          throw new AssertionError("the headers were read for " + key);
        };
    Call call =
        policy.begin(
            "id-1",
            "POST",
            "/v2/models/m/infer",
            false,
            () -> "",
            new Object(),
            untouchable,
            "http",
            1);
    assertNull(call.span);
    assertNull(call.trace(), "the runtime gets no trace to report into");

    List<Map<String, Object>> lines = new ArrayList<>();
    Handler capture =
        new Handler() {
          @Override
          @SuppressWarnings("unchecked")
          public void publish(LogRecord r) {
            lines.add((Map<String, Object>) r.getParameters()[0]);
          }

          @Override
          public void flush() {}

          @Override
          public void close() {}
        };
    Logger access = Logger.getLogger(AccessLog.LOGGER);
    access.addHandler(capture);
    try {
      policy.finish(call, "200");
    } finally {
      access.removeHandler(capture);
    }
    assertEquals(1, lines.size());
    assertFalse(lines.get(0).containsKey("trace_id"));
    assertFalse(lines.get(0).containsKey("span_id"));
  }

  /**
   * With tracing on, a client's sampled traceparent is continued; an unsampled one is not recorded.
   */
  @Test
  void onTheServerSpanContinuesTheClientsTrace() {
    try (Tracing tracing = configure(Map.of(ServeSettings.TRACING_ENDPOINT, COLLECTOR), Map.of())) {
      CallPolicy policy = new CallPolicy(null, ServerLimits.DEFAULTS, Access.open(), tracing);
      String traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
      TextMapGetter<Map<String, String>> map = (m, key) -> m.get(key);
      Call sampled =
          policy.begin(
              "id-2",
              "POST",
              "/v2/models/m/infer",
              false,
              () -> "",
              Map.of("traceparent", "00-" + traceId + "-00f067aa0ba902b7-01"),
              map,
              "http",
              1);
      assertEquals(traceId, sampled.span.spanContext().getTraceId());
      assertTrue(sampled.span.recording());
      assertSame(sampled.span, sampled.trace());
      Call unsampled =
          policy.begin(
              "id-3",
              "POST",
              "/v2/models/m/infer",
              false,
              () -> "",
              Map.of("traceparent", "00-" + traceId + "-00f067aa0ba902b7-00"),
              map,
              "http",
              1);
      assertEquals(
          traceId, unsampled.span.spanContext().getTraceId(), "still logged with its trace");
      assertNull(unsampled.trace(), "the runtime reports nothing for a request not sampled");
      Call fresh =
          policy.begin(
              "id-4", "GET", "/v2/health/ready", false, () -> "", Map.of(), map, "http", 1);
      assertTrue(
          fresh.span.spanContext().isValid(), "a request without traceparent starts a trace");
      // the spans are never ended, so close() has nothing to export: nothing connects anywhere
    }
  }

  /** The records {@code logger} publishes while {@code run} runs. */
  private static List<LogRecord> logged(Logger logger, Runnable run) {
    List<LogRecord> records = new java.util.concurrent.CopyOnWriteArrayList<>();
    Handler capture =
        new Handler() {
          @Override
          public void publish(LogRecord r) {
            records.add(r);
          }

          @Override
          public void flush() {}

          @Override
          public void close() {}
        };
    logger.addHandler(capture);
    try {
      run.run();
    } finally {
      logger.removeHandler(capture);
    }
    return records;
  }

  @Test
  void turnedOffWhileACollectorIsNamedItSaysSoOnce() {
    Logger log = Logger.getLogger(Tracing.class.getName());
    List<LogRecord> disabled =
        logged(
            log,
            () ->
                assertFalse(
                    configure(
                            Map.of(),
                            Map.of(
                                "OTEL_EXPORTER_OTLP_ENDPOINT",
                                COLLECTOR,
                                "OTEL_SDK_DISABLED",
                                "true"))
                        .enabled()));
    assertEquals(1, disabled.size());
    assertEquals(java.util.logging.Level.INFO, disabled.get(0).getLevel());
    assertTrue(
        disabled.get(0).getMessage().contains("OTEL_SDK_DISABLED=true")
            && disabled.get(0).getMessage().contains("OTEL_EXPORTER_OTLP_ENDPOINT"),
        disabled.get(0).getMessage());
    List<LogRecord> none =
        logged(
            log,
            () ->
                configure(
                    Map.of(ServeSettings.TRACING_ENDPOINT, COLLECTOR),
                    Map.of("OTEL_TRACES_EXPORTER", "none")));
    assertEquals(1, none.size());
    assertTrue(
        none.get(0).getMessage().contains("OTEL_TRACES_EXPORTER=none")
            && none.get(0).getMessage().contains("tracing-endpoint"),
        none.get(0).getMessage());
    // without a collector there is nothing to say
    assertEquals(
        List.of(), logged(log, () -> configure(Map.of(), Map.of("OTEL_SDK_DISABLED", "true"))));
  }

  @Test
  void aBadValueIsRefusedWithItsReason() {
    // the SDK's builder refuses 0 with an IllegalArgumentException, which autoconfiguration wraps
    // as "Unexpected configuration error"
    BerthException batch =
        assertThrows(
            BerthException.class,
            () ->
                configure(
                    Map.of(ServeSettings.TRACING_ENDPOINT, COLLECTOR),
                    Map.of("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "0")));
    assertTrue(
        batch.getMessage().contains("maxExportBatchSize must be positive"), batch.getMessage());
    for (String ratio : List.of("2", "-0.1", "a tenth", "NaN")) {
      for (String sampler : List.of("traceidratio", "parentbased_traceidratio")) {
        BerthException refused =
            assertThrows(
                BerthException.class,
                () ->
                    configure(
                        Map.of(ServeSettings.TRACING_ENDPOINT, COLLECTOR),
                        Map.of("OTEL_TRACES_SAMPLER", sampler, "OTEL_TRACES_SAMPLER_ARG", ratio)));
        assertTrue(
            refused
                .getMessage()
                .startsWith("OTEL_TRACES_SAMPLER_ARG=" + ratio + ": the " + sampler),
            refused.getMessage());
      }
    }
    try (Tracing tenth =
        configure(
            Map.of(ServeSettings.TRACING_ENDPOINT, COLLECTOR),
            Map.of("OTEL_TRACES_SAMPLER", "traceidratio", "OTEL_TRACES_SAMPLER_ARG", "0.1"))) {
      assertTrue(tenth.description().contains("sampler traceidratio 0.1)"), tenth.description());
    }
    // --tracing-sample-ratio replaces the variables, a bad argument included
    try (Tracing chosen =
        configure(
            Map.of(
                ServeSettings.TRACING_ENDPOINT,
                COLLECTOR,
                ServeSettings.TRACING_SAMPLE_RATIO,
                "0.5"),
            Map.of("OTEL_TRACES_SAMPLER", "traceidratio", "OTEL_TRACES_SAMPLER_ARG", "7"))) {
      assertTrue(chosen.enabled());
    }
  }

  @Test
  void clientCertificatesAreRefusedOverGrpc() {
    for (String variable :
        List.of(
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE")) {
      BerthException refused =
          assertThrows(
              BerthException.class,
              () ->
                  configure(
                      Map.of(
                          ServeSettings.TRACING_ENDPOINT,
                          COLLECTOR,
                          ServeSettings.TRACING_PROTOCOL,
                          "grpc"),
                      Map.of(variable, "/etc/berth/client.pem")));
      assertTrue(refused.getMessage().startsWith(variable + ": "), refused.getMessage());
    }
  }

  @Test
  void aServiceNameIsFoundAmongTheResourceAttributes() {
    assertTrue(Tracing.namesService("service.name=shop"));
    assertTrue(Tracing.namesService("team=ml, service.name = shop"));
    assertFalse(Tracing.namesService("my.service.name=shop"));
    assertFalse(Tracing.namesService("service.namespace=shop"));
    assertFalse(Tracing.namesService("service.name=,team=ml"));
    assertFalse(Tracing.namesService(null));
    try (Tracing tracing =
        configure(
            Map.of(ServeSettings.TRACING_ENDPOINT, COLLECTOR),
            Map.of("OTEL_RESOURCE_ATTRIBUTES", "my.service.name=shop"))) {
      assertTrue(tracing.description().contains("service 'berth'"), tracing.description());
    }
  }

  /**
   * The SDK is configured with what Berth read and checked alone: a value Berth does not take (here
   * a blank system property, which OpenTelemetry's specification counts as unset) does not reach it
   * by OpenTelemetry's own reading of the environment and the system properties.
   */
  @Test
  void theSdkUsesWhatBerthReadAndNothingElse() {
    System.setProperty("otel.traces.sampler", " ");
    try (Tracing tracing = configure(Map.of(ServeSettings.TRACING_ENDPOINT, COLLECTOR), Map.of())) {
      assertTrue(
          tracing.description().contains("sampler parentbased_always_on)"), tracing.description());
    } finally {
      System.clearProperty("otel.traces.sampler");
    }
    Map<String, String> config =
        Tracing.sdkConfig(
            Map.of("otel.service.name", "svc"), Map.of("otel.metrics.exporter", "none"));
    assertEquals("svc", config.get("otel.service.name"));
    assertEquals("none", config.get("otel.metrics.exporter"));
    System.getenv().keySet().stream()
        .map(k -> k.toLowerCase(java.util.Locale.ROOT).replace('_', '.'))
        .filter(k -> k.startsWith("otel.") && !k.equals("otel.service.name"))
        .forEach(k -> assertNull(config.get(k), k + " is unset for the SDK"));
  }

  /** A span that fails as it ends costs its call neither its access log line nor its close. */
  @Test
  void aSpanThatFailsToEndStillLogsItsCall() {
    try (Tracing tracing = configure(Map.of(ServeSettings.TRACING_ENDPOINT, COLLECTOR), Map.of())) {
      CallPolicy policy = new CallPolicy(null, ServerLimits.DEFAULTS, Access.open(), tracing);
      TextMapGetter<Map<String, String>> map = (m, key) -> m.get(key);
      Call call =
          policy.begin(
              "id-5",
              "POST",
              "/inference.GRPCInferenceService/ModelInfer",
              true,
              () -> "",
              Map.of(),
              map,
              "http",
              1);
      assertTrue(call.span.recording());
      // a gRPC call's result that names no status code fails RequestSpan.end before the span
      // ends (so nothing is exported); the access log writes it as it is
      List<LogRecord> lines =
          logged(Logger.getLogger(AccessLog.LOGGER), () -> policy.finish(call, "NO_SUCH_CODE"));
      assertEquals(1, lines.size());
    }
  }
}
