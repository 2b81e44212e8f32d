package dev.berth.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.ConfigException;
import dev.berth.api.DataType;
import dev.berth.api.TensorSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class ModelConfigTest {
  private static final String HEADER = "apiVersion: berth.dev/v1\nkind: Model\n";

  @TempDir Path dir;

  private ModelConfig load(String yaml) throws IOException {
    Files.writeString(dir.resolve("model.yaml"), yaml);
    return ModelConfig.load(dir);
  }

  @Test
  void noFileMeansDefaults() {
    ModelConfig config = ModelConfig.load(dir);
    assertEquals(BatchingConfig.defaults(), config.batching());
    assertEquals(1, config.instances());
    assertEquals(Duration.ofSeconds(30), config.requestTimeout());
  }

  @Test
  void readsEverySetting() throws IOException {
    ModelConfig config =
        load(
            HEADER
                + "instances: 2\nrequest-timeout: 500ms\n"
                + "batching: {max-batch-size: 16, max-queue-delay: 250us, max-queue-size: 9}\n"
                + "inputs: [{name: x, datatype: FP32, shape: [-1, 4]}]\n"
                + "options: {intra-op-threads: 1}\n");
    assertEquals(2, config.instances());
    assertEquals(Duration.ofMillis(500), config.requestTimeout());
    assertEquals(new BatchingConfig(16, Duration.ofNanos(250_000), 9), config.batching());
    assertEquals(DataType.FP32, config.inputs().get(0).datatype());
    assertEquals(1, config.options().integer("intra-op-threads", 0, 0, 8));
  }

  @Test
  void readsALanguageModelsSettings() throws IOException {
    LlmConfig llm =
        load(HEADER
                + "llm:\n  context-size: 2048\n  parallel: 8\n  max-waiting: 3\n"
                + "  chat-template: '{{ messages }}'\n  threads: 2\n  gpu-layers: -1\n"
                + "  defaults: {max-tokens: 100, temperature: 0, top-p: 0.5}\n")
            .llm();
    assertEquals(new LlmConfig(2048, 8, 3, "{{ messages }}", 2, -1, 100, 0, 0.5), llm);
    LlmConfig defaults = load(HEADER).llm();
    assertEquals(LlmConfig.DEFAULT_CONTEXT_SIZE, defaults.contextSize());
    assertEquals(LlmConfig.DEFAULT_PARALLEL, defaults.parallel());
    assertEquals(LlmConfig.DEFAULT_MAX_TOKENS, defaults.maxTokens());
    assertEquals(null, defaults.chatTemplate());
    assertEquals(null, defaults.gpuLayers(), "unset: decided by the execution provider");
  }

  @Test
  void badLanguageModelSettingsSayWhatToFix() throws IOException {
    for (String[] bad :
        new String[][] {
          {"llm: {parallel: 0}", "parallel"},
          {"llm: {slots: 4}", "slots"},
          {"llm: {defaults: {temperature: 3}}", "between 0 and 2"},
          {"llm: {defaults: {top-p: 0}}", "top-p"},
          {"llm: {context-size: 64, defaults: {max-tokens: 65}}", "max-tokens"},
        }) {
      ConfigException e = assertThrows(ConfigException.class, () -> load(HEADER + bad[0] + "\n"));
      assertTrue(e.getMessage().contains(bad[1]), bad[0] + ": " + e.getMessage());
    }
  }

  @Test
  void labelsNameTheScoresOfAClassifier_andMustFitAnOutput() throws IOException {
    ModelConfig config = load(HEADER + "labels: [cat, dog, \"bird 2\"]\n");
    assertEquals(List.of("cat", "dog", "bird 2"), config.labels());
    config.checkLabels(List.of(new TensorSpec("p", DataType.FP32, new long[] {-1, 3})));
    ConfigException e =
        assertThrows(
            ConfigException.class,
            () ->
                config.checkLabels(
                    List.of(new TensorSpec("p", DataType.FP32, new long[] {-1, 10}))));
    assertTrue(
        e.getMessage().contains("3 class names, but no output has 3 scores"), e.getMessage());
    assertTrue(e.getMessage().contains("p [-1, 10]"), e.getMessage());
    assertEquals(List.of(), load(HEADER).labels());
  }

  @Test
  void batchingOffMeansOneRowPerCall() throws IOException {
    assertEquals(1, load(HEADER + "batching: {enabled: false}\n").batching().maxBatchSize());
  }

  static Stream<Arguments> badFiles() {
    return Stream.of(
        Arguments.of(
            "unknown top key",
            "apiVersion: berth.dev/v1\nkind: Model\nbatchin: {}",
            "batchin",
            "unknown key"),
        Arguments.of(
            "typo in a section",
            "apiVersion: berth.dev/v1\nkind: Model\nbatching: {max-batch: 4}",
            "batching.max-batch",
            "max-batch-size"),
        Arguments.of("missing apiVersion", "kind: Model", "apiVersion", "berth.dev/v1"),
        Arguments.of(
            "wrong apiVersion", "apiVersion: v2\nkind: Model", "apiVersion", "use 'berth.dev/v1'"),
        Arguments.of(
            "wrong kind", "apiVersion: berth.dev/v1\nkind: Service", "kind", "kind: Model"),
        Arguments.of(
            "duration without unit",
            "apiVersion: berth.dev/v1\nkind: Model\nrequest-timeout: 30",
            "request-timeout",
            "30s"),
        Arguments.of(
            "batch size zero",
            "apiVersion: berth.dev/v1\nkind: Model\nbatching: {max-batch-size: 0}",
            "batching.max-batch-size",
            "between 1"),
        Arguments.of(
            "not a number",
            "apiVersion: berth.dev/v1\nkind: Model\ninstances: many",
            "instances",
            "whole number"),
        Arguments.of(
            "bad datatype",
            "apiVersion: berth.dev/v1\nkind: Model\ninputs: [{name: x, datatype: FLOAT, shape: [1]}]",
            "inputs[0].datatype",
            "FP32"),
        Arguments.of(
            "shape missing",
            "apiVersion: berth.dev/v1\nkind: Model\ninputs: [{name: x, datatype: FP32}]",
            "inputs[0].shape",
            "-1 for any size"),
        Arguments.of(
            "a label twice",
            "apiVersion: berth.dev/v1\nkind: Model\nlabels: [a, b, a]",
            "labels",
            "appears twice"),
        Arguments.of("not yaml", "apiVersion: [unclosed", "model.yaml", "not valid YAML"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("badFiles")
  void badFilesNameFileKeyAndFix(String name, String yaml, String key, String fix)
      throws IOException {
    ConfigException e = assertThrows(ConfigException.class, () -> load(yaml));
    assertTrue(e.getMessage().startsWith(dir.resolve("model.yaml").toString()), e.getMessage());
    assertTrue(e.getMessage().contains(key), "names the key: " + e.getMessage());
    assertTrue(e.getMessage().contains(fix), "says the fix: " + e.getMessage());
  }
}
