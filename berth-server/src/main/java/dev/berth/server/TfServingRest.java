package dev.berth.server;

import dev.berth.api.InferenceResponse;
import dev.berth.api.ModelNotFoundException;
import dev.berth.runtime.ModelStatus;
import java.io.IOException;
import java.util.List;

/** TensorFlow Serving's REST API: {@code :predict} (row and column formats) and model status. */
final class TfServingRest {
  private static final String MODEL = "/v1/models/{model}";
  private static final String VERSION = "/v1/models/{model}/versions/{version}";
  private static final Access.Role INFER = Access.Role.INFER;

  List<Route> routes() {
    return List.of(
        Route.post(MODEL + ":predict", INFER, "Predict (TF Serving)", this::predict)
            .inference("tfserving"),
        Route.post(VERSION + ":predict", INFER, "Predict with one version", this::predict)
            .inference("tfserving"),
        Route.get(MODEL, INFER, "Model status (TF Serving)", this::status),
        Route.get(VERSION, INFER, "Status of one version", this::status));
  }

  private int predict(RestExchange x) throws IOException {
    byte[] body = x.body();
    TfServingJson.Predict call =
        TfServingJson.readPredict(
            body, x.model(), x.version(), x.service().signature(x.model(), x.version()));
    InferenceResponse response = x.infer(call.request());
    return x.send(200, TfServingJson.writePredict(response, call.rowFormat()));
  }

  private int status(RestExchange x) {
    List<ModelStatus> statuses = x.service().statuses(x.model());
    if (x.version() != null) {
      String v = x.version();
      statuses = statuses.stream().filter(s -> s.version().equals(v)).toList();
      if (statuses.isEmpty()) {
        throw new ModelNotFoundException(x.model(), v);
      }
    }
    return x.send(200, TfServingJson.writeStatus(statuses));
  }
}
