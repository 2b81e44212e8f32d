package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.runtime.ServiceSpec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.yaml.snakeyaml.Yaml;

/**
 * berth tune drives a real search on the bundled MiniLM with a small budget: each setting served by
 * its own berth serve pinned to one CPU, measured with berth bench's steps; the winner is measured
 * again and holds the goal, the deployment follows from the figures in the report, --apply writes
 * it into the service file, and a goal no setting can hold is reported as such (exit 1).
 */
class TuneCommandIT {
  @TempDir Path work;

  private Path service() throws Exception {
    Path models = BerthProcess.examples().resolve("minilm").toAbsolutePath();
    Path file = work.resolve("berth.yaml");
    Files.writeString(
        file,
        """
        # MiniLM, to be tuned
        apiVersion: berth.dev/v1
        kind: ModelService
        name: minilm
        models:
          - path: %s   # the bundled model
        deploy:
          resources: {limits: {cpu: "1", memory: 2Gi}}
        """
            .formatted(models));
    return file;
  }

  @Test
  void aShortSearchPicksASettingThatHoldsTheGoalAndSizesTheDeployment() throws Exception {
    Path file = service();
    Path report = work.resolve("report");
    BerthProcess.Finished r =
        BerthProcess.run(
            work,
            Duration.ofMinutes(4),
            "tune",
            file.toString(),
            "--p99",
            "2s",
            "--budget",
            "150s",
            "--max-concurrency",
            "4",
            "--report",
            report.toString(),
            "--apply");
    assertEquals(0, r.code(), r.out() + r.err());
    assertTrue(r.err().contains("pinning the server to CPU"), r.err());
    assertTrue(r.out().startsWith("winner: "), r.out());

    JsonNode json = new ObjectMapper().readTree(report.resolve("tune.json").toFile());
    assertTrue(json.path("winner_held_goal_again").asBoolean(), json.toString());
    JsonNode winner = json.path("winner_final");
    assertTrue(winner.path("meets_goal").asBoolean());
    double throughput = winner.path("goal_throughput").asDouble();
    assertTrue(throughput > 0);
    // the settings measured: the current one twice, then others while the budget lasts (listed as
    // untried when it does not), and the final pair
    int points = json.path("points").size();
    assertTrue(
        points >= 4 || (points == 3 && json.path("untried").size() > 0),
        json.path("points").toString());
    assertTrue(json.path("seconds").asDouble() < 150 * 1.5, json.path("seconds").toString());

    // the deployment follows from the winner's final figures
    JsonNode deployment = json.path("deployment");
    JsonNode atGoal = winner.path("open").get(winner.path("open").size() - 1);
    double cores = atGoal.path("server_cpu_cores").asDouble();
    assertTrue(cores > 0 && cores < 1.5, "pinned to one CPU: " + cores);
    assertEquals("1", deployment.path("cpu").asText());
    assertEquals(
        (int) Math.max(10, Math.min(95, Math.floor(cores * 100 * 0.85))),
        deployment.path("target_cpu_utilization").asInt());
    double low = winner.path("low_load_ms").asDouble();
    assertEquals(
        (int) Math.max(1, Math.floor(throughput * (2000 - low) / 1000)),
        deployment.path("max_queue_size").asInt());
    long rss = winner.path("peak_rss_bytes").asLong();
    long outsideHeap = winner.path("native_bytes").asLong();
    assertTrue(rss > 0 && outsideHeap > 0, winner.toString());
    long mib =
        Math.max(
            ((long) Math.ceil(rss * 1.25) + (64L << 20) - 1) / (64L << 20) * 64,
            ((long) Math.ceil(outsideHeap * 4 * 1.1) + (64L << 20) - 1) / (64L << 20) * 64);
    assertEquals(mib + "Mi", deployment.path("memory").asText());

    // the report's other files, and the tuned model.yaml
    assertTrue(Files.readString(report.resolve("index.html")).contains("<svg"));
    assertEquals(
        json.path("points").size() + 1, Files.readAllLines(report.resolve("tune.csv")).size());
    Map<String, Object> modelYaml = new Yaml().load(Files.readString(report.resolve("model.yaml")));
    assertEquals(json.path("winner").path("instances").asInt(), modelYaml.get("instances"));

    // --apply: the service file carries the winner, keeps its comments and still loads
    String applied = Files.readString(file);
    assertTrue(applied.contains("# the bundled model"), applied);
    ServiceSpec spec = ServiceSpec.load(file);
    Map<String, Object> served = spec.models().get(0).modelYaml();
    assertEquals(json.path("winner").path("instances").asInt(), served.get("instances"));
    assertEquals(
        deployment.path("max_queue_size").asInt(),
        ((Map<?, ?>) served.get("batching")).get("max-queue-size"));
    assertEquals(deployment.path("memory").asText(), spec.deploy().limits().get("memory"));
    assertEquals(
        deployment.path("target_cpu_utilization").asInt(),
        spec.deploy().autoscaling().targetCpuUtilization());
  }

