package dev.berth.cli;

import dev.berth.pytorch.testing.TorchScriptWriter;
import dev.berth.tensorflow.testing.SavedModelWriter;
import dev.berth.xgboost.testing.XgboostModelWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.StringJoiner;

/**
 * One real model per engine besides ONNX and llama.cpp, written by the frameworks themselves into a
 * model repository: {@value #TORCH} (a TorchScript MLP), {@value #TENSORFLOW} (a SavedModel MLP)
 * and {@value #XGBOOST} (a three-class XGBoost classifier), each with the request body of one row.
 */
final class EngineModels {
  static final String TORCH = "torch-mlp";
  static final String TENSORFLOW = "tf-mlp";
  static final String XGBOOST = "xgb";
  static final int XGBOOST_FEATURES = 4;

  private EngineModels() {}

  /** Writes the TorchScript MLP (libtorch in a JVM of its own) and its model.yaml. */
  static void torch(Path repo) throws IOException {
    Path dir = repo.resolve(TORCH);
    TorchScriptWriter.batch()
        .mlp(dir.resolve("1/model.pt"), TorchScriptWriter.MlpWeights.random(7))
        .write();
    Files.writeString(
        dir.resolve("model.yaml"),
        """
        apiVersion: berth.dev/v1
        kind: Model
        inputs: [{name: pixels, datatype: FP32, shape: [-1, 784]}]
        outputs: [{name: probabilities, datatype: FP32, shape: [-1, 10]}]
        """);
  }

  /** Writes the SavedModel MLP. */
  static void tensorflow(Path repo) {
    SavedModelWriter.mlp(repo.resolve(TENSORFLOW + "/1/model.savedmodel"), 7);
  }

  /** Trains and writes the XGBoost classifier. */
  static void xgboost(Path repo) {
    XgboostModelWriter.objective("multi:softprob")
        .classes(3)
        .features(XGBOOST_FEATURES)
        .train()
        .save(repo.resolve(XGBOOST + "/1/model.json"));
  }

  /** All three. */
  static void all(Path repo) throws IOException {
    torch(repo);
    tensorflow(repo);
    xgboost(repo);
  }

  /** An OIP v2 JSON request with one row for a model of {@link #all}. */
  static String request(String model) {
    int columns = model.equals(XGBOOST) ? XGBOOST_FEATURES : 784;
    String name = model.equals(XGBOOST) ? "features" : "pixels";
    StringJoiner data = new StringJoiner(",");
    for (int i = 0; i < columns; i++) {
      data.add(String.format(Locale.ROOT, "%.3f", (i % 17) / 17.0));
    }
    return "{\"inputs\":[{\"name\":\""
        + name
        + "\",\"shape\":[1,"
        + columns
        + "],\"datatype\":\"FP32\",\"data\":["
        + data
        + "]}]}";
  }
}
