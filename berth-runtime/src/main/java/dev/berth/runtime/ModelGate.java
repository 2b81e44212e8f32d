package dev.berth.runtime;

import java.nio.file.Path;
import java.util.Locale;
import java.util.Set;

/**
 * A model's evaluation gate (model.yaml {@code gate}): a labelled data set, the metric measured on
 * it, and what a new version must reach before it takes traffic: a minimum, the largest drop
 * against the version serving, or both.
 *
 * <pre>{@code
 * gate:
 *   data: gate/t10k-images-idx3-ubyte.gz   # relative to the model directory
 *   metric: accuracy                       # macro-f1, weighted-f1, precision, recall
 *   min: 0.86
 *   max-drop: 0.01
 * }</pre>
 *
 * @param data the data set (resolved against the model directory)
 * @param format {@code csv}, {@code jsonl}, {@code idx} or {@code images}; null to tell by its name
 * @param dataLabels an IDX labels file, or null for the one beside the images file
 * @param labelColumn the CSV column or JSONL field holding the label
 * @param input the model input the rows go to, or null for the first that fits
 * @param output the model output holding the scores, or null for the first
 * @param metric what is measured
 * @param metricClass the class of {@link Metric#PRECISION} or {@link Metric#RECALL}, else null
 * @param min the lowest figure a version may have, or NaN for none
 * @param maxDrop how far below the serving version's figure a version may be, or NaN for no limit
 * @param batchSize rows a request during the evaluation
 */
