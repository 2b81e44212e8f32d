package dev.berth.client.eval;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Accuracy, per-class precision, recall and F1, and their macro, micro and weighted averages, all
 * computed from a {@link ConfusionMatrix}, with the definitions scikit-learn's {@code
 * classification_report} uses:
 *
 * <ul>
 *   <li>precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2PR / (P + R);
 *   <li>a class the model never predicted has precision 0, a class with no rows in the data has
 *       recall 0, and F1 is 0 when P + R is 0; each such case is named in {@link #notes()};
 *   <li>the averages run over the classes that occur in the data or in the predictions; a class
 *       with neither is listed with zeros but left out of them;
 *   <li>macro: the plain mean of the per-class values (macro F1 is the mean of the F1 scores, not
 *       the F1 of the mean precision and recall); weighted: the mean weighted by support; micro:
 *       from the summed counts, which for single-label classification equals accuracy.
 * </ul>
 *
 * @param matrix the counts everything is computed from
 * @param accuracy correct rows over all rows (0 when there are none)
 * @param perClass one entry per class, in class-index order
 * @param macro plain mean over the averaged classes
 * @param micro from the summed counts
 * @param weighted mean weighted by support
 * @param notes zero divisions and other things a reader should know about the numbers
 */
public record ClassificationMetrics(
    ConfusionMatrix matrix,
    double accuracy,
    List<ClassMetrics> perClass,
    Averages macro,
    Averages micro,
    Averages weighted,
    List<String> notes) {

  public ClassificationMetrics {
    Objects.requireNonNull(matrix, "matrix");
    perClass = List.copyOf(perClass);
    notes = List.copyOf(notes);
  }

  /**
   * The numbers of one class.
   *
   * @param label class name
   * @param precision TP / (TP + FP), 0 when the class was never predicted
   * @param recall TP / (TP + FN), 0 when the class has no rows
   * @param f1 harmonic mean of precision and recall, 0 when both are 0
   * @param support rows whose true class this is
   * @param predicted rows the model gave this class
   * @param averaged whether the class counts in the averages (it has rows or predictions)
   */
  public record ClassMetrics(
      String label,
      double precision,
      double recall,
      double f1,
      long support,
      long predicted,
      boolean averaged) {}

  /** Precision, recall and F1 averaged over classes. */
  public record Averages(double precision, double recall, double f1) {}

  /** Computes every metric from the confusion matrix. */
  public static ClassificationMetrics of(ConfusionMatrix m) {
    List<ClassMetrics> perClass = new ArrayList<>(m.size());
    List<String> neverPredicted = new ArrayList<>();
    List<String> noRows = new ArrayList<>();
    List<String> absent = new ArrayList<>();
    for (int c = 0; c < m.size(); c++) {
      long tp = m.count(c, c);
      long support = m.support(c);
      long predicted = m.predicted(c);
      String label = m.labels().get(c);
      boolean averaged = support > 0 || predicted > 0;
      if (!averaged) {
        absent.add(label);
      } else if (predicted == 0) {
        neverPredicted.add(label);
      } else if (support == 0) {
        noRows.add(label);
      }
      double precision = ratio(tp, predicted);
      double recall = ratio(tp, support);
      perClass.add(
          new ClassMetrics(
              label, precision, recall, f1(precision, recall), support, predicted, averaged));
    }

    double n = 0;
    double weight = 0;
    double[] macro = new double[3];
    double[] weighted = new double[3];
    for (ClassMetrics c : perClass) {
      if (!c.averaged()) {
        continue;
      }
      n++;
      weight += c.support();
      macro[0] += c.precision();
      macro[1] += c.recall();
      macro[2] += c.f1();
      weighted[0] += c.support() * c.precision();
      weighted[1] += c.support() * c.recall();
      weighted[2] += c.support() * c.f1();
    }
    long total = m.total();
    double accuracy = ratio(m.correct(), total);

    List<String> notes = new ArrayList<>();
    if (total == 0) {
      notes.add("no rows were evaluated: every metric is 0");
    }
    if (!neverPredicted.isEmpty()) {
      notes.add(
          "precision (and F1) is set to 0 for classes the model never predicted: "
              + String.join(", ", neverPredicted));
    }
    if (!noRows.isEmpty()) {
      notes.add(
          "recall (and F1) is set to 0 for classes with no rows in the data: "
              + String.join(", ", noRows));
    }
    if (!absent.isEmpty()) {
      notes.add(
          "classes with neither rows nor predictions are left out of the averages: "
              + String.join(", ", absent));
    }
    return new ClassificationMetrics(
        m,
        accuracy,
        perClass,
        new Averages(macro[0] / nonZero(n), macro[1] / nonZero(n), macro[2] / nonZero(n)),
        // every row is predicted as exactly one class: summed TP / summed predictions = accuracy
        new Averages(accuracy, accuracy, accuracy),
        new Averages(
            weighted[0] / nonZero(weight),
            weighted[1] / nonZero(weight),
            weighted[2] / nonZero(weight)),
        notes);
  }

  /** The metrics of one class, by name. */
  public ClassMetrics of(String label) {
    return perClass.stream()
        .filter(c -> c.label().equals(label))
        .findFirst()
        .orElseThrow(() -> new IllegalArgumentException("no class '" + label + "'"));
  }

  /** Macro-averaged F1, the mean of the per-class F1 scores. */
  public double macroF1() {
    return macro.f1();
  }

  static double f1(double precision, double recall) {
    return precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall);
  }

  private static double ratio(long numerator, long denominator) {
    return denominator == 0 ? 0 : (double) numerator / denominator;
  }

  private static double nonZero(double d) {
    return d == 0 ? 1 : d;
  }
}
