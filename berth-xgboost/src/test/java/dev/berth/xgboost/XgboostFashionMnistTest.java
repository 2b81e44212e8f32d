package dev.berth.xgboost;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.DataType;
import dev.berth.api.InferenceRequest;
import dev.berth.api.InferenceResponse;
import dev.berth.api.Tensor;
import dev.berth.api.TensorSpec;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.ModelRepository;
import dev.berth.runtime.ModelSignature;
import dev.berth.runtime.ServingMetrics;
import dev.berth.xgboost.testing.XgboostModelWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import ml.dmlc.xgboost4j.java.Booster;
import ml.dmlc.xgboost4j.java.XGBoost;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Fashion-MNIST classifier {@link XgboostModelWriter#main} writes is served as the ONNX one is:
 * {@code pixels} in, {@code probabilities} out, the class names as labels. Needs the data set
 * ({@code apt-get install dataset-fashion-mnist}); trains on a small part of it.
 */
class XgboostFashionMnistTest {
  private static final Path DATA = Path.of("/usr/share/datasets/fashion-mnist");

  @TempDir Path repo;

  @Test
  void theWrittenRepositoryServesPixelsToProbabilities() throws Exception {
    assertTrue(
        Files.isReadable(DATA.resolve("train-images-idx3-ubyte.gz")),
        "the Fashion-MNIST data set is not installed (apt-get install dataset-fashion-mnist)");
    XgboostModelWriter.main(
        new String[] {
          repo.toString(),
          "--train-limit",
          "1000",
          "--test-limit",
          "200",
          "--rounds",
          "3",
          "--no-bench"
        });
    XgboostModelWriter.Images test = XgboostModelWriter.Images.load(DATA, "t10k", 3);
    Path file = repo.resolve("fashion-mnist-xgboost/1/model.ubj");
    Booster booster = XGBoost.loadModel(file.toString());
    float[][] expected = booster.inplace_predict(test.pixels(), 3, 784, Float.NaN);
    booster.dispose();

    InferenceService service =
        InferenceService.load(
            new ModelRepository(repo), List.of(new XgboostEngineProvider()), new ServingMetrics());
    try {
      ModelSignature s = service.signature("fashion-mnist-xgboost", null);
      assertEquals(
          List.of(new TensorSpec("pixels", DataType.FP32, new long[] {-1, 784})), s.inputs());
      assertEquals(
          List.of(new TensorSpec("probabilities", DataType.FP32, new long[] {-1, 10})),
          s.outputs());
      InferenceResponse answer =
          service
              .infer(
                  new InferenceRequest(
                      "r",
                      "fashion-mnist-xgboost",
                      null,
                      List.of(Tensor.ofFloats("pixels", new long[] {3, 784}, test.pixels())),
                      List.of()))
              .get(10, TimeUnit.SECONDS);
      float[] got = answer.outputs().get(0).floats();
      for (int r = 0; r < 3; r++) {
        assertArrayEquals(expected[r], Arrays.copyOfRange(got, r * 10, r * 10 + 10), "image " + r);
      }
    } finally {
      service.close();
    }
  }
}
