package dev.berth.server;

import dev.berth.api.BerthException;
import dev.berth.runtime.ServeSettings;
import io.opentelemetry.api.common.AttributeKey;
import io.opentelemetry.api.trace.Span;
import io.opentelemetry.api.trace.SpanKind;
import io.opentelemetry.api.trace.Tracer;
import io.opentelemetry.context.Context;
import io.opentelemetry.context.propagation.TextMapGetter;
import io.opentelemetry.context.propagation.TextMapPropagator;
import io.opentelemetry.sdk.OpenTelemetrySdk;
import io.opentelemetry.sdk.autoconfigure.AutoConfiguredOpenTelemetrySdk;
import io.opentelemetry.sdk.autoconfigure.spi.ConfigurationException;
import java.net.URI;
import java.time.Instant;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Whether and where the server's spans go: one OpenTelemetry SDK per server process, exporting over
 * OTLP (http/protobuf or grpc) through a batch span processor, or nothing at all.
 *
 * <p>{@link #configure} reads the serve settings ({@code tracing-endpoint}, {@code
 * tracing-protocol}, {@code tracing-sample-ratio}, {@code tracing-service-name}) and the standard
 * OpenTelemetry variables ({@code OTEL_EXPORTER_OTLP_ENDPOINT}, {@code OTEL_SERVICE_NAME}, {@code
 * OTEL_TRACES_SAMPLER}, ... and their {@code otel.*} system properties); a Berth setting wins over
 * its OpenTelemetry counterpart. Without an endpoint, with {@code OTEL_SDK_DISABLED=true} or with
 * {@code OTEL_TRACES_EXPORTER=none}, tracing is off: no SDK is built, no connection is opened, and
 * the request path checks one field and does nothing more.
 *
 * <pre>{@code
 * Tracing tracing = Tracing.configure(settings, System.getenv(), "berth");
 * BerthServer.builder(service).tracing(tracing).build().start();
 * ...
 * tracing.close(); // after the servers stopped: exports the spans still buffered
 * }</pre>
 */
