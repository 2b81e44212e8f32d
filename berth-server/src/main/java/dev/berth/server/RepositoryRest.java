package dev.berth.server;

import dev.berth.runtime.ModelStatus;
import dev.berth.runtime.ServingMetrics.ModelState;
import io.helidon.http.Method;
import java.io.IOException;
import java.util.List;

/**
 * The model repository extension (management): list the repository, load and unload models. Every
 * call needs the management token or a key with the manage role, and is audited; with the
 * repository API off the routes answer 404.
 */
final class RepositoryRest {
  private static final Access.Role MANAGE = Access.Role.MANAGE;

  List<Route> routes() {
    return List.of(
        Route.post("/v2/repository/index", MANAGE, "The repository's models", this::index),
        Route.get("/v2/repository/index", MANAGE, "The repository's models", this::index),
        Route.post(
            "/v2/repository/models/{model}/load", MANAGE, "Load or reload a model", this::load),
        Route.post("/v2/repository/models/{model}/unload", MANAGE, "Unload a model", this::unload));
  }

  private int index(RestExchange x) throws IOException {
    boolean readyOnly =
        x.request().prologue().method().equals(Method.POST) && RepositoryJson.readyOnly(x.body());
    List<ModelStatus> index = x.service().index();
    if (readyOnly) {
      index = index.stream().filter(s -> s.state() == ModelState.READY).toList();
    }
    return x.send(200, RepositoryJson.writeIndex(index));
  }

  private int load(RestExchange x) throws IOException {
    RepositoryJson.checkNoParameters(x.body(), "load");
    return x.send(200, RepositoryJson.writeModel(x.model(), x.service().loadModel(x.model())));
  }

  private int unload(RestExchange x) throws IOException {
    RepositoryJson.checkNoParameters(x.body(), "unload");
    return x.send(200, RepositoryJson.writeModel(x.model(), x.service().unloadModel(x.model())));
  }
}
