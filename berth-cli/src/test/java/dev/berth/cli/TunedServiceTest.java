package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.BerthException;
import dev.berth.client.tune.Sizing;
import dev.berth.client.tune.TuneSetting;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.Yaml;

/** berth tune --apply edits the service file in place: values set, comments kept. */
class TunedServiceTest {
  private static final String SERVICE =
      """
      # the service
      apiVersion: berth.dev/v1
      kind: ModelService
      name: minilm
      models:
        - path: ../models/minilm      # the model
          versions: [1]
          options: {intra-op-threads: 2, optimization: all}
        - path: ../models/other
      deploy:
        replicas: 2
        resources:
          requests: {cpu: "1", memory: 1Gi}
        autoscaling: {min-replicas: 2, target-cpu-utilization: 70}   # scale on CPU
      """;

  private static final Sizing SIZING = new Sizing("2", "384Mi", 68, 13, 72, List.of("because"));

  private static TuneSetting winner(Object threads) {
    Map<String, Object> v = new LinkedHashMap<>();
    v.put("instances", 2);
    v.put("options.intra-op-threads", threads);
    v.put("batching.max-batch-size", 16);
    v.put("batching.max-queue-delay", "1ms");
    return new TuneSetting(v);
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Object> read(String text) {
    return new Yaml().load(text);
  }

  @Test
  @SuppressWarnings("unchecked")
  void theModelsEntryAndDeployGetTheWinnerAndCommentsStay() {
    String edited = TunedService.edit(SERVICE, "minilm", winner(1), SIZING, false);
    assertTrue(edited.contains("# the service"), edited);
    assertTrue(edited.contains("# the model"), edited);
    assertTrue(edited.contains("# scale on CPU"), edited);

    Map<String, Object> y = read(edited);
    Map<String, Object> model = ((List<Map<String, Object>>) y.get("models")).get(0);
    assertEquals(2, model.get("instances"));
    assertEquals(Map.of("intra-op-threads", 1, "optimization", "all"), model.get("options"));
    assertEquals(
        Map.of("max-batch-size", 16, "max-queue-delay", "1ms", "max-queue-size", 72),
        model.get("batching"));
    Map<String, Object> other = ((List<Map<String, Object>>) y.get("models")).get(1);
    assertEquals(Map.of("path", "../models/other"), other);

    Map<String, Object> deploy = (Map<String, Object>) y.get("deploy");
    Map<String, Object> resources = (Map<String, Object>) deploy.get("resources");
    assertEquals(Map.of("cpu", "2", "memory", "384Mi"), resources.get("requests"));
    assertEquals(Map.of("cpu", "2", "memory", "384Mi"), resources.get("limits"));
    Map<String, Object> autoscaling = (Map<String, Object>) deploy.get("autoscaling");
    assertEquals(68, autoscaling.get("target-cpu-utilization"));
    assertEquals(2, autoscaling.get("min-replicas"));
    assertFalse(autoscaling.containsKey("target-inflight-per-pod"));
  }

  @Test
  @SuppressWarnings("unchecked")
  void aDefaultRemovesTheKeyAndAnInflightTargetIsKeptUpToDate() {
    String edited = TunedService.edit(SERVICE, "minilm", winner(TuneSetting.DEFAULT), SIZING, true);
    Map<String, Object> y = read(edited);
    Map<String, Object> model = ((List<Map<String, Object>>) y.get("models")).get(0);
    assertEquals(Map.of("optimization", "all"), model.get("options"));
    Map<String, Object> autoscaling =
        (Map<String, Object>) ((Map<String, Object>) y.get("deploy")).get("autoscaling");
    assertEquals(13, autoscaling.get("target-inflight-per-pod"));
  }

  @Test
  @SuppressWarnings("unchecked")
  void anEmptySectionIsFilledAndADefaultCreatesNoEmptyOne() {
    String text =
        """
        name: minilm
        models:
          - path: ../models/minilm
        deploy:
          autoscaling:
            # target-cpu-utilization: 70
        """;
    String edited = TunedService.edit(text, "minilm", winner(TuneSetting.DEFAULT), SIZING, false);
    Map<String, Object> y = read(edited);
    Map<String, Object> model = ((List<Map<String, Object>>) y.get("models")).get(0);
    assertFalse(model.containsKey("options"), edited);
    Map<String, Object> autoscaling =
        (Map<String, Object>) ((Map<String, Object>) y.get("deploy")).get("autoscaling");
    assertEquals(68, autoscaling.get("target-cpu-utilization"));
  }

  @Test
  void aModelWithoutAnEntryIsRefusedWithTheFix() {
    BerthException e =
        assertThrows(
            BerthException.class,
            () -> TunedService.edit(SERVICE, "reranker", winner(1), SIZING, false));
    assertTrue(e.getMessage().contains("no models entry for 'reranker'"), e.getMessage());
  }

  @Test
  @SuppressWarnings("unchecked")
  void aLanguageModelsWinnerGoesUnderLlmWithItsMaxWaiting() {
    Map<String, Object> v = new LinkedHashMap<>();
    v.put("llm.parallel", 8);
    v.put("llm.threads", TuneSetting.DEFAULT);
    v.put("llm.context-size", 1024);
    String edited = TunedService.edit(SERVICE, "other", new TuneSetting(v), SIZING, false);
    Map<String, Object> other = ((List<Map<String, Object>>) read(edited).get("models")).get(1);
    assertEquals(Map.of("parallel", 8, "context-size", 1024, "max-waiting", 72), other.get("llm"));
    assertFalse(other.containsKey("batching"), edited);
    // a language model scales on requests in flight: its CPUs are busy from the first one
    Map<String, Object> autoscaling =
        (Map<String, Object>) ((Map<String, Object>) read(edited).get("deploy")).get("autoscaling");
    assertEquals(13, autoscaling.get("target-inflight-per-pod"));
    assertEquals(0, autoscaling.get("target-cpu-utilization"));
  }
}
