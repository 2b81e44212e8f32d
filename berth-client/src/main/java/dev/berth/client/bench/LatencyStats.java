package dev.berth.client.bench;

/**
 * Latency of the successful requests of one step, in milliseconds. Percentiles are exact, by the
 * nearest-rank method: p99 is the smallest latency that at least 99% of the requests did not
 * exceed. All NaN when no request succeeded.
 */
public record LatencyStats(
    double meanMs, double p50Ms, double p90Ms, double p95Ms, double p99Ms, double maxMs) {

  static final LatencyStats NONE =
      new LatencyStats(Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN);

  /** Statistics of latencies in nanoseconds, sorted ascending. */
  static LatencyStats ofSorted(long[] sortedNanos) {
    int n = sortedNanos.length;
    if (n == 0) {
      return NONE;
    }
    double sum = 0;
    for (long v : sortedNanos) {
      sum += v;
    }
    return new LatencyStats(
        sum / n / 1e6,
        percentile(sortedNanos, 50) / 1e6,
        percentile(sortedNanos, 90) / 1e6,
        percentile(sortedNanos, 95) / 1e6,
        percentile(sortedNanos, 99) / 1e6,
        sortedNanos[n - 1] / 1e6);
  }

  /** The nearest-rank percentile {@code p} (0 < p <= 100) of sorted values. */
  static long percentile(long[] sorted, double p) {
    if (sorted.length == 0) {
      throw new IllegalArgumentException("no values");
    }
    int rank = (int) Math.ceil(p / 100.0 * sorted.length);
    return sorted[Math.max(0, Math.min(sorted.length, rank) - 1)];
  }
}
