package dev.berth.kube;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The Grafana dashboard of a model service ({@code berth deploy --export monitoring DIR}): one row
 * each for traffic, latency, load, models, the JVM and language models, every panel a query of the
 * metrics Berth exports under {@code job="NAME"}. The data source is a variable, so the JSON
 * imports into any Grafana with a Prometheus data source; a {@code model} variable narrows every
 * panel to some models.
 */
public final class Dashboard {
  /** Grafana's dashboard JSON schema version this model follows (Grafana 10.2 and later). */
  static final int SCHEMA_VERSION = 39;

  private static final Map<String, Object> DATASOURCE =
      Map.of("type", "prometheus", "uid", "${datasource}");

  private Dashboard() {}

  /** One query of a panel, and the legend of its series. */
  public record Query(String expr, String legend) {}

  /**
   * One panel.
   *
   * @param type {@code timeseries}, {@code table} or {@code stat}
   * @param unit Grafana's unit of its values ({@code reqps}, {@code s}, {@code percentunit}, ...)
   */
  public record Panel(
      String title, String description, String type, String unit, List<Query> queries) {
    public Panel {
      queries = List.copyOf(queries);
    }
  }

  /** A titled row of panels. */
  public record Row(String title, List<Panel> panels) {
    public Row {
      panels = List.copyOf(panels);
    }
  }

