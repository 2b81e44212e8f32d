package dev.berth.client.bench;

import java.util.List;
import java.util.Map;

/**
 * Where the server says the time of one step went, from the change of a Berth server's {@code
 * /metrics} between the step's start and end (all versions of the model). A field is NaN when the
 * server recorded nothing for it in the step (a tensor model has no token figures, a language model
 * no batches).
 *
 * @param queueMs mean time a request waited in the model's queue ({@code
 *     berth_queue_duration_seconds})
 * @param computeMs mean engine time of one batch ({@code berth_compute_duration_seconds})
 * @param batchSize mean rows per engine call ({@code berth_batch_size})
 * @param requestMs mean time from a request's arrival to its answer ({@code
 *     berth_request_duration_seconds})
 * @param firstTokenMs a language model's mean time from a request's arrival to its first generated
 *     token, waiting for a sequence included ({@code berth_llm_time_to_first_token_seconds})
 * @param perTokenMs a language model's mean time between two tokens of one sequence ({@code
 *     berth_llm_time_per_output_token_seconds})
 */
public record ServerSplit(
    double queueMs,
    double computeMs,
    double batchSize,
    double requestMs,
    double firstTokenMs,
    double perTokenMs) {

  static final String QUEUE = "berth_queue_duration_seconds";
  static final String COMPUTE = "berth_compute_duration_seconds";
  static final String BATCH = "berth_batch_size";
  static final String REQUEST = "berth_request_duration_seconds";
  static final String FIRST_TOKEN = "berth_llm_time_to_first_token_seconds";
  static final String PER_TOKEN = "berth_llm_time_per_output_token_seconds";

  /** A tensor model's split: no token figures. */
  public ServerSplit(double queueMs, double computeMs, double batchSize, double requestMs) {
    this(queueMs, computeMs, batchSize, requestMs, Double.NaN, Double.NaN);
  }

  /** The sums and counts of the model's histograms at one moment. */
  record Snapshot(double[] sums, double[] counts) {
    private static final String[] NAMES = {QUEUE, COMPUTE, BATCH, REQUEST, FIRST_TOKEN, PER_TOKEN};

    /** The snapshot of {@code model} in a scrape; null when the scrape has none of its metrics. */
    static Snapshot of(List<PrometheusText.Sample> samples, String model) {
      Map<String, String> match = Map.of("model", model);
      double[] sums = new double[NAMES.length];
      double[] counts = new double[NAMES.length];
      boolean any = false;
      for (int i = 0; i < NAMES.length; i++) {
        String name = NAMES[i];
        any |= samples.stream().anyMatch(s -> s.name().startsWith(name + "_"));
        sums[i] = PrometheusText.sum(samples, name + "_sum", match);
        counts[i] = PrometheusText.sum(samples, name + "_count", match);
      }
      return any ? new Snapshot(sums, counts) : null;
    }
  }

  /**
   * The means over what happened between two snapshots. (A language model's token counts come from
   * its answers, not from here: the counters move with generations that began before the first
   * snapshot.)
   */
  static ServerSplit between(Snapshot before, Snapshot after) {
    int n = before.sums().length;
    double[] means = new double[n];
    for (int i = 0; i < n; i++) {
      double count = after.counts()[i] - before.counts()[i];
      double sum = after.sums()[i] - before.sums()[i];
      means[i] = count > 0 ? sum / count : Double.NaN;
    }
    return new ServerSplit(
        means[0] * 1e3, means[1] * 1e3, means[2], means[3] * 1e3, means[4] * 1e3, means[5] * 1e3);
  }
}
