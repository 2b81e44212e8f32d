package dev.berth.client.eval;

import java.net.URI;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Objects;

/**
 * What an evaluation measured, and against what.
 *
 * @param url the server
 * @param model the model's name
 * @param modelVersion the version that answered
 * @param data the data set's file or folder
 * @param format the data set's layout
 * @param sent how rows went to the model (input, datatype, scaling)
 * @param output the output read
 * @param labelSource where the class names came from: {@code --labels}, {@code model metadata},
 *     {@code output width} (class indices) or {@code data}
 * @param metrics the metrics of every answered row
 * @param rows rows in the data set
 * @param errors requests that failed
 * @param binary the positive class and threshold of a binary task, or null
 * @param elapsed time from the first request to the last answer
 */
public record EvalResult(
    URI url,
    String model,
    String modelVersion,
    Path data,
    DataFormat format,
    String sent,
    String output,
    String labelSource,
    ClassificationMetrics metrics,
    int rows,
    Errors errors,
    Binary binary,
    Duration elapsed) {

  public EvalResult {
    Objects.requireNonNull(metrics, "metrics");
    Objects.requireNonNull(errors, "errors");
  }

  /**
   * Requests that got no answer or an error answer; their rows are not in the metrics.
   *
   * @param requests failed requests
   * @param rows rows in them
   * @param messages the first few distinct messages, with the status the server gave
   */
  public record Errors(long requests, long rows, List<String> messages) {
    public Errors {
      messages = List.copyOf(messages);
    }
  }

  /**
   * A binary task's decision.
   *
   * @param positiveLabel the positive class
   * @param threshold the score at or above which a row is positive; NaN when the highest score
   *     decides
   * @param precision the positive class's precision
   * @param recall its recall
   * @param f1 its F1
   */
  public record Binary(
      String positiveLabel, double threshold, double precision, double recall, double f1) {}

  /** Class names, in class-index order. */
  public List<String> labels() {
    return metrics.matrix().labels();
  }

  /** Rows answered and counted in the metrics. */
  public long evaluated() {
    return metrics.matrix().total();
  }

  /** Rows answered a second. */
  public double rowsPerSecond() {
    double seconds = elapsed.toNanos() / 1e9;
    return seconds <= 0 ? 0 : evaluated() / seconds;
  }
}