  /** The rows of service {@code name}'s dashboard, in order. */
  public static List<Row> rows(String name) {
    String sel = "job=\"" + name + "\",model=~\"$model\"";
    String rate = "[$__rate_interval]";
    List<Row> rows = new ArrayList<>();
    rows.add(
        new Row(
            "Traffic",
            List.of(
                new Panel(
                    "Requests/s",
                    "Requests answered per second, by model and protocol",
                    "timeseries",
                    "reqps",
                    List.of(
                        new Query(
                            "sum by (model, protocol) (rate(berth_requests_total{"
                                + sel
                                + "}"
                                + rate
                                + "))",
                            "{{model}} {{protocol}}"))),
                new Panel(
                    "Errors by code",
                    "Requests answered with anything but success, per second, by status code (HTTP"
                        + " status or gRPC status name; 499 and CANCELLED are clients that left)",
                    "timeseries",
                    "reqps",
                    List.of(
                        new Query(
                            "sum by (model, code) (rate(berth_requests_total{"
                                + sel
                                + ",code!~\"2..|OK\"}"
                                + rate
                                + "))",
                            "{{model}} {{code}}"))),
                new Panel(
                    "Server error share",
                    "Share of requests failed by the server (HTTP 5xx, gRPC INTERNAL, UNAVAILABLE,"
                        + " UNKNOWN, DATA_LOSS); BerthErrorRatioHigh fires above 5%",
                    "timeseries",
                    "percentunit",
                    List.of(
                        new Query(
                            Monitoring.codeShare(
                                sel, "5..|INTERNAL|UNAVAILABLE|UNKNOWN|DATA_LOSS", "5m"),
                            "{{model}}"))))));
    rows.add(
        new Row(
            "Latency",
            List.of(
                new Panel(
                    "Request latency",
                    "Arrival to answer, decoding and encoding included; the objective is "
                        + percentile(Monitoring.SLO_TARGET)
                        + " within "
                        + Monitoring.SLO_SECONDS
                        + " s",
                    "timeseries",
                    "s",
                    quantiles("berth_request_duration_seconds", sel, rate)),
                new Panel(
                    "Queue time",
                    "Time a request waits in its model's queue before an engine takes it",
                    "timeseries",
                    "s",
                    quantiles("berth_queue_duration_seconds", sel, rate)),
                new Panel(
                    "Engine time per batch",
                    "Engine time of one batch, pre- and post-processing included",
                    "timeseries",
                    "s",
                    quantiles("berth_compute_duration_seconds", sel, rate)),
                new Panel(
                    "Batch size",
                    "Rows per engine call: the mean, and the 99th percentile",
                    "timeseries",
                    "short",
                    List.of(
                        new Query(
                            "sum by (model) (rate(berth_batch_size_sum{"
                                + sel
                                + "}"
                                + rate
                                + ")) / sum by (model) (rate(berth_batch_size_count{"
                                + sel
                                + "}"
                                + rate
                                + "))",
                            "{{model}} mean"),
                        new Query(
                            "histogram_quantile(0.99, sum by (model, le) (rate(berth_batch_size_bucket{"
                                + sel
                                + "}"
                                + rate
                                + ")))",
                            "{{model}} p99"))))));
    rows.add(
        new Row(
            "Load",
            List.of(
                new Panel(
                    "In flight",
                    "Requests accepted and not yet answered",
                    "timeseries",
                    "short",
                    List.of(
                        new Query(
                            "sum by (model) (berth_inflight_requests{" + sel + "})", "{{model}}"))),
                new Panel(
                    "Queue fill",
                    "Requests waiting over the queue's capacity (batching.max-queue-size);"
                        + " BerthQueueSaturated fires above 80%",
                    "timeseries",
                    "percentunit",
                    List.of(
                        new Query(
                            "max by (model, version) (berth_queue_size{"
                                + sel
                                + "} / berth_queue_capacity{"
                                + sel
                                + "})",
                            "{{model}} v{{version}}"))),
                new Panel(
                    "Rejections",
                    "Requests refused before an engine ran them, by reason: queue_full (the"
                        + " queue held batching.max-queue-size) or deadline (it waited past its"
                        + " deadline)",
                    "timeseries",
                    "reqps",
                    List.of(
                        new Query(
                            "sum by (model, reason) (rate(berth_rejected_requests_total{"
                                + sel
                                + "}"
                                + rate
                                + "))",
                            "{{model}} {{reason}}"))),
                new Panel(
                    "Refused as overloaded",
                    "Share of requests answered HTTP 429 or gRPC RESOURCE_EXHAUSTED (a full queue,"
                        + " or the server's in-flight limit); BerthOverloaded fires above 1%",
                    "timeseries",
                    "percentunit",
                    List.of(
                        new Query(
                            Monitoring.codeShare(sel, Monitoring.OVERLOAD_CODES, "5m"),
                            "{{model}}"))))));
    rows.add(
        new Row(
            "Models",
            List.of(
                new Panel(
                    "Model versions",
                    "The state of every model version (loading, ready, unavailable, unloaded);"
                        + " the repository index says why a version is unavailable",
                    "table",
                    "none",
                    List.of(
                        new Query(
                            "max by (model, version, state) (berth_model_state{" + sel + "} == 1)",
                            ""))),
                new Panel(
                    "Load time",
                    "How long the last load of each version took",
                    "timeseries",
                    "s",
                    List.of(
                        new Query(
                            "max by (model, version) (berth_model_load_duration_seconds{"
                                + sel
                                + "})",
                            "{{model}} v{{version}}"))))));
    String jvm = "job=\"" + name + "\"";
    rows.add(
        new Row(
            "JVM",
            List.of(
                new Panel(
                    "Heap",
                    "Java heap used and its maximum, per pod; BerthJvmHeapHigh fires above 90%",
                    "timeseries",
                    "bytes",
                    List.of(
                        new Query(
                            "sum by (instance) (jvm_memory_used_bytes{" + jvm + ",area=\"heap\"})",
                            "{{instance}} used"),
                        new Query(
                            "sum by (instance) (jvm_memory_max_bytes{" + jvm + ",area=\"heap\"})",
                            "{{instance}} max"))),
                new Panel(
                    "GC time",
                    "Share of time spent in garbage collection, per pod and collector",
                    "timeseries",
                    "percentunit",
                    List.of(
                        new Query(
                            "sum by (instance, gc) (rate(jvm_gc_collection_seconds_sum{"
                                + jvm
                                + "}"
                                + rate
                                + "))",
                            "{{instance}} {{gc}}"))),
                new Panel(
                    "GC collections/s",
                    "Garbage collections per second, per pod and collector",
                    "timeseries",
                    "ops",
                    List.of(
                        new Query(
                            "sum by (instance, gc) (rate(jvm_gc_collection_seconds_count{"
                                + jvm
                                + "}"
                                + rate
                                + "))",
                            "{{instance}} {{gc}}"))))));
    rows.add(
        new Row(
            "Language models",
            List.of(
                new Panel(
                    "Tokens/s",
                    "Tokens generated and prompt tokens taken in, per second",
                    "timeseries",
                    "short",
                    List.of(
                        new Query(
                            "sum by (model) (rate(berth_llm_generation_tokens_total{"
                                + sel
                                + "}"
                                + rate
                                + "))",
                            "{{model}} generated"),
                        new Query(
                            "sum by (model) (rate(berth_llm_prompt_tokens_total{"
                                + sel
                                + "}"
                                + rate
                                + "))",
                            "{{model}} prompt"))),
                new Panel(
                    "Time to first token",
                    "Arrival to the first generated token, waiting for a sequence included",
                    "timeseries",
                    "s",
                    quantiles("berth_llm_time_to_first_token_seconds", sel, rate)),
                new Panel(
                    "Time per output token",
                    "Time between consecutive tokens of one sequence",
                    "timeseries",
                    "s",
                    quantiles("berth_llm_time_per_output_token_seconds", sel, rate)),
                new Panel(
                    "Sequences",
                    "Sequences being generated (at most llm.parallel) and requests waiting for"
                        + " one",
                    "timeseries",
                    "short",
                    List.of(
                        new Query(
                            "sum by (model) (berth_llm_sequences_running{" + sel + "})",
                            "{{model}} running"),
                        new Query(
                            "sum by (model) (berth_llm_sequences_waiting{" + sel + "})",
                            "{{model}} waiting"))),
                new Panel(
                    "KV cache usage",
                    "Tokens held by running sequences over the KV cache's capacity",
                    "timeseries",
                    "percentunit",
                    List.of(
                        new Query(
                            "max by (model, version) (berth_llm_kv_cache_usage_ratio{" + sel + "})",
                            "{{model}} v{{version}}"))))));
    return rows;
  }

