package dev.berth.client.bench;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.berth.api.BerthException;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;

/**
 * What {@code berth bench} shows and writes: the table at the end of a run, and with {@code
 * --report DIR} the files {@code results.json} (one object per step), {@code results.csv} (the same
 * columns) and {@code index.html} (charts, the table and the command line, self-contained).
 */
public final class BenchReport {
  public static final String JSON_FILE = "results.json";
  public static final String CSV_FILE = "results.csv";
  public static final String HTML_FILE = "index.html";

  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  /** The columns of results.json and results.csv, in order. */
  private static final List<Column> COLUMNS =
      List.of(
          new Column("step", r -> r.step().label()),
          new Column("concurrency", r -> r.step().isOpen() ? null : r.step().concurrency()),
          new Column("rate", r -> r.step().isOpen() ? r.step().ratePerSecond() : null),
          new Column("connections", StepResult::connections),
          new Column("duration_s", r -> round(r.durationSeconds(), 3)),
          new Column("requests", StepResult::requests),
          new Column("throughput_per_s", r -> round(r.throughputPerSecond(), 2)),
          new Column("mean_ms", r -> round(r.latency().meanMs(), 3)),
          new Column("p50_ms", r -> round(r.latency().p50Ms(), 3)),
          new Column("p90_ms", r -> round(r.latency().p90Ms(), 3)),
          new Column("p95_ms", r -> round(r.latency().p95Ms(), 3)),
          new Column("p99_ms", r -> round(r.latency().p99Ms(), 3)),
          new Column("max_ms", r -> round(r.latency().maxMs(), 3)),
          new Column("errors", StepResult::errors),
          new Column("errors_by_status", StepResult::errorsByStatus),
          new Column("first_error", StepResult::firstError),
          new Column("server_queue_ms", r -> server(r, ServerSplit::queueMs, 3)),
          new Column("server_compute_ms", r -> server(r, ServerSplit::computeMs, 3)),
          new Column("server_batch_size", r -> server(r, ServerSplit::batchSize, 2)),
          new Column("server_request_ms", r -> server(r, ServerSplit::requestMs, 3)),
          new Column("tokens_per_s", r -> round(r.tokensPerSecond(), 2)),
          new Column("prompt_tokens", r -> round(r.meanPromptTokens(), 1)),
          new Column("completion_tokens", r -> round(r.meanCompletionTokens(), 1)),
          new Column("server_first_token_ms", r -> server(r, ServerSplit::firstTokenMs, 3)),
          new Column("server_per_token_ms", r -> server(r, ServerSplit::perTokenMs, 3)));

  /** Columns the HTML table leaves out: the step label says them, the error list below shows. */
  private static final java.util.Set<String> HTML_LEAVES_OUT =
      java.util.Set.of("concurrency", "rate", "errors_by_status", "first_error");

  private record Column(String name, Function<StepResult, Object> value) {}

  private BenchReport() {}

  /** The results as a table for a terminal. */
  public static String table(BenchResults results) {
    List<String> head =
        new ArrayList<>(
            List.of(
                "step",
                "requests",
                "req/s",
                "mean ms",
                "p50 ms",
                "p90 ms",
                "p95 ms",
                "p99 ms",
                "max ms",
                "errors"));
    boolean tokens = results.steps().stream().anyMatch(r -> Double.isFinite(r.tokensPerSecond()));
    if (tokens) {
      // a language model: no batches, but tokens
      head.addAll(List.of("tokens/s", "first token ms", "ms/token"));
    } else if (results.serverMetrics()) {
      head.addAll(List.of("queue ms", "compute ms", "batch"));
    }
    List<List<String>> rows = new ArrayList<>();
    rows.add(head);
    for (StepResult r : results.steps()) {
      LatencyStats l = r.latency();
      List<String> row =
          new ArrayList<>(
              List.of(
                  r.step().label(),
                  String.format(Locale.ROOT, "%,d", r.requests()),
                  String.format(Locale.ROOT, "%,.1f", r.throughputPerSecond()),
                  msCell(l.meanMs()),
                  msCell(l.p50Ms()),
                  msCell(l.p90Ms()),
                  msCell(l.p95Ms()),
                  msCell(l.p99Ms()),
                  msCell(l.maxMs()),
                  r.errors() == 0
                      ? "0"
                      : r.errors()
                          + " ("
                          + r.errorsByStatus().entrySet().stream()
                              .map(e -> e.getKey() + ": " + e.getValue())
                              .collect(Collectors.joining(", "))
                          + ")"));
      if (tokens) {
        ServerSplit s = r.server();
        row.add(
            Double.isFinite(r.tokensPerSecond())
                ? String.format(Locale.ROOT, "%,.1f", r.tokensPerSecond())
                : "-");
        row.add(s == null ? "-" : msCell(s.firstTokenMs()));
        row.add(s == null ? "-" : msCell(s.perTokenMs()));
      } else if (results.serverMetrics()) {
        ServerSplit s = r.server();
        row.add(s == null ? "-" : msCell(s.queueMs()));
        row.add(s == null ? "-" : msCell(s.computeMs()));
        row.add(
            s == null || Double.isNaN(s.batchSize())
                ? "-"
                : String.format(Locale.ROOT, "%.2f", s.batchSize()));
      }
      rows.add(row);
    }
    int[] width = new int[head.size()];
    for (List<String> row : rows) {
      for (int i = 0; i < row.size(); i++) {
        width[i] = Math.max(width[i], row.get(i).length());
      }
    }
    StringBuilder out = new StringBuilder();
    for (List<String> row : rows) {
      StringBuilder line = new StringBuilder();
      for (int i = 0; i < row.size(); i++) {
        String cell = row.get(i);
        String pad = " ".repeat(width[i] - cell.length());
        // the step and the errors read left to right, figures line up on the right
        line.append(i == 0 || i == 9 ? cell + pad : pad + cell);
        line.append(i + 1 < row.size() ? "  " : "");
      }
      out.append(line.toString().stripTrailing()).append('\n');
    }
    for (StepResult r : results.steps()) {
      if (r.firstError() != null) {
        out.append(r.step().label()).append(" first error: ").append(r.firstError()).append('\n');
      }
    }
    return out.toString();
  }

