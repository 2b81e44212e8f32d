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
import java.util.Map;

/**
 * Puts a bench/serving run together: the in-process ceiling (one InProcessCeiling JSON per layout:
 * how many callers share the session, how many intra-op threads each call gets), the HTTP points
 * (one JSON line each, wrk's numbers from bench/oip.lua) and the model.yaml each Berth server ran
 * with, into one results JSON, a Markdown table on stdout and a self-contained HTML page with SVG
 * charts. The ceiling is the best sentences/s over all layouts and batch sizes. The added-latency
 * goal comes from AddedLatency's paired measurement beside each c=1 point ({@code --paired});
 * without one, it subtracts the lowest of the ceiling layouts' batch-1 p50s.
 *
 * <pre>
 * Report --ceiling C1.json [--ceiling C2.json]... --points P.jsonl --json OUT.json --html OUT.html
 *   [--berth-config NAME=MODEL.yaml]... [--quick] [--meta key=value]...
 * </pre>
 *
 * NAME is "on" (the batching-on server) or "off" (batching off).
 */
public final class Report {
  /** c=32 with batching on, over the in-process ceiling. */
  static final double GOAL_CEILING_RATIO = 0.8;

  /** c=32, batching on over batching off. */
  static final double GOAL_BATCHING_GAIN = 2.0;

  /** c=1 p50 over HTTP minus the in-process single-sentence p50, milliseconds. */
  static final double GOAL_ADDED_LATENCY_MS = 0.5;

  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  public static void main(String[] args) throws IOException {
    List<Path> ceilingFiles = new ArrayList<>();
    Map<String, JsonNode> paired = new java.util.TreeMap<>();
    ObjectNode configs = JSON.createObjectNode();
    Path pointsFile = null;
    Path jsonOut = null;
    Path htmlOut = null;
    boolean quick = false;
    ObjectNode meta = JSON.createObjectNode();
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--ceiling" -> ceilingFiles.add(Path.of(args[++i]));
        case "--paired" -> {
          String kv = args[++i];
          int eq = kv.indexOf('=');
          paired.put(kv.substring(0, eq), JSON.readTree(Path.of(kv.substring(eq + 1)).toFile()));
        }
        case "--berth-config" -> {
          String kv = args[++i];
          int eq = kv.indexOf('=');
          Path yaml = Path.of(kv.substring(eq + 1));
          configs.set(
              kv.substring(0, eq), modelYaml(Files.readAllLines(yaml, StandardCharsets.UTF_8)));
        }
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
    if (ceilingFiles.isEmpty() || pointsFile == null || jsonOut == null || htmlOut == null) {
      System.err.println(
          "usage: Report --ceiling C.json [--ceiling C2.json]... --points P.jsonl --json OUT.json"
              + " --html OUT.html [--berth-config on|off=MODEL.yaml]... [--paired on|off=ADDED.json]..."
              + " [--quick] [--meta key=value]...");
      System.exit(2);
    }
    List<JsonNode> ceilings = new ArrayList<>();
    for (Path f : ceilingFiles) {
      ceilings.add(JSON.readTree(f.toFile()));
    }
    List<JsonNode> raw = new ArrayList<>();
    for (String line : Files.readAllLines(pointsFile, StandardCharsets.UTF_8)) {
      if (!line.isBlank()) {
        raw.add(JSON.readTree(line));
      }
    }
    ObjectNode results = build(ceilings, raw, meta, configs, quick);
    paired(results, paired);
    JSON.writeValue(jsonOut.toFile(), results);
    Files.writeString(htmlOut, html(results), StandardCharsets.UTF_8);
    System.out.print(markdown(results));
  }

  /**
   * What a model.yaml says about how Berth runs the model: its {@code instances} line, its {@code
   * options} block and its {@code batching} block, as written (comments dropped), and the number of
   * instances (1 when the file does not say).
   */
  static ObjectNode modelYaml(List<String> lines) {
    ObjectNode o = JSON.createObjectNode();
    ArrayNode instances = o.putArray("instances");
    ArrayNode options = o.putArray("options");
    ArrayNode batching = o.putArray("batching");
    ArrayNode into = null;
    int count = 1;
    for (String raw : lines) {
      String line = raw.replaceFirst("(^|\\s+)#.*$", "").stripTrailing();
      if (line.isBlank()) {
        continue;
      }
      boolean top = !Character.isWhitespace(line.charAt(0));
      if (top) {
        into = null;
        if (line.startsWith("instances:")) {
          into = instances;
          String v = line.substring("instances:".length()).strip();
          try {
            count = Integer.parseInt(v);
          } catch (NumberFormatException e) {
            // left at 1; the line itself is recorded
          }
        } else if (line.startsWith("options:")) {
          into = options;
        } else if (line.startsWith("batching:")) {
          into = batching;
        }
      }
      if (into != null) {
        into.add(line);
      }
    }
    o.put("instances_count", count);
    return o;
  }

  /** "a", "b" ... for the i-th layout. */
  static String letter(int i) {
    return String.valueOf((char) ('a' + i));
  }

