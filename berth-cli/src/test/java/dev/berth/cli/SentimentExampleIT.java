package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The sentiment example's builder on a small corpus this test writes in the layout of the npm
 * package's fixtures (the real ones come from npm, which tests do not reach): it must write one
 * ONNX graph that Berth serves, whose answers agree with the head it trained (the builder checks
 * that itself) and that {@code berth eval} scores on the evaluation sentences it wrote.
 */
class SentimentExampleIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final List<String> GOOD =
      List.of("great", "wonderful", "excellent", "lovely", "superb", "fantastic", "delightful");
  private static final List<String> BAD =
      List.of("awful", "terrible", "horrible", "dreadful", "useless", "disappointing", "miserable");

  @TempDir Path work;

  /** Sentences "The NOUN was ADJ." for each noun and adjective, labelled 1 for good words. */
  private static ArrayNode sentences(List<String> nouns, String template) {
    ArrayNode out = JSON.createArrayNode();
    for (String noun : nouns) {
      for (int i = 0; i < GOOD.size(); i++) {
        out.addObject().put("text", template.formatted(noun, GOOD.get(i))).put("class", 1);
        out.addObject().put("text", template.formatted(noun, BAD.get(i))).put("class", 0);
      }
    }
    return out;
  }

  private Process run(Path log, List<String> command) throws Exception {
    ProcessBuilder pb = new ProcessBuilder(command);
    pb.environment().put("ORT_DISABLE_TELEMETRY", "1");
    pb.environment().put("OPT_OUT_TRACKING", "true");
    pb.environment().put("DJL_CACHE_DIR", work.resolve("djl").toString());
    pb.redirectErrorStream(true).redirectOutput(log.toFile());
    return pb.start();
  }

  @Test
  void theBuilderWritesOneGraphThatBerthServesAndEvalScores() throws Exception {
    Path fixtures = Files.createDirectories(work.resolve("fixtures"));
    JSON.writeValue(
        fixtures.resolve("amazon.json").toFile(),
        sentences(List.of("phone", "battery", "charger"), "The %s was %s."));
    JSON.writeValue(
        fixtures.resolve("yelp.json").toFile(),
        sentences(List.of("meal", "service", "waiter"), "Our %s was %s."));
    JSON.writeValue(
        fixtures.resolve("imdb.json").toFile(),
        sentences(List.of("film", "acting", "plot", "ending", "cast"), "I thought the %s was %s."));
    Path repo = work.resolve("repo");
    Path data = work.resolve("data");
    Path examples = BerthProcess.examples().getParent();
    Path log = work.resolve("build.log");

    Process build =
        run(
            log,
            List.of(
                BerthProcess.java(),
                "--enable-native-access=ALL-UNNAMED",
                "-cp",
                BerthProcess.jar().resolveSibling("lib") + "/*",
                examples.resolve("sentiment/Build.java").toString(),
                "--minilm",
                examples.resolve("models/minilm/1").toString(),
                "--fixtures",
                fixtures.toString(),
                "--repo",
                repo.toString(),
                "--data",
                data.toString()));
    assertTrue(build.waitFor(300, TimeUnit.SECONDS), "the build did not finish");
    String built = Files.readString(log, StandardCharsets.UTF_8);
    assertEquals(0, build.exitValue(), built);
    assertTrue(Files.isRegularFile(repo.resolve("sentiment/1/model.onnx")), built);

    Path serverWork = Files.createDirectories(work.resolve("server"));
    try (BerthProcess server =
        BerthProcess.start(
            serverWork,
            "serve",
            repo.toString(),
            "--port",
            "0",
            "--grpc-port",
            "0",
            "--log-format",
            "json")) {
      String url = server.awaitServing();
      Path report = work.resolve("report");
      Process eval =
          run(
              work.resolve("eval.log"),
              BerthProcess.command(
                  "eval",
                  url,
                  "--model",
                  "sentiment",
                  "--data",
                  data.resolve("imdb.jsonl").toString(),
                  "--report",
                  report.toString()));
      assertTrue(eval.waitFor(120, TimeUnit.SECONDS), "berth eval did not finish");
      String evaluated = Files.readString(work.resolve("eval.log"), StandardCharsets.UTF_8);
      assertEquals(0, eval.exitValue(), evaluated);
      JsonNode metrics = JSON.readTree(report.resolve("metrics.json").toFile());
      assertEquals("[\"negative\",\"positive\"]", metrics.get("labels").toString());
      assertEquals(70, metrics.get("evaluated").asInt(), evaluated);
      assertTrue(metrics.get("accuracy").asDouble() >= 0.9, evaluated);
    }
  }
}
