package dev.berth.client.tune;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.BerthException;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The space starts from the model's own settings and writes candidates back into its model.yaml.
 */
class TuneSpaceTest {
  @Test
  void theCurrentValuesAreInTheSpaceInOrder() {
    Map<String, Object> yaml =
        Map.of(
            "instances", 5,
            "batching", Map.of("max-batch-size", 24, "max-queue-delay", "3ms"),
            "options", Map.of("intra-op-threads", 2));
    TuneSpace space = TuneSpace.of("onnx", yaml, 4);
    assertEquals(
        Map.of(
            "instances", 5,
            "options.intra-op-threads", 2,
            "batching.max-batch-size", 24,
            "batching.max-queue-delay", "3ms"),
        space.baseline().values());
    assertEquals(List.of(1, 2, 3, 4, 5, 6, 8), space.dimensions().get(0).values());
    // model.yaml sets the threads: leaving the key out would not mean the engine's default
    assertEquals(List.of(1, 2, 4), space.dimensions().get(1).values());
    assertEquals(List.of(1, 4, 8, 16, 24, 32, 64, 128), space.dimensions().get(2).values());
    assertEquals(
        List.of("0ms", "1ms", "2ms", "3ms", "5ms", "10ms"), space.dimensions().get(3).values());
  }

  @Test
  void defaultsFillWhatModelYamlLeavesOut() {
    TuneSpace space = TuneSpace.of("xgboost", Map.of("batching", Map.of("enabled", false)), 2);
    assertEquals(1, space.baseline().get("instances"));
    assertEquals(TuneSetting.DEFAULT, space.baseline().get("options.threads"));
    assertEquals(1, space.baseline().get("batching.max-batch-size"));
    assertEquals("0ms", space.baseline().get("batching.max-queue-delay"));
    // batching is off: its keys are not searched
    assertEquals(
        List.of("instances", "options.threads"),
        space.dimensions().stream().map(TuneSpace.Dimension::key).toList());
  }

  @Test
  void onOneCpuTheDefaultThreadsAreOneAndNotSearched() {
    TuneSpace space = TuneSpace.of("onnx", Map.of(), 1);
    assertEquals(
        List.of("instances", "batching.max-batch-size", "batching.max-queue-delay"),
        space.dimensions().stream().map(TuneSpace.Dimension::key).toList());
    assertEquals(TuneSetting.DEFAULT, space.baseline().get("options.intra-op-threads"));
  }

  @Test
  void aSettingIsWrittenIntoACopyOfModelYaml() {
    Map<String, Object> yaml =
        Map.of("kind", "Model", "options", Map.of("intra-op-threads", 2, "optimization", "all"));
    TuneSetting s =
        new TuneSetting(
            Map.of(
                "instances", 3,
                "options.intra-op-threads", TuneSetting.DEFAULT,
                "batching.max-batch-size", 8));
    Map<String, Object> out = s.applyTo(yaml);
    assertEquals(3, out.get("instances"));
    assertEquals(Map.of("optimization", "all"), out.get("options"));
    assertEquals(Map.of("max-batch-size", 8), out.get("batching"));
    // the model's own map is untouched
    assertEquals(2, ((Map<?, ?>) yaml.get("options")).get("intra-op-threads"));
    assertTrue(s.label().contains("intra-op-threads=default"), s.label());
  }

  @Test
  void aLanguageModelSearchesASmallerContextThenParallelThenFewerThreads() {
    TuneSpace space =
        TuneSpace.of("llama", Map.of("llm", Map.of("parallel", 6, "context-size", 2048)), 4, true);
    assertEquals(
        Map.of("llm.parallel", 6, "llm.threads", TuneSetting.DEFAULT, "llm.context-size", 2048),
        space.baseline().values());
    TuneSpace.Dimension context = space.dimensions().get(0);
    // only down, and not below the 512 tokens a request without max_tokens is promised
    assertEquals(List.of(1024, 2048), context.values());
    assertTrue(context.smallerWhenEven());
    TuneSpace.Dimension parallel = space.dimensions().get(1);
    // at most four times the current cache: 24 sequences of 2048 tokens
    assertEquals(List.of(1, 2, 4, 6, 8, 16), parallel.values());
    assertTrue(parallel.refine());
    // llama.cpp's default is one thread per CPU given: last, the search goes down from it
    assertEquals(List.of(1, 2, 3, TuneSetting.DEFAULT), space.dimensions().get(2).values());
    assertEquals("llm.max-waiting", TuneSpace.queueKey(space.baseline()));
    // without the user's own requests the context is not searched
    assertEquals(
        List.of("llm.parallel", "llm.threads"),
        TuneSpace.of("llama", Map.of(), 4).dimensions().stream()
            .map(TuneSpace.Dimension::key)
            .toList());
  }

  @Test
  void aLanguageModelOnOneCpuWithLlamaCppsDefaultsSearchesParallelOnly() {
    // threads: 0 is llama.cpp's default written out, and stays written
    TuneSpace space = TuneSpace.of("llama", Map.of("llm", Map.of("threads", 0)), 1, false);
    assertEquals(0, space.baseline().get("llm.threads"));
    assertEquals(4, space.baseline().get("llm.parallel"));
    assertEquals(4096, space.baseline().get("llm.context-size"));
    assertEquals(
        List.of("llm.parallel"),
        space.dimensions().stream().map(TuneSpace.Dimension::key).toList());
    assertEquals(
        "batching.max-queue-size",
        TuneSpace.queueKey(TuneSpace.of("onnx", Map.of(), 1).baseline()));
  }

  @Test
  void anEngineWithoutSettingsToSearchIsRefusedWithWhatToDoInstead() {
    BerthException e =
        assertThrows(BerthException.class, () -> TuneSpace.of("sklearn", Map.of(), 2));
    assertTrue(e.getMessage().contains("berth bench"), e.getMessage());
    assertFalse(e.getMessage().isBlank());
  }

  @Test
  void durationsAreOrderedByLength() {
    assertTrue(TuneSpace.order("500us") < TuneSpace.order("1ms"));
    assertTrue(TuneSpace.order("10ms") < TuneSpace.order("1s"));
    assertTrue(TuneSpace.order("default") < TuneSpace.order(1));
    assertThrows(BerthException.class, () -> TuneSpace.micros("soon"));
  }
}
