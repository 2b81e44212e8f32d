package dev.berth.client.eval;

import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * Counts of (true class, predicted class) pairs over a labelled data set: row {@code t}, column
 * {@code p} holds how many rows of true class {@code t} the model predicted as {@code p}.
 */
public final class ConfusionMatrix {
  private final List<String> labels;
  private final long[][] counts;

  private ConfusionMatrix(List<String> labels, long[][] counts) {
    this.labels = labels;
    this.counts = counts;
  }

  /**
   * A matrix from its counts.
   *
   * @param labels the class names, in class-index order
   * @param counts {@code counts[true][predicted]}, square, as wide as {@code labels}
   */
  public static ConfusionMatrix of(List<String> labels, long[][] counts) {
    List<String> names = List.copyOf(labels);
    if (counts.length != names.size()) {
      throw new IllegalArgumentException(
          counts.length + " rows of counts for " + names.size() + " classes");
    }
    long[][] copy = new long[counts.length][];
    for (int i = 0; i < counts.length; i++) {
      if (counts[i].length != names.size()) {
        throw new IllegalArgumentException(
            "row " + i + " has " + counts[i].length + " counts for " + names.size() + " classes");
      }
      for (long c : counts[i]) {
        if (c < 0) {
          throw new IllegalArgumentException("row " + i + " has a negative count");
        }
      }
      copy[i] = counts[i].clone();
    }
    return new ConfusionMatrix(names, copy);
  }

  /**
   * The matrix of paired true and predicted class indices; pairs whose prediction is negative (no
   * answer) are left out.
   */
  public static ConfusionMatrix of(List<String> labels, int[] truth, int[] predicted) {
    if (truth.length != predicted.length) {
      throw new IllegalArgumentException(
          truth.length + " true classes but " + predicted.length + " predictions");
    }
    long[][] counts = new long[labels.size()][labels.size()];
    for (int i = 0; i < truth.length; i++) {
      if (predicted[i] >= 0) {
        counts[truth[i]][predicted[i]]++;
      }
    }
    return new ConfusionMatrix(List.copyOf(labels), counts);
  }

  /** Class names, in class-index order. */
  public List<String> labels() {
    return labels;
  }

  /** Number of classes. */
  public int size() {
    return labels.size();
  }

  /** Rows of true class {@code truth} predicted as {@code predicted}. */
  public long count(int truth, int predicted) {
    return counts[truth][predicted];
  }

  /** A copy of the counts, {@code [true][predicted]}. */
  public long[][] counts() {
    long[][] copy = new long[counts.length][];
    for (int i = 0; i < counts.length; i++) {
      copy[i] = counts[i].clone();
    }
    return copy;
  }

  /** Rows whose true class is {@code truth} (its support). */
  public long support(int truth) {
    return Arrays.stream(counts[truth]).sum();
  }

  /** Rows predicted as {@code predicted}. */
  public long predicted(int predicted) {
    long sum = 0;
    for (long[] row : counts) {
      sum += row[predicted];
    }
    return sum;
  }

  /** Rows counted. */
  public long total() {
    return Arrays.stream(counts).flatMapToLong(Arrays::stream).sum();
  }

  /** Rows predicted as their true class. */
  public long correct() {
    long sum = 0;
    for (int i = 0; i < counts.length; i++) {
      sum += counts[i][i];
    }
    return sum;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof ConfusionMatrix m
        && labels.equals(m.labels)
        && Arrays.deepEquals(counts, m.counts);
  }

  @Override
  public int hashCode() {
    return Objects.hash(labels, Arrays.deepHashCode(counts));
  }

  @Override
  public String toString() {
    return "ConfusionMatrix" + labels + Arrays.deepToString(counts);
  }
}
