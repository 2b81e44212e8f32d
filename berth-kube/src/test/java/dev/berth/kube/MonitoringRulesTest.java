package dev.berth.kube;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The alert rules against Prometheus' own {@code promtool}: {@code check rules} accepts the file
 * {@code berth deploy --export monitoring} writes, and {@code test rules} makes each alert fire on
 * synthetic series that should fire it, with its labels and annotations, and stay quiet on series
 * that should not.
 */
class MonitoringRulesTest {
  private static final String NAME = "minilm";
  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

  @TempDir Path dir;

  @Test
  void promtoolChecksTheRulesAndEachAlertFiresOnlyWhenItShould() throws Exception {
    List<Path> files = Monitoring.export(NAME, "ml", dir);
    assertEquals(
        List.of(
            "minilm-dashboard.json",
            "minilm-podmonitor.yaml",
            "minilm-prometheusrule.yaml",
            "minilm-rules.yaml"),
        files.stream().map(p -> p.getFileName().toString()).toList());
    Path rules = dir.resolve("minilm-rules.yaml");
    String checked = promtool("check", "rules", rules.toString());
    assertTrue(checked.contains("SUCCESS: 8 rules found"), checked);

    List<Map<String, Object>> tests = new ArrayList<>();
    String m = ",model=\"minilm\",version=\"1\",protocol=\"rest\"";
    String job = "job=\"" + NAME + "\"";
    // server errors: 10 of 110 requests a minute fail; 1 of 101 is fine
    tests.add(
        scenario(
            "15m",
            "BerthErrorRatioHigh",
            Map.of("model", "minilm"),
            series("berth_requests_total{" + job + m + ",code=\"200\"}", "0+100x30"),
            series("berth_requests_total{" + job + m + ",code=\"500\"}", "0+10x30")));
    tests.add(
        quiet(
            "15m",
            "BerthErrorRatioHigh",
            series("berth_requests_total{" + job + m + ",code=\"200\"}", "0+100x30"),
            series("berth_requests_total{" + job + m + ",code=\"500\"}", "0+1x30")));
    // latency: a fifth of requests slower than 0.5 s burns the budget 20 times too fast
    String count = "berth_request_duration_seconds_count{" + job + m + "}";
    String fast = "berth_request_duration_seconds_bucket{" + job + m + ",le=\"0.5\"}";
    tests.add(
        scenario(
            "70m",
            "BerthLatencyBudgetBurnFast",
            Map.of("model", "minilm"),
            series(count, "0+100x80"),
            series(fast, "0+80x80")));
    tests.add(
        quiet(
            "70m",
            "BerthLatencyBudgetBurnFast",
            series(count, "0+1000x80"),
            series(fast, "0+999x80")));
    tests.add(
        scenario(
            "7h",
            "BerthLatencyBudgetBurnSlow",
            Map.of("model", "minilm"),
            series(count, "0+100x440"),
            series(fast, "0+80x440")));
    tests.add(
        quiet(
            "7h",
            "BerthLatencyBudgetBurnSlow",
            series(count, "0+1000x440"),
            series(fast, "0+999x440")));
    // overload: 5 of 105 requests a minute are 429s; 1 of 201 is fine
    tests.add(
        scenario(
            "15m",
            "BerthOverloaded",
            Map.of("model", "minilm"),
            series("berth_requests_total{" + job + m + ",code=\"200\"}", "0+100x30"),
            series("berth_requests_total{" + job + m + ",code=\"429\"}", "0+5x30")));
    tests.add(
        quiet(
            "15m",
            "BerthOverloaded",
            series("berth_requests_total{" + job + m + ",code=\"200\"}", "0+200x30"),
            series("berth_requests_total{" + job + m + ",code=\"429\"}", "0+1x30")));
    // queue: 90 of 100 places taken for 10 minutes; 10 of 100 is fine
    String depth = "berth_queue_size{" + job + ",model=\"minilm\",version=\"1\"}";
    String capacity = "berth_queue_capacity{" + job + ",model=\"minilm\",version=\"1\"}";
    tests.add(
        scenario(
            "10m",
            "BerthQueueSaturated",
            Map.of("model", "minilm", "version", "1"),
            series(depth, "90x15"),
            series(capacity, "100x15")));
    tests.add(
        quiet("10m", "BerthQueueSaturated", series(depth, "10x15"), series(capacity, "100x15")));
    // with traffic and no failures at all, the error and overload shares read 0, not nothing
    Monitoring.Alert errors = alert("BerthErrorRatioHigh");
    Monitoring.Alert overload = alert("BerthOverloaded");
    Map<String, Object> zero = new LinkedHashMap<>();
    zero.put("interval", "1m");
    zero.put(
        "input_series",
        List.of(
            Map.of(
                "series",
                "berth_requests_total{" + job + m + ",code=\"200\"}",
                "values",
                "0+100x30")));
    zero.put(
        "promql_expr_test",
        Stream.of(errors, overload)
            .map(
                a ->
                    Map.<String, Object>of(
                        "expr",
                        a.signals().get(0),
                        "eval_time",
                        "15m",
                        "exp_samples",
                        List.of(Map.of("labels", "{model=\"minilm\"}", "value", 0))))
            .toList());
    tests.add(zero);
    String state =
        "berth_model_state{" + job + ",model=\"minilm\",version=\"2\",state=\"unavailable\"}";
    tests.add(
        scenario(
            "10m",
            "BerthModelVersionUnavailable",
            Map.of("model", "minilm", "version", "2"),
            series(state, "1x15")));
    tests.add(quiet("10m", "BerthModelVersionUnavailable", series(state, "0x15")));
    String available = "kube_deployment_status_replicas_available{deployment=\"minilm\"}";
    String wanted = "kube_deployment_spec_replicas{deployment=\"minilm\"}";
    tests.add(
        scenario(
            "15m",
            "BerthTooFewReadyReplicas",
            Map.of("deployment", "minilm"),
            series(available, "1x20"),
            series(wanted, "2x20")));
    tests.add(
        quiet(
            "15m", "BerthTooFewReadyReplicas", series(available, "2x20"), series(wanted, "2x20")));
    String used = "jvm_memory_used_bytes{" + job + ",instance=\"10.0.0.1:8080\",area=\"heap\"}";
    String max = "jvm_memory_max_bytes{" + job + ",instance=\"10.0.0.1:8080\",area=\"heap\"}";
    tests.add(
        scenario(
            "15m",
            "BerthJvmHeapHigh",
            Map.of("instance", "10.0.0.1:8080"),
            series(used, "95x20"),
            series(max, "100x20")));
    tests.add(quiet("15m", "BerthJvmHeapHigh", series(used, "50x20"), series(max, "100x20")));

    Map<String, Object> file = new LinkedHashMap<>();
    file.put("rule_files", List.of(rules.getFileName().toString()));
    file.put("evaluation_interval", "1m");
    file.put("tests", tests);
    Path testFile = dir.resolve("tests.yaml");
    Files.write(testFile, YAML.writeValueAsBytes(file));
    String tested = promtool("test", "rules", testFile.toString());
    assertTrue(tested.contains("SUCCESS"), tested);
  }