  /** Every PromQL expression of the dashboard, in order, with Grafana's variables in them. */
  public static List<String> queries(String name) {
    return rows(name).stream()
        .flatMap(r -> r.panels().stream())
        .flatMap(p -> p.queries().stream())
        .map(Query::expr)
        .toList();
  }

  /**
   * A query of the dashboard as Grafana sends it to Prometheus with every model selected and rates
   * over {@code rateInterval} (Grafana's {@code $__rate_interval}).
   */
  public static String asSent(String query, String rateInterval) {
    return query.replace("$__rate_interval", rateInterval).replace("$model", ".*");
  }

  /** The p50, p95 and p99 of histogram {@code metric}, per model. */
  private static List<Query> quantiles(String metric, String sel, String rate) {
    List<Query> out = new ArrayList<>();
    for (String q : List.of("0.5", "0.95", "0.99")) {
      out.add(
          new Query(
              "histogram_quantile("
                  + q
                  + ", sum by (model, le) (rate("
                  + metric
                  + "_bucket{"
                  + sel
                  + "}"
                  + rate
                  + ")))",
              "{{model}} p" + percentile(Double.parseDouble(q)).replace("%", "")));
    }
    return out;
  }

  private static String percentile(double q) {
    double p = q * 100;
    return (p == Math.rint(p) ? String.valueOf((long) p) : String.valueOf(p)) + "%";
  }

