package dev.berth.client.tune;

import dev.berth.api.BerthException;
import dev.berth.client.bench.LatencyStats;
import dev.berth.client.bench.StepResult;
import java.util.List;
import java.util.Locale;

/**
 * The latency goal a setting must hold: a percentile of the successful requests' latency at or
 * under a limit, with no request failing.
 *
 * @param percentile 50, 90, 95 or 99
 * @param limitMs the limit in milliseconds
 */
public record TuneGoal(int percentile, double limitMs) {
  /** The percentiles a goal can name. */
  public static final List<Integer> PERCENTILES = List.of(50, 90, 95, 99);

  public TuneGoal {
    if (!PERCENTILES.contains(percentile)) {
      throw new BerthException("a latency goal names p50, p90, p95 or p99, not p" + percentile);
    }
    if (!(limitMs > 0)) {
      throw new BerthException("a latency goal's limit must be above 0 ms, not " + limitMs);
    }
  }

  /** The goal's percentile of these latencies, in ms (NaN when no request succeeded). */
  public double of(LatencyStats latency) {
    return switch (percentile) {
      case 50 -> latency.p50Ms();
      case 90 -> latency.p90Ms();
      case 95 -> latency.p95Ms();
      default -> latency.p99Ms();
    };
  }

  /** Whether a step held the goal: answers, none failed, and the percentile within the limit. */
  public boolean heldBy(StepResult step) {
    double p = of(step.latency());
    return step.errors() == 0 && step.throughputPerSecond() > 0 && p <= limitMs;
  }

  /** {@code p99 <= 200 ms}. */
  public String label() {
    return "p" + percentile + " <= " + number(limitMs) + " ms";
  }

  static String number(double v) {
    return v == Math.rint(v) && Math.abs(v) < 1e12
        ? Long.toString((long) v)
        : String.format(Locale.ROOT, "%.2f", v);
  }
}