  /** One input series of promtool's test: its name and labels, and its values. */
  private record Series(String series, String values) {}

  private static Series series(String series, String values) {
    return new Series(series, values);
  }

  /** Series on which {@code alert} fires at {@code at}, with these labels of the series. */
  private static Map<String, Object> scenario(
      String at, String alert, Map<String, String> seriesLabels, Series... series) {
    Monitoring.Alert a = alert(alert);
    Map<String, String> labels = new LinkedHashMap<>(seriesLabels);
    labels.put("severity", a.severity());
    labels.put("service", NAME);
    String description = a.description();
    for (var e : seriesLabels.entrySet()) {
      description = description.replace("{{ $labels." + e.getKey() + " }}", e.getValue());
    }
    Map<String, Object> expected = new LinkedHashMap<>();
    expected.put("exp_labels", labels);
    expected.put(
        "exp_annotations",
        Map.of("summary", a.summary(), "description", description, "runbook_url", a.runbook()));
    return test(at, alert, List.of(expected), List.of(series));
  }

  private static Monitoring.Alert alert(String name) {
    return Monitoring.alerts(NAME).stream()
        .filter(x -> x.name().equals(name))
        .findFirst()
        .orElseThrow();
  }

  /** Series on which {@code alert} stays quiet at {@code at}. */
  private static Map<String, Object> quiet(String at, String alert, Series... series) {
    return test(at, alert, List.of(), List.of(series));
  }

  private static Map<String, Object> test(
      String at, String alert, List<Map<String, Object>> expected, List<Series> series) {
    Map<String, Object> check = new LinkedHashMap<>();
    check.put("eval_time", at);
    check.put("alertname", alert);
    check.put("exp_alerts", expected);
    Map<String, Object> test = new LinkedHashMap<>();
    test.put("interval", "1m");
    test.put(
        "input_series",
        series.stream()
            .map(x -> Map.<String, Object>of("series", x.series(), "values", x.values()))
            .toList());
    test.put("alert_rule_test", List.of(check));
    return test;
  }

  private String promtool(String... args) throws IOException, InterruptedException {
    List<String> command = new ArrayList<>();
    command.add(promtoolBinary().toString());
    command.addAll(List.of(args));
    Process p =
        new ProcessBuilder(command).directory(dir.toFile()).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(120, TimeUnit.SECONDS), "promtool did not finish");
    assertEquals(0, p.exitValue(), out);
    return out;
  }

  /** promtool from PATH; the test fails, never skips, when it is not there. */
  private static Path promtoolBinary() {
    return Stream.of(System.getenv().getOrDefault("PATH", "").split(File.pathSeparator))
        .filter(d -> !d.isEmpty())
        .map(d -> Path.of(d, "promtool"))
        .filter(Files::isExecutable)
        .findFirst()
        .orElseGet(
            () ->
                fail(
                    "promtool is not on PATH; install it with 'sudo apt-get install prometheus'"
                        + " (the CI image has it) and run again"));
  }
}
