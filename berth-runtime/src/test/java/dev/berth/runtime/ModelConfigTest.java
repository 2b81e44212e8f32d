package dev.berth.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
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

  @Test
  void aGateNamesItsDataFromTheModelDirectoryAndJudgesAgainstBothThresholds() throws IOException {
    ModelGate gate =
        load(HEADER
                + "gate:\n  data: gate/test.csv\n  metric: recall\n  class: Bag\n"
                + "  min: 0.8\n  max-drop: 0.02\n")
            .gate();
    assertEquals(dir.resolve("gate/test.csv").toAbsolutePath(), gate.data());
    assertEquals("recall:Bag", gate.metricName());
    assertEquals(32, gate.batchSize());

    // no version serving: the minimum alone
    ModelGate.Verdict alone = gate.judge(0.81, Double.NaN, null);
    assertTrue(alone.passed(), alone.summary());
    assertEquals(0.8, alone.threshold(), 1e-12);
    assertTrue(alone.summary().contains("no version serving"), alone.summary());
    // a serving version at 0.9 raises the bar to 0.88
    ModelGate.Verdict dropped = gate.judge(0.85, 0.9, "3");
    assertFalse(dropped.passed(), dropped.summary());
    assertEquals(0.88, dropped.threshold(), 1e-12);
    assertTrue(
        dropped.summary().startsWith("recall:Bag 0.8500 < 0.8800 (minimum 0.8000; version 3"),
        dropped.summary());
    // exactly at the threshold passes
    assertTrue(gate.judge(0.88, 0.9, "3").passed());
    // a serving version below the minimum does not lower it
    assertEquals(0.8, gate.judge(0.79, 0.7, "3").threshold(), 1e-12);
    assertNull(load(HEADER).gate());
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
        Arguments.of(
            "a gate without data",
            "apiVersion: berth.dev/v1\nkind: Model\ngate: {min: 0.9}",
            "gate.data",
            "labelled data set"),
        Arguments.of(
            "a gate without a threshold",
            "apiVersion: berth.dev/v1\nkind: Model\ngate: {data: t.csv}",
            "gate.min",
            "max-drop"),
        Arguments.of(
            "a gate metric that is none",
            "apiVersion: berth.dev/v1\nkind: Model\ngate: {data: t.csv, min: 0.5, metric: auc}",
            "gate.metric",
            "macro-f1"),
        Arguments.of(
            "recall without its class",
            "apiVersion: berth.dev/v1\nkind: Model\ngate: {data: t.csv, min: 0.5, metric: recall}",
            "gate.class",
            "class: Bag"),
        Arguments.of(
            "a minimum above 1",
            "apiVersion: berth.dev/v1\nkind: Model\ngate: {data: t.csv, min: 86}",
            "gate.min",
            "between 0 and 1"),
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
