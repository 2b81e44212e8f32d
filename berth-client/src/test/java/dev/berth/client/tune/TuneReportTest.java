package dev.berth.client.tune;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The report says what the search did: every measurement, the winner, the deployment and why. */
class TuneReportTest {
  @TempDir Path dir;

  @Test
  void jsonCsvAndHtmlCarryTheSearch() throws Exception {
    long[] clock = {0};
    TuneSpace space =
        TuneSpace.of(
            "onnx", java.util.Map.of("batching", java.util.Map.of("max-batch-size", 32)), 2);
    Tuner.Measurer measurer =
        (s, purpose) -> {
          clock[0] += 5_000_000_000L;
          int instances = (Integer) s.get(TuneSpace.INSTANCES);
          return TunerTest.point(s, purpose, instances == 2 ? 500 : 300);
        };
    TuneResult r =
        new Tuner(
                space,
                new Tuner.Options(new TuneGoal(99, 100), Duration.ofMinutes(5), 0.03),
                measurer,
                line -> {},
                () -> clock[0])
            .run();
    Sizing sizing = Sizing.of(r.winnerFinal(), r.goal(), 2, -1);
    TuneReport.write(dir, r, sizing, "berth tune berth.yaml --p99 100ms");

    JsonNode json = new ObjectMapper().readTree(dir.resolve(TuneReport.JSON_FILE).toFile());
    assertEquals(2, json.path("winner").path("instances").asInt());
    assertEquals(500 / 300.0, json.path("gain").asDouble(), 1e-9);
    assertEquals(r.points().size(), json.path("points").size());
    assertEquals(sizing.maxQueueSize(), json.path("deployment").path("max_queue_size").asInt());
    assertTrue(json.path("decisions").size() > 2);

    String csv = Files.readString(dir.resolve(TuneReport.CSV_FILE));
    assertEquals(r.points().size() + 1, csv.lines().count());
    assertTrue(csv.lines().findFirst().orElseThrow().contains("batching.max-batch-size"));

    String html = Files.readString(dir.resolve(TuneReport.HTML_FILE));
    assertTrue(html.contains("<svg"), "the frontier chart");
    assertTrue(html.contains("each setting at its goal load"));
    assertTrue(html.contains("1.67x the current model.yaml"), html);
    assertTrue(html.contains("class=\"win\""), "the winner's rows stand out");
  }
}
