package dev.berth.client.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The table, metrics.json and index.html of one result. */
class EvalReportTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  @TempDir Path dir;

  private static EvalResult binaryResult() {
    ConfusionMatrix m =
        ConfusionMatrix.of(List.of("negative", "positive <b>"), new long[][] {{10, 30}, {10, 50}});
    ClassificationMetrics metrics = ClassificationMetrics.of(m);
    return new EvalResult(
        URI.create("http://127.0.0.1:8080"),
        "sentiment",
        "2",
        Path.of("data/reviews.csv"),
        DataFormat.CSV,
        "texts to BYTES input 'text'",
        "probs",
        "--labels",
        metrics,
        104,
        new EvalResult.Errors(1, 4, List.of("500 engine failed")),
        new EvalResult.Binary("positive <b>", 0.5, 0.625, 50.0 / 60, 100.0 / 140),
        Duration.ofMillis(2500));
  }

  @Test
  void metricsJsonHasTheHeadlineNumbersPerClassAndTheMatrix() throws IOException {
    EvalReport.write(binaryResult(), dir.resolve("report"));
    JsonNode json = JSON.readTree(dir.resolve("report/metrics.json").toFile());

    assertEquals(0.6, json.get("accuracy").doubleValue(), 1e-12);
    assertEquals(11.0 / 21, json.get("macro_f1").doubleValue(), 1e-12);
    assertEquals(JSON.readTree("[[10, 30], [10, 50]]"), json.get("confusion_matrix"));
    assertEquals(JSON.readTree("[\"negative\", \"positive <b>\"]"), json.get("labels"));
    JsonNode positive = json.get("per_class").get(1);
    assertEquals("positive <b>", positive.get("label").asText());
    assertEquals(0.625, positive.get("precision").doubleValue(), 1e-12);
    assertEquals(50.0 / 60, positive.get("recall").doubleValue(), 1e-12);
    assertEquals(100.0 / 140, positive.get("f1").doubleValue(), 1e-12);
    assertEquals(60, positive.get("support").asLong());
    assertEquals(0.6, json.at("/micro_avg/f1").doubleValue(), 1e-12);
    assertEquals(59.0 / 105, json.at("/weighted_avg/f1").doubleValue(), 1e-12);
    assertEquals(0.5, json.at("/binary/threshold").doubleValue());
    assertEquals(100, json.get("evaluated").asLong());
    assertEquals(104, json.get("rows").asLong());
    assertEquals(1, json.at("/errors/requests").asLong());
    assertEquals("500 engine failed", json.at("/errors/messages/0").asText());
    assertEquals(40.0, json.get("rows_per_second").doubleValue(), 1e-9);
  }

  @Test
  void indexHtmlIsSelfContainedWithAHeatMap() throws IOException {
    EvalReport.write(binaryResult(), dir);
    String html = Files.readString(dir.resolve("index.html"));

    assertTrue(html.startsWith("<!DOCTYPE html>"), html);
    assertTrue(html.trim().endsWith("</html>"), html);
    for (String external : new String[] {"<script", "<link", "src=", "href=", "url(", "@import"}) {
      assertFalse(html.contains(external), "the page loads something: " + external);
    }
    // labels are escaped
    assertFalse(html.contains("positive <b>"));
    assertTrue(html.contains("positive &lt;b&gt;"));
    // the heat map: the darkest cell is the largest share of its row (50 of 60), the lightest 0
    assertTrue(html.contains("<table class=\"cm\">"), html);
    assertTrue(
        html.contains("style=\"background:" + EvalReport.heat(50.0 / 60) + ";color:#fff\""), html);
    assertTrue(html.contains("style=\"background:" + EvalReport.heat(0.25) + ";"), html);
    assertTrue(html.contains(">0.600</b>accuracy"), html);
    assertTrue(html.contains(">0.524</b>macro F1"), html);
    assertTrue(html.contains("500 engine failed"), html);
  }

  @Test
  void heatScaleRunsFromNearWhiteToDarkBlue() {
    assertEquals("#f7fbff", EvalReport.heat(0));
    assertEquals("#08306b", EvalReport.heat(1));
    assertEquals("#6baed6", EvalReport.heat(0.5));
  }

  @Test
  void tableListsEveryClassTheAveragesAndTheMatrix() {
    String table = EvalReport.table(binaryResult());

    assertTrue(table.contains("negative          0.500      0.250      0.333         40"), table);
    assertTrue(table.contains("positive <b>      0.625      0.833      0.714         60"), table);
    assertTrue(table.contains("accuracy                                0.600        100"), table);
    assertTrue(table.contains("macro avg         0.563      0.542      0.524        100"), table);
    assertTrue(table.contains("positive class 'positive <b>' (score >= 0.500)"), table);
    assertTrue(table.contains("0 negative      10  30"), table);
    assertTrue(table.contains("1 positive <b>  10  50"), table);
    assertTrue(table.contains("error: 500 engine failed"), table);
  }
}