  /**
   * Writes results.json, results.csv and index.html into {@code dir} (created if need be).
   *
   * @param commandLine the command that produced the results, shown in the HTML report
   */
  public static void write(Path dir, BenchResults results, String commandLine) {
    try {
      Files.createDirectories(dir);
      writeJson(dir.resolve(JSON_FILE), results);
      Files.writeString(dir.resolve(CSV_FILE), csv(results), StandardCharsets.UTF_8);
      Files.writeString(dir.resolve(HTML_FILE), html(results, commandLine), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new BerthException("cannot write the report into " + dir + ": " + e.getMessage(), e);
    }
  }

  private static void writeJson(Path file, BenchResults results) throws IOException {
    List<Map<String, Object>> steps = new ArrayList<>();
    for (StepResult r : results.steps()) {
      Map<String, Object> o = new LinkedHashMap<>();
      for (Column c : COLUMNS) {
        o.put(c.name(), c.value().apply(r));
      }
      steps.add(o);
    }
    try (OutputStream out = Files.newOutputStream(file);
        JsonGenerator g = JSON.getFactory().createGenerator(out)) {
      g.useDefaultPrettyPrinter();
      JSON.writeValue(g, steps);
    }
  }

  static String csv(BenchResults results) {
    StringBuilder out = new StringBuilder();
    out.append(COLUMNS.stream().map(Column::name).collect(Collectors.joining(","))).append('\n');
    for (StepResult r : results.steps()) {
      List<String> cells = new ArrayList<>();
      for (Column c : COLUMNS) {
        Object v = c.value().apply(r);
        String text =
            switch (v) {
              case null -> "";
              case Map<?, ?> m ->
                  m.entrySet().stream()
                      .map(e -> e.getKey() + ":" + e.getValue())
                      .collect(Collectors.joining(" "));
              default -> v.toString();
            };
        cells.add(csvCell(text));
      }
      out.append(String.join(",", cells)).append('\n');
    }
    return out.toString();
  }

  private static String csvCell(String s) {
    if (s.contains(",") || s.contains("\"") || s.contains("\n")) {
      return "\"" + s.replace("\"", "\"\"") + "\"";
    }
    return s;
  }

  static String html(BenchResults results, String commandLine) {
    BenchPlan plan = results.plan();
    List<StepResult> steps = results.steps();
    List<SvgChart.Point> p50 = new ArrayList<>();
    List<SvgChart.Point> p90 = new ArrayList<>();
    List<SvgChart.Point> p99 = new ArrayList<>();
    for (StepResult r : steps) {
      double x = r.throughputPerSecond();
      p50.add(new SvgChart.Point(x, r.latency().p50Ms(), r.step().label()));
      p90.add(new SvgChart.Point(x, r.latency().p90Ms(), r.step().label()));
      p99.add(new SvgChart.Point(x, r.latency().p99Ms(), r.step().label()));
    }
    String latencyChart =
        SvgChart.lines(
            "Latency vs throughput",
            "throughput (successful requests/s)",
            "latency (ms)",
            List.of(
                new SvgChart.Series("p50", "#3b6ea8", p50),
                new SvgChart.Series("p90", "#e69f00", p90),
                new SvgChart.Series("p99", "#c0392b", p99)));
    boolean open = steps.stream().allMatch(r -> r.step().isOpen());
    String throughputChart =
        SvgChart.bars(
            open ? "Throughput by offered rate" : "Throughput by concurrency",
            open ? "offered rate (requests/s)" : "concurrent connections",
            "successful requests/s",
            steps.stream().map(r -> r.step().label()).toList(),
            steps.stream().map(StepResult::throughputPerSecond).toList());

    StringBuilder h = new StringBuilder(16384);
    h.append(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>berth bench: ")
        .append(SvgChart.esc(plan.model()))
        .append("</title>\n<style>")
        .append("body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}")
        .append("table{border-collapse:collapse;font-size:12px;margin:12px 0}")
        .append("th,td{border:1px solid #ccc;padding:3px 5px;text-align:right}")
        .append("th:first-child,td:first-child{text-align:left}")
        .append("th{background:#f2f2f2;max-width:6em;vertical-align:bottom}")
        .append("code,pre{background:#f6f6f6;padding:2px 4px}")
        .append(".charts{display:flex;flex-wrap:wrap;gap:16px}dt{font-weight:bold}")
        .append("dl{display:grid;grid-template-columns:max-content auto;gap:4px 16px}")
        .append("</style></head><body>\n");
    h.append("<h1>berth bench: ")
        .append(SvgChart.esc(plan.model()))
        .append(" at ")
        .append(SvgChart.esc(plan.url().toString()))
        .append("</h1>\n<dl>");
    dd(h, "command", "<code>" + SvgChart.esc(commandLine) + "</code>");
    dd(h, "date", SvgChart.esc(Instant.now().truncatedTo(ChronoUnit.SECONDS).toString()));
    dd(h, "protocol", SvgChart.esc(plan.protocol().id()));
    dd(h, "requests", SvgChart.esc(results.requestSummary()));
    dd(
        h,
        "each step",
        SvgChart.esc(
            "warm-up "
                + plan.warmup().toMillis() / 1000.0
                + " s (not counted), then "
                + plan.duration().toMillis() / 1000.0
                + " s measured"));
    dd(
        h,
        "client machine",
        SvgChart.esc(
            Runtime.getRuntime().availableProcessors()
                + " CPUs, "
                + System.getProperty("os.name")
                + " "
                + System.getProperty("os.version")
                + ", Java "
                + System.getProperty("java.version")));
    h.append("</dl>\n<div class=\"charts\">\n")
        .append(latencyChart)
        .append('\n')
        .append(throughputChart)
        .append("\n</div>\n<h2>Results</h2>\n<table>\n<tr>");
    List<Column> shown = COLUMNS.stream().filter(c -> !HTML_LEAVES_OUT.contains(c.name())).toList();
    for (Column c : shown) {
      // the JSON key, with spaces so that the header can wrap
      h.append("<th>").append(SvgChart.esc(c.name().replace('_', ' '))).append("</th>");
    }
    h.append("</tr>\n");
    for (StepResult r : steps) {
      h.append("<tr>");
      for (Column c : shown) {
        Object v = c.value().apply(r);
        h.append("<td>").append(v == null ? "" : SvgChart.esc(v.toString())).append("</td>");
      }
      h.append("</tr>\n");
    }
    h.append("</table>\n");
    for (StepResult r : steps) {
      if (r.errors() > 0) {
        h.append("<p>")
            .append(SvgChart.esc(r.step().label()))
            .append(" errors: ")
            .append(
                SvgChart.esc(
                    r.errorsByStatus().entrySet().stream()
                        .map(e -> e.getKey() + ": " + e.getValue())
                        .collect(Collectors.joining(", "))))
            .append("; first: <code>")
            .append(SvgChart.esc(String.valueOf(r.firstError())))
            .append("</code></p>\n");
      }
    }
    h.append("<p>Latency is of successful requests")
        .append(
            open
                ? ", from the time each request was due to be sent (open loop: a server that falls"
                    + " behind shows its queue in the latency)."
                : ".")
        .append(" Throughput counts successful requests.")
        .append(
            results.serverMetrics()
                ? " The server_ columns are means the server itself recorded during each step"
                    + " (queue wait per request, engine time and rows per batch, request time"
                    + " from arrival to answer; for a language model the time to the first"
                    + " token and the time per token). A language model's tokens come from its"
                    + " answers' usage."
                : " The server had no Berth metrics, so there is no server-side split.")
        .append("</p>\n</body></html>\n");
    return h.toString();
  }

  private static void dd(StringBuilder h, String term, String html) {
    h.append("<dt>").append(term).append("</dt><dd>").append(html).append("</dd>");
  }

  private static Object server(StepResult r, Function<ServerSplit, Double> f, int digits) {
    return r.server() == null ? null : round(f.apply(r.server()), digits);
  }

  /** Rounded for the report; null for NaN (no data). */
  private static Double round(double v, int digits) {
    if (!Double.isFinite(v)) {
      return null;
    }
    double scale = Math.pow(10, digits);
    return Math.round(v * scale) / scale;
  }

  private static String msCell(double ms) {
    return Double.isFinite(ms) ? LoadLoop.ms(ms) : "-";
  }
}
