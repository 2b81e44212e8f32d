package dev.berth.server;

import com.fasterxml.jackson.core.JsonGenerator;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.LoadedModel;
import dev.berth.runtime.ModelStatus;
import dev.berth.runtime.RecentFigures;
import io.helidon.http.HeaderName;
import io.helidon.http.HeaderNames;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * The status page at {@code GET /}: the models, their versions and states with the reasons, live
 * figures over the last seconds (requests/s, server errors/s, p99 latency, mean batch size, and
 * tokens/s of language models; {@link RecentFigures}), and a form that sends a test request.
 *
 * <p>The page is static HTML whose script and style sheet are served beside it, with no inline code
 * and nothing from elsewhere, so it works offline and under a strict Content-Security-Policy. Its
 * script reads {@code GET /status/models} every two seconds and a model's inputs from the Open
 * Inference Protocol's own metadata endpoint. Every route here needs what inference needs (a key
 * with the infer role when API keys are on); a browser without one is asked for it as the password
 * of HTTP Basic authentication, and sends it with the page's own requests from then on.
 */
final class StatusPage {
  /** Same-origin script, style, fetches and form posts only; no frames, no base URL changes. */
  static final String CONTENT_SECURITY_POLICY =
      "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
          + " img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

  private static final HeaderName CSP = HeaderNames.create("Content-Security-Policy");
  private static final HeaderName REFERRER_POLICY = HeaderNames.create("Referrer-Policy");
  private static final Access.Role INFER = Access.Role.INFER;

  private static final byte[] PAGE = resource("status-page.html");
  private static final byte[] SCRIPT = resource("status-page.js");
  private static final byte[] STYLE = resource("status-page.css");

  private final InferenceService service;
  private final String version;
  private final RecentFigures figures;

  /**
   * @param service what the page shows; null only to list the routes
   * @param version the server's version, as {@code GET /v2} reports it
   */
  StatusPage(InferenceService service, String version) {
    this.service = service;
    this.version = version;
    this.figures = service == null ? null : RecentFigures.of(service.metrics());
  }

  List<Route> routes() {
    return List.of(
        Route.get(
                "/", INFER, "Status page: models, states, live figures, a test request", this::page)
            .forBrowsers(),
        Route.get("/status/page.js", INFER, "The status page's script", this::script).forBrowsers(),
        Route.get("/status/page.css", INFER, "The status page's style sheet", this::style)
            .forBrowsers(),
        Route.get(
                "/status/models",
                INFER,
                "Models, versions, states and live figures (the status page's data)",
                this::models)
            .forBrowsers());
  }

  private int page(RestExchange x) {
    x.response().header(CSP, CONTENT_SECURITY_POLICY);
    x.response().header(REFERRER_POLICY, "no-referrer");
    return send(x, "text/html; charset=utf-8", "no-cache", PAGE);
  }

  private int script(RestExchange x) {
    return send(x, "text/javascript; charset=utf-8", "no-cache", SCRIPT);
  }

  private int style(RestExchange x) {
    return send(x, "text/css; charset=utf-8", "no-cache", STYLE);
  }

  /**
   * {@code {"server": {version, ready}, "window_seconds", "models": [{name, generates_text,
   * versions: [{version, state, reason, requests_per_second, server_errors_per_second,
   * p99_latency_seconds, mean_batch_size, tokens_per_second}]}]}}: a figure is null when there is
   * nothing to measure (no request, no p99), and every figure is null while the window is too short
   * to say (the first look).
   */
  private int models(RestExchange x) throws IOException {
    RecentFigures.Window window = figures.now();
    Map<String, List<ModelStatus>> byModel = new LinkedHashMap<>();
    for (ModelStatus s : service.index()) {
      byModel.computeIfAbsent(s.name(), k -> new ArrayList<>()).add(s);
    }
    Set<String> languageModels =
        service.loadedModels().stream()
            .filter(LoadedModel::generatesText)
            .map(LoadedModel::name)
            .collect(Collectors.toSet());
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (JsonGenerator g = OipJson.JSON.createGenerator(out)) {
      g.writeStartObject();
      g.writeObjectFieldStart("server");
      g.writeStringField("version", version);
      g.writeBooleanField("ready", service.ready());
      g.writeEndObject();
      number(g, "window_seconds", window.length().map(d -> d.toNanos() / 1e9).orElse(Double.NaN));
      g.writeArrayFieldStart("models");
      for (Map.Entry<String, List<ModelStatus>> model : byModel.entrySet()) {
        boolean generates = languageModels.contains(model.getKey());
        g.writeStartObject();
        g.writeStringField("name", model.getKey());
        g.writeBooleanField("generates_text", generates);
        g.writeArrayFieldStart("versions");
        for (ModelStatus s : model.getValue()) {
          g.writeStartObject();
          g.writeStringField("version", s.version());
          g.writeStringField("state", s.state().name());
          g.writeStringField("reason", s.reason());
          RecentFigures.Figures f =
              s.version().isEmpty() ? null : window.of(s.name(), s.version()).orElse(null);
          number(g, "requests_per_second", f == null ? Double.NaN : f.requestsPerSecond());
          number(g, "server_errors_per_second", f == null ? Double.NaN : f.serverErrorsPerSecond());
          number(g, "p99_latency_seconds", f == null ? Double.NaN : f.p99LatencySeconds());
          number(g, "mean_batch_size", f == null ? Double.NaN : f.meanBatchSize());
          number(
              g, "tokens_per_second", f == null || !generates ? Double.NaN : f.tokensPerSecond());
          g.writeEndObject();
        }
        g.writeEndArray();
        g.writeEndObject();
      }
      g.writeEndArray();
      g.writeEndObject();
    }
    return send(x, RestExchange.JSON, "no-store", out.toByteArray());
  }

  /** A figure, or null for NaN. */
  private static void number(JsonGenerator g, String field, double value) throws IOException {
    if (Double.isNaN(value)) {
      g.writeNullField(field);
    } else {
      g.writeNumberField(field, value);
    }
  }

  private static int send(RestExchange x, String contentType, String cache, byte[] body) {
    x.response().header(HeaderNames.X_CONTENT_TYPE_OPTIONS, "nosniff");
    x.response().header(HeaderNames.CACHE_CONTROL, cache);
    return x.send(200, contentType, body);
  }

  private static byte[] resource(String name) {
    try (InputStream in = StatusPage.class.getResourceAsStream(name)) {
      if (in == null) {
        throw new IllegalStateException(name + " is missing from berth-server's resources");
      }
      return in.readAllBytes();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