public record ModelGate(
    Path data,
    String format,
    Path dataLabels,
    String labelColumn,
    String input,
    String output,
    Metric metric,
    String metricClass,
    double min,
    double maxDrop,
    int batchSize) {

  public static final String KEY = "gate";

  /** What a gate measures. */
  public enum Metric {
    ACCURACY("accuracy"),
    MACRO_F1("macro-f1"),
    WEIGHTED_F1("weighted-f1"),
    PRECISION("precision"),
    RECALL("recall");

    private final String key;

    Metric(String key) {
      this.key = key;
    }

    /** As model.yaml writes it. */
    public String key() {
      return key;
    }

    static Metric of(String key) {
      for (Metric m : values()) {
        if (m.key.equals(key.toLowerCase(Locale.ROOT))) {
          return m;
        }
      }
      return null;
    }
  }

  /**
   * What a gate decided.
   *
   * @param passed whether the version may take traffic
   * @param figure what it measured
   * @param threshold the lowest figure that passes: the minimum, or the serving version's figure
   *     less the largest drop, whichever is higher
   * @param summary the figure, the threshold and where the threshold came from, for logs and the
   *     repository index
   */
  public record Verdict(boolean passed, double figure, double threshold, String summary) {}

  /** The metric as the log and the metrics name it, e.g. {@code accuracy} or {@code recall:Bag}. */
  public String metricName() {
    return metricClass == null ? metric.key() : metric.key() + ":" + metricClass;
  }

  /**
   * The data files' sizes and modification times: a figure measured on them holds while it does.
   */
  public String dataStamp() {
    StringBuilder out = new StringBuilder();
    for (Path p : java.util.Arrays.asList(data, dataLabels)) {
      if (p == null) {
        continue;
      }
      try {
        var a =
            java.nio.file.Files.readAttributes(
                p, java.nio.file.attribute.BasicFileAttributes.class);
        out.append(p)
            .append(' ')
            .append(a.size())
            .append(' ')
            .append(a.lastModifiedTime())
            .append('\n');
      } catch (java.io.IOException e) {
        out.append(p).append(" unreadable\n");
      }
    }
    return out.toString();
  }

  /** Whether the verdict depends on the version serving. */
  public boolean comparesWithServing() {
    return !Double.isNaN(maxDrop);
  }

  /**
   * Judges a measured figure.
   *
   * @param figure the new version's figure
   * @param serving the serving version's figure, or NaN when none serves (or it could not be
   *     measured)
   * @param servingVersion the serving version, for the summary (null when none)
   */
  public Verdict judge(double figure, double serving, String servingVersion) {
    return judge(
        metricName(), min, maxDrop, figure, serving, servingVersion, data.getFileName().toString());
  }

  /**
   * Judges a figure against a minimum and a largest drop (either NaN for none), as a gate does.
   *
   * @param metric the metric's name, for the summary
   * @param servingVersion the version {@code serving} was measured on, for the summary
   * @param data the data set's name, for the summary
   */
  public static Verdict judge(
      String metric,
      double min,
      double maxDrop,
      double figure,
      double serving,
      String servingVersion,
      String data) {
    double threshold = Double.NEGATIVE_INFINITY;
    StringBuilder why = new StringBuilder();
    if (!Double.isNaN(min)) {
      threshold = min;
      why.append("minimum ").append(format(min));
    }
    if (!Double.isNaN(maxDrop)) {
      if (why.length() > 0) {
        why.append("; ");
      }
      if (Double.isNaN(serving)) {
        why.append("no version serving to compare with");
      } else {
        why.append("version ")
            .append(servingVersion)
            .append(" serving at ")
            .append(format(serving))
            .append(", largest drop ")
            .append(format(maxDrop));
        threshold = Math.max(threshold, serving - maxDrop);
      }
    }
    boolean passed = figure >= threshold - 1e-12;
    String summary =
        metric
            + " "
            + format(figure)
            + (passed ? " >= " : " < ")
            + (Double.isInfinite(threshold) ? "any" : format(threshold))
            + " ("
            + why
            + ") on "
            + data;
    return new Verdict(
        passed, figure, Double.isInfinite(threshold) ? Double.NaN : threshold, summary);
  }

  private static String format(double v) {
    return String.format(Locale.ROOT, "%.4f", v);
  }

  /** Reads model.yaml's {@code gate} section; null when there is none. */
  static ModelGate parse(ConfigReader root) {
    if (!root.has(KEY)) {
      return null;
    }
    ConfigReader g = root.section(KEY);
    g.allowOnly(
        Set.of(
            "data",
            "format",
            "data-labels",
            "label-column",
            "input",
            "output",
            "metric",
            "class",
            "min",
            "max-drop",
            "batch-size"));
    Path modelDir = root.file().toAbsolutePath().getParent();
    String data =
        g.requiredString(
            "data",
            "name the labelled data set the gate evaluates on (a CSV, JSONL or IDX file or a folder"
                + " of images per class), relative to the model directory");
    String format = g.string("format", null);
    if (format != null && !Set.of("csv", "jsonl", "idx", "images").contains(format)) {
      throw g.error("format", "'" + format + "' is not one of csv, jsonl, idx, images");
    }
    String metricKey = g.string("metric", Metric.ACCURACY.key());
    Metric metric = Metric.of(metricKey);
    if (metric == null) {
      throw g.error(
          "metric",
          "'" + metricKey + "' is not one of accuracy, macro-f1, weighted-f1, precision, recall");
    }
    String metricClass = g.string("class", null);
    boolean perClass = metric == Metric.PRECISION || metric == Metric.RECALL;
    if (perClass && metricClass == null) {
      throw g.error(
          "class", "is missing; metric " + metric.key() + " is of one class: name it (class: Bag)");
    }
    if (!perClass && metricClass != null) {
      throw g.error("class", "applies to metric precision or recall, not " + metric.key());
    }
    double min = g.number("min", Double.NaN);
    double maxDrop = g.number("max-drop", Double.NaN);
    if (Double.isNaN(min) && Double.isNaN(maxDrop)) {
      throw g.error(
          "min",
          "a gate needs 'min' (the lowest figure a version may have), 'max-drop' (how far below"
              + " the serving version it may be), or both");
    }
    if (!Double.isNaN(min) && !(min >= 0 && min <= 1)) {
      throw g.error("min", "must be between 0 and 1, found " + min);
    }
    if (!Double.isNaN(maxDrop) && !(maxDrop >= 0 && maxDrop <= 1)) {
      throw g.error("max-drop", "must be between 0 and 1, found " + maxDrop);
    }
    String labels = g.string("data-labels", null);
    return new ModelGate(
        modelDir.resolve(data).normalize(),
        format,
        labels == null ? null : modelDir.resolve(labels).normalize(),
        g.string("label-column", "label"),
        g.string("input", null),
        g.string("output", null),
        metric,
        metricClass,
        min,
        maxDrop,
        g.integer("batch-size", 32, 1, 65_536));
  }
}