  /**
   * Takes the added latency from AddedLatency's paired measurement beside each c=1 point ({@code
   * --paired on|off=FILE}): a lone sentence over HTTP and in process in alternating blocks of a
   * fraction of a second, since this machine's speed drifts by 10% and more over the minutes
   * between the ceiling sweep and the c=1 points, which a difference of a fraction of a millisecond
   * cannot carry. The goal uses the in-process layout the server's own instances run (the same
   * engine work on both sides); the others are kept beside it.
   */
  static void paired(ObjectNode results, Map<String, JsonNode> pairedRuns) {
    for (JsonNode goal : results.path("goals")) {
      String mode =
          switch (goal.path("id").asText()) {
            case "added_latency" -> "on";
            case "added_latency_unbatched" -> "off";
            default -> null;
          };
      JsonNode run = mode == null ? null : pairedRuns.get(mode);
      if (run == null) {
        continue;
      }
      JsonNode server = null;
      ObjectNode g = (ObjectNode) goal;
      ObjectNode others = g.putObject("added_against_other_layouts_ms");
      for (JsonNode l : run.path("in_process")) {
        if (server == null && l.path("server_layout").asBoolean()) {
          server = l;
        } else {
          others.put(
              l.path("layout").asText(),
              l.path("added_p50_ms").path("median_of_blocks").asDouble());
        }
      }
      if (server == null) {
        continue;
      }
      double added = server.path("added_p50_ms").path("median_of_blocks").asDouble();
      g.put("value", added);
      g.put("http_p50_ms", run.path("http").path("p50_ms").asDouble());
      g.put("in_process_p50_ms", server.path("p50_ms").asDouble());
      g.put("in_process_layout", server.path("layout").asText());
      g.put(
          "quartiles_of_blocks_ms",
          server.path("added_p50_ms").path("q1").asDouble()
              + " to "
              + server.path("added_p50_ms").path("q3").asDouble());
      g.put("rounds", run.path("rounds").asInt());
      // where a lone request's time goes in the server, beside the in-process call's stages
      for (String split :
          List.of("server_split_ms", "in_process_split_ms", "server_minus_in_process_ms")) {
        if (run.has(split)) {
          g.set(split, run.get(split));
        }
      }
      g.put(
          "name",
          "c=1 (batching "
              + mode
              + "): lone-sentence p50 over HTTP - in process ("
              + server.path("layout").asText()
              + ", the server's instances' layout), alternating blocks, median");
      if (g.has("met")) {
        g.put("met", added <= GOAL_ADDED_LATENCY_MS);
      }
    }
  }

  /** Whether the added-latency goal came from a paired measurement. */
  private static boolean pairedGoal(JsonNode results) {
    for (JsonNode g : results.path("goals")) {
      if (g.path("id").asText().equals("added_latency") && g.has("rounds")) {
        return true;
      }
    }
    return false;
  }

  /** "(a)" for the layout id "a". */
  static String tag(String id) {
    return id.isEmpty() ? "" : "(" + id + ")";
  }

