package dev.berth.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Puts a bench/serving run together: the in-process ceiling (InProcessCeiling's JSON) and the HTTP
 * points (one JSON line each, wrk's numbers from bench/oip.lua), into one results JSON, a Markdown
 * table on stdout and a self-contained HTML page with an SVG bar chart.
 *
 * <pre>
 * Report --ceiling C.json --points P.jsonl --json OUT.json --html OUT.html [--quick] [--meta key=value]...
 * </pre>
 */
public final class Report {
  /** c=32 with batching on, over the in-process ceiling. */
  static final double GOAL_CEILING_RATIO = 0.8;
  /** c=32, batching on over batching off. */
  static final double GOAL_BATCHING_GAIN = 2.0;
  /** c=1 p50 over HTTP minus the in-process single-sentence p50, milliseconds. */
  static final double GOAL_ADDED_LATENCY_MS = 1.0;

  private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  public static void main(String[] args) throws IOException {
    Path ceilingFile = null;
    Path pointsFile = null;
    Path jsonOut = null;
    Path htmlOut = null;
    boolean quick = false;
    ObjectNode meta = JSON.createObjectNode();
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--ceiling" -> ceilingFile = Path.of(args[++i]);
        case "--points" -> pointsFile = Path.of(args[++i]);
        case "--json" -> jsonOut = Path.of(args[++i]);
        case "--html" -> htmlOut = Path.of(args[++i]);
        case "--quick" -> quick = true;
        case "--meta" -> {
          String kv = args[++i];
          int eq = kv.indexOf('=');
          meta.put(kv.substring(0, eq), kv.substring(eq + 1));
        }
        default -> throw new IllegalArgumentException("unknown argument " + args[i]);
      }
    }
    if (ceilingFile == null || pointsFile == null || jsonOut == null || htmlOut == null) {
      System.err.println(
          "usage: Report --ceiling C.json --points P.jsonl --json OUT.json --html OUT.html [--quick]"
              + " [--meta key=value]...");
      System.exit(2);
    }
    JsonNode ceiling = JSON.readTree(ceilingFile.toFile());
    List<JsonNode> raw = new ArrayList<>();
    for (String line : Files.readAllLines(pointsFile, StandardCharsets.UTF_8)) {
      if (!line.isBlank()) {
        raw.add(JSON.readTree(line));
      }
    }
    ObjectNode results = build(ceiling, raw, meta, quick);
    JSON.writeValue(jsonOut.toFile(), results);
    Files.writeString(htmlOut, html(results), StandardCharsets.UTF_8);
    System.out.print(markdown(results));
  }

  static ObjectNode build(JsonNode ceiling, List<JsonNode> raw, ObjectNode meta, boolean quick) {
    ObjectNode root = JSON.createObjectNode();
    root.put("benchmark", "serving");
    root.put("model", "all-MiniLM-L6-v2 int8 ONNX (examples/models/minilm)");
    root.put("quick", quick);
    root.set("meta", meta);
    double best = ceiling.path("best").path("sentences_per_s").asDouble();
    double singleP50 = ceiling.path("single_sentence_latency_ms").path("p50").asDouble();
    root.set("ceiling", ceiling);

    ArrayNode points = root.putArray("points");
    ObjectNode hello = null;
    for (JsonNode p : raw) {
      JsonNode wrk = p.path("wrk");
      double seconds = wrk.path("duration_us").asDouble() / 1e6;
      long requests = wrk.path("requests").asLong();
      JsonNode e = wrk.path("errors");
      long errors =
          e.path("connect").asLong() + e.path("read").asLong() + e.path("write").asLong()
              + e.path("status").asLong() + e.path("timeout").asLong();
      // Requests that failed are not sentences served.
      long good = Math.max(0, requests - e.path("status").asLong());
      ObjectNode o = JSON.createObjectNode();
      o.put("id", p.path("id").asText());
      o.put("label", p.path("label").asText());
      o.put("kind", p.path("kind").asText());
      if (p.has("batching")) {
        o.put("batching", p.path("batching").asBoolean());
      }
      o.put("concurrency", p.path("concurrency").asInt());
      o.put("wrk_threads", p.path("threads").asInt());
      o.put("duration_s", InProcessCeiling.round(seconds, 3));
      o.put("requests", requests);
      o.put("errors", errors);
      o.set("error_detail", e);
      double rate = seconds > 0 ? good / seconds : 0;
      boolean health = "health".equals(p.path("kind").asText());
      o.put(health ? "requests_per_s" : "sentences_per_s", InProcessCeiling.round(rate, 1));
      ObjectNode lat = o.putObject("latency_ms");
      JsonNode l = wrk.path("latency_us");
      for (String k : new String[] {"p50", "p75", "p90", "p99", "p999", "mean", "max"}) {
        lat.put(k, InProcessCeiling.round(l.path(k).asDouble() / 1000, 3));
      }
      server(o, p.path("server_before"), p.path("server_after"), seconds, l.path("mean").asDouble() / 1000);
      if (health) {
        hello = o;
      } else {
        o.put("ratio_to_ceiling", best > 0 ? InProcessCeiling.round(rate / best, 3) : 0);
        points.add(o);
      }
    }
    if (hello != null) {
      root.set("hello_world", hello);
    }

    ArrayNode goals = root.putArray("goals");
    JsonNode on32 = find(points, true, 32);
    JsonNode off32 = find(points, false, 32);
    JsonNode on1 = find(points, true, 1);
    JsonNode off1 = find(points, false, 1);
    if (on32 != null && best > 0) {
      goal(goals, "throughput", "c=32 batching on / in-process ceiling",
          on32.path("sentences_per_s").asDouble() / best, ">=", GOAL_CEILING_RATIO, "x");
    }
    if (on32 != null && off32 != null && off32.path("sentences_per_s").asDouble() > 0) {
      goal(goals, "batching_gain", "c=32 batching on / batching off",
          on32.path("sentences_per_s").asDouble() / off32.path("sentences_per_s").asDouble(),
          ">=", GOAL_BATCHING_GAIN, "x");
    }
    if (on1 != null) {
      goal(goals, "added_latency", "c=1 p50 over HTTP (batching on) - in-process single-sentence p50",
          on1.path("latency_ms").path("p50").asDouble() - singleP50, "<=", GOAL_ADDED_LATENCY_MS, "ms");
    }
    if (off1 != null) {
      ObjectNode info = goals.addObject();
      info.put("id", "added_latency_unbatched");
      info.put("name", "c=1 p50 over HTTP (batching off) - in-process single-sentence p50");
      info.put("value", InProcessCeiling.round(off1.path("latency_ms").path("p50").asDouble() - singleP50, 3));
      info.put("unit", "ms");
      info.put("target", "information only");
    }
    return root;
  }

  /** Berth's own histograms over the point (differences of /metrics scraped before and after). */
  private static void server(ObjectNode o, JsonNode before, JsonNode after, double seconds, double clientMeanMs) {
    if (!before.isObject() || !after.isObject() || !after.has("batch_size_count")) {
      return;
    }
    double calls = delta(before, after, "batch_size_count");
    double rows = delta(before, after, "batch_size_sum");
    double compute = delta(before, after, "compute_s_sum");
    double computeCalls = delta(before, after, "compute_count");
    double queue = delta(before, after, "queue_s_sum");
    double queued = delta(before, after, "queue_count");
    double request = delta(before, after, "request_s_sum");
    double requests = delta(before, after, "request_count");
    if (calls <= 0 || requests <= 0) {
      return;
    }
    ObjectNode s = o.putObject("server");
    s.put("engine_calls", (long) calls);
    s.put("mean_batch_size", InProcessCeiling.round(rows / calls, 2));
    s.put("mean_compute_ms_per_call", InProcessCeiling.round(computeCalls > 0 ? 1000 * compute / computeCalls : 0, 3));
    s.put("mean_queue_ms", InProcessCeiling.round(queued > 0 ? 1000 * queue / queued : 0, 3));
    s.put("mean_request_ms", InProcessCeiling.round(1000 * request / requests, 3));
    // Share of the point's wall time the engine spent computing (one instance in the example).
    s.put("engine_busy", InProcessCeiling.round(seconds > 0 ? compute / seconds : 0, 3));
    // What the client waited beyond Berth's own arrival-to-answer time: HTTP, sockets, wrk.
    s.put("client_minus_server_mean_ms", InProcessCeiling.round(clientMeanMs - 1000 * request / requests, 3));
  }

  private static double delta(JsonNode before, JsonNode after, String key) {
    return after.path(key).asDouble() - before.path(key).asDouble();
  }

  private static JsonNode find(ArrayNode points, boolean batching, int concurrency) {
    for (JsonNode p : points) {
      if (p.path("batching").asBoolean() == batching && p.path("concurrency").asInt() == concurrency) {
        return p;
      }
    }
    return null;
  }

  private static void goal(
      ArrayNode goals, String id, String name, double value, String op, double target, String unit) {
    ObjectNode g = goals.addObject();
    g.put("id", id);
    g.put("name", name);
    g.put("value", InProcessCeiling.round(value, 3));
    g.put("unit", unit);
    g.put("target", op + " " + fmt(target, 2) + (unit.equals("x") ? "" : " " + unit));
    g.put("met", op.equals(">=") ? value >= target : value <= target);
  }

  // ---------------------------------------------------------------- Markdown

  static String markdown(JsonNode r) {
    StringBuilder md = new StringBuilder();
    JsonNode c = r.path("ceiling");
    JsonNode meta = r.path("meta");
    md.append("## Berth serving benchmark: MiniLM, ").append(meta.path("date").asText("")).append('\n');
    if (r.path("quick").asBoolean()) {
      md.append("\n**Quick smoke run (--quick): short points, numbers are noisy.**\n");
    }
    md.append('\n')
        .append(meta.path("machine").asText("?"))
        .append("; ")
        .append(meta.path("commit").asText("?"))
        .append("; ")
        .append(fmt(meta.path("duration_s").asDouble(), 0))
        .append(" s per point; load average before/after: ")
        .append(meta.path("loadavg_before").asText("?"))
        .append(" / ")
        .append(meta.path("loadavg_after").asText("?"))
        .append("\n\n");
    md.append("Ceiling (in-process ONNX Runtime, tokenization + model + mean pooling, one calling thread): **")
        .append(fmt(c.path("best").path("sentences_per_s").asDouble(), 1))
        .append(" sentences/s** at batch size ")
        .append(c.path("best").path("batch_size").asInt())
        .append("; single-sentence p50 ")
        .append(fmt(c.path("single_sentence_latency_ms").path("p50").asDouble(), 3))
        .append(" ms, p99 ")
        .append(fmt(c.path("single_sentence_latency_ms").path("p99").asDouble(), 3))
        .append(" ms.\n\n");

    md.append("| in-process batch size |");
    StringBuilder sep = new StringBuilder("|---|");
    StringBuilder rate = new StringBuilder("| sentences/s |");
    StringBuilder p50 = new StringBuilder("| call p50 ms |");
    StringBuilder run = new StringBuilder("| of which ONNX run |");
    for (JsonNode b : c.path("batch_sizes")) {
      md.append(' ').append(b.path("batch_size").asInt()).append(" |");
      sep.append("---:|");
      rate.append(' ').append(fmt(b.path("sentences_per_s").asDouble(), 1)).append(" |");
      p50.append(' ').append(fmt(b.path("call_latency_ms").path("p50").asDouble(), 2)).append(" |");
      JsonNode w = b.path("mean_ms_per_call");
      double total = w.path("tokenize").asDouble() + w.path("tensors").asDouble()
          + w.path("onnx_run").asDouble() + w.path("pool").asDouble();
      run.append(' ').append(total > 0 ? fmt(100 * w.path("onnx_run").asDouble() / total, 0) + "%" : "-").append(" |");
    }
    md.append('\n').append(sep).append('\n').append(rate).append('\n').append(p50).append('\n')
        .append(run).append("\n\n");

    md.append("| Berth over HTTP (OIP v2 JSON, 1 sentence/request) | sentences/s | p50 ms | p99 ms | vs ceiling |\n");
    md.append("|---|---:|---:|---:|---:|\n");
    for (JsonNode p : r.path("points")) {
      md.append("| ").append(p.path("label").asText());
      if (p.path("errors").asLong() > 0) {
        md.append(" (").append(p.path("errors").asLong()).append(" errors)");
      }
      md.append(" | ").append(fmt(p.path("sentences_per_s").asDouble(), 1))
          .append(" | ").append(fmt(p.path("latency_ms").path("p50").asDouble(), 2))
          .append(" | ").append(fmt(p.path("latency_ms").path("p99").asDouble(), 2))
          .append(" | ").append(fmt(p.path("ratio_to_ceiling").asDouble(), 2)).append(" |\n");
    }
    JsonNode h = r.path("hello_world");
    if (!h.isMissingNode()) {
      md.append("| hello world: GET /v2/health/live, c=32");
      if (h.path("errors").asLong() > 0) {
        md.append(" (").append(h.path("errors").asLong()).append(" errors)");
      }
      md.append(" | ").append(fmt(h.path("requests_per_s").asDouble(), 1)).append(" req/s")
          .append(" | ").append(fmt(h.path("latency_ms").path("p50").asDouble(), 2))
          .append(" | ").append(fmt(h.path("latency_ms").path("p99").asDouble(), 2))
          .append(" | - |\n");
    }
    md.append('\n');
    md.append("| where time goes (means) | client ms | Berth request ms | queue ms | engine ms/call | mean batch | engine busy | client - Berth ms |\n");
    md.append("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (JsonNode p : r.path("points")) {
      JsonNode sv = p.path("server");
      if (sv.isMissingNode()) {
        continue;
      }
      md.append("| ").append(p.path("label").asText())
          .append(" | ").append(fmt(p.path("latency_ms").path("mean").asDouble(), 2))
          .append(" | ").append(fmt(sv.path("mean_request_ms").asDouble(), 2))
          .append(" | ").append(fmt(sv.path("mean_queue_ms").asDouble(), 2))
          .append(" | ").append(fmt(sv.path("mean_compute_ms_per_call").asDouble(), 2))
          .append(" | ").append(fmt(sv.path("mean_batch_size").asDouble(), 1))
          .append(" | ").append(fmt(100 * sv.path("engine_busy").asDouble(), 0)).append('%')
          .append(" | ").append(fmt(sv.path("client_minus_server_mean_ms").asDouble(), 2))
          .append(" |\n");
    }
    md.append('\n');
    md.append("| ratio | value | goal | |\n|---|---:|---:|---|\n");
    for (JsonNode g : r.path("goals")) {
      md.append("| ").append(g.path("name").asText())
          .append(" | ").append(fmt(g.path("value").asDouble(), g.path("unit").asText().equals("ms") ? 3 : 2))
          .append(g.path("unit").asText().equals("ms") ? " ms" : "x")
          .append(" | ").append(g.path("target").asText())
          .append(" | ").append(g.has("met") ? (g.path("met").asBoolean() ? "met" : "NOT met") : "")
          .append(" |\n");
    }
    return md.toString();
  }

  // ---------------------------------------------------------------- HTML

  static String html(JsonNode r) {
    JsonNode c = r.path("ceiling");
    double best = c.path("best").path("sentences_per_s").asDouble();
    List<JsonNode> pts = new ArrayList<>();
    r.path("points").forEach(pts::add);

    StringBuilder s = new StringBuilder();
    s.append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>Berth serving benchmark ")
        .append(esc(r.path("meta").path("date").asText(""))).append("</title>\n<style>\n")
        .append("body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:60em;color:#222;padding:0 1em}\n")
        .append("table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .7em}")
        .append("td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}\n")
        .append(".warn{background:#fff3cd;border:1px solid #e0c36a;padding:.5em 1em}.met{color:#1a7f37}.miss{color:#c62828}\n")
        .append("svg text{font-family:inherit}\n</style></head><body>\n");
    s.append("<h1>Berth serving benchmark: MiniLM</h1>\n");
    if (r.path("quick").asBoolean()) {
      s.append("<p class=\"warn\">Quick smoke run (<code>--quick</code>): short points, numbers are noisy.</p>\n");
    }
    s.append("<p>");
    r.path("meta").properties().forEach(
        e -> s.append("<b>").append(esc(e.getKey())).append("</b>: ").append(esc(e.getValue().asText())).append("<br>\n"));
    s.append("</p>\n");

    // Chart: one bar per HTTP point, the ceiling (and the 0.8 goal) as horizontal lines.
    int w = 760;
    int h = 380;
    int left = 70;
    int right = 20;
    int top = 30;
    int bottom = 70;
    double max = best;
    for (JsonNode p : pts) {
      max = Math.max(max, p.path("sentences_per_s").asDouble());
    }
    double axisMax = niceCeil(max * 1.1);
    int plotW = w - left - right;
    int plotH = h - top - bottom;
    s.append("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"").append(w).append("\" height=\"").append(h)
        .append("\" viewBox=\"0 0 ").append(w).append(' ').append(h)
        .append("\" role=\"img\" aria-label=\"sentences per second per point\">\n");
    s.append("<text x=\"").append(left).append("\" y=\"18\" font-size=\"14\" font-weight=\"bold\">")
        .append("Sentences/s over HTTP, one sentence per request</text>\n");
    for (int i = 0; i <= 5; i++) {
      double v = axisMax * i / 5;
      double y = top + plotH - plotH * v / axisMax;
      s.append(String.format(Locale.ROOT,
          "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>"
              + "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%s</text>\n",
          left, left + plotW, y, y, left - 6, y + 4, fmt(v, 0)));
    }
    int n = Math.max(1, pts.size());
    double slot = (double) plotW / n;
    double bw = slot * 0.6;
    for (int i = 0; i < pts.size(); i++) {
      JsonNode p = pts.get(i);
      double v = p.path("sentences_per_s").asDouble();
      double bh = plotH * v / axisMax;
      double x = left + slot * i + (slot - bw) / 2;
      double y = top + plotH - bh;
      String color = p.path("batching").asBoolean() ? "#2e7d32" : "#9e9e9e";
      s.append(String.format(Locale.ROOT,
          "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>%s: %s sentences/s</title></rect>\n",
          x, y, bw, bh, color, esc(p.path("label").asText()), fmt(v, 1)));
      s.append(String.format(Locale.ROOT,
          "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">%s</text>\n",
          x + bw / 2, y - 4, fmt(v, 0)));
      s.append(String.format(Locale.ROOT,
          "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%s</text>"
              + "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">c=%d</text>\n",
          x + bw / 2, top + plotH + 16, p.path("batching").asBoolean() ? "batching on" : "batching off",
          x + bw / 2, top + plotH + 30, p.path("concurrency").asInt()));
    }
    if (best > 0) {
      double y = top + plotH - plotH * best / axisMax;
      s.append(String.format(Locale.ROOT,
          "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#c62828\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/>"
              + "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" fill=\"#c62828\" text-anchor=\"end\">in-process ceiling %s/s (batch %d)</text>\n",
          left, left + plotW, y, y, left + plotW, y - 4, fmt(best, 0), c.path("best").path("batch_size").asInt()));
      double g = top + plotH - plotH * best * GOAL_CEILING_RATIO / axisMax;
      s.append(String.format(Locale.ROOT,
          "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ef9a9a\" stroke-dasharray=\"2 3\"/>"
              + "<text x=\"%d\" y=\"%.1f\" font-size=\"10\" fill=\"#c62828\" text-anchor=\"end\">goal: %s x ceiling</text>\n",
          left, left + plotW, g, g, left + plotW, g + 12, fmt(GOAL_CEILING_RATIO, 1)));
    }
    s.append(String.format(Locale.ROOT,
        "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#333\"/>"
            + "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n",
        left, left + plotW, top + plotH, top + plotH, left, left, top, top + plotH));
    s.append(String.format(Locale.ROOT,
        "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"#9e9e9e\"/><text x=\"%d\" y=\"%d\" font-size=\"11\">batching off (max-batch-size 1)</text>"
            + "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"#2e7d32\"/><text x=\"%d\" y=\"%d\" font-size=\"11\">batching on (example model.yaml)</text>\n",
        left, h - 18, left + 14, h - 9, left + 230, h - 18, left + 244, h - 9));
    s.append("</svg>\n");

    // Tables: the same as the Markdown.
    s.append("<h2>In-process ceiling</h2>\n<table><tr><th>batch size</th><th>sentences/s</th><th>call p50 ms</th>"
        + "<th>call p99 ms</th><th>tokenize ms</th><th>ONNX run ms</th><th>pool ms</th></tr>\n");
    for (JsonNode b : c.path("batch_sizes")) {
      JsonNode wh = b.path("mean_ms_per_call");
      s.append("<tr><td class=\"n\">").append(b.path("batch_size").asInt())
          .append("</td><td class=\"n\">").append(fmt(b.path("sentences_per_s").asDouble(), 1))
          .append("</td><td class=\"n\">").append(fmt(b.path("call_latency_ms").path("p50").asDouble(), 3))
          .append("</td><td class=\"n\">").append(fmt(b.path("call_latency_ms").path("p99").asDouble(), 3))
          .append("</td><td class=\"n\">").append(fmt(wh.path("tokenize").asDouble(), 3))
          .append("</td><td class=\"n\">").append(fmt(wh.path("onnx_run").asDouble(), 3))
          .append("</td><td class=\"n\">").append(fmt(wh.path("pool").asDouble(), 3))
          .append("</td></tr>\n");
    }
    s.append("</table>\n");
    s.append("<h2>Berth over HTTP</h2>\n<table><tr><th>point</th><th>sentences/s</th><th>p50 ms</th>"
        + "<th>p99 ms</th><th>vs ceiling</th><th>errors</th></tr>\n");
    for (JsonNode p : pts) {
      s.append("<tr><td>").append(esc(p.path("label").asText()))
          .append("</td><td class=\"n\">").append(fmt(p.path("sentences_per_s").asDouble(), 1))
          .append("</td><td class=\"n\">").append(fmt(p.path("latency_ms").path("p50").asDouble(), 2))
          .append("</td><td class=\"n\">").append(fmt(p.path("latency_ms").path("p99").asDouble(), 2))
          .append("</td><td class=\"n\">").append(fmt(p.path("ratio_to_ceiling").asDouble(), 2))
          .append("</td><td class=\"n\">").append(p.path("errors").asLong())
          .append("</td></tr>\n");
    }
    JsonNode hw = r.path("hello_world");
    if (!hw.isMissingNode()) {
      s.append("<tr><td>hello world: GET /v2/health/live, c=32</td><td class=\"n\">")
          .append(fmt(hw.path("requests_per_s").asDouble(), 1)).append(" req/s</td><td class=\"n\">")
          .append(fmt(hw.path("latency_ms").path("p50").asDouble(), 2)).append("</td><td class=\"n\">")
          .append(fmt(hw.path("latency_ms").path("p99").asDouble(), 2)).append("</td><td class=\"n\">-</td><td class=\"n\">")
          .append(hw.path("errors").asLong()).append("</td></tr>\n");
    }
    s.append("</table>\n<h2>Where time goes (means over each point)</h2>\n<table><tr><th>point</th><th>client ms</th>"
        + "<th>Berth request ms</th><th>queue ms</th><th>engine ms/call</th><th>mean batch</th>"
        + "<th>engine busy</th><th>client &minus; Berth ms</th></tr>\n");
    for (JsonNode p : pts) {
      JsonNode sv = p.path("server");
      if (sv.isMissingNode()) {
        continue;
      }
      s.append("<tr><td>").append(esc(p.path("label").asText()))
          .append("</td><td class=\"n\">").append(fmt(p.path("latency_ms").path("mean").asDouble(), 2))
          .append("</td><td class=\"n\">").append(fmt(sv.path("mean_request_ms").asDouble(), 2))
          .append("</td><td class=\"n\">").append(fmt(sv.path("mean_queue_ms").asDouble(), 2))
          .append("</td><td class=\"n\">").append(fmt(sv.path("mean_compute_ms_per_call").asDouble(), 2))
          .append("</td><td class=\"n\">").append(fmt(sv.path("mean_batch_size").asDouble(), 1))
          .append("</td><td class=\"n\">").append(fmt(100 * sv.path("engine_busy").asDouble(), 0))
          .append("%</td><td class=\"n\">").append(fmt(sv.path("client_minus_server_mean_ms").asDouble(), 2))
          .append("</td></tr>\n");
    }
    s.append("</table>\n<h2>Ratios</h2>\n<table><tr><th>ratio</th><th>value</th><th>goal</th><th></th></tr>\n");
    for (JsonNode g : r.path("goals")) {
      boolean msUnit = g.path("unit").asText().equals("ms");
      s.append("<tr><td>").append(esc(g.path("name").asText()))
          .append("</td><td class=\"n\">").append(fmt(g.path("value").asDouble(), msUnit ? 3 : 2))
          .append(msUnit ? " ms" : "x").append("</td><td>").append(esc(g.path("target").asText()))
          .append("</td><td>");
      if (g.has("met")) {
        s.append(g.path("met").asBoolean() ? "<span class=\"met\">met</span>" : "<span class=\"miss\">not met</span>");
      }
      s.append("</td></tr>\n");
    }
    s.append("</table>\n<p>Ceiling: ONNX Runtime called in one process on one thread (tokenization, model,"
        + " mean pooling and L2 normalisation per batch; no HTTP, no JSON). HTTP points: wrk, one"
        + " sentence per OIP v2 JSON request, rotating through ").append(c.path("sentences").path("count").asInt())
        .append(" short sentences (at most ").append(c.path("sentences").path("max_tokens").asInt())
        .append(" tokens). The load generator runs on the same machine as the server.</p>\n</body></html>\n");
    return s.toString();
  }

  private static double niceCeil(double v) {
    if (v <= 0) {
      return 1;
    }
    double mag = Math.pow(10, Math.floor(Math.log10(v)));
    for (double step : new double[] {1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10}) {
      if (step * mag >= v) {
        return step * mag;
      }
    }
    return 10 * mag;
  }

  static String fmt(double v, int digits) {
    return String.format(Locale.ROOT, "%." + digits + "f", v);
  }

  private static String esc(String v) {
    return v.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
  }
}
