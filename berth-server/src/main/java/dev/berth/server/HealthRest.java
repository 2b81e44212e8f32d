package dev.berth.server;

import com.fasterxml.jackson.core.JsonGenerator;
import dev.berth.runtime.InferenceService;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.List;

/**
 * What probes, scrapers and readers of the API call, all open whatever the API keys: liveness and
 * readiness (Open Inference Protocol v2), Prometheus metrics, and the API's OpenAPI document.
 */
final class HealthRest {
  private final InferenceService service;
  private final PrometheusTextFormatWriter metricsWriter = PrometheusTextFormatWriter.create();

  HealthRest(InferenceService service) {
    this.service = service;
  }

  List<Route> routes() {
    return List.of(
        Route.get("/v2/health/live", null, "Liveness", this::live),
        Route.get("/v2/health/ready", null, "Readiness", this::ready),
        Route.get("/metrics", null, "Prometheus metrics", this::metrics),
        Route.get("/openapi.json", null, "This API's OpenAPI 3.1 document", this::openApi));
  }

  private int live(RestExchange x) throws IOException {
    boolean live = service.live();
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (JsonGenerator g = OipJson.JSON.createGenerator(out)) {
      g.writeStartObject();
      g.writeBooleanField("live", live);
      g.writeEndObject();
    }
    return x.send(live ? 200 : 503, out.toByteArray());
  }

  /**
   * {@code {"ready": bool}}, and when not ready a reason that names no model: the endpoint is open
   * to probes, so which models failed and why stay with the log and the repository API.
   */
  private int ready(RestExchange x) throws IOException {
    // One reading of whether loading is over, for the status and the reason alike: read twice, a
    // request that came while loading ended could say "not ready" with the reason of a model that
    // failed to load, and 'berth run' would give up on a server that was about to be ready.
    boolean serving = service.serving();
    boolean ready = serving && service.ready();
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (JsonGenerator g = OipJson.JSON.createGenerator(out)) {
      g.writeStartObject();
      g.writeBooleanField("ready", ready);
      if (!ready) {
        g.writeStringField(
            "reason",
            serving
                ? BerthServer.MODELS_NOT_READY
                : service.draining() ? "draining" : "loading models");
      }
      g.writeEndObject();
    }
    return x.send(ready ? 200 : 503, out.toByteArray());
  }

  private int metrics(RestExchange x) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream(8192);
    metricsWriter.write(out, service.metrics().registry().scrape());
    return x.send(200, metricsWriter.getContentType(), out.toByteArray());
  }

  private int openApi(RestExchange x) {
    return x.send(200, OpenApi.document());
  }
}
