package dev.berth.client.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BenchReportTest {
  @TempDir Path dir;

  private static BenchResults results(boolean serverMetrics) {
    BenchPlan plan =
        BenchPlan.builder(URI.create("http://127.0.0.1:8080"), "minilm")
            .steps(List.of(LoadStep.closed(1), LoadStep.closed(16)))
            .build();
    StepResult c1 =
        new StepResult(
            LoadStep.closed(1),
            1,
            20.0,
            4000,
            200.0,
            new LatencyStats(5.0, 4.9, 5.5, 6.0, 9.1234, 30.0),
            0,
            Map.of(),
            null,
            serverMetrics ? new ServerSplit(0.1, 4.2, 1.0, 4.8) : null);
    StepResult c16 =
        new StepResult(
            LoadStep.closed(16),
            16,
            20.0,
            10_012,
            500.0,
            new LatencyStats(31.0, 30.0, 40.0, 45.0, 60.0, 120.0),
            12,
            Map.of("503", 10L, "timeout", 2L),
            "HTTP 503: {\"error\":\"the server is draining, <retry>\"}",
            serverMetrics ? new ServerSplit(9.5, 33.3, 8.8, 30.5) : null);
    return new BenchResults(plan, "text BYTES[1]", serverMetrics, List.of(c1, c16));
  }

  @Test
  void writesOneJsonObjectPerStep() throws Exception {
    BenchReport.write(dir, results(true), "berth bench http://127.0.0.1:8080 -m minilm -c 1,16");
    JsonNode steps = new ObjectMapper().readTree(dir.resolve(BenchReport.JSON_FILE).toFile());
    assertEquals(2, steps.size());
    JsonNode c16 = steps.get(1);
    assertEquals(16, c16.path("concurrency").asInt());
    assertTrue(c16.path("rate").isNull());
    assertEquals(10_012, c16.path("requests").asLong());
    assertEquals(500.0, c16.path("throughput_per_s").asDouble());
    assertEquals(30.0, c16.path("p50_ms").asDouble());
    assertEquals(40.0, c16.path("p90_ms").asDouble());
    assertEquals(60.0, c16.path("p99_ms").asDouble());
    assertEquals(12, c16.path("errors").asLong());
    assertEquals(10, c16.path("errors_by_status").path("503").asLong());
    assertEquals(2, c16.path("errors_by_status").path("timeout").asLong());
    assertEquals(8.8, c16.path("server_batch_size").asDouble());
    assertEquals(9.123, steps.get(0).path("p99_ms").asDouble(), "rounded to microseconds");
    for (String key :
        List.of(
            "duration_s", "mean_ms", "p95_ms", "max_ms", "server_queue_ms", "server_compute_ms")) {
      assertTrue(c16.has(key), key);
    }
  }

  @Test
  void aServerWithoutMetricsLeavesItsColumnsEmpty() throws Exception {
    BenchReport.write(dir, results(false), "berth bench x");
    JsonNode step = new ObjectMapper().readTree(dir.resolve(BenchReport.JSON_FILE).toFile()).get(0);
    assertTrue(step.path("server_queue_ms").isNull());
    String table = BenchReport.table(results(false));
    assertFalse(table.contains("queue ms"), table);
    assertTrue(BenchReport.table(results(true)).contains("queue ms"));
  }

  @Test
  void theCsvHasTheSameColumns() throws Exception {
    BenchReport.write(dir, results(true), "berth bench x");
    List<String> lines = Files.readAllLines(dir.resolve(BenchReport.CSV_FILE));
    assertEquals(3, lines.size());
    assertTrue(
        lines
            .get(0)
            .startsWith("step,concurrency,rate,connections,duration_s,requests,throughput_per_s,"),
        lines.get(0));
    assertTrue(lines.get(1).startsWith("c=1,1,,1,20.0,4000,200.0,5.0,4.9,"), lines.get(1));
    // the error message holds quotes and a comma: one quoted cell
    assertTrue(
        lines
            .get(2)
            .contains("\"HTTP 503: {\"\"error\"\":\"\"the server is draining, <retry>\"\"}\""),
        lines.get(2));
  }

  @Test
  void theHtmlIsSelfContainedWithChartsTheTableAndTheCommand() throws Exception {
    BenchReport.write(
        dir, results(true), "berth bench http://127.0.0.1:8080 -m minilm --data 'a b.jsonl'");
    String html = Files.readString(dir.resolve(BenchReport.HTML_FILE));
    assertEquals(2, html.split("<svg ", -1).length - 1, "two charts");
    assertFalse(html.contains("<script"), "no scripts");
    assertFalse(html.contains("src=\"http") || html.contains("href=\"http"), "nothing fetched");
    assertTrue(html.contains("--data 'a b.jsonl'"), "the command line");
    assertTrue(html.contains("&lt;retry&gt;"), "messages escaped");
    assertTrue(html.contains("<td>c=16</td>") && html.contains("<td>10012</td>"), "the table");
    assertTrue(
        html.contains("Latency vs throughput") && html.contains("Throughput by concurrency"));
  }

  @Test
  void theTableShowsEveryStepAndTheFirstError() {
    String table = BenchReport.table(results(true));
    String[] lines = table.split("\n");
    assertTrue(lines[0].startsWith("step") && lines[0].contains("p99 ms"), table);
    assertTrue(lines[1].startsWith("c=1 ") && lines[1].contains("9.12"), table);
    assertTrue(lines[2].startsWith("c=16") && lines[2].contains("12 (503: 10, timeout: 2)"), table);
    assertTrue(table.contains("c=16 first error: HTTP 503"), table);
  }
}
