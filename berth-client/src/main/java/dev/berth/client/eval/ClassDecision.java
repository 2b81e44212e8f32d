package dev.berth.client.eval;

import dev.berth.api.BerthException;
import dev.berth.api.DataType;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * Turns a model's output into one predicted class a row:
 *
 * <ul>
 *   <li>scores (FP16/32/64) as wide as the classes: the highest score (the first on a tie); for a
 *       binary task with a threshold, the positive class when its score is at least the threshold;
 *   <li>one score a row (width 1): the probability of the positive class of a binary task, positive
 *       when at least the threshold (default 0.5);
 *   <li>one integer a row: the class index; one string a row (BYTES): the class name.
 * </ul>
 */
final class ClassDecision {
  private final List<String> labels;
  private final Map<String, Integer> index = new HashMap<>();
  private final int positive;
  private final double threshold;
  private final boolean thresholdGiven;

  /**
   * @param labels class names in class-index order
   * @param positive index of the positive class of a binary task, or -1
   * @param threshold the positive class's score threshold, or NaN for none
   */
  ClassDecision(List<String> labels, int positive, double threshold) {
    this.labels = List.copyOf(labels);
    for (int i = 0; i < labels.size(); i++) {
      index.putIfAbsent(labels.get(i), i);
    }
    this.positive = positive;
    this.thresholdGiven = !Double.isNaN(threshold);
    this.threshold = thresholdGiven ? threshold : 0.5;
  }

  /** Checks that an output of this type and width can be read as these classes. */
  void check(DataType type, int width, String output) {
    boolean scores = type == DataType.FP16 || type == DataType.FP32 || type == DataType.FP64;
    if (scores && width == 1) {
      if (labels.size() != 2) {
        throw new BerthException(
            "output '"
                + output
                + "' gives one score a row, which is read as the probability of the positive class"
                + " of a binary task, but there are "
                + labels.size()
                + " classes "
                + labels);
      }
      return;
    }
    if (scores) {
      if (width != labels.size()) {
        throw new BerthException(
            "output '"
                + output
                + "' gives "
                + width
                + " scores a row but there are "
                + labels.size()
                + " class names "
                + abbreviated(labels)
                + "; --labels (or the model's labels) must name every class, in output order");
      }
      if (thresholdGiven && width != 2) {
        throw new BerthException(
            "--threshold is for binary tasks, but output '"
                + output
                + "' scores "
                + width
                + " classes; drop --threshold to take the highest score");
      }
      return;
    }
    if (width != 1) {
      throw new BerthException(
          "output '"
              + output
              + "' is "
              + type
              + " with "
              + width
              + " values a row; the evaluator reads class scores (FP16/FP32/FP64), or one class"
              + " index (integer) or class name (BYTES) a row; pick another with --output");
    }
    if (thresholdGiven) {
      throw new BerthException(
          "--threshold needs scores, but output '"
              + output
              + "' gives class "
              + (type == DataType.BYTES ? "names" : "indices")
              + "; pick a probability output with --output");
    }
  }

  /** The predicted class of each of {@code rows} rows. */
  int[] predict(ModelOutput out, int rows) {
    int width = out.width(rows);
    check(out.datatype(), width, out.name());
    int[] predicted = new int[rows];
    for (int r = 0; r < rows; r++) {
      if (out.datatype() == DataType.BYTES) {
        predicted[r] = byName(out.strings().get(r), out.name());
      } else if (!out.isFloat()) {
        predicted[r] = byIndex(out.numbers()[r], out.name());
      } else if (width == 1) {
        predicted[r] = out.numbers()[r] >= threshold ? positive : 1 - positive;
      } else if (thresholdGiven) {
        predicted[r] = out.numbers()[r * width + positive] >= threshold ? positive : 1 - positive;
      } else {
        predicted[r] = argmax(out.numbers(), r * width, width);
      }
    }
    return predicted;
  }

  static int argmax(double[] values, int from, int width) {
    int best = 0;
    for (int i = 1; i < width; i++) {
      // NaN never wins
      if (values[from + i] > values[from + best] || Double.isNaN(values[from + best])) {
        best = i;
      }
    }
    return best;
  }

  private int byName(String name, String output) {
    Integer i = index.get(name);
    if (i == null) {
      throw new BerthException(
          "output '"
              + output
              + "' answered class '"
              + name
              + "', which is not one of the classes "
              + abbreviated(labels)
              + "; name them with --labels");
    }
    return i;
  }

  private int byIndex(double value, String output) {
    if (value != Math.rint(value) || value < 0 || value >= labels.size()) {
      throw new BerthException(
          "output '"
              + output
              + "' answered class "
              + value
              + ", which is not a class index below "
              + labels.size()
              + "; name every class with --labels");
    }
    return (int) value;
  }

  static String abbreviated(List<String> labels) {
    return labels.size() <= 12
        ? labels.toString()
        : labels.subList(0, 12).toString().replace("]", ", ... (" + labels.size() + " in all)]");
  }
}