  static ObjectNode build(
      List<JsonNode> ceilings,
      List<JsonNode> raw,
      ObjectNode meta,
      ObjectNode configs,
      boolean quick) {
    ObjectNode root = JSON.createObjectNode();
    root.put("benchmark", "serving");
    root.put("model", "all-MiniLM-L6-v2 int8 ONNX (examples/models/minilm)");
    root.put("quick", quick);
    root.set("meta", meta);

    // The ceiling: the best of the in-process layouts.
    ObjectNode ceiling = root.putObject("ceiling");
    ObjectNode bestOut = ceiling.putObject("best");
    ObjectNode singleOut = ceiling.putObject("single_sentence_p50_ms");
    ObjectNode singleBy = singleOut.putObject("by_layout");
    ArrayNode layouts = ceiling.putArray("layouts");
    double best = 0;
    double singleP50 = Double.NaN;
    for (int i = 0; i < ceilings.size(); i++) {
      ObjectNode l = JSON.createObjectNode();
      JsonNode c = ceilings.get(i);
      int callers = c.path("settings").path("callers").asInt(1);
      int threads = c.path("settings").path("intra_op_threads").asInt(0);
      String label = c.path("layout").asText(InProcessCeiling.layout(callers, threads));
      l.put("id", letter(i));
      l.put("layout", label);
      l.put("callers", callers);
      l.put("intra_op_threads", threads);
      c.properties()
          .forEach(
              e -> {
                if (!l.has(e.getKey())) {
                  l.set(e.getKey(), e.getValue());
                }
              });
      layouts.add(l);
      double rate = c.path("best").path("sentences_per_s").asDouble();
      if (rate > best) {
        best = rate;
        bestOut.put("layout_id", letter(i));
        bestOut.put("layout", label);
        bestOut.put("callers", callers);
        bestOut.put("intra_op_threads", threads);
        bestOut.put("batch_size", c.path("best").path("batch_size").asInt());
        bestOut.put("sentences_per_s", rate);
      }
      JsonNode single = c.path("single_sentence_latency_ms").path("p50");
      if (single.isNumber()) {
        ObjectNode s = singleBy.putObject(letter(i));
        s.put("layout", label);
        s.put("p50", single.asDouble());
        s.put("p99", c.path("single_sentence_latency_ms").path("p99").asDouble());
        if (Double.isNaN(singleP50) || single.asDouble() < singleP50) {
          singleP50 = single.asDouble();
          singleOut.put("used_for_goal", singleP50);
          singleOut.put("used_layout_id", letter(i));
          singleOut.put("used_layout", label);
        }
      }
    }
    if (Double.isNaN(singleP50)) {
      singleP50 = 0;
    }
    root.set("berth_config", configs);

    ArrayNode points = root.putArray("points");
    ObjectNode hello = null;
    for (JsonNode p : raw) {
      JsonNode wrk = p.path("wrk");
      double seconds = wrk.path("duration_us").asDouble() / 1e6;
      long requests = wrk.path("requests").asLong();
      JsonNode e = wrk.path("errors");
      long errors =
          e.path("connect").asLong()
              + e.path("read").asLong()
              + e.path("write").asLong()
              + e.path("status").asLong()
              + e.path("timeout").asLong();
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
      int instances =
          configs
              .path(p.path("batching").asBoolean() ? "on" : "off")
              .path("instances_count")
              .asInt(1);
      server(
          o,
          p.path("server_before"),
          p.path("server_after"),
          seconds,
          l.path("mean").asDouble() / 1000,
          instances);
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
      goal(
          goals,
          "throughput",
          "c=32 batching on / in-process ceiling",
          on32.path("sentences_per_s").asDouble() / best,
          ">=",
          GOAL_CEILING_RATIO,
          "x");
    }
    if (on32 != null && off32 != null && off32.path("sentences_per_s").asDouble() > 0) {
      goal(
          goals,
          "batching_gain",
          "c=32 batching on / batching off",
          on32.path("sentences_per_s").asDouble() / off32.path("sentences_per_s").asDouble(),
          ">=",
          GOAL_BATCHING_GAIN,
          "x");
    }
    String singleFrom = tag(singleOut.path("used_layout_id").asText(""));
    if (on1 != null) {
      ObjectNode g =
          goal(
              goals,
              "added_latency",
              "c=1 p50 over HTTP (batching on) - in-process single-sentence p50 (lower of the layouts: "
                  + singleFrom
                  + ")",
              on1.path("latency_ms").path("p50").asDouble() - singleP50,
              "<=",
              GOAL_ADDED_LATENCY_MS,
              "ms");
      g.put("in_process_p50_ms", singleP50);
      g.put("in_process_layout", singleOut.path("used_layout").asText(""));
    }
    if (off1 != null) {
      ObjectNode info = goals.addObject();
      info.put("id", "added_latency_unbatched");
      info.put(
          "name",
          "c=1 p50 over HTTP (batching off) - in-process single-sentence p50 (lower of the layouts: "
              + singleFrom
              + ")");
      info.put(
          "value",
          InProcessCeiling.round(off1.path("latency_ms").path("p50").asDouble() - singleP50, 3));
      info.put("unit", "ms");
      info.put("target", "information only");
      info.put("in_process_p50_ms", singleP50);
      info.put("in_process_layout", singleOut.path("used_layout").asText(""));
    }
    return root;
  }

  /** Berth's own histograms over the point (differences of /metrics scraped before and after). */
  private static void server(
      ObjectNode o,
      JsonNode before,
      JsonNode after,
      double seconds,
      double clientMeanMs,
      int instances) {
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
    s.put(
        "mean_compute_ms_per_call",
        InProcessCeiling.round(computeCalls > 0 ? 1000 * compute / computeCalls : 0, 3));
    s.put("mean_queue_ms", InProcessCeiling.round(queued > 0 ? 1000 * queue / queued : 0, 3));
    s.put("mean_request_ms", InProcessCeiling.round(1000 * request / requests, 3));
    // Share of the engine instances' time spent computing: compute summed over all calls, over
    // wall time x instances (calls on several instances overlap).
    s.put("instances", instances);
    s.put(
        "engine_busy",
        InProcessCeiling.round(seconds > 0 ? compute / (seconds * Math.max(1, instances)) : 0, 3));
    // What the client waited beyond Berth's own arrival-to-answer time: HTTP, sockets, wrk.
    s.put(
        "client_minus_server_mean_ms",
        InProcessCeiling.round(clientMeanMs - 1000 * request / requests, 3));
  }

  private static double delta(JsonNode before, JsonNode after, String key) {
    return after.path(key).asDouble() - before.path(key).asDouble();
  }

  private static JsonNode find(ArrayNode points, boolean batching, int concurrency) {
    for (JsonNode p : points) {
      if (p.path("batching").asBoolean() == batching
          && p.path("concurrency").asInt() == concurrency) {
        return p;
      }
    }
    return null;
  }

  private static ObjectNode goal(
      ArrayNode goals,
      String id,
      String name,
      double value,
      String op,
      double target,
      String unit) {
    ObjectNode g = goals.addObject();
    g.put("id", id);
    g.put("name", name);
    g.put("value", InProcessCeiling.round(value, 3));
    g.put("unit", unit);
    g.put("target", op + " " + fmt(target, 2) + (unit.equals("x") ? "" : " " + unit));
    g.put("met", op.equals(">=") ? value >= target : value <= target);
    return g;
  }

  // ---------------------------------------------------------------- Markdown

