package dev.berth.server;

import com.fasterxml.jackson.core.JsonGenerator;
import dev.berth.api.InferenceResponse;
import io.helidon.http.HeaderName;
import io.helidon.http.HeaderNames;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.List;

/**
 * The Open Inference Protocol v2 over REST, with Triton's model configuration and statistics
 * extensions: server and model metadata, model readiness, and inference in JSON or with the binary
 * tensor extension. Health is {@link HealthRest}'s.
 */
final class OipRest {
  static final HeaderName INFERENCE_HEADER_LENGTH =
      HeaderNames.create("Inference-Header-Content-Length");

  private static final String MODEL = "/v2/models/{model}";
  private static final String VERSION = "/v2/models/{model}/versions/{version}";
  private static final Access.Role INFER = Access.Role.INFER;

  private final String serverVersion;

  OipRest(String serverVersion) {
    this.serverVersion = serverVersion;
  }

  List<Route> routes() {
    return List.of(
        Route.post(MODEL + "/infer", INFER, "Run inference (JSON or binary tensors)", this::infer)
            .inference("rest"),
        Route.post(VERSION + "/infer", INFER, "Run inference on one version", this::infer)
            .inference("rest"),
        Route.get("/v2", INFER, "Server metadata and extensions", this::serverMetadata),
        Route.get("/v2/models/stats", INFER, "Every model's statistics (Triton)", this::statistics),
        Route.get(MODEL, INFER, "Model metadata", this::metadata),
        Route.get(VERSION, INFER, "Model metadata of one version", this::metadata),
        Route.get(MODEL + "/ready", INFER, "Model readiness", this::ready),
        Route.get(VERSION + "/ready", INFER, "Readiness of one version", this::ready),
        Route.get(MODEL + "/config", INFER, "Model configuration (Triton)", this::config),
        Route.get(VERSION + "/config", INFER, "Configuration of one version", this::config),
        Route.get(MODEL + "/stats", INFER, "Model statistics (Triton)", this::statistics),
        Route.get(VERSION + "/stats", INFER, "Statistics of one version", this::statistics));
  }

  private int infer(RestExchange x) throws IOException {
    byte[] body = x.body();
    OipJson.Decoded call = OipJson.decode(body, headerLength(x), x.model(), x.version());
    InferenceResponse response = x.infer(call.request());
    OipJson.Encoded answer = OipJson.writeResponse(response, call);
    if (!answer.binary()) {
      return x.send(200, answer.body());
    }
    x.response().header(INFERENCE_HEADER_LENGTH, Integer.toString(answer.headerLength()));
    return x.send(200, "application/octet-stream", answer.body());
  }

  /** The binary tensor extension's JSON header length, or -1 when the body is JSON only. */
  private static int headerLength(RestExchange x) {
    String value = x.header(INFERENCE_HEADER_LENGTH);
    if (value == null) {
      return -1;
    }
    try {
      int length = Integer.parseInt(value.trim());
      if (length < 0) {
        throw new NumberFormatException();
      }
      return length;
    } catch (NumberFormatException e) {
      throw new dev.berth.api.InvalidInputException(
          "Inference-Header-Content-Length must be a whole number of bytes >= 0, got '"
              + value
              + "'");
    }
  }

  private int serverMetadata(RestExchange x) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (JsonGenerator g = OipJson.JSON.createGenerator(out)) {
      g.writeStartObject();
      g.writeStringField("name", "berth");
      g.writeStringField("version", serverVersion);
      g.writeArrayFieldStart("extensions");
      for (String extension : TritonModels.EXTENSIONS) {
        g.writeString(extension);
      }
      g.writeEndArray();
      g.writeEndObject();
    }
    return x.send(200, out.toByteArray());
  }

  private int metadata(RestExchange x) {
    return x.send(200, OipJson.writeMetadata(x.service().metadata(x.model(), x.version())));
  }

  private int config(RestExchange x) {
    return x.send(
        200,
        TritonModels.json(TritonModels.config(x.service().configuration(x.model(), x.version()))));
  }

  /** One model's statistics, or every model's when the path names none. */
  private int statistics(RestExchange x) {
    return x.send(
        200,
        TritonModels.json(TritonModels.statistics(x.service().statistics(x.model(), x.version()))));
  }

  private int ready(RestExchange x) throws IOException {
    x.service().statuses(x.model()); // 404 for an unknown model
    boolean ready = x.service().modelReady(x.model(), x.version());
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (JsonGenerator g = OipJson.JSON.createGenerator(out)) {
      g.writeStartObject();
      g.writeStringField("name", x.model());
      g.writeBooleanField("ready", ready);
      g.writeEndObject();
    }
    return x.send(ready ? 200 : 503, out.toByteArray());
  }
}