  @Test
  void aGoalNoSettingHoldsIsReportedAsSuch() throws Exception {
    Path file = service();
    Path report = work.resolve("none");
    BerthProcess.Finished r =
        BerthProcess.run(
            work,
            Duration.ofMinutes(3),
            "tune",
            file.toString(),
            "--p99",
            "100us",
            "--budget",
            "10s",
            "--report",
            report.toString(),
            "--apply");
    assertEquals(1, r.code(), r.out() + r.err());
    assertTrue(r.out().startsWith("no setting held p99 <= 0.10 ms at any load"), r.out());
    JsonNode json = new ObjectMapper().readTree(report.resolve("tune.json").toFile());
    assertTrue(json.path("winner").isNull());
    for (JsonNode p : json.path("points")) {
      assertFalse(p.path("meets_goal").asBoolean(), p.toString());
      assertNotNull(p.path("closed").get(0), p.toString());
    }
    // nothing was applied and no model.yaml written
    assertFalse(Files.readString(file).contains("instances"));
    assertFalse(Files.exists(report.resolve("model.yaml")));
  }

  @Test
  void aLanguageModelsParallelAndContextAreSearchedOverItsOpenAiApi() throws Exception {
    Path dir = work.resolve("llm");
    Path file = TinyLlmService.write(dir, "");
    Files.writeString(
        dir.resolve("models/tiny/model.yaml"),
        "apiVersion: berth.dev/v1\nkind: Model\n"
            + "llm: {context-size: 1024, parallel: 1, defaults: {max-tokens: 100}}\n");
    // the user's own requests: with them the context size is searched too (down to 256 here, above
    // the 100 tokens a request without max_tokens is promised)
    StringBuilder data = new StringBuilder();
    for (int i = 0; i < 32; i++) {
      data.append(
          "{\"model\":\"tiny\",\"prompt\":\"Request "
              + i
              + ": the quick brown fox jumps\",\"max_tokens\":16,\"temperature\":0}\n");
    }
    Path requests = Files.writeString(work.resolve("requests.jsonl"), data.toString());
    Path report = work.resolve("llm-report");
    BerthProcess.Finished r =
        BerthProcess.run(
            work,
            Duration.ofMinutes(4),
            "tune",
            file.toString(),
            "--p99",
            "1s",
            "--cpus",
            "1",
            "--budget",
            "120s",
            "--max-concurrency",
            "4",
            "--data",
            requests.toString(),
            "--report",
            report.toString(),
            "--apply");
    assertEquals(0, r.code(), r.out() + r.err());
    assertTrue(r.out().contains("tokens/s"), r.out());
    assertTrue(
        r.err().contains("setting 1: parallel=1 threads=default context-size=1024"), r.err());

    JsonNode json = new ObjectMapper().readTree(report.resolve("tune.json").toFile());
    assertTrue(json.path("winner_held_goal_again").asBoolean(), json.toString());
    JsonNode winner = json.path("winner_final");
    JsonNode atGoal = winner.path("open").get(winner.path("open").size() - 1);
    double generated = atGoal.path("completion_tokens").asDouble();
    assertTrue(generated > 0 && generated <= 16, atGoal.toString());
    // no answer came near the context: none was cut short
    assertTrue(atGoal.path("longest_sequence").asLong() < 1024, atGoal.toString());
    assertTrue(winner.path("goal_tokens_per_s").asDouble() > 0, winner.toString());
    // past the current setting's measurements the search tries a smaller context first, then
    // parallel, unless the budget ran out before (it lists what it left untried)
    boolean smallerContext = false;
    for (JsonNode p : json.path("points")) {
      smallerContext |= p.path("setting").path("llm.context-size").asInt() == 512;
    }
    assertTrue(
        smallerContext || json.path("untried").toString().contains("context-size=512"),
        json.path("points").toString());

    // the sized queue of a language model is its llm.max-waiting, and --apply writes llm: keys
    JsonNode deployment = json.path("deployment");
    assertEquals("llm.max-waiting", deployment.path("max_queue_size_key").asText());
    ServiceSpec spec = ServiceSpec.load(file);
    Map<?, ?> llm = (Map<?, ?>) spec.models().get(0).modelYaml().get("llm");
    assertEquals(deployment.path("max_queue_size").asInt(), llm.get("max-waiting"));
    assertEquals(json.path("winner").path("llm.parallel").asInt(), llm.get("parallel"));
    assertEquals(json.path("winner").path("llm.context-size").asInt(), llm.get("context-size"));
    Map<String, Object> modelYaml = new Yaml().load(Files.readString(report.resolve("model.yaml")));
    assertEquals(llm.get("parallel"), ((Map<?, ?>) modelYaml.get("llm")).get("parallel"));
  }
}