  static String markdown(JsonNode r) {
    StringBuilder md = new StringBuilder();
    JsonNode c = r.path("ceiling");
    JsonNode meta = r.path("meta");
    md.append("## Berth serving benchmark: MiniLM, ")
        .append(meta.path("date").asText(""))
        .append('\n');
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
    JsonNode cb = c.path("best");
    md.append("Ceiling (in-process ONNX Runtime, tokenization + model + mean pooling; the best of ")
        .append(c.path("layouts").size())
        .append(" layouts and all batch sizes): **")
        .append(fmt(cb.path("sentences_per_s").asDouble(), 1))
        .append(" sentences/s** with ")
        .append(tag(cb.path("layout_id").asText("")))
        .append(' ')
        .append(cb.path("layout").asText(""))
        .append(", batch size ")
        .append(cb.path("batch_size").asInt())
        .append(".\n\n");
    JsonNode single = c.path("single_sentence_p50_ms");
    md.append("In-process single-sentence (batch 1) call p50:");
    String sepc = " ";
    for (JsonNode l : c.path("layouts")) {
      JsonNode sl = single.path("by_layout").path(l.path("id").asText());
      if (sl.isMissingNode()) {
        continue;
      }
      md.append(sepc)
          .append(tag(l.path("id").asText()))
          .append(' ')
          .append(fmt(sl.path("p50").asDouble(), 3))
          .append(" ms (p99 ")
          .append(fmt(sl.path("p99").asDouble(), 3))
          .append(" ms)");
      sepc = "; ";
    }
    if (single.has("used_for_goal") && !pairedGoal(r)) {
      md.append(". The added-latency goal subtracts the lower, ")
          .append(tag(single.path("used_layout_id").asText()))
          .append(' ')
          .append(fmt(single.path("used_for_goal").asDouble(), 3))
          .append(" ms");
    }
    md.append(".\n\n");
    String berth = berthConfigLine(r.path("berth_config"), false);
    if (!berth.isEmpty()) {
      md.append(berth).append("\n\n");
    }

    List<Integer> sizes = batchSizes(c);
    md.append("| in-process layout | |");
    StringBuilder sep = new StringBuilder("|---|---|");
    for (int b : sizes) {
      md.append(" batch ").append(b).append(" |");
      sep.append("---:|");
    }
    md.append('\n').append(sep).append('\n');
    for (JsonNode l : c.path("layouts")) {
      String name = tag(l.path("id").asText()) + " " + l.path("layout").asText();
      StringBuilder rate = new StringBuilder("| " + name + " | sentences/s |");
      StringBuilder p50 = new StringBuilder("| | call p50 ms |");
      StringBuilder run = new StringBuilder("| | of which ONNX run |");
      for (int size : sizes) {
        JsonNode b = batch(l, size);
        if (b == null) {
          rate.append(" - |");
          p50.append(" - |");
          run.append(" - |");
          continue;
        }
        boolean isBest =
            l.path("id").asText().equals(cb.path("layout_id").asText())
                && size == cb.path("batch_size").asInt();
        String v = fmt(b.path("sentences_per_s").asDouble(), 1);
        rate.append(' ').append(isBest ? "**" + v + "**" : v).append(" |");
        p50.append(' ')
            .append(fmt(b.path("call_latency_ms").path("p50").asDouble(), 2))
            .append(" |");
        run.append(' ').append(onnxShare(b)).append(" |");
      }
      md.append(rate).append('\n').append(p50).append('\n').append(run).append('\n');
    }
    md.append('\n');

    md.append(
        "| Berth over HTTP (OIP v2 JSON, 1 sentence/request) | sentences/s | p50 ms | p99 ms | vs ceiling |\n");
    md.append("|---|---:|---:|---:|---:|\n");
    for (JsonNode p : r.path("points")) {
      md.append("| ").append(p.path("label").asText());
      if (p.path("errors").asLong() > 0) {
        md.append(" (").append(p.path("errors").asLong()).append(" errors)");
      }
      md.append(" | ")
          .append(fmt(p.path("sentences_per_s").asDouble(), 1))
          .append(" | ")
          .append(fmt(p.path("latency_ms").path("p50").asDouble(), 2))
          .append(" | ")
          .append(fmt(p.path("latency_ms").path("p99").asDouble(), 2))
          .append(" | ")
          .append(fmt(p.path("ratio_to_ceiling").asDouble(), 2))
          .append(" |\n");
    }
    JsonNode h = r.path("hello_world");
    if (!h.isMissingNode()) {
      md.append("| hello world: GET /v2/health/live, c=32");
      if (h.path("errors").asLong() > 0) {
        md.append(" (").append(h.path("errors").asLong()).append(" errors)");
      }
      md.append(" | ")
          .append(fmt(h.path("requests_per_s").asDouble(), 1))
          .append(" req/s")
          .append(" | ")
          .append(fmt(h.path("latency_ms").path("p50").asDouble(), 2))
          .append(" | ")
          .append(fmt(h.path("latency_ms").path("p99").asDouble(), 2))
          .append(" | - |\n");
    }
    md.append('\n');
    md.append(
        "| where time goes (means) | client ms | Berth request ms | queue ms | engine ms/call | mean batch | engine busy | client - Berth ms |\n");
    md.append("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (JsonNode p : r.path("points")) {
      JsonNode sv = p.path("server");
      if (sv.isMissingNode()) {
        continue;
      }
      md.append("| ")
          .append(p.path("label").asText())
          .append(" | ")
          .append(String.join(" | ", timeSplitCells(p, sv)))
          .append(" |\n");
    }
    md.append('\n');
    md.append("| ratio | value | goal | |\n|---|---:|---:|---|\n");
    for (JsonNode g : r.path("goals")) {
      md.append("| ")
          .append(g.path("name").asText())
          .append(" | ")
          .append(fmt(g.path("value").asDouble(), g.path("unit").asText().equals("ms") ? 3 : 2))
          .append(g.path("unit").asText().equals("ms") ? " ms" : "x")
          .append(" | ")
          .append(g.path("target").asText())
          .append(" | ")
          .append(g.has("met") ? (g.path("met").asBoolean() ? "met" : "NOT met") : "")
          .append(" |\n");
    }
    return md.toString();
  }

