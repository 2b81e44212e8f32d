package dev.berth.xgboost;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.ConfigException;
import dev.berth.api.DataType;
import dev.berth.api.TensorSpec;
import dev.berth.runtime.Engine;
import dev.berth.runtime.EngineProvider;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelContext;
import dev.berth.runtime.ModelSignature;
import dev.berth.xgboost.testing.XgboostModelWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.ServiceLoader;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** What the engine reads from a model's objective and from model.yaml. */
class XgboostEngineSignatureTest {
  @TempDir Path repo;

  @ParameterizedTest
  @CsvSource({
    "multi:softprob,  3, model.json, probabilities, 3",
    "multi:softprob,  3, model.ubj,  probabilities, 3",
    "multi:softmax,   4, model.ubj,  probabilities, 4",
    "binary:logistic, 0, model.json, probability,   1",
    "binary:logitraw, 0, model.ubj,  value,         1",
    "reg:squarederror,0, model.json, value,         1",
    "reg:squarederror,0, model.ubj,  value,         1",
  })
  void outputsFollowTheObjective(
      String objective, int classes, String file, String output, long width) {
    XgboostModelWriter.objective(objective)
        .classes(classes)
        .features(7)
        .train()
        .save(repo.resolve("m/1").resolve(file));
    try (Engine engine = load(null)) {
      ModelSignature s = engine.signature();
      assertEquals("xgboost", s.platform());
      assertEquals(
          List.of(new TensorSpec("features", DataType.FP32, new long[] {-1, 7})), s.inputs());
      assertEquals(
          List.of(new TensorSpec(output, DataType.FP32, new long[] {-1, width})), s.outputs());
      assertTrue(s.batchable());
    }
  }

  @Test
  void modelYamlNamesTheInputAndSetsThreads() throws IOException {
    XgboostModelWriter.objective("multi:softprob")
        .classes(3)
        .train()
        .save(repo.resolve("m/1/model.json"));
    String yaml =
        """
        apiVersion: berth.dev/v1
        kind: Model
        labels: [a, b, c]
        options:
          threads: 1
        inputs:
          - {name: pixels, datatype: FP32, shape: [-1, 5]}
        outputs:
          - {name: probabilities, datatype: FP32, shape: [-1, 3]}
        """;
    try (Engine engine = load(yaml)) {
      assertEquals(
          List.of(new TensorSpec("pixels", DataType.FP32, new long[] {-1, 5})),
          engine.signature().inputs());
      assertEquals(List.of("probabilities"), engine.signature().outputNames());
    }
  }

  @Test
  void threadsDefaultToTheCoresOfAnInstanceButNoMoreThanAFullBatchCanUse() throws IOException {
    Files.createDirectories(repo.resolve("m"));
    Files.writeString(
        repo.resolve("m/model.yaml"),
        "apiVersion: berth.dev/v1\nkind: Model\nbatching:\n  max-batch-size: 64\n");
    assertEquals(1, XgboostEngine.defaultThreads(ModelConfig.load(repo.resolve("m"))));
    Files.writeString(
        repo.resolve("m/model.yaml"),
        "apiVersion: berth.dev/v1\nkind: Model\nbatching:\n  max-batch-size: 65536\n");
    ModelConfig large = ModelConfig.load(repo.resolve("m"));
    assertEquals(large.threadsPerInstance(), XgboostEngine.defaultThreads(large));
  }

  @Test
  void declarationsThatContradictTheModelAreRefused() {
    XgboostModelWriter.objective("reg:squarederror").train().save(repo.resolve("m/1/model.ubj"));
    assertRefused("options:\n  intra-op-threads: 2\n", "options.intra-op-threads", "unknown key");
    assertRefused("options:\n  threads: 0\n", "options.threads", "between 1 and 1024");
    assertRefused(
        "inputs:\n  - {name: x, datatype: FP32, shape: [-1, 4]}\n", "inputs[0].shape", "[-1, 5]");
    assertRefused(
        "inputs:\n  - {name: x, datatype: FP64, shape: [-1, 5]}\n", "inputs[0].datatype", "FP32");
    assertRefused(
        "inputs:\n  - {name: x, datatype: FP32, shape: [-1, 5]}\n"
            + "  - {name: y, datatype: FP32, shape: [-1, 5]}\n",
        "inputs",
        "takes one");
    assertRefused(
        "outputs:\n  - {name: probabilities, datatype: FP32, shape: [-1, 2]}\n",
        "outputs[0].name",
        "[value]");
  }

  @Test
  void theProviderIsFoundThroughServiceLoaderByItsFiles() {
    XgboostModelWriter.objective("reg:squarederror").train().save(repo.resolve("m/1/model.ubj"));
    EngineProvider provider =
        ServiceLoader.load(EngineProvider.class).stream()
            .map(ServiceLoader.Provider::get)
            .filter(p -> p.name().equals("xgboost"))
            .findFirst()
            .orElseThrow();
    assertEquals("model.json or model.ubj", provider.files());
    assertTrue(provider.canLoad(context()));
    assertTrue(!provider.canLoad(new ModelContext("n", "1", repo, ModelConfig.defaults(repo))));
  }

  private void assertRefused(String yamlBody, String key, String mentions) {
    String yaml = "apiVersion: berth.dev/v1\nkind: Model\n" + yamlBody;
    ConfigException e = assertThrows(ConfigException.class, () -> load(yaml).close());
    assertTrue(e.getMessage().contains(key), e.getMessage());
    assertTrue(e.getMessage().contains(mentions), e.getMessage());
  }

  private Engine load(String yaml) {
    if (yaml != null) {
      try {
        Files.writeString(repo.resolve("m/model.yaml"), yaml);
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    }
    return new XgboostEngineProvider().load(context());
  }

  private ModelContext context() {
    Path modelDir = repo.resolve("m");
    return new ModelContext("m", "1", modelDir.resolve("1"), ModelConfig.load(modelDir));
  }
}
