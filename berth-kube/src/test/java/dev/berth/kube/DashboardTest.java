package dev.berth.kube;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Grafana dashboard's JSON model, checked by its structure (Grafana itself does not run here):
 * the data source is a variable every panel uses, panels tile the grid without overlapping, every
 * topic a team looks for has its panel, and every query is PromQL that Prometheus' own {@code
 * promtool} parses, selecting the service's job. That each query returns data from a live server is
 * MonitoringLiveIT's part.
 */
class DashboardTest {
  private static final String NAME = "minilm";
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path dir;

  @Test
  void theDashboardImportsWithADataSourceVariableUsedByEveryPanel() throws IOException {
    JsonNode d = JSON.readTree(Monitoring.dashboardJson(NAME));
    assertEquals("berth-minilm", d.path("uid").asText());
    assertEquals("Berth: minilm", d.path("title").asText());
    assertEquals(Dashboard.SCHEMA_VERSION, d.path("schemaVersion").asInt());
    assertFalse(d.has("id") && !d.path("id").isNull(), "an importable dashboard has no id");

    JsonNode variables = d.path("templating").path("list");
    JsonNode datasource = variables.get(0);
    assertEquals("datasource", datasource.path("name").asText());
    assertEquals("datasource", datasource.path("type").asText());
    assertEquals("prometheus", datasource.path("query").asText());
    JsonNode model = variables.get(1);
    assertEquals("model", model.path("name").asText());
    assertEquals("${datasource}", model.path("datasource").path("uid").asText());
    assertEquals(".*", model.path("allValue").asText());

    Set<Integer> ids = new HashSet<>();
    List<int[]> cells = new ArrayList<>();
    int panels = 0;
    for (JsonNode p : d.path("panels")) {
      assertTrue(ids.add(p.path("id").asInt()), "panel ids are unique: " + p.path("id"));
      JsonNode g = p.path("gridPos");
      int x = g.path("x").asInt();
      int y = g.path("y").asInt();
      int w = g.path("w").asInt();
      int h = g.path("h").asInt();
      assertTrue(w > 0 && h > 0 && x >= 0 && x + w <= 24, p.path("title") + " fits the grid");
      for (int[] c : cells) {
        boolean apart = x + w <= c[0] || c[0] + c[2] <= x || y + h <= c[1] || c[1] + c[3] <= y;
        assertTrue(apart, p.path("title") + " overlaps another panel");
      }
      cells.add(new int[] {x, y, w, h});
      if (p.path("type").asText().equals("row")) {
        continue;
      }
      panels++;
      assertEquals("${datasource}", p.path("datasource").path("uid").asText(), p.toString());
      assertFalse(p.path("description").asText().isBlank(), p.path("title") + " is described");
      assertFalse(p.path("targets").isEmpty(), p.path("title") + " has queries");
      Set<String> refs = new HashSet<>();
      for (JsonNode t : p.path("targets")) {
        assertTrue(refs.add(t.path("refId").asText()), "refIds are unique in a panel");
        assertEquals("${datasource}", t.path("datasource").path("uid").asText());
        assertTrue(
            t.path("expr").asText().contains("job=\"" + NAME + "\""),
            "every query selects the service's job: " + t.path("expr"));
      }
    }
    assertEquals(Dashboard.rows(NAME).stream().mapToInt(r -> r.panels().size()).sum(), panels);
  }

  @Test
  void everyTopicHasItsPanel() throws IOException {
    JsonNode d = JSON.readTree(Monitoring.dashboardJson(NAME));
    Map<String, List<String>> byTitle = new LinkedHashMap<>();
    for (JsonNode p : d.path("panels")) {
      List<String> exprs = new ArrayList<>();
      p.path("targets").forEach(t -> exprs.add(t.path("expr").asText()));
      byTitle.put(p.path("title").asText(), exprs);
    }
    Map<String, String> topics = new LinkedHashMap<>();
    topics.put("Requests/s", "berth_requests_total");
    topics.put("Errors by code", "code!~");
    topics.put("Request latency", "berth_request_duration_seconds_bucket");
    topics.put("Queue time", "berth_queue_duration_seconds_bucket");
    topics.put("Batch size", "berth_batch_size");
    topics.put("Engine time per batch", "berth_compute_duration_seconds_bucket");
    topics.put("In flight", "berth_inflight_requests");
    topics.put("Queue fill", "berth_queue_capacity");
    topics.put("Rejections", "berth_rejected_requests_total");
    topics.put("Model versions", "berth_model_state");
    topics.put("Heap", "jvm_memory_used_bytes");
    topics.put("GC time", "jvm_gc_collection_seconds_sum");
    topics.put("Tokens/s", "berth_llm_generation_tokens_total");
    topics.put("Time to first token", "berth_llm_time_to_first_token_seconds_bucket");
    topics.put("Sequences", "berth_llm_sequences_running");
    for (var e : topics.entrySet()) {
      List<String> exprs = byTitle.get(e.getKey());
      assertTrue(exprs != null, "a panel titled " + e.getKey() + ": " + byTitle.keySet());
      assertTrue(
          exprs.stream().anyMatch(x -> x.contains(e.getValue())),
          e.getKey() + " reads " + e.getValue() + ": " + exprs);
    }
    List<String> latency = byTitle.get("Request latency");
    for (String q : List.of("0.5", "0.95", "0.99")) {
      assertTrue(latency.stream().anyMatch(x -> x.startsWith("histogram_quantile(" + q + ",")), q);
    }
  }

  @Test
  void promtoolParsesEveryQueryOfTheDashboardAndTheRules() throws Exception {
    List<Map<String, Object>> rules = new ArrayList<>();
    int i = 0;
    for (String expr : Dashboard.queries(NAME)) {
      rules.add(
          Map.of("record", "berth_dashboard:query" + i++, "expr", Dashboard.asSent(expr, "1m")));
    }
    for (Monitoring.Alert a : Monitoring.alerts(NAME)) {
      for (String signal : a.signals()) {
        rules.add(Map.of("record", "berth_alert:signal" + i++, "expr", signal));
      }
    }
    Path file = dir.resolve("queries.yaml");
    new ObjectMapper(new YAMLFactory())
        .writeValue(
            file.toFile(), Map.of("groups", List.of(Map.of("name", "queries", "rules", rules))));
    Process p =
        new ProcessBuilder("promtool", "check", "rules", file.toString())
            .redirectErrorStream(true)
            .start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(60, TimeUnit.SECONDS));
    assertEquals(0, p.exitValue(), out);
    assertTrue(out.contains("SUCCESS: " + rules.size() + " rules found"), out);
  }

  @Test
  void everyAlertHasARunbookSection() throws IOException {
    String docs = Files.readString(Path.of("..", "docs", "monitoring.md"));
    for (Monitoring.Alert a : Monitoring.alerts(NAME)) {
      assertTrue(docs.contains("\n## " + a.name() + "\n"), "docs/monitoring.md has ## " + a.name());
      assertEquals(
          "docs/monitoring.md#" + a.name().toLowerCase(Locale.ROOT), a.runbook(), a.name());
    }
  }
}