  /** The batch sizes any layout measured, in order. */
  static List<Integer> batchSizes(JsonNode ceiling) {
    List<Integer> out = new ArrayList<>();
    for (JsonNode l : ceiling.path("layouts")) {
      for (JsonNode b : l.path("batch_sizes")) {
        int size = b.path("batch_size").asInt();
        if (!out.contains(size)) {
          out.add(size);
        }
      }
    }
    out.sort(null);
    return out;
  }

  static JsonNode batch(JsonNode layout, int size) {
    for (JsonNode b : layout.path("batch_sizes")) {
      if (b.path("batch_size").asInt() == size) {
        return b;
      }
    }
    return null;
  }

  private static String onnxShare(JsonNode b) {
    JsonNode w = b.path("mean_ms_per_call");
    double total =
        w.path("tokenize").asDouble()
            + w.path("tensors").asDouble()
            + w.path("onnx_run").asDouble()
            + w.path("pool").asDouble();
    return total > 0 ? fmt(100 * w.path("onnx_run").asDouble() / total, 0) + "%" : "-";
  }

  /** One sentence on the model.yaml lines each server ran with; HTML-escaped when asked. */
  static String berthConfigLine(JsonNode configs, boolean html) {
    JsonNode on = configs.path("on");
    JsonNode off = configs.path("off");
    if (on.isMissingNode() && off.isMissingNode()) {
      return "";
    }
    StringBuilder b = new StringBuilder("Berth ran with the example model.yaml: ");
    JsonNode any = on.isMissingNode() ? off : on;
    b.append(lines(any.path("instances"), "instances: not set (1)", html)).append("; ");
    b.append(lines(any.path("options"), "options: not set (the engine's defaults)", html));
    b.append(". Batching on: the file as it is (")
        .append(lines(on.path("batching"), "batching: not set", html))
        .append("); batching off: the same file with max-batch-size 1 (")
        .append(lines(off.path("batching"), "batching: not set", html))
        .append(").");
    if (!on.isMissingNode()
        && !off.isMissingNode()
        && (!on.path("instances").equals(off.path("instances"))
            || !on.path("options").equals(off.path("options")))) {
      b.append(" WARNING: the two servers' instances/options differ.");
    }
    return b.toString();
  }

  private static String lines(JsonNode lines, String none, boolean html) {
    if (!lines.isArray() || lines.isEmpty()) {
      return html ? esc(none) : none;
    }
    // A block ("options:" and its indented lines) is written inline: options: {a: 1, b: 2}.
    String text = lines.get(0).asText().strip();
    if (lines.size() > 1) {
      List<String> parts = new ArrayList<>();
      for (int i = 1; i < lines.size(); i++) {
        parts.add(lines.get(i).asText().strip());
      }
      text = text + " {" + String.join(", ", parts) + "}";
    }
    return html ? "<code>" + esc(text) + "</code>" : "`" + text + "`";
  }

  // ---------------------------------------------------------------- HTML

