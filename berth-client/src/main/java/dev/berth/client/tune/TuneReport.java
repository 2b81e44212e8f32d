package dev.berth.client.tune;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.berth.api.BerthException;
import dev.berth.client.bench.StepResult;
import dev.berth.client.bench.SvgChart;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What {@code berth tune} found, as text for the terminal and as a report directory: {@value
 * #JSON_FILE} (every measurement and step), {@value #CSV_FILE} (one row per measurement) and
 * {@value #HTML_FILE} (the throughput/latency frontier, where each setting landed, and why the
 * winner won).
 */
public final class TuneReport {
  public static final String JSON_FILE = "tune.json";
  public static final String CSV_FILE = "tune.csv";
  public static final String HTML_FILE = "index.html";

  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
  private static final String[] COLORS = {"#3b6ea8", "#c0392b", "#2e8b57", "#e69f00", "#8e44ad"};

  private TuneReport() {}

  /** The outcome in a few lines: the winner, by how much it beats the current setting, and why. */
  public static String summary(TuneResult r, Sizing sizing) {
    StringBuilder out = new StringBuilder();
    TuneGoal goal = r.goal();
    if (r.winner() == null) {
      double best =
          r.points().stream()
              .mapToDouble(p -> p.lowLoadMs(goal))
              .filter(v -> !Double.isNaN(v))
              .min()
              .orElse(Double.NaN);
      out.append(
          String.format(
              Locale.ROOT,
              "no setting held %s at any load: the lowest p%d with one caller was %.1f ms. Give"
                  + " the model more CPUs (--cpus), a looser goal, or a smaller model.%n",
              goal.label(),
              goal.percentile(),
              best));
      return out.toString();
    }
    out.append("winner: ").append(r.winner().label()).append('\n');
    out.append(
        String.format(
            Locale.ROOT,
            "  %s req/s%s with %s when measured last (p%d %.1f ms at that load)%s%n",
            Tuner.rate(r.winnerFinal().goalThroughput()),
            Double.isFinite(r.winnerFinal().goalTokensPerSecond())
                ? " (" + Tuner.rate(r.winnerFinal().goalTokensPerSecond()) + " tokens/s)"
                : "",
            goal.label(),
            goal.percentile(),
            r.winnerFinal().atGoal() == null
                ? Double.NaN
                : goal.of(r.winnerFinal().atGoal().result().latency()),
            r.winnerHeld() ? "" : " -- it did NOT hold the goal when measured again"));
    if (r.winner().equals(r.space().baseline())) {
      out.append("  the current model.yaml is the best setting found\n");
    } else if (Double.isNaN(r.gain())) {
      out.append("  the current model.yaml held the goal at no load tried\n");
    } else {
      out.append(
          String.format(
              Locale.ROOT,
              "  %s the current model.yaml: %s against %s req/s, the medians of their %d and %d"
                  + " measurements in this run (the last two, in turn at the end: %s against %s,"
                  + " %s)%n",
              Tuner.ratio(r.gain()),
              Tuner.rate(r.median(r.winner())),
              Tuner.rate(r.median(r.space().baseline())),
              r.measurements(r.winner()),
              r.measurements(r.space().baseline()),
              Tuner.rate(r.winnerFinal().goalThroughput()),
              Tuner.rate(r.baselineFinal().goalThroughput()),
              Tuner.ratio(r.finalPairGain())));
    }
    out.append(
        String.format(
            Locale.ROOT,
            "  %d measurements in %.0f s; noise %.1f%%, margin %.1f%%%s%n",
            r.points().size(),
            r.seconds(),
            r.noise() * 100,
            r.margin() * 100,
            r.untried().isEmpty() ? "" : "; the budget left " + r.untried().size() + " untried"));
    if (sizing != null) {
      out.append("deployment:\n");
      sizing.reasons().forEach(line -> out.append("  ").append(line).append('\n'));
    }
    return out.toString();
  }

  /** Writes the report into {@code dir}. */
  public static void write(Path dir, TuneResult r, Sizing sizing, String commandLine) {
    try {
      Files.createDirectories(dir);
      JSON.writeValue(dir.resolve(JSON_FILE).toFile(), json(r, sizing, commandLine));
      Files.writeString(dir.resolve(CSV_FILE), csv(r), StandardCharsets.UTF_8);
      Files.writeString(
          dir.resolve(HTML_FILE), html(r, sizing, commandLine), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new BerthException("cannot write the report into " + dir + ": " + e.getMessage(), e);
    }
  }

  static Map<String, Object> json(TuneResult r, Sizing sizing, String commandLine) {
    Map<String, Object> o = new LinkedHashMap<>();
    o.put("command", commandLine);
    o.put("goal", Map.of("percentile", r.goal().percentile(), "limit_ms", r.goal().limitMs()));
    o.put("seconds", r.seconds());
    o.put("noise", r.noise());
    o.put("margin", r.margin());
    o.put("baseline", r.space().baseline().values());
    o.put("winner", r.winner() == null ? null : r.winner().values());
    o.put("winner_held_goal_again", r.winnerHeld());
    o.put("gain", Double.isNaN(r.gain()) ? null : r.gain());
    o.put("final_pair_gain", Double.isNaN(r.finalPairGain()) ? null : r.finalPairGain());
    o.put("winner_final", point(r.winnerFinal(), r.goal()));
    o.put("baseline_final", point(r.baselineFinal(), r.goal()));
    if (sizing != null) {
      Map<String, Object> s = new LinkedHashMap<>();
      s.put("cpu", sizing.cpu());
      s.put("memory", sizing.memory());
      s.put("target_cpu_utilization", sizing.targetCpuUtilization());
      s.put("target_inflight_per_pod", sizing.targetInflightPerPod());
      s.put("max_queue_size", sizing.maxQueueSize());
      s.put("max_queue_size_key", TuneSpace.queueKey(r.winner()));
      s.put("reasons", sizing.reasons());
      o.put("deployment", s);
    }
    o.put("decisions", r.decisions());
    o.put("untried", r.untried());
    List<Object> points = new ArrayList<>();
    for (PointResult p : r.points()) {
      points.add(point(p, r.goal()));
    }
    o.put("points", points);
    return o;
  }

  private static Map<String, Object> point(PointResult p, TuneGoal goal) {
    Map<String, Object> o = new LinkedHashMap<>();
    o.put("purpose", p.purpose());
    o.put("setting", p.setting().values());
    o.put("meets_goal", p.meetsGoal());
    o.put("goal_throughput", p.goalThroughput());
    o.put("goal_tokens_per_s", finite(p.goalTokensPerSecond()));
    o.put("knee_concurrency", p.kneeConcurrency());
    o.put("low_load_ms", finite(p.lowLoadMs(goal)));
    o.put("peak_rss_bytes", p.peakRssBytes());
    o.put("native_bytes", p.nativeBytes());
    o.put("seconds", p.seconds());
    o.put("failure", p.failure());
    o.put("closed", steps(p.closed()));
    o.put("open", steps(p.open()));
    return o;
  }

  private static List<Object> steps(List<PointResult.Step> steps) {
    List<Object> out = new ArrayList<>();
    for (PointResult.Step s : steps) {
      StepResult r = s.result();
      Map<String, Object> o = new LinkedHashMap<>();
      o.put("step", r.step().label());
      o.put("throughput", r.throughputPerSecond());
      o.put("p50_ms", finite(r.latency().p50Ms()));
      o.put("p90_ms", finite(r.latency().p90Ms()));
      o.put("p99_ms", finite(r.latency().p99Ms()));
      o.put("mean_ms", finite(r.latency().meanMs()));
      o.put("errors", r.errors());
      o.put("server_cpu_cores", finite(s.cpuCores()));
      if (Double.isFinite(r.tokensPerSecond())) {
        // a language model's, from its answers' usage and the server's split
        o.put("tokens_per_s", r.tokensPerSecond());
        o.put("completion_tokens", finite(r.meanCompletionTokens()));
        o.put("longest_sequence", r.longestSequence());
        o.put("first_token_ms", r.server() == null ? null : finite(r.server().firstTokenMs()));
      }
      out.add(o);
    }
    return out;
  }

  static String csv(TuneResult r) {
    List<String> keys = new ArrayList<>(r.space().baseline().values().keySet());
    StringBuilder out = new StringBuilder("index,purpose");
    keys.forEach(k -> out.append(',').append(k));
    out.append(
        ",meets_goal,goal_throughput,knee_concurrency,low_load_ms,peak_rss_mib,seconds,failure\n");
    int i = 1;
    for (PointResult p : r.points()) {
      out.append(i++).append(',').append(cell(p.purpose()));
      for (String k : keys) {
        out.append(',').append(cell(String.valueOf(p.setting().get(k))));
      }
      out.append(',')
          .append(p.meetsGoal())
          .append(',')
          .append(String.format(Locale.ROOT, "%.2f", p.goalThroughput()))
          .append(',')
          .append(p.kneeConcurrency())
          .append(',')
          .append(
              Double.isNaN(p.lowLoadMs(r.goal()))
                  ? ""
                  : String.format(Locale.ROOT, "%.3f", p.lowLoadMs(r.goal())))
          .append(',')
          .append(p.peakRssBytes() < 0 ? "" : Long.toString(p.peakRssBytes() / Sizing.MIB))
          .append(',')
          .append(String.format(Locale.ROOT, "%.1f", p.seconds()))
          .append(',')
          .append(p.failure() == null ? "" : cell(p.failure()))
          .append('\n');
    }
    return out.toString();
  }

  static String html(TuneResult r, Sizing sizing, String commandLine) {
    TuneGoal goal = r.goal();
    // the frontier: each setting's closed-loop ramp, the winner's and the current one's in colour;
    // and where every setting landed, at the load it held the goal at
    List<SvgChart.Series> series = new ArrayList<>();
    series.add(ramp("current model.yaml", COLORS[0], r.baselineFinal(), goal));
    if (r.winner() != null && !r.winner().equals(r.space().baseline())) {
      series.add(ramp("winner", COLORS[1], r.winnerFinal(), goal));
    }
    List<SvgChart.Point> landed = new ArrayList<>();
    for (int i = 0; i < r.points().size(); i++) {
      PointResult p = r.points().get(i);
      if (p.atGoal() != null) {
        landed.add(
            new SvgChart.Point(
                p.goalThroughput(), goal.of(p.atGoal().result().latency()), "#" + (i + 1)));
      }
    }
    series.add(new SvgChart.Series("each setting at its goal load", COLORS[2], landed, false));
    String chart =
        SvgChart.lines(
            "Throughput and p" + goal.percentile() + " latency",
            "successful requests/s",
            "p" + goal.percentile() + " latency (ms)",
            series);

    StringBuilder h = new StringBuilder(32768);
    h.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n")
        .append("<title>berth tune</title>\n<style>")
        .append("body{font-family:sans-serif;margin:24px;color:#222;max-width:1200px}")
        .append("table{border-collapse:collapse;font-size:12px;margin:12px 0}")
        .append("th,td{border:1px solid #ccc;padding:3px 5px;text-align:right}")
        .append("th:nth-child(-n+2),td:nth-child(-n+2){text-align:left}")
        .append("th{background:#f2f2f2}tr.win td{background:#eaf5ea}")
        .append("code,pre{background:#f6f6f6;padding:2px 4px}")
        .append("</style></head><body>\n<h1>berth tune</h1>\n<p><code>")
        .append(SvgChart.esc(commandLine))
        .append("</code></p>\n<h2>Outcome</h2>\n<pre>")
        .append(SvgChart.esc(summary(r, sizing)))
        .append("</pre>\n")
        .append(chart)
        .append("\n<h2>Why</h2>\n<ol>");
    for (String d : r.decisions()) {
      h.append("<li>").append(SvgChart.esc(d)).append("</li>");
    }
    h.append("</ol>\n");
    if (!r.untried().isEmpty()) {
      h.append("<p>Left untried for lack of budget: ")
          .append(SvgChart.esc(String.join("; ", r.untried())))
          .append("</p>\n");
    }
    h.append("<h2>Every measurement</h2>\n<table>\n<tr><th>#</th><th>setting</th><th>why</th>")
        .append("<th>holds the goal at (req/s)</th><th>knee (callers)</th>")
        .append("<th>p")
        .append(goal.percentile())
        .append(" with one caller (ms)</th><th>peak memory (MiB)</th><th>seconds</th></tr>\n");
    for (int i = 0; i < r.points().size(); i++) {
      PointResult p = r.points().get(i);
      boolean win = r.winner() != null && p.setting().equals(r.winner());
      h.append(win ? "<tr class=\"win\">" : "<tr>")
          .append("<td>")
          .append(i + 1)
          .append("</td><td>")
          .append(SvgChart.esc(p.setting().label()))
          .append("</td><td style=\"text-align:left\">")
          .append(SvgChart.esc(p.purpose() + (p.failure() == null ? "" : ": " + p.failure())))
          .append("</td><td>")
          .append(p.meetsGoal() ? Tuner.rate(p.goalThroughput()) : "never")
          .append("</td><td>")
          .append(p.kneeConcurrency())
          .append("</td><td>")
          .append(
              Double.isNaN(p.lowLoadMs(goal))
                  ? ""
                  : String.format(Locale.ROOT, "%.1f", p.lowLoadMs(goal)))
          .append("</td><td>")
          .append(p.peakRssBytes() < 0 ? "" : Long.toString(p.peakRssBytes() / Sizing.MIB))
          .append("</td><td>")
          .append(String.format(Locale.ROOT, "%.1f", p.seconds()))
          .append("</td></tr>\n");
    }
    return h.append("</table>\n</body></html>\n").toString();
  }

  private static SvgChart.Series ramp(String name, String color, PointResult p, TuneGoal goal) {
    List<SvgChart.Point> points = new ArrayList<>();
    for (PointResult.Step s : p.closed()) {
      points.add(
          new SvgChart.Point(
              s.result().throughputPerSecond(),
              goal.of(s.result().latency()),
              s.result().step().label()));
    }
    return new SvgChart.Series(name, color, points);
  }

  private static Double finite(double v) {
    return Double.isFinite(v) ? v : null;
  }

  private static String cell(String text) {
    return text.contains(",") || text.contains("\"") || text.contains("\n")
        ? "\"" + text.replace("\"", "\"\"") + "\""
        : text;
  }
}
