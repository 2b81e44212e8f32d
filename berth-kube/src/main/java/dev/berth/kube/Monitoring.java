package dev.berth.kube;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import dev.berth.api.BerthException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The alert rules of a model service ({@code berth deploy --export monitoring DIR}): what a team
 * should be woken for, written from the metrics Berth exports, as a Prometheus rules file (for a
 * Prometheus of its own, and for {@code promtool}) and as the Prometheus Operator's PrometheusRule,
 * with a PodMonitor that scrapes the service's pods (stable and canary) under the job name the
 * rules select. Each alert's runbook is a section of docs/monitoring.md.
 */
public final class Monitoring {
  /** The latency objective: this share of requests answered within {@link #SLO_SECONDS}. */
  public static final double SLO_TARGET = 0.99;

  /** The latency objective's bound, one of the request duration histogram's buckets. */
  public static final String SLO_SECONDS = "0.5";

  private Monitoring() {}

  /**
   * One alert.
   *
   * @param name the alert's name
   * @param expr its PromQL expression
   * @param duration how long it must hold before it fires
   * @param severity {@code critical} (wake someone) or {@code warning}
   * @param summary one line
   * @param description what it means, with {@code {{ $labels.model }}} where it is per model
   */
  public record Alert(
      String name,
      String expr,
      String duration,
      String severity,
      String summary,
      String description) {

    /** Where its runbook is. */
    public String runbook() {
      return "docs/monitoring.md#" + name.toLowerCase(Locale.ROOT);
    }
  }

  /** The alerts of service {@code name}, whose series carry {@code job="NAME"}. */
  public static List<Alert> alerts(String name) {
    String job = "job=\"" + name + "\"";
    String total = "sum by (model) (rate(berth_requests_total{" + job + "}[5m]))";
    List<Alert> out = new ArrayList<>();
    out.add(
        new Alert(
            "BerthErrorRatioHigh",
            "sum by (model) (rate(berth_requests_total{"
                + job
                + ",code=~\"5..|INTERNAL|UNAVAILABLE|UNKNOWN|DATA_LOSS\"}[5m])) / "
                + total
                + " > 0.05",
            "5m",
            "critical",
            name + ": more than 5% of requests fail",
            "Model {{ $labels.model }} of "
                + name
                + " has answered more than 5% of its requests"
                + " with a server error (HTTP 5xx or a gRPC INTERNAL/UNAVAILABLE) for 5 minutes."));
    out.add(
        new Alert(
            "BerthLatencyBudgetBurnFast",
            burn(job, "1h", 14.4) + " and " + burn(job, "5m", 14.4),
            "2m",
            "critical",
            name + ": the latency objective's error budget burns fast",
            "Model {{ $labels.model }} of "
                + name
                + " answers more than "
                + percent(1 - SLO_TARGET)
                + " of its requests slower than "
                + SLO_SECONDS
                + " s at 14.4 times the rate the objective allows, over the last hour and the"
                + " last 5 minutes: at this pace a 30-day budget is gone in 2 days."));
    out.add(
        new Alert(
            "BerthLatencyBudgetBurnSlow",
            burn(job, "6h", 6) + " and " + burn(job, "30m", 6),
            "15m",
            "warning",
            name + ": the latency objective's error budget burns",
            "Model {{ $labels.model }} of "
                + name
                + " has been slower than "
                + SLO_SECONDS
                + " s on more requests than the objective allows, at 6 times its rate over the"
                + " last 6 hours and 30 minutes: a 30-day budget lasts 5 days at this pace."));
    out.add(
        new Alert(
            "BerthOverloaded",
            "sum by (model) (rate(berth_requests_total{"
                + job
                + ",code=~\"429|503|RESOURCE_EXHAUSTED\"}[5m])) / "
                + total
                + " > 0.01",
            "10m",
            "warning",
            name + ": requests are turned away",
            "Model {{ $labels.model }} of "
                + name
                + " has refused more than 1% of its requests as overloaded (429/503, a full"
                + " queue: batching.max-queue-size) for 10 minutes."));
    out.add(
        new Alert(
            "BerthModelVersionUnavailable",
            "max by (model, version) (berth_model_state{" + job + ",state=\"unavailable\"}) == 1",
            "5m",
            "warning",
            name + ": a model version is out of service",
            "Version {{ $labels.version }} of model {{ $labels.model }} of "
                + name
                + " has been unavailable for 5 minutes: it failed to load, its engine failed, or"
                + " its gate refused it; the repository index says why."));
    out.add(
        new Alert(
            "BerthTooFewReadyReplicas",
            "kube_deployment_status_replicas_available{deployment=\""
                + name
                + "\"} < kube_deployment_spec_replicas{deployment=\""
                + name
                + "\"}",
            "10m",
            "warning",
            name + ": fewer ready replicas than wanted",
            "Deployment "
                + name
                + " has had fewer available replicas than it asks for, for 10 minutes"
                + " (kube-state-metrics)."));
    out.add(
        new Alert(
            "BerthJvmHeapHigh",
            "max by (instance) (jvm_memory_used_bytes{"
                + job
                + ",area=\"heap\"} / jvm_memory_max_bytes{"
                + job
                + ",area=\"heap\"}) > 0.9",
            "10m",
            "warning",
            name + ": a pod's Java heap is nearly full",
            "Pod {{ $labels.instance }} of "
                + name
                + " has used more than 90% of its Java heap for 10 minutes."));
    return out;
  }

