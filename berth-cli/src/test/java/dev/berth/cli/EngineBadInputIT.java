package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.http.HttpClient;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Broken models of the other engines fail to load with a message naming the file, key and fix, and
 * the server keeps serving the good ones: a TorchScript file without declared inputs, a SavedModel
 * without the signature model.yaml names, an XGBoost file that is not a model, declarations that
 * contradict a SavedModel's signature. Requests with the wrong feature count, datatype or shape get
 * 400 naming what was expected.
 */
class EngineBadInputIT {
  @TempDir static Path work;
  private static BerthProcess server;
  private static String url;
  private static String log;
  private static final HttpClient HTTP = HttpClient.newHttpClient();

  @BeforeAll
  static void serve() throws Exception {
    Path repo = Files.createDirectories(work.resolve("repo"));
    EngineModels.all(repo);
    // TorchScript without inputs and outputs in model.yaml
    Files.createDirectories(repo.resolve("torch-undeclared/1"));
    Files.copy(
        repo.resolve(EngineModels.TORCH + "/1/model.pt"),
        repo.resolve("torch-undeclared/1/model.pt"));
    // a SavedModel served under a signature it does not have
    EngineModels.tensorflow(repo.resolve("nosig"));
    Files.move(repo.resolve("nosig/" + EngineModels.TENSORFLOW), repo.resolve("tf-nosig"));
    Files.writeString(
        repo.resolve("tf-nosig/model.yaml"),
        "apiVersion: berth.dev/v1\nkind: Model\noptions: {signature: predict_proba}\n");
    // declarations that contradict the signature
    EngineModels.tensorflow(repo.resolve("contra"));
    Files.move(repo.resolve("contra/" + EngineModels.TENSORFLOW), repo.resolve("tf-contra"));
    Files.writeString(
        repo.resolve("tf-contra/model.yaml"),
        "apiVersion: berth.dev/v1\nkind: Model\n"
            + "inputs: [{name: pixels, datatype: FP32, shape: [-1, 10]}]\n");
    // an XGBoost model file that is not one
    Files.createDirectories(repo.resolve("xgb-bad/1"));
    Files.writeString(repo.resolve("xgb-bad/1/model.json"), "{\"learner\": \"not a model\"}");
    Files.deleteIfExists(repo.resolve("nosig"));
    Files.deleteIfExists(repo.resolve("contra"));

    Path serverWork = Files.createDirectories(work.resolve("server"));
    server =
        BerthProcess.start(
            serverWork,
            "serve",
            repo.toString(),
            "--port",
            "0",
            "--grpc-port",
            "0",
            "--log-format",
            "json",
            "--no-strict-readiness");
    url = server.awaitServing();
    log = Files.readString(serverWork.resolve("stderr.log"));
  }

  @AfterAll
  static void stop() {
    if (server != null) {
      server.close();
    }
  }

  private static void failedWith(String model, String... parts) throws Exception {
    assertEquals(
        503, BerthProcess.get(HTTP, url + "/v2/models/" + model + "/ready").statusCode(), model);
    String line =
        log.lines()
            .filter(l -> l.contains("model '" + model + "' version 1 not loaded"))
            .findFirst()
            .orElseThrow(
                () -> new AssertionError("no load failure logged for " + model + ":\n" + log));
    for (String part : parts) {
      assertTrue(line.contains(part), "'" + part + "' in: " + line);
    }
  }

  @Test
  void brokenModelsFailToLoadNamingWhatToFix() throws Exception {
    failedWith("torch-undeclared", "model.yaml", "inputs");
    failedWith("tf-nosig", "predict_proba", "serving_default", "options.signature");
    failedWith("tf-contra", "inputs[0].shape", "784");
    failedWith("xgb-bad", "model.json");
  }

  @Test
  void theGoodModelsOfEveryEngineKeepServing() throws Exception {
    for (String model :
        new String[] {EngineModels.TORCH, EngineModels.TENSORFLOW, EngineModels.XGBOOST}) {
      HttpResponse<String> r =
          BerthProcess.post(
              HTTP, url + "/v2/models/" + model + "/infer", EngineModels.request(model));
      assertEquals(200, r.statusCode(), model + ": " + r.body());
    }
  }

  @Test
  void wrongFeatureCountsDatatypesAndShapesGet400NamingTheExpectation() throws Exception {
    HttpResponse<String> count =
        BerthProcess.post(
            HTTP,
            url + "/v2/models/xgb/infer",
            "{\"inputs\":[{\"name\":\"features\",\"shape\":[1,3],\"datatype\":\"FP32\",\"data\":[1,2,3]}]}");
    assertEquals(400, count.statusCode(), count.body());
    assertTrue(count.body().contains("[-1, 4]"), count.body());

    HttpResponse<String> type =
        BerthProcess.post(
            HTTP,
            url + "/v2/models/" + EngineModels.TORCH + "/infer",
            "{\"inputs\":[{\"name\":\"pixels\",\"shape\":[1,2],\"datatype\":\"INT64\",\"data\":[1,2]}]}");
    assertEquals(400, type.statusCode(), type.body());
    assertTrue(type.body().contains("must be FP32"), type.body());

    HttpResponse<String> shape =
        BerthProcess.post(
            HTTP,
            url + "/v2/models/" + EngineModels.TENSORFLOW + "/infer",
            "{\"inputs\":[{\"name\":\"pixels\",\"shape\":[2],\"datatype\":\"FP32\",\"data\":[1,2]}]}");
    assertEquals(400, shape.statusCode(), shape.body());
    assertTrue(shape.body().contains("[-1, 784]"), shape.body());

    // and the server still answers
    HttpResponse<String> after =
        BerthProcess.post(
            HTTP,
            url + "/v2/models/" + EngineModels.XGBOOST + "/infer",
            EngineModels.request(EngineModels.XGBOOST));
    assertEquals(200, after.statusCode(), after.body());
  }
}
