package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Fashion-MNIST example on four runtimes, on a slice of the real data set: {@code train} trains
 * a short run, {@code convert} writes the same network with libtorch (TorchScript) and TensorFlow
 * (SavedModel) and trains an XGBoost classifier, one {@code berth serve} serves all four, and
 * {@code berth eval} and {@code compare} must find the three networks giving the same answers.
 */
class FashionMnistEnginesIT {
  private static final int SLICE = 1000;
  private static final String ONNX = "fashion-mnist";
  private static final List<String> MLPS =
      List.of(ONNX, "fashion-mnist-torchscript", "fashion-mnist-savedmodel");
  private static final String XGBOOST = "fashion-mnist-xgboost";
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path work;
  private static BerthProcess server;
  private static String url;

  @BeforeAll
  static void trainConvertAndServe() throws Exception {
    assertTrue(
        Files.isRegularFile(IdxSlice.DATA.resolve("t10k-images-idx3-ubyte.gz")),
        "the Fashion-MNIST data set is missing: apt-get install dataset-fashion-mnist");
    Path repo = work.resolve("repo");
    String log =
        script(
            "train",
            repo.toString(),
            "--epochs",
            "1",
            "--train-limit",
            "5000",
            "--test-limit",
            Integer.toString(SLICE));
    assertTrue(log.contains("fashion-mnist/1/model.onnx"), log);
    log =
        script(
            "convert", repo.toString(), "--xgboost-train-limit", "3000", "--xgboost-rounds", "10");
    for (String file :
        List.of(
            "fashion-mnist-torchscript/1/model.pt",
            "fashion-mnist-savedmodel/1/model.savedmodel/saved_model.pb",
            "fashion-mnist-xgboost/1/model.ubj")) {
      assertTrue(Files.isRegularFile(repo.resolve(file)), file + " missing:\n" + log);
    }

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
            "json");
    url = server.awaitServing();
  }

  @AfterAll
  static void stop() {
    if (server != null) {
      server.close();
    }
  }

  /** Runs examples/fashion-mnist/SCRIPT to its end and returns what it printed. */
  private static String script(String name, String... args) throws Exception {
    Path script = BerthProcess.examples().resolveSibling("fashion-mnist").resolve(name);
    List<String> command = new java.util.ArrayList<>(List.of("bash", script.toString()));
    command.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(command);
    pb.environment()
        .put("JAVA_HOME", Path.of(BerthProcess.java()).getParent().getParent().toString());
    Path log = work.resolve(name + ".log");
    pb.redirectErrorStream(true).redirectOutput(log.toFile());
    Process p = pb.start();
    if (!p.waitFor(300, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError(name + " did not finish within 300 s:\n" + Files.readString(log));
    }
    String out = Files.readString(log, StandardCharsets.UTF_8);
    assertEquals(0, p.exitValue(), name + " failed:\n" + out);
    return out;
  }

  @Test
  void evalCountsTheSameRightAnswersForTheThreeNetworks_andTheTreesLearnedTheTask()
      throws Exception {
    Path images = IdxSlice.testSlice(work.resolve("idx"), SLICE);
    Map<String, JsonNode> metrics = new HashMap<>();
    for (String model : MLPS) {
      metrics.put(model, eval(model, images));
    }
    JsonNode trees = eval(XGBOOST, images);

    long onnxCorrect = metrics.get(ONNX).get("correct").asLong();
    assertTrue(onnxCorrect > 0.7 * SLICE, "one short epoch already learns most of it");
    for (String model : MLPS) {
      assertEquals(onnxCorrect, metrics.get(model).get("correct").asLong(), model);
      assertEquals(
          metrics.get(ONNX).get("confusion_matrix"),
          metrics.get(model).get("confusion_matrix"),
          model);
      assertEquals("Ankle boot", metrics.get(model).get("labels").get(9).asText(), model);
    }
    assertTrue(
        trees.get("accuracy").asDouble() > 0.7, "XGBoost on 3000 images: " + trees.get("accuracy"));
    assertEquals("Ankle boot", trees.get("labels").get(9).asText());
  }

  private static JsonNode eval(String model, Path images) throws Exception {
    Path report = work.resolve("report-" + model);
    BerthProcess.Finished r =
        BerthProcess.run(
            Files.createDirectories(work.resolve("eval-" + model)),
            Duration.ofSeconds(120),
            "eval",
            url,
            "--model",
            model,
            "--data",
            images.toString(),
            "--report",
            report.toString());
    assertEquals(0, r.code(), model + ": " + r.err());
    JsonNode metrics = JSON.readTree(report.resolve("metrics.json").toFile());
    assertEquals(SLICE, metrics.get("evaluated").asInt(), model);
    return metrics;
  }

  @Test
  void torchScriptAndSavedModelProbabilitiesAreTheOnnxModelsWithin0_005() throws Exception {
    String out =
        script(
            "compare",
            url,
            "--limit",
            Integer.toString(SLICE),
            "--models",
            String.join(",", MLPS.subList(1, MLPS.size())) + "," + XGBOOST,
            "--only-models",
            String.join(",", MLPS.subList(1, MLPS.size())),
            "--max-difference",
            "0.005");

    Map<String, double[]> rows = new HashMap<>();
    Matcher m =
        Pattern.compile(
                "(?m)^(\\S+)\\s+(\\d+)\\s+(\\d+)\\s+([0-9.]+)\\s+(\\d+)\\s+([0-9.eE+-]+)\\s*$")
            .matcher(out);
    while (m.find()) {
      rows.put(
          m.group(1),
          new double[] {
            Double.parseDouble(m.group(3)),
            Double.parseDouble(m.group(5)),
            Double.parseDouble(m.group(6))
          });
    }
    assertEquals(4, rows.size(), out);
    for (String model : MLPS) {
      double[] row = rows.get(model);
      assertEquals(rows.get(ONNX)[0], row[0], model + " correct:\n" + out);
      assertEquals(SLICE, row[1], model + " same class as ONNX:\n" + out);
      assertTrue(row[2] <= 0.005, model + " max difference:\n" + out);
    }
    assertTrue(rows.get(XGBOOST)[0] > 0.7 * SLICE, out);
  }
}
