package dev.berth.kube;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import dev.berth.api.BerthException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

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
   * @param signals the expressions {@code expr} compares with its thresholds, each returning a
   *     value whenever the service has traffic (0 when all is well), over metrics Berth exports
   *     only; empty for an alert on another exporter's series
   * @param duration how long it must hold before it fires
   * @param severity {@code critical} (wake someone) or {@code warning}
   * @param summary one line
   * @param description what it means, with {@code {{ $labels.model }}} where it is per model
   */
  public record Alert(
      String name,
      String expr,
      List<String> signals,
      String duration,
      String severity,
      String summary,
      String description) {

    public Alert {
      signals = List.copyOf(signals);
    }

    /** Where its runbook is. */
    public String runbook() {
      return "docs/monitoring.md#" + name.toLowerCase(Locale.ROOT);
    }
  }

  /**
   * The codes of requests refused as overloaded: HTTP 429, and gRPC RESOURCE_EXHAUSTED (which also
   * answers a message over the size limit; HTTP answers that 413). A 503 is a model version not
   * ready, which the error ratio and BerthModelVersionUnavailable cover.
   */
  static final String OVERLOAD_CODES = "429|RESOURCE_EXHAUSTED";

  /** The alerts of service {@code name}, whose series carry {@code job="NAME"}. */
  public static List<Alert> alerts(String name) {
    String job = "job=\"" + name + "\"";
    List<Alert> out = new ArrayList<>();
    String errors = codeShare(job, "5..|INTERNAL|UNAVAILABLE|UNKNOWN|DATA_LOSS", "5m");
    out.add(
        new Alert(
            "BerthErrorRatioHigh",
            errors + " > 0.05",
            List.of(errors),
            "5m",
            "critical",
            name + ": more than 5% of requests fail",
            "Model {{ $labels.model }} of "
                + name
                + " has answered more than 5% of its requests"
                + " with a server error (HTTP 5xx or a gRPC INTERNAL/UNAVAILABLE) for 5 minutes."));
    out.add(
        burnAlert(
            "BerthLatencyBudgetBurnFast",
            job,
            "1h",
            "5m",
            14.4,
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
        burnAlert(
            "BerthLatencyBudgetBurnSlow",
            job,
            "6h",
            "30m",
            6,
            "15m",
            "warning",
            name + ": the latency objective's error budget burns",
            "Model {{ $labels.model }} of "
                + name
                + " has been slower than "
                + SLO_SECONDS
                + " s on more requests than the objective allows, at 6 times its rate over the"
                + " last 6 hours and 30 minutes: a 30-day budget lasts 5 days at this pace."));
    String refused = codeShare(job, OVERLOAD_CODES, "5m");
    out.add(
        new Alert(
            "BerthOverloaded",
            refused + " > 0.01",
            List.of(refused),
            "10m",
            "warning",
            name + ": requests are turned away",
            "Model {{ $labels.model }} of "
                + name
                + " has refused more than 1% of its requests as overloaded (HTTP 429, gRPC"
                + " RESOURCE_EXHAUSTED: a full queue, batching.max-queue-size, or the server's"
                + " in-flight limit) for 10 minutes."));
    String fill =
        "max by (model, version) (berth_queue_size{"
            + job
            + "} / berth_queue_capacity{"
            + job
            + "})";
    out.add(
        new Alert(
            "BerthQueueSaturated",
            fill + " > 0.8",
            List.of(fill),
            "5m",
            "warning",
            name + ": a model's queue is nearly full",
            "The queue of version {{ $labels.version }} of model {{ $labels.model }} of "
                + name
                + " has been more than 80% full for 5 minutes: requests wait, and it refuses"
                + " them once full."));
    String unavailable =
        "max by (model, version) (berth_model_state{" + job + ",state=\"unavailable\"})";
    out.add(
        new Alert(
            "BerthModelVersionUnavailable",
            unavailable + " == 1",
            List.of(unavailable),
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
            List.of(), // kube-state-metrics' series, not Berth's
            "10m",
            "warning",
            name + ": fewer ready replicas than wanted",
            "Deployment "
                + name
                + " has had fewer available replicas than it asks for, for 10 minutes"
                + " (kube-state-metrics)."));
    String heap =
        "max by (namespace, pod, instance) (jvm_memory_used_bytes{"
            + job
            + ",area=\"heap\"} / jvm_memory_max_bytes{"
            + job
            + ",area=\"heap\"})";
    out.add(
        new Alert(
            "BerthJvmHeapHigh",
            heap + " > 0.9",
            List.of(heap),
            "10m",
            "warning",
            name + ": a pod's Java heap is nearly full",
            "Pod {{ $labels.instance }} of "
                + name
                + " has used more than 90% of its Java heap for 10 minutes."));
    return out;
  }

  /**
   * The share of each model's requests answered with a code matching {@code codes} over {@code
   * window}: 0, not nothing, for a model with traffic and none of those codes.
   */
  static String codeShare(String selector, String codes, String window) {
    String total = "sum by (model) (rate(berth_requests_total{" + selector + "}[" + window + "]))";
    return "(sum by (model) (rate(berth_requests_total{"
        + selector
        + ",code=~\""
        + codes
        + "\"}["
        + window
        + "])) or "
        + total
        + " * 0) / "
        + total;
  }

  /**
   * An alert on the latency objective's error budget burning {@code factor} times too fast over a
   * long and a short window.
   */
  private static Alert burnAlert(
      String alert,
      String job,
      String longWindow,
      String shortWindow,
      double factor,
      String duration,
      String severity,
      String summary,
      String description) {
    String slowLong = slowShare(job, longWindow);
    String slowShort = slowShare(job, shortWindow);
    String bound = format(factor * (1 - SLO_TARGET));
    return new Alert(
        alert,
        "(" + slowLong + " > " + bound + ") and (" + slowShort + " > " + bound + ")",
        List.of(slowLong, slowShort),
        duration,
        severity,
        summary,
        description);
  }

  /** The share of each model's requests slower than the objective over {@code window}. */
  static String slowShare(String job, String window) {
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
    return "(" + count + " - " + fast + ") / " + count;
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

  /** The Prometheus Operator's PrometheusRule carrying {@link #rulesFile}. */
  static Map<String, Object> prometheusRule(String name, String namespace) {
    Map<String, Object> rule = new LinkedHashMap<>();
    rule.put("apiVersion", "monitoring.coreos.com/v1");
    rule.put("kind", "PrometheusRule");
    rule.put("metadata", metadata(name, namespace, labels(name)));
    rule.put("spec", rulesFile(name));
    return rule;
  }

  /**
   * The Prometheus Operator's PodMonitor: {@code /metrics} on the {@code http} port of every pod of
   * the service (stable and canary) every 15 s, under job {@code NAME}.
   */
  static Map<String, Object> podMonitor(String name, String namespace) {
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
    monitor.put("metadata", metadata(name, namespace, labels(name)));
    monitor.put("spec", spec);
    return monitor;
  }

  private static Map<String, Object> labels(String name) {
    return Map.of(
        ManifestGenerator.PART_OF_LABEL, name, ManifestGenerator.MANAGED_BY_LABEL, "berth");
  }

  /**
   * Writes {@code NAME-rules.yaml} (a Prometheus rules file), {@code NAME-dashboard.json}
   * (Grafana), {@code NAME-prometheusrule.yaml} and {@code NAME-podmonitor.yaml} (for the
   * Prometheus Operator) into {@code dir}.
   *
   * @return the files written
   */
  public static List<Path> export(String name, String namespace, Path dir) {
    Map<String, byte[]> files = new TreeMap<>();
    files.put(name + "-rules.yaml", yaml(rulesFile(name)));
    files.put(name + "-prometheusrule.yaml", yaml(prometheusRule(name, namespace)));
    files.put(name + "-podmonitor.yaml", yaml(podMonitor(name, namespace)));
    files.put(name + "-dashboard.json", dashboardJson(name));
    return write(dir, files);
  }

  /**
   * Writes the Kustomize directory of the service's monitoring ({@code berth deploy --export
   * kustomize DIR} writes it into {@code DIR/monitoring}): the PrometheusRule, the PodMonitor, and
   * the dashboard in a ConfigMap labelled {@code grafana_dashboard: "1"}, which Grafana's dashboard
   * sidecar (kube-prometheus-stack) loads. It needs the Prometheus Operator's resource types, so it
   * is a directory of its own, applied with {@code kubectl apply -k DIR/monitoring}.
   *
   * @param header comment lines every file starts with
   * @return the files written
   */
  public static List<Path> kustomize(String name, String namespace, Path dir, String header) {
    Map<String, byte[]> files = new TreeMap<>();
    String rule = name + "-prometheusrule.yaml";
    String monitor = name + "-podmonitor.yaml";
    String dashboard = name + "-dashboard.json";
    files.put(rule, withHeader(header, yaml(prometheusRule(name, namespace))));
    files.put(monitor, withHeader(header, yaml(podMonitor(name, namespace))));
    files.put(dashboard, dashboardJson(name));
    StringBuilder k = new StringBuilder(header);
    k.append(
        """
        # The service's alert rules and scrape configuration for the Prometheus Operator, and its
        # Grafana dashboard for Grafana's dashboard sidecar (label grafana_dashboard: "1").
        # Apply where the Prometheus Operator runs: kubectl apply -k %s
        apiVersion: %s
        kind: Kustomization
        """
            .formatted(dir.toString().replace('\\', '/'), ManifestExport.KUSTOMIZE_API_VERSION));
    if (namespace != null) {
      k.append("namespace: ").append(ManifestExport.quote(namespace)).append('\n');
    }
    k.append("resources:\n- ")
        .append(ManifestExport.quote(rule))
        .append("\n- ")
        .append(ManifestExport.quote(monitor))
        .append('\n');
    k.append(
        """
        configMapGenerator:
        - name: %s
          files:
          - %s
        generatorOptions:
          disableNameSuffixHash: true
          labels:
            grafana_dashboard: "1"
            %s: %s
            %s: berth
        """
            .formatted(
                ManifestExport.quote(name + "-dashboard"),
                ManifestExport.quote(dashboard),
                ManifestGenerator.PART_OF_LABEL,
                ManifestExport.quote(name),
                ManifestGenerator.MANAGED_BY_LABEL));
    files.put("kustomization.yaml", k.toString().getBytes(StandardCharsets.UTF_8));
    return write(dir, files);
  }

  private static byte[] withHeader(String header, byte[] yaml) {
    byte[] h = header.getBytes(StandardCharsets.UTF_8);
    byte[] out = Arrays.copyOf(h, h.length + yaml.length);
    System.arraycopy(yaml, 0, out, h.length, yaml.length);
    return out;
  }

  private static byte[] yaml(Map<String, Object> value) {
    ObjectMapper yaml =
        new ObjectMapper(
            new YAMLFactory()
                .disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER)
                .enable(YAMLGenerator.Feature.MINIMIZE_QUOTES));
    try {
      return yaml.writeValueAsBytes(value);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** The Grafana dashboard, as JSON text. */
  public static byte[] dashboardJson(String name) {
    try {
      return new ObjectMapper()
          .writerWithDefaultPrettyPrinter()
          .writeValueAsBytes(Dashboard.json(name));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static List<Path> write(Path dir, Map<String, byte[]> files) {
    List<Path> written = new ArrayList<>();
    try {
      Files.createDirectories(dir);
      for (var e : files.entrySet()) {
        Path file = dir.resolve(e.getKey());
        Files.write(file, e.getValue());
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