  static String html(JsonNode r) {
    JsonNode c = r.path("ceiling");
    double best = c.path("best").path("sentences_per_s").asDouble();
    List<JsonNode> pts = new ArrayList<>();
    r.path("points").forEach(pts::add);

    StringBuilder s = new StringBuilder();
    s.append(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>Berth serving benchmark ")
        .append(esc(r.path("meta").path("date").asText("")))
        .append("</title>\n<style>\n")
        .append(
            "body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:60em;color:#222;padding:0 1em}\n")
        .append(
            "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.3em .7em}")
        .append("td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}\n")
        .append(
            ".warn{background:#fff3cd;border:1px solid #e0c36a;padding:.5em 1em}.met{color:#1a7f37}.miss{color:#c62828}\n")
        .append("svg text{font-family:inherit}\n</style></head><body>\n");
    s.append("<h1>Berth serving benchmark: MiniLM</h1>\n");
    if (r.path("quick").asBoolean()) {
      s.append(
          "<p class=\"warn\">Quick smoke run (<code>--quick</code>): short points, numbers are noisy.</p>\n");
    }
    s.append("<p>");
    r.path("meta")
        .properties()
        .forEach(
            e ->
                s.append("<b>")
                    .append(esc(e.getKey()))
                    .append("</b>: ")
                    .append(esc(e.getValue().asText()))
                    .append("<br>\n"));
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
    svgFrame(
        s,
        w,
        h,
        left,
        top,
        plotW,
        plotH,
        axisMax,
        "sentences per second per point",
        "Sentences/s over HTTP, one sentence per request");
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
      s.append(
          String.format(
              Locale.ROOT,
              "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"><title>%s: %s sentences/s</title></rect>\n",
              x,
              y,
              bw,
              bh,
              color,
              esc(p.path("label").asText()),
              fmt(v, 1)));
      s.append(
          String.format(
              Locale.ROOT,
              "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"middle\">%s</text>\n",
              x + bw / 2,
              y - 4,
              fmt(v, 0)));
      s.append(
          String.format(
              Locale.ROOT,
              "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%s</text>"
                  + "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">c=%d</text>\n",
              x + bw / 2,
              top + plotH + 16,
              p.path("batching").asBoolean() ? "batching on" : "batching off",
              x + bw / 2,
              top + plotH + 30,
              p.path("concurrency").asInt()));
    }
    for (JsonNode l : c.path("layouts")) {
      if (l.path("id").asText().equals(c.path("best").path("layout_id").asText())) {
        continue;
      }
      double v = l.path("best").path("sentences_per_s").asDouble();
      double y = top + plotH - plotH * v / axisMax;
      s.append(
          String.format(
              Locale.ROOT,
              "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ef6c00\" stroke-dasharray=\"4 4\"/>"
                  + "<text x=\"%d\" y=\"%.1f\" font-size=\"10\" fill=\"#ef6c00\">in-process %s %s: %s/s (batch %d)</text>\n",
              left,
              left + plotW,
              y,
              y,
              left + 4,
              y - 4,
              esc(tag(l.path("id").asText())),
              esc(l.path("layout").asText()),
              fmt(v, 0),
              l.path("best").path("batch_size").asInt()));
    }
    if (best > 0) {
      double y = top + plotH - plotH * best / axisMax;
      s.append(
          String.format(
              Locale.ROOT,
              "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#c62828\" stroke-width=\"2\" stroke-dasharray=\"6 4\"/>"
                  + "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" fill=\"#c62828\" text-anchor=\"end\">in-process ceiling %s/s (%s %s, batch %d)</text>\n",
              left,
              left + plotW,
              y,
              y,
              left + plotW,
              y - 4,
              fmt(best, 0),
              esc(tag(c.path("best").path("layout_id").asText())),
              esc(c.path("best").path("layout").asText()),
              c.path("best").path("batch_size").asInt()));
      double g = top + plotH - plotH * best * GOAL_CEILING_RATIO / axisMax;
      s.append(
          String.format(
              Locale.ROOT,
              "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#ef9a9a\" stroke-dasharray=\"2 3\"/>"
                  + "<text x=\"%d\" y=\"%.1f\" font-size=\"10\" fill=\"#c62828\" text-anchor=\"end\">goal: %s x ceiling</text>\n",
              left,
              left + plotW,
              g,
              g,
              left + plotW,
              g + 12,
              fmt(GOAL_CEILING_RATIO, 1)));
    }
    s.append(
        String.format(
            Locale.ROOT,
            "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#333\"/>"
                + "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n",
            left,
            left + plotW,
            top + plotH,
            top + plotH,
            left,
            left,
            top,
            top + plotH));
    s.append(
        String.format(
            Locale.ROOT,
            "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"#9e9e9e\"/><text x=\"%d\" y=\"%d\" font-size=\"11\">batching off (max-batch-size 1)</text>"
                + "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"#2e7d32\"/><text x=\"%d\" y=\"%d\" font-size=\"11\">batching on (example model.yaml)</text>\n",
            left,
            h - 18,
            left + 14,
            h - 9,
            left + 230,
            h - 18,
            left + 244,
            h - 9));
    s.append("</svg>\n");

    String berth = berthConfigLine(r.path("berth_config"), true);
    if (!berth.isEmpty()) {
      s.append("<p>").append(berth).append("</p>\n");
    }

    // The in-process layouts: sentences/s by batch size, one series each.
    s.append(
            "<h2>In-process ceiling</h2>\n<p>The ceiling is the best of these layouts and batch sizes: <b>")
        .append(fmt(best, 1))
        .append(" sentences/s</b> with ")
        .append(esc(tag(c.path("best").path("layout_id").asText())))
        .append(' ')
        .append(esc(c.path("best").path("layout").asText()))
        .append(", batch size ")
        .append(c.path("best").path("batch_size").asInt())
        .append(". Single-sentence (batch 1) call p50: ");
    JsonNode single = c.path("single_sentence_p50_ms");
    String sepc = "";
    for (JsonNode l : c.path("layouts")) {
      JsonNode sl = single.path("by_layout").path(l.path("id").asText());
      if (!sl.isMissingNode()) {
        s.append(sepc)
            .append(esc(tag(l.path("id").asText())))
            .append(' ')
            .append(fmt(sl.path("p50").asDouble(), 3))
            .append(" ms");
        sepc = ", ";
      }
    }
    if (single.has("used_for_goal") && !pairedGoal(r)) {
      s.append("; the added-latency goal subtracts the lower, ")
          .append(esc(tag(single.path("used_layout_id").asText())));
    }
    s.append(".</p>\n");
    s.append(layoutChart(c));
    s.append(
        "<table><tr><th>layout</th><th>batch size</th><th>sentences/s</th><th>call p50 ms</th>"
            + "<th>call p99 ms</th><th>tokenize ms</th><th>ONNX run ms</th><th>pool ms</th></tr>\n");
    for (JsonNode l : c.path("layouts")) {
      for (JsonNode b : l.path("batch_sizes")) {
        JsonNode wh = b.path("mean_ms_per_call");
        boolean isBest =
            l.path("id").asText().equals(c.path("best").path("layout_id").asText())
                && b.path("batch_size").asInt() == c.path("best").path("batch_size").asInt();
        s.append("<tr><td>")
            .append(esc(tag(l.path("id").asText()) + " " + l.path("layout").asText()))
            .append("</td><td class=\"n\">")
            .append(b.path("batch_size").asInt())
            .append("</td><td class=\"n\">")
            .append(isBest ? "<b>" : "")
            .append(fmt(b.path("sentences_per_s").asDouble(), 1))
            .append(isBest ? "</b>" : "")
            .append("</td><td class=\"n\">")
            .append(fmt(b.path("call_latency_ms").path("p50").asDouble(), 3))
            .append("</td><td class=\"n\">")
            .append(fmt(b.path("call_latency_ms").path("p99").asDouble(), 3))
            .append("</td><td class=\"n\">")
            .append(fmt(wh.path("tokenize").asDouble(), 3))
            .append("</td><td class=\"n\">")
            .append(fmt(wh.path("onnx_run").asDouble(), 3))
            .append("</td><td class=\"n\">")
            .append(fmt(wh.path("pool").asDouble(), 3))
            .append("</td></tr>\n");
      }
    }
    s.append("</table>\n");
    s.append(
        "<h2>Berth over HTTP</h2>\n<table><tr><th>point</th><th>sentences/s</th><th>p50 ms</th>"
            + "<th>p99 ms</th><th>vs ceiling</th><th>errors</th></tr>\n");
    for (JsonNode p : pts) {
      s.append("<tr><td>")
          .append(esc(p.path("label").asText()))
          .append("</td><td class=\"n\">")
          .append(fmt(p.path("sentences_per_s").asDouble(), 1))
          .append("</td><td class=\"n\">")
          .append(fmt(p.path("latency_ms").path("p50").asDouble(), 2))
          .append("</td><td class=\"n\">")
          .append(fmt(p.path("latency_ms").path("p99").asDouble(), 2))
          .append("</td><td class=\"n\">")
          .append(fmt(p.path("ratio_to_ceiling").asDouble(), 2))
          .append("</td><td class=\"n\">")
          .append(p.path("errors").asLong())
          .append("</td></tr>\n");
    }
    JsonNode hw = r.path("hello_world");
    if (!hw.isMissingNode()) {
      s.append("<tr><td>hello world: GET /v2/health/live, c=32</td><td class=\"n\">")
          .append(fmt(hw.path("requests_per_s").asDouble(), 1))
          .append(" req/s</td><td class=\"n\">")
          .append(fmt(hw.path("latency_ms").path("p50").asDouble(), 2))
          .append("</td><td class=\"n\">")
          .append(fmt(hw.path("latency_ms").path("p99").asDouble(), 2))
          .append("</td><td class=\"n\">-</td><td class=\"n\">")
          .append(hw.path("errors").asLong())
          .append("</td></tr>\n");
    }
    s.append(
        "</table>\n<h2>Where time goes (means over each point)</h2>\n<table><tr><th>point</th><th>client ms</th>"
            + "<th>Berth request ms</th><th>queue ms</th><th>engine ms/call</th><th>mean batch</th>"
            + "<th>engine busy</th><th>client &minus; Berth ms</th></tr>\n");
    for (JsonNode p : pts) {
      JsonNode sv = p.path("server");
      if (sv.isMissingNode()) {
        continue;
      }
      s.append("<tr><td>")
          .append(esc(p.path("label").asText()))
          .append("</td><td class=\"n\">")
          .append(String.join("</td><td class=\"n\">", timeSplitCells(p, sv)))
          .append("</td></tr>\n");
    }
    s.append(
        "</table>\n<h2>Ratios</h2>\n<table><tr><th>ratio</th><th>value</th><th>goal</th><th></th></tr>\n");
    for (JsonNode g : r.path("goals")) {
      boolean msUnit = g.path("unit").asText().equals("ms");
      s.append("<tr><td>")
          .append(esc(g.path("name").asText()))
          .append("</td><td class=\"n\">")
          .append(fmt(g.path("value").asDouble(), msUnit ? 3 : 2))
          .append(msUnit ? " ms" : "x")
          .append("</td><td>")
          .append(esc(g.path("target").asText()))
          .append("</td><td>");
      if (g.has("met")) {
        s.append(
            g.path("met").asBoolean()
                ? "<span class=\"met\">met</span>"
                : "<span class=\"miss\">not met</span>");
      }
      s.append("</td></tr>\n");
    }
    s.append(
            "</table>\n<p>Ceiling: ONNX Runtime called in one process (tokenization, model, mean pooling"
                + " and L2 normalisation per batch; no HTTP, no JSON), in each layout by that many threads sharing"
                + " one session and one tokenizer, each calling batches back to back. Engine busy: the engine"
                + " instances' compute time over wall time &times; instances. HTTP points: wrk, one"
                + " sentence per OIP v2 JSON request, rotating through ")
        .append(c.path("sentences").path("count").asInt())
        .append(" short sentences (at most ")
        .append(c.path("sentences").path("max_tokens").asInt())
        .append(
            " tokens). The load generator runs on the same machine as the server.</p>\n</body></html>\n");
    return s.toString();
  }