  /**
   * The dashboard as Grafana's JSON model: importable as it is (Dashboards, New, Import), or
   * provisioned from a file.
   */
  public static Map<String, Object> json(String name) {
    List<Map<String, Object>> panels = new ArrayList<>();
    int id = 1;
    int y = 0;
    for (Row row : rows(name)) {
      Map<String, Object> r = new LinkedHashMap<>();
      r.put("id", id++);
      r.put("type", "row");
      r.put("title", row.title());
      r.put("collapsed", false);
      r.put("gridPos", Map.of("h", 1, "w", 24, "x", 0, "y", y));
      r.put("panels", List.of());
      panels.add(r);
      y += 1;
      int x = 0;
      for (Panel p : row.panels()) {
        int w = p.type().equals("table") ? 12 : 8;
        if (x + w > 24) {
          x = 0;
          y += 8;
        }
        panels.add(panel(id++, p, x, y, w));
        x += w;
      }
      y += 8;
    }
    Map<String, Object> datasource = new LinkedHashMap<>();
    datasource.put("name", "datasource");
    datasource.put("label", "Data source");
    datasource.put("type", "datasource");
    datasource.put("query", "prometheus");
    datasource.put("current", Map.of());
    datasource.put("hide", 0);
    datasource.put("refresh", 1);
    datasource.put("options", List.of());
    String models = "label_values(berth_requests_total{job=\"" + name + "\"}, model)";
    Map<String, Object> model = new LinkedHashMap<>();
    model.put("name", "model");
    model.put("label", "Model");
    model.put("type", "query");
    model.put("datasource", DATASOURCE);
    model.put("definition", models);
    model.put("query", Map.of("query", models, "refId", "models"));
    model.put("includeAll", true);
    model.put("allValue", ".*");
    model.put("multi", true);
    model.put("current", Map.of("selected", true, "text", "All", "value", "$__all"));
    model.put("refresh", 2);
    model.put("sort", 1);
    model.put("hide", 0);
    model.put("options", List.of());

    Map<String, Object> d = new LinkedHashMap<>();
    d.put("uid", uid(name));
    d.put("title", "Berth: " + name);
    d.put(
        "description",
        "Traffic, errors, latency, queues, models, JVM and language models of the Berth service "
            + name
            + " (job=\""
            + name
            + "\"). Written by berth deploy --export monitoring.");
    d.put("tags", List.of("berth", name));
    d.put("editable", true);
    d.put("graphTooltip", 1);
    d.put("timezone", "browser");
    d.put("time", Map.of("from", "now-1h", "to", "now"));
    d.put("refresh", "30s");
    d.put("schemaVersion", SCHEMA_VERSION);
    d.put("version", 1);
    d.put("templating", Map.of("list", List.of(datasource, model)));
    d.put("annotations", Map.of("list", List.of()));
    d.put("links", List.of());
    d.put("panels", panels);
    return d;
  }

  /** Grafana allows uids of at most 40 characters. */
  static String uid(String name) {
    String uid = "berth-" + name;
    return uid.length() <= 40 ? uid : uid.substring(0, 40);
  }

  private static Map<String, Object> panel(int id, Panel p, int x, int y, int w) {
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("id", id);
    out.put("type", p.type());
    out.put("title", p.title());
    out.put("description", p.description());
    out.put("datasource", DATASOURCE);
    out.put("gridPos", Map.of("h", 8, "w", w, "x", x, "y", y));
    out.put("fieldConfig", Map.of("defaults", Map.of("unit", p.unit()), "overrides", List.of()));
    boolean table = p.type().equals("table");
    if (table) {
      out.put("options", Map.of("showHeader", true));
      out.put(
          "transformations",
          List.of(
              Map.of(
                  "id",
                  "organize",
                  "options",
                  Map.of("excludeByName", Map.of("Time", true, "Value", true)))));
    } else {
      out.put(
          "options",
          Map.of(
              "legend", Map.of("displayMode", "list", "placement", "bottom", "showLegend", true),
              "tooltip", Map.of("mode", "multi", "sort", "desc")));
    }
    List<Map<String, Object>> targets = new ArrayList<>();
    char ref = 'A';
    for (Query q : p.queries()) {
      Map<String, Object> t = new LinkedHashMap<>();
      t.put("refId", String.valueOf(ref++));
      t.put("datasource", DATASOURCE);
      t.put("expr", q.expr());
      t.put("legendFormat", q.legend().isEmpty() ? "__auto" : q.legend());
      if (table) {
        t.put("instant", true);
        t.put("range", false);
        t.put("format", "table");
      } else {
        t.put("range", true);
      }
      targets.add(t);
    }
    out.put("targets", targets);
    return out;
  }
}