  /**
   * The share of requests slower than the objective over {@code window}, above {@code factor} times
   * the share the objective allows.
   */
  private static String burn(String job, String window, double factor) {
    String count =
        "sum by (model) (rate(berth_request_duration_seconds_count{" + job + "}[" + window + "]))";
    String fast =
        "sum by (model) (rate(berth_request_duration_seconds_bucket{"
            + job
            + ",le=\""
            + SLO_SECONDS
            + "\"}["
            + window
            + "]))";
    return "(("
        + count
        + " - "
        + fast
        + ") / "
        + count
        + " > "
        + format(factor * (1 - SLO_TARGET))
        + ")";
  }

  private static String format(double v) {
    return String.format(Locale.ROOT, "%.4f", v).replaceAll("0+$", "").replaceAll("\\.$", "");
  }

  private static String percent(double share) {
    return format(share * 100) + "%";
  }

  /** The rules as a Prometheus rules file's content ({@code groups:}). */
  public static Map<String, Object> rulesFile(String name) {
    List<Map<String, Object>> rules = new ArrayList<>();
    for (Alert a : alerts(name)) {
      Map<String, Object> rule = new LinkedHashMap<>();
      rule.put("alert", a.name());
      rule.put("expr", a.expr());
      rule.put("for", a.duration());
      rule.put("labels", Map.of("severity", a.severity(), "service", name));
      Map<String, Object> annotations = new LinkedHashMap<>();
      annotations.put("summary", a.summary());
      annotations.put("description", a.description());
      annotations.put("runbook_url", a.runbook());
      rule.put("annotations", annotations);
      rules.add(rule);
    }
    Map<String, Object> group = new LinkedHashMap<>();
    group.put("name", "berth-" + name);
    group.put("rules", rules);
    return Map.of("groups", List.of(group));
  }

  /**
   * Writes {@code NAME-rules.yaml} (a Prometheus rules file), {@code NAME-prometheusrule.yaml} and
   * {@code NAME-podmonitor.yaml} (for the Prometheus Operator) into {@code dir}.
   *
   * @return the files written
   */
  public static List<Path> export(String name, String namespace, Path dir) {
    Map<String, Object> rules = rulesFile(name);
    Map<String, Object> labels =
        Map.of(ManifestGenerator.PART_OF_LABEL, name, ManifestGenerator.MANAGED_BY_LABEL, "berth");
    Map<String, Object> rule = new LinkedHashMap<>();
    rule.put("apiVersion", "monitoring.coreos.com/v1");
    rule.put("kind", "PrometheusRule");
    rule.put("metadata", metadata(name, namespace, labels));
    rule.put("spec", rules);
    Map<String, Object> endpoint = new LinkedHashMap<>();
    endpoint.put("port", "http");
    endpoint.put("path", "/metrics");
    endpoint.put("interval", "15s");
    // the rules select job="NAME": the pods' series carry the service's name as their job
    endpoint.put("relabelings", List.of(Map.of("targetLabel", "job", "replacement", name)));
    Map<String, Object> spec = new LinkedHashMap<>();
    spec.put("selector", Map.of("matchLabels", Map.of(ManifestGenerator.NAME_LABEL, name)));
    spec.put("podMetricsEndpoints", List.of(endpoint));
    Map<String, Object> monitor = new LinkedHashMap<>();
    monitor.put("apiVersion", "monitoring.coreos.com/v1");
    monitor.put("kind", "PodMonitor");
    monitor.put("metadata", metadata(name, namespace, labels));
    monitor.put("spec", spec);
    ObjectMapper yaml =
        new ObjectMapper(
            new YAMLFactory()
                .disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER)
                .enable(YAMLGenerator.Feature.MINIMIZE_QUOTES));
    List<Path> written = new ArrayList<>();
    try {
      Files.createDirectories(dir);
      for (var e :
          Map.of(
                  name + "-rules.yaml", rules,
                  name + "-prometheusrule.yaml", rule,
                  name + "-podmonitor.yaml", monitor)
              .entrySet()
              .stream()
              .sorted(Map.Entry.comparingByKey())
              .toList()) {
        Path file = dir.resolve(e.getKey());
        Files.write(file, yaml.writeValueAsBytes(e.getValue()));
        written.add(file);
      }
    } catch (IOException e) {
      throw new BerthException("cannot write into " + dir + ": " + e.getMessage(), e);
    }
    return written;
  }

  private static Map<String, Object> metadata(
      String name, String namespace, Map<String, Object> labels) {
    Map<String, Object> meta = new LinkedHashMap<>();
    meta.put("name", name);
    if (namespace != null) {
      meta.put("namespace", namespace);
    }
    meta.put("labels", labels);
    return meta;
  }
}