  /** SVG line chart: in-process sentences/s by batch size (log2 axis), one series per layout. */
  static String layoutChart(JsonNode c) {
    List<Integer> sizes = batchSizes(c);
    if (sizes.isEmpty()) {
      return "";
    }
    String[] colors = {"#1565c0", "#ef6c00", "#6a1b9a", "#00838f"};
    int w = 760;
    int h = 300;
    int left = 70;
    int right = 20;
    int top = 30;
    int bottom = 60;
    int plotW = w - left - right;
    int plotH = h - top - bottom;
    double max = 0;
    for (JsonNode l : c.path("layouts")) {
      for (JsonNode b : l.path("batch_sizes")) {
        max = Math.max(max, b.path("sentences_per_s").asDouble());
      }
    }
    double axisMax = niceCeil(max * 1.1);
    StringBuilder s = new StringBuilder();
    svgFrame(
        s,
        w,
        h,
        left,
        top,
        plotW,
        plotH,
        axisMax,
        "in-process sentences per second by batch size",
        "In-process sentences/s by batch size");
    double slot = sizes.size() > 1 ? (double) (plotW - 40) / (sizes.size() - 1) : 0;
    for (int i = 0; i < sizes.size(); i++) {
      s.append(
          String.format(
              Locale.ROOT,
              "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">%d</text>\n",
              left + 20 + slot * i,
              top + plotH + 16,
              sizes.get(i)));
    }
    s.append(
        String.format(
            Locale.ROOT,
            "<text x=\"%.1f\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\">batch size</text>\n",
            left + plotW / 2.0,
            top + plotH + 32));
    int k = 0;
    for (JsonNode l : c.path("layouts")) {
      String color = colors[k % colors.length];
      StringBuilder pts = new StringBuilder();
      StringBuilder dots = new StringBuilder();
      for (int i = 0; i < sizes.size(); i++) {
        JsonNode b = batch(l, sizes.get(i));
        if (b == null) {
          continue;
        }
        double v = b.path("sentences_per_s").asDouble();
        double x = left + 20 + slot * i;
        double y = top + plotH - plotH * v / axisMax;
        pts.append(String.format(Locale.ROOT, "%.1f,%.1f ", x, y));
        dots.append(
            String.format(
                Locale.ROOT,
                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"><title>%s, batch %d: %s sentences/s</title></circle>\n",
                x,
                y,
                color,
                esc(tag(l.path("id").asText()) + " " + l.path("layout").asText()),
                sizes.get(i),
                fmt(v, 1)));
      }
      s.append("<polyline fill=\"none\" stroke=\"")
          .append(color)
          .append("\" stroke-width=\"2\" points=\"")
          .append(pts.toString().strip())
          .append("\"/>\n")
          .append(dots);
      s.append(
          String.format(
              Locale.ROOT,
              "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%d\" y=\"%d\" font-size=\"11\">%s</text>\n",
              left + 340 * k,
              h - 14,
              color,
              left + 340 * k + 14,
              h - 5,
              esc(tag(l.path("id").asText()) + " " + l.path("layout").asText())));
      k++;
    }
    s.append(
        String.format(
            Locale.ROOT,
            "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#333\"/>"
                + "<line x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n",
            left,
            left + plotW,
            top + plotH,
            top + plotH,
            left,
            left,
            top,
            top + plotH));
    s.append("</svg>\n");
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
    return v.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("\"", "&quot;");
  }