public final class Tracing implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(Tracing.class.getName());
  private static final String HTTP = "http/protobuf";
  private static final String GRPC = "grpc";
  private static final Tracing OFF = new Tracing(null, "off");

  private final OpenTelemetrySdk sdk; // null when off
  private final Tracer tracer;
  private final TextMapPropagator propagator;
  private final String description;

  private Tracing(OpenTelemetrySdk sdk, String description) {
    this.sdk = sdk;
    this.description = description;
    this.tracer = sdk == null ? null : sdk.getTracer("dev.berth.server");
    this.propagator = sdk == null ? null : sdk.getPropagators().getTextMapPropagator();
  }

  /** No tracing: no spans, no connection. */
  public static Tracing off() {
    return OFF;
  }

  /**
   * Tracing as the settings and the environment ask for it.
   *
   * @param environment the process's environment ({@link System#getenv()}); its {@code OTEL_*}
   *     variables, under {@code otel.*} system properties, are all the SDK is configured with: it
   *     does not read the process's environment itself
   * @param defaultServiceName the spans' {@code service.name} when neither the settings nor the
   *     environment name one
   * @throws BerthException naming the setting or variable when a value cannot be used
   */
  public static Tracing configure(
      ServeSettings settings, Map<String, String> environment, String defaultServiceName) {
    Map<String, String> otel = otelProperties(environment);
    String exporter = otel.getOrDefault("otel.traces.exporter", "otlp").trim();
    String offBy =
        "true".equalsIgnoreCase(otel.get("otel.sdk.disabled"))
            ? "OTEL_SDK_DISABLED=true"
            : exporter.equals("none") ? "OTEL_TRACES_EXPORTER=none" : null;
    if (offBy != null) {
      String named = endpointSource(settings, otel);
      if (named != null) {
        LOG.info(
            "tracing: off, as "
                + offBy
                + " says, although "
                + named
                + " names a collector; no spans are recorded or sent");
      }
      return OFF;
    }
    if (!exporter.equals("otlp")) {
      throw new BerthException(
          "OTEL_TRACES_EXPORTER="
              + exporter
              + ": Berth exports traces over OTLP only; set otlp (or none to trace nothing)");
    }
    String protocol = protocol(settings, otel);
    String endpoint = endpoint(settings, otel, protocol);
    if (endpoint == null) {
      return OFF;
    }
    if (protocol.equals(GRPC)) {
      for (String key :
          List.of(
              "otel.exporter.otlp.traces.client.key",
              "otel.exporter.otlp.client.key",
              "otel.exporter.otlp.traces.client.certificate",
              "otel.exporter.otlp.client.certificate")) {
        if (otel.containsKey(key)) {
          throw new BerthException(
              variable(key)
                  + ": client certificates to the collector work over http/protobuf only; set"
                  + " --tracing-protocol http/protobuf");
        }
      }
    }
    Map<String, String> overrides = new LinkedHashMap<>();
    overrides.put("otel.traces.exporter", "otlp");
    overrides.put("otel.metrics.exporter", "none"); // metrics are /metrics' business
    overrides.put("otel.logs.exporter", "none");
    overrides.put("otel.exporter.otlp.traces.protocol", protocol);
    overrides.put("otel.exporter.otlp.traces.endpoint", endpoint);
    if (settings.isSet(ServeSettings.TRACING_SAMPLE_RATIO)) {
      overrides.put("otel.traces.sampler", "parentbased_traceidratio");
      overrides.put("otel.traces.sampler.arg", settings.text(ServeSettings.TRACING_SAMPLE_RATIO));
    }
    if (settings.isSet(ServeSettings.TRACING_SERVICE_NAME)) {
      overrides.put("otel.service.name", settings.text(ServeSettings.TRACING_SERVICE_NAME));
    } else if (blank(otel.get("otel.service.name"))
        && !namesService(otel.get("otel.resource.attributes"))) {
      overrides.put("otel.service.name", defaultServiceName);
    }
    String sampler =
        overrides.getOrDefault(
            "otel.traces.sampler",
            otel.getOrDefault("otel.traces.sampler", "parentbased_always_on"));
    String ratio =
        overrides.getOrDefault("otel.traces.sampler.arg", otel.get("otel.traces.sampler.arg"));
    boolean ratioSampler = sampler.endsWith("traceidratio");
    if (ratioSampler && ratio != null && !overrides.containsKey("otel.traces.sampler.arg")) {
      checkRatio(ratio, sampler);
    }
    Map<String, String> sdkConfig = sdkConfig(otel, overrides);
    AtomicReference<String> serviceName = new AtomicReference<>(defaultServiceName);
    OpenTelemetrySdk sdk;
    try {
      sdk =
          AutoConfiguredOpenTelemetrySdk.builder()
              .disableShutdownHook() // the server flushes as it stops
              .addPropertiesCustomizer(read -> sdkConfig) // what it read itself: replaced
              .addResourceCustomizer(
                  (resource, config) -> {
                    serviceName.set(resource.getAttribute(AttributeKey.stringKey("service.name")));
                    return resource;
                  })
              .build()
              .getOpenTelemetrySdk();
    } catch (ConfigurationException e) {
      throw new BerthException(
          "tracing cannot be set up: "
              + withRootCause(e)
              + "; check the OTEL_* variables (docs/monitoring.md, Traces)",
          e);
    }
    String description =
        "spans of service '"
            + serviceName.get()
            + "' to "
            + endpoint
            + " (OTLP "
            + protocol
            + ", sampler "
            + sampler
            + (ratio == null || !ratioSampler ? "" : " " + ratio)
            + ")";
    return new Tracing(sdk, description);
  }

  /**
   * The SDK's whole configuration: Berth's properties, and every {@code otel.*} key the SDK would
   * read on its own from the process's environment and system properties removed (an override to
   * null unsets a key), so that the SDK uses what Berth checked and nothing else. Autoconfiguration
   * layers the real environment over any properties it is given; only its overrides win.
   */
  static Map<String, String> sdkConfig(Map<String, String> otel, Map<String, String> overrides) {
    Map<String, String> config = new HashMap<>(); // null values: keys removed
    System.getenv()
        .keySet()
        .forEach(
            k -> {
              String key = k.toLowerCase(Locale.ROOT).replace('_', '.');
              if (key.startsWith("otel.")) {
                config.put(key, null);
              }
            });
    System.getProperties()
        .stringPropertyNames()
        .forEach(
            k -> {
              String key = k.toLowerCase(Locale.ROOT).replace('-', '.');
              if (key.startsWith("otel.")) {
                config.put(key, null);
              }
            });
    config.putAll(otel);
    config.putAll(overrides);
    return config;
  }

  /** Where a collector is named (the setting or variable), or null when none is. */
  private static String endpointSource(ServeSettings settings, Map<String, String> otel) {
    if (settings.isSet(ServeSettings.TRACING_ENDPOINT)) {
      return "tracing-endpoint";
    }
    for (String key :
        List.of("otel.exporter.otlp.traces.endpoint", "otel.exporter.otlp.endpoint")) {
      if (otel.containsKey(key)) {
        return variable(key);
      }
    }
    return null;
  }

  /** The variable of an {@code otel.*} property: {@code OTEL_EXPORTER_OTLP_ENDPOINT}. */
  private static String variable(String property) {
    return property.toUpperCase(Locale.ROOT).replace('.', '_');
  }

  /**
   * Whether {@code OTEL_RESOURCE_ATTRIBUTES} (key=value pairs, comma-separated) names a service.
   */
  static boolean namesService(String resourceAttributes) {
    if (resourceAttributes == null) {
      return false;
    }
    for (String pair : resourceAttributes.split(",")) {
      int eq = pair.indexOf('=');
      if (eq > 0
          && pair.substring(0, eq).trim().equals("service.name")
          && !pair.substring(eq + 1).isBlank()) {
        return true;
      }
    }
    return false;
  }

  /** A ratio sampler's argument: a number from 0 to 1. */
  private static void checkRatio(String ratio, String sampler) {
    double r;
    try {
      r = Double.parseDouble(ratio);
    } catch (NumberFormatException e) {
      r = Double.NaN;
    }
    if (!(r >= 0 && r <= 1)) {
      throw new BerthException(
          "OTEL_TRACES_SAMPLER_ARG="
              + ratio
              + ": the "
              + sampler
              + " sampler takes the share of traces to record, a number from 0 to 1, e.g. 0.25");
    }
  }

  /**
   * A configuration error's message, followed by its root cause's when that says more: the SDK
   * reports an exception of a component it builds as "Unexpected configuration error" and keeps the
   * reason in the cause.
   */
  private static String withRootCause(Throwable e) {
    Throwable root = e;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    String message = String.valueOf(e.getMessage());
    if (root == e || root.getMessage() == null || message.contains(root.getMessage())) {
      return message;
    }
    return message + ": " + root.getMessage();
  }

  /** The {@code otel.*} properties: the environment's {@code OTEL_*}, under system properties. */
  private static Map<String, String> otelProperties(Map<String, String> environment) {
    Map<String, String> out = new LinkedHashMap<>();
    environment.forEach(
        (k, v) -> {
          if (k.startsWith("OTEL_") && !blank(v)) {
            out.put(k.toLowerCase(Locale.ROOT).replace('_', '.'), v.trim());
          }
        });
    System.getProperties()
        .forEach(
            (k, v) -> {
              String key = k.toString();
              if (key.startsWith("otel.") && !blank(v.toString())) {
                out.put(key.replace('-', '.'), v.toString().trim());
              }
            });
    return out;
  }

  private static String protocol(ServeSettings settings, Map<String, String> otel) {
    if (settings.isSet(ServeSettings.TRACING_PROTOCOL)) {
      return settings.text(ServeSettings.TRACING_PROTOCOL);
    }
    String variable = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
    String protocol = otel.get("otel.exporter.otlp.traces.protocol");
    if (protocol == null) {
      variable = "OTEL_EXPORTER_OTLP_PROTOCOL";
      protocol = otel.get("otel.exporter.otlp.protocol");
    }
    if (protocol == null) {
      return HTTP; // the specification's default (OpenTelemetry's Java SDK alone defaults to grpc)
    }
    if (!protocol.equals(HTTP) && !protocol.equals(GRPC)) {
      throw new BerthException(
          variable + "=" + protocol + ": Berth exports traces over http/protobuf or grpc");
    }
    return protocol;
  }

  /** The full URL spans are sent to, or null when none is configured. */
  private static String endpoint(
      ServeSettings settings, Map<String, String> otel, String protocol) {
    if (settings.isSet(ServeSettings.TRACING_ENDPOINT)) {
      return signal(
          check(settings.text(ServeSettings.TRACING_ENDPOINT), "--tracing-endpoint"), protocol);
    }
    String traces = otel.get("otel.exporter.otlp.traces.endpoint");
    if (traces != null) {
      return check(traces, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    }
    String base = otel.get("otel.exporter.otlp.endpoint");
    return base == null ? null : signal(check(base, "OTEL_EXPORTER_OTLP_ENDPOINT"), protocol);
  }

  /** A base endpoint as OTLP exporters take it: http/protobuf posts to its {@code /v1/traces}. */
  private static String signal(String base, String protocol) {
    if (protocol.equals(GRPC)) {
      return base;
    }
    return (base.endsWith("/") ? base : base + "/") + "v1/traces";
  }

  private static String check(String url, String source) {
    URI uri;
    try {
      uri = new URI(url);
    } catch (java.net.URISyntaxException e) {
      uri = null;
    }
    if (uri == null
        || uri.getHost() == null
        || !("http".equals(uri.getScheme()) || "https".equals(uri.getScheme()))) {
      throw new BerthException(
          source
              + " '"
              + url
              + "' is not a collector's address; give http(s)://HOST:PORT, e.g."
              + " http://otel-collector:4318");
    }
    return url;
  }

  private static boolean blank(String s) {
    return s == null || s.isBlank();
  }

  /** Whether spans are recorded and exported. */
  public boolean enabled() {
    return sdk != null;
  }

  /** Where spans go, for the start-up log: endpoint, protocol, service name and sampler. */
  public String description() {
    return description;
  }

  /**
   * Exports the spans still buffered and stops the exporter, waiting up to 10 seconds; call it once
   * the servers have stopped, so that the spans of the last requests are not lost.
   */
  @Override
  public void close() {
    if (sdk == null) {
      return;
    }
    var done = sdk.shutdown().join(ServeSettings.TRACING_FLUSH_SECONDS, TimeUnit.SECONDS);
    if (!done.isSuccess()) {
      LOG.log(Level.WARNING, "tracing: the last spans could not all be exported to the collector");
    }
  }

  /**
   * Starts the server span of a call, as a child of the client's span when the call carries a W3C
   * {@code traceparent} (or what the configured propagators read); timed from the call's start.
   * Only called when {@link #enabled()}.
   */
  <C> RequestSpan start(Call call, C carrier, TextMapGetter<C> headers, String scheme, int port) {
    // the wall clock and nanoTime read together, once per call: every moment of this call's spans
    // is a nanoTime reading, placed against this pair
    Instant now = Instant.now();
    long anchorNanos = System.nanoTime();
    long epochNanos = now.getEpochSecond() * 1_000_000_000L + now.getNano();
    Context parent = propagator.extract(Context.root(), carrier, headers);
    var builder =
        tracer
            .spanBuilder(call.grpc ? call.path.substring(1) : call.method)
            .setParent(parent)
            .setSpanKind(SpanKind.SERVER)
            .setStartTimestamp(epochNanos + (call.start - anchorNanos), TimeUnit.NANOSECONDS)
            .setAttribute("berth.request_id", call.id)
            .setAttribute("server.port", (long) port);
    if (call.grpc) {
      int slash = call.path.lastIndexOf('/');
      builder
          .setAttribute("rpc.system", "grpc")
          .setAttribute("rpc.service", call.path.substring(1, slash))
          .setAttribute("rpc.method", call.path.substring(slash + 1));
    } else {
      builder
          .setAttribute("http.request.method", call.method)
          .setAttribute("url.path", call.path)
          .setAttribute("url.scheme", scheme);
    }
    Span span = builder.startSpan();
    return new RequestSpan(this, span, parent.with(span), epochNanos, anchorNanos);
  }

  Tracer tracer() {
    return tracer;
  }
}
