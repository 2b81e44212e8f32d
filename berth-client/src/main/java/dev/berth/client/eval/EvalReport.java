package dev.berth.client.eval;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.berth.api.BerthException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * An evaluation's result for people and programs: a plain-text table, {@code metrics.json} and a
 * self-contained {@code index.html} with the confusion matrix as a heat map.
 */
public final class EvalReport {
  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private EvalReport() {}

  /** Writes {@code metrics.json} and {@code index.html} into {@code dir}, creating it. */
  public static void write(EvalResult r, Path dir) {
    try {
      Files.createDirectories(dir);
      Files.writeString(dir.resolve("metrics.json"), json(r), StandardCharsets.UTF_8);
      Files.writeString(dir.resolve("index.html"), html(r), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new BerthException("cannot write the report into " + dir + ": " + e, e);
    }
  }

  // ---- text ----

  /**
   * The table printed at the end of a run: per-class precision, recall, F1 and support, the
   * averages, accuracy, the binary decision if any, the confusion matrix and the notes.
   */
  public static String table(EvalResult r) {
    ClassificationMetrics m = r.metrics();
    List<String> labels = r.labels();
    StringBuilder out = new StringBuilder();
    out.append("model '")
        .append(r.model())
        .append("'")
        .append(r.modelVersion() == null ? "" : " version " + r.modelVersion())
        .append(" at ")
        .append(r.url())
        .append('\n');
    out.append("  data:    ")
        .append(r.data())
        .append(" (")
        .append(r.format().name().toLowerCase(Locale.ROOT))
        .append(", ")
        .append(r.rows())
        .append(" rows): ")
        .append(r.sent())
        .append('\n');
    out.append("  output:  '")
        .append(r.output())
        .append("', ")
        .append(labels.size())
        .append(" classes from ")
        .append(r.labelSource())
        .append('\n');
    out.append(
        String.format(
            Locale.ROOT,
            "  answered %d rows in %.2f s (%.0f rows/s); %d failed requests (%d rows)%n%n",
            r.evaluated(),
            r.elapsed().toNanos() / 1e9,
            r.rowsPerSecond(),
            r.errors().requests(),
            r.errors().rows()));

    int w = Math.max("weighted avg".length(), Math.min(30, longest(labels)));
    String header = "%-" + w + "s  %9s  %9s  %9s  %9s%n";
    String row = "%-" + w + "s  %9.3f  %9.3f  %9.3f  %9d%n";
    out.append(
        String.format(Locale.ROOT, header, "class", "precision", "recall", "f1-score", "support"));
    for (ClassificationMetrics.ClassMetrics c : m.perClass()) {
      out.append(
          String.format(
              Locale.ROOT, row, cut(c.label(), w), c.precision(), c.recall(), c.f1(), c.support()));
    }
    out.append('\n');
    long total = m.matrix().total();
    out.append(
        String.format(
            Locale.ROOT,
            "%-" + w + "s  %9s  %9s  %9.3f  %9d%n",
            "accuracy",
            "",
            "",
            m.accuracy(),
            total));
    averageRow(out, row, "macro avg", m.macro(), total);
    averageRow(out, row, "weighted avg", m.weighted(), total);
    averageRow(out, row, "micro avg", m.micro(), total);
    if (r.binary() != null) {
      EvalResult.Binary b = r.binary();
      out.append(
          String.format(
              Locale.ROOT,
              "%nbinary, positive class '%s' (%s): precision %.3f, recall %.3f, F1 %.3f%n",
              b.positiveLabel(),
              Double.isNaN(b.threshold())
                  ? "highest score"
                  : String.format(Locale.ROOT, "score >= %.3f", b.threshold()),
              b.precision(),
              b.recall(),
              b.f1()));
    }

    out.append("\nconfusion matrix (rows: true class, columns: predicted class)\n");
    long[][] counts = m.matrix().counts();
    long max = 0;
    for (long[] line : counts) {
      for (long c : line) {
        max = Math.max(max, c);
      }
    }
    int cell =
        Math.max(Long.toString(max).length(), Integer.toString(labels.size() - 1).length()) + 2;
    int index = Integer.toString(labels.size() - 1).length();
    // class names beside the indices, unless the names are the indices
    boolean named = false;
    for (int i = 0; i < labels.size(); i++) {
      named |= !labels.get(i).equals(Integer.toString(i));
    }
    int name = named ? Math.min(24, longest(labels)) + 1 : 0;
    out.append(" ".repeat(index + name));
    for (int p = 0; p < labels.size(); p++) {
      out.append(String.format(Locale.ROOT, "%" + cell + "d", p));
    }
    out.append('\n');
    for (int t = 0; t < labels.size(); t++) {
      out.append(String.format(Locale.ROOT, "%" + index + "d", t));
      if (named) {
        out.append(
            String.format(Locale.ROOT, " %-" + (name - 1) + "s", cut(labels.get(t), name - 1)));
      }
      for (int p = 0; p < labels.size(); p++) {
        out.append(String.format(Locale.ROOT, "%" + cell + "d", counts[t][p]));
      }
      out.append('\n');
    }
    for (String note : m.notes()) {
      out.append("\nnote: ").append(note);
    }
    for (String e : r.errors().messages()) {
      out.append("\nerror: ").append(e);
    }
    if (!m.notes().isEmpty() || !r.errors().messages().isEmpty()) {
      out.append('\n');
    }
    return out.toString();
  }

  private static void averageRow(
      StringBuilder out, String row, String name, ClassificationMetrics.Averages a, long total) {
    out.append(String.format(Locale.ROOT, row, name, a.precision(), a.recall(), a.f1(), total));
  }

  private static int longest(List<String> labels) {
    int w = 5;
    for (String l : labels) {
      w = Math.max(w, l.length());
    }
    return w;
  }

  private static String cut(String s, int width) {
    return s.length() <= width ? s : s.substring(0, width - 1) + "~";
  }

  // ---- JSON ----

  /**
   * {@code metrics.json}: {@code accuracy}, {@code macro_f1}, {@code per_class} (a list in class
   * order: label, precision, recall, f1, support, predicted), {@code confusion_matrix} ({@code
   * [true][predicted]}), {@code labels}, the {@code macro_avg}, {@code micro_avg} and {@code
   * weighted_avg}, the row and error counts, and what was evaluated.
   */
  public static String json(EvalResult r) {
    ClassificationMetrics m = r.metrics();
    ObjectNode root = JSON.createObjectNode();
    root.put("accuracy", m.accuracy());
    root.put("macro_f1", m.macro().f1());
    root.put("weighted_f1", m.weighted().f1());
    ArrayNode labels = root.putArray("labels");
    r.labels().forEach(labels::add);
    ArrayNode perClass = root.putArray("per_class");
    for (ClassificationMetrics.ClassMetrics c : m.perClass()) {
      perClass
          .addObject()
          .put("label", c.label())
          .put("precision", c.precision())
          .put("recall", c.recall())
          .put("f1", c.f1())
          .put("support", c.support())
          .put("predicted", c.predicted());
    }
    ArrayNode matrix = root.putArray("confusion_matrix");
    for (long[] row : m.matrix().counts()) {
      ArrayNode line = matrix.addArray();
      for (long c : row) {
        line.add(c);
      }
    }
    average(root, "macro_avg", m.macro());
    average(root, "micro_avg", m.micro());
    average(root, "weighted_avg", m.weighted());
    if (r.binary() != null) {
      ObjectNode b = root.putObject("binary");
      b.put("positive_label", r.binary().positiveLabel());
      if (Double.isNaN(r.binary().threshold())) {
        b.putNull("threshold");
      } else {
        b.put("threshold", r.binary().threshold());
      }
      b.put("precision", r.binary().precision());
      b.put("recall", r.binary().recall());
      b.put("f1", r.binary().f1());
    }
    root.put("rows", r.rows());
    root.put("evaluated", r.evaluated());
    root.put("correct", m.matrix().correct());
    ObjectNode errors = root.putObject("errors");
    errors.put("requests", r.errors().requests());
    errors.put("rows", r.errors().rows());
    ArrayNode messages = errors.putArray("messages");
    r.errors().messages().forEach(messages::add);
    ArrayNode notes = root.putArray("notes");
    m.notes().forEach(notes::add);
    root.put("url", r.url().toString());
    root.put("model", r.model());
    root.put("model_version", r.modelVersion());
    root.put("output", r.output());
    root.put("labels_from", r.labelSource());
    root.put("data", r.data().toString());
    root.put("format", r.format().name().toLowerCase(Locale.ROOT));
    root.put("sent", r.sent());
    root.put("seconds", r.elapsed().toNanos() / 1e9);
    root.put("rows_per_second", r.rowsPerSecond());
    try {
      return JSON.writeValueAsString(root) + "\n";
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  private static void average(ObjectNode root, String name, ClassificationMetrics.Averages a) {
    root.putObject(name)
        .put("precision", a.precision())
        .put("recall", a.recall())
        .put("f1", a.f1());
  }

  // ---- HTML ----

  /**
   * {@code index.html}: the headline numbers, the confusion matrix as a table whose cells are
   * coloured by the share of the true class's rows they hold, and the per-class table. No scripts,
   * no external resources.
   */
  public static String html(EvalResult r) {
    ClassificationMetrics m = r.metrics();
    List<String> labels = r.labels();
    StringBuilder h = new StringBuilder(16_384);
    h.append(
        """
        <!DOCTYPE html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>berth eval: %s</title>
        <style>
        body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em; color: #1b1f24; }
        h1 { font-size: 1.5em; margin-bottom: .2em; }
        h2 { font-size: 1.15em; margin-top: 2em; }
        .meta { color: #57606a; margin: 0; }
        .headline { display: flex; gap: 1em; flex-wrap: wrap; margin: 1.5em 0; }
        .headline div { border: 1px solid #d0d7de; border-radius: 6px; padding: .6em 1.2em; min-width: 7em; }
        .headline b { display: block; font-size: 1.8em; }
        table { border-collapse: collapse; }
        th, td { padding: .3em .6em; text-align: right; font-variant-numeric: tabular-nums; }
        th { font-weight: 600; }
        .metrics td:first-child, .metrics th:first-child, .cm th.true { text-align: left; }
        .metrics tr:nth-child(even) td { background: #f6f8fa; }
        .metrics tr.avg td { border-top: 1px solid #d0d7de; background: #fff; }
        .cm td { width: 3.2em; height: 2.2em; text-align: center; border: 1px solid #fff; }
        .cm th.pred { writing-mode: vertical-rl; transform: rotate(180deg); text-align: left; vertical-align: bottom; }
        .cm td.diag { outline: 2px solid #1b1f24; outline-offset: -2px; }
        .axis { color: #57606a; font-size: .9em; }
        .notes li { color: #9a6700; }
        .errors li { color: #cf222e; }
        p.footer { margin-top: 2em; }
        </style>
        </head>
        <body>
        """
            .formatted(esc(r.model())));
    h.append("<h1>Evaluation of <code>").append(esc(r.model())).append("</code>");
    if (r.modelVersion() != null) {
      h.append(" version ").append(esc(r.modelVersion()));
    }
    h.append("</h1>\n<p class=\"meta\">")
        .append(esc(r.url().toString()))
        .append(" &middot; data ")
        .append(esc(r.data().toString()))
        .append(" (")
        .append(r.format().name().toLowerCase(Locale.ROOT))
        .append(", ")
        .append(r.rows())
        .append(" rows) &middot; ")
        .append(esc(r.sent()))
        .append(" &middot; output <code>")
        .append(esc(r.output()))
        .append("</code>, classes from ")
        .append(esc(r.labelSource()))
        .append("</p>\n");

    h.append("<div class=\"headline\">\n");
    headline(h, "accuracy", fmt(m.accuracy()));
    headline(h, "macro F1", fmt(m.macro().f1()));
    headline(h, "weighted F1", fmt(m.weighted().f1()));
    if (r.binary() != null) {
      headline(h, "F1 of '" + r.binary().positiveLabel() + "'", fmt(r.binary().f1()));
    }
    headline(h, "rows evaluated", r.evaluated() + " / " + r.rows());
    headline(h, "failed requests", Long.toString(r.errors().requests()));
    headline(h, "rows / s", String.format(Locale.ROOT, "%.0f", r.rowsPerSecond()));
    h.append("</div>\n");

    h.append("<h2>Confusion matrix</h2>\n")
        .append(
            "<p class=\"axis\">Rows: true class; columns: predicted class. A cell's colour is the"
                + " share of its true class's rows it holds; the diagonal (correct) is outlined.</p>\n");
    h.append("<table class=\"cm\">\n<tr><th class=\"axis\">true \\ predicted</th>");
    for (String l : labels) {
      h.append("<th class=\"pred\">").append(esc(l)).append("</th>");
    }
    h.append("</tr>\n");
    long[][] counts = m.matrix().counts();
    for (int t = 0; t < labels.size(); t++) {
      long support = m.matrix().support(t);
      h.append("<tr><th class=\"true\">").append(esc(labels.get(t))).append("</th>");
      for (int p = 0; p < labels.size(); p++) {
        double share = support == 0 ? 0 : (double) counts[t][p] / support;
        h.append("<td")
            .append(t == p ? " class=\"diag\"" : "")
            .append(" style=\"background:")
            .append(heat(share))
            .append(";color:")
            .append(share > 0.5 ? "#fff" : counts[t][p] == 0 ? "#8c959f" : "#1b1f24")
            .append("\" title=\"true ")
            .append(esc(labels.get(t)))
            .append(", predicted ")
            .append(esc(labels.get(p)))
            .append(": ")
            .append(counts[t][p])
            .append(String.format(Locale.ROOT, " (%.1f%% of %d)", share * 100, support))
            .append("\">")
            .append(counts[t][p])
            .append("</td>");
      }
      h.append("</tr>\n");
    }
    h.append("</table>\n");

    h.append("<h2>Per class</h2>\n<table class=\"metrics\">\n")
        .append(
            "<tr><th>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th>"
                + "<th>predicted</th></tr>\n");
    for (ClassificationMetrics.ClassMetrics c : m.perClass()) {
      h.append("<tr><td>")
          .append(esc(c.label()))
          .append("</td><td>")
          .append(fmt(c.precision()))
          .append("</td><td>")
          .append(fmt(c.recall()))
          .append("</td><td>")
          .append(fmt(c.f1()))
          .append("</td><td>")
          .append(c.support())
          .append("</td><td>")
          .append(c.predicted())
          .append("</td></tr>\n");
    }
    long total = m.matrix().total();
    avgRow(h, "macro avg", m.macro(), total);
    avgRow(h, "weighted avg", m.weighted(), total);
    avgRow(h, "micro avg", m.micro(), total);
    h.append("</table>\n");

    if (!m.notes().isEmpty()) {
      h.append("<h2>Notes</h2>\n<ul class=\"notes\">\n");
      m.notes().forEach(n -> h.append("<li>").append(esc(n)).append("</li>\n"));
      h.append("</ul>\n");
    }
    if (!r.errors().messages().isEmpty()) {
      h.append("<h2>Errors</h2>\n<p>")
          .append(r.errors().requests())
          .append(" requests (")
          .append(r.errors().rows())
          .append(
              " rows) failed; their rows are not in the numbers above.</p>\n<ul class=\"errors\">\n");
      r.errors().messages().forEach(e -> h.append("<li>").append(esc(e)).append("</li>\n"));
      h.append("</ul>\n");
    }
    h.append(
        String.format(
            Locale.ROOT,
            "<p class=\"meta footer\">%d rows answered in %.2f s. Precision of a class the model never"
                + " predicted is 0; macro averages run over the classes present in the data or the"
                + " predictions.</p>%n</body>%n</html>%n",
            r.evaluated(),
            r.elapsed().toNanos() / 1e9));
    return h.toString();
  }

  private static void headline(StringBuilder h, String what, String value) {
    h.append("<div><b>").append(esc(value)).append("</b>").append(esc(what)).append("</div>\n");
  }

  private static void avgRow(
      StringBuilder h, String name, ClassificationMetrics.Averages a, long total) {
    h.append("<tr class=\"avg\"><td>")
        .append(name)
        .append("</td><td>")
        .append(fmt(a.precision()))
        .append("</td><td>")
        .append(fmt(a.recall()))
        .append("</td><td>")
        .append(fmt(a.f1()))
        .append("</td><td>")
        .append(total)
        .append("</td><td></td></tr>\n");
  }

  /** A sequential blue scale from near-white (0) to dark blue (1). */
  static String heat(double share) {
    int[][] stops = {
      {247, 251, 255}, {198, 219, 239}, {107, 174, 214}, {33, 113, 181}, {8, 48, 107}
    };
    double x = Math.max(0, Math.min(1, share)) * (stops.length - 1);
    int i = Math.min((int) x, stops.length - 2);
    double f = x - i;
    int[] rgb = new int[3];
    for (int c = 0; c < 3; c++) {
      rgb[c] = (int) Math.round(stops[i][c] + (stops[i + 1][c] - stops[i][c]) * f);
    }
    return String.format(Locale.ROOT, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
  }

  private static String fmt(double v) {
    return String.format(Locale.ROOT, "%.3f", v);
  }

  static String esc(String s) {
    StringBuilder out = new StringBuilder(s.length());
    for (char c : s.toCharArray()) {
      switch (c) {
        case '<' -> out.append("&lt;");
        case '>' -> out.append("&gt;");
        case '&' -> out.append("&amp;");
        case '"' -> out.append("&quot;");
        case '\'' -> out.append("&#39;");
        default -> out.append(c);
      }
    }
    return out.toString();
  }
}