  /** Opens an SVG chart: the svg element, its title and the horizontal grid with axis labels. */
  private static void svgFrame(
      StringBuilder s,
      int w,
      int h,
      int left,
      int top,
      int plotW,
      int plotH,
      double axisMax,
      String label,
      String title) {
    s.append("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"")
        .append(w)
        .append("\" height=\"")
        .append(h)
        .append("\" viewBox=\"0 0 ")
        .append(w)
        .append(' ')
        .append(h)
        .append("\" role=\"img\" aria-label=\"")
        .append(label)
        .append("\">\n");
    s.append("<text x=\"")
        .append(left)
        .append("\" y=\"18\" font-size=\"14\" font-weight=\"bold\">")
        .append(title)
        .append("</text>\n");
    for (int i = 0; i <= 5; i++) {
      double v = axisMax * i / 5;
      double y = top + plotH - plotH * v / axisMax;
      s.append(
          String.format(
              Locale.ROOT,
              "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>"
                  + "<text x=\"%d\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%s</text>\n",
              left,
              left + plotW,
              y,
              y,
              left - 6,
              y + 4,
              fmt(v, 0)));
    }
  }

  /** The cells of one "where time goes" row, shared by the Markdown and HTML tables. */
  private static List<String> timeSplitCells(JsonNode point, JsonNode server) {
    return List.of(
        fmt(point.path("latency_ms").path("mean").asDouble(), 2),
        fmt(server.path("mean_request_ms").asDouble(), 2),
        fmt(server.path("mean_queue_ms").asDouble(), 2),
        fmt(server.path("mean_compute_ms_per_call").asDouble(), 2),
        fmt(server.path("mean_batch_size").asDouble(), 1),
        fmt(100 * server.path("engine_busy").asDouble(), 0) + "%",
        fmt(server.path("client_minus_server_mean_ms").asDouble(), 2));
  }
}
