package dev.berth.client.bench;

import java.util.Map;

/**
 * What one step measured.
 *
 * @param step the load it put on the server
 * @param connections connections it used (an open loop opens as many as it needs)
 * @param durationSeconds the measured time the throughput is over: the step's duration for a closed
 *     loop; for an open loop, from the first scheduled send to the last answer (or the duration, if
 *     longer)
 * @param requests requests counted: answered in the measured time (closed loop) or scheduled in it
 *     (open loop), errors included
 * @param throughputPerSecond successful requests per second
 * @param latency latency of the successful requests; in an open loop from the time each request was
 *     due to be sent, so that a server that falls behind cannot hide its queue
 * @param errors failed requests: a status other than 2xx, or no answer
 * @param errorsByStatus failed requests by HTTP status ({@code "503"}) or by transport failure
 *     ({@code "refused"}, {@code "reset"}, {@code "closed"}, {@code "timeout"}, {@code "io"})
 * @param firstError the first failure's status and the server's message; null when none failed
 * @param server the server's own split of the time; null when it has no Berth metrics
 * @param promptTokens a language model's prompt tokens over the successful answers, as their {@code
 *     usage} says; -1 for other models
 * @param completionTokens a language model's generated tokens over the successful answers; -1 for
 *     other models
 * @param longestSequence a language model's most prompt and generated tokens of one answer; -1 for
 *     other models
 */
public record StepResult(
    LoadStep step,
    int connections,
    double durationSeconds,
    long requests,
    double throughputPerSecond,
    LatencyStats latency,
    long errors,
    Map<String, Long> errorsByStatus,
    String firstError,
    ServerSplit server,
    long promptTokens,
    long completionTokens,
    long longestSequence) {

  /** A step of a model that answers no tokens. */
  public StepResult(
      LoadStep step,
      int connections,
      double durationSeconds,
      long requests,
      double throughputPerSecond,
      LatencyStats latency,
      long errors,
      Map<String, Long> errorsByStatus,
      String firstError,
      ServerSplit server) {
    this(
        step,
        connections,
        durationSeconds,
        requests,
        throughputPerSecond,
        latency,
        errors,
        errorsByStatus,
        firstError,
        server,
        -1,
        -1,
        -1);
  }

  public StepResult {
    // HTTP statuses in numeric order, then transport failures by name
    java.util.Map<String, Long> sorted = new java.util.TreeMap<>(Recorder.Merged::compareKeys);
    sorted.putAll(errorsByStatus);
    errorsByStatus = java.util.Collections.unmodifiableMap(sorted);
  }

  /**
   * A language model's generated tokens per second: the tokens of the answers counted over the
   * measured time, as requests per second are; NaN for other models.
   */
  public double tokensPerSecond() {
    return completionTokens < 0 || durationSeconds <= 0
        ? Double.NaN
        : completionTokens / durationSeconds;
  }

  /** A language model's mean generated tokens per successful answer; NaN for other models. */
  public double meanCompletionTokens() {
    long answers = requests - errors;
    return completionTokens < 0 || answers <= 0 ? Double.NaN : completionTokens / (double) answers;
  }

  /** A language model's mean prompt tokens per successful answer; NaN for other models. */
  public double meanPromptTokens() {
    long answers = requests - errors;
    return promptTokens < 0 || answers <= 0 ? Double.NaN : promptTokens / (double) answers;
  }
}
