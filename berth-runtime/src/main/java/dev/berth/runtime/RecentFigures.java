package dev.berth.runtime;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.Deque;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.function.LongSupplier;
import java.util.function.Supplier;

/**
 * Live figures of each model version (requests per second, server errors per second, p99 latency,
 * mean batch size, generated tokens per second) over about the last {@link #WINDOW}, taken from the
 * differences between readings of the server's own metrics ({@link ServingMetrics}).
 *
 * <p>Readings are taken only when the figures are asked for (at most one a second is kept), so the
 * serving path records nothing for them and nothing runs in the background. The first look only
 * starts the window: figures come once a reading at least {@link #SHORTEST} old exists, over the
 * span since the newest reading at least {@link #WINDOW} old (or the oldest kept, while none is);
 * readings older than {@link #OLDEST} are dropped, so a look after a long pause starts over.
 */
public final class RecentFigures {
  /** The span the figures cover once readings go back that far. */
  public static final Duration WINDOW = Duration.ofSeconds(10);

  /** The shortest span that gives figures; a shorter one says too little. */
  public static final Duration SHORTEST = Duration.ofSeconds(1);

  /** Readings older than this are dropped: figures are about now, not since the last look. */
  public static final Duration OLDEST = Duration.ofSeconds(60);

  /** The latency quantile reported. */
  static final double QUANTILE = 0.99;

  private static final Set<String> GRPC_SERVER_ERRORS =
      Set.of("INTERNAL", "UNAVAILABLE", "UNKNOWN", "DATA_LOSS");

  /**
   * One model version's figures over a window. NaN where the window holds nothing to measure: no
   * request answered, no p99; no batch run, no mean batch size.
   *
   * @param requestsPerSecond inference requests answered per second, whatever their status
   * @param serverErrorsPerSecond of those, answered with a server error per second (HTTP 5xx; gRPC
   *     INTERNAL, UNAVAILABLE, UNKNOWN, DATA_LOSS), as the error-ratio alert counts them
   * @param p99LatencySeconds the 99th percentile of the requests' time in the server, estimated
   *     from the latency histogram's buckets as Prometheus' {@code histogram_quantile} does
   * @param meanBatchSize rows per engine call
   * @param tokensPerSecond tokens a language model generated per second (0 for other models)
   */
  public record Figures(
      double requestsPerSecond,
      double serverErrorsPerSecond,
      double p99LatencySeconds,
      double meanBatchSize,
      double tokensPerSecond) {
    static final Figures IDLE = new Figures(0, 0, Double.NaN, Double.NaN, 0);
  }

  /** The figures of every model version over one window. */
  public static final class Window {
    private final Duration length;
    private final Map<List<String>, Figures> figures;

    Window(Duration length, Map<List<String>, Figures> figures) {
      this.length = length;
      this.figures = Map.copyOf(figures);
    }

    /** The span the figures cover; empty while the window is shorter than {@link #SHORTEST}. */
    public Optional<Duration> length() {
      return Optional.ofNullable(length);
    }

    /**
     * A model version's figures: zero requests for one that answered none in the window; empty
     * while the window is too short to say.
     */
    public Optional<Figures> of(String model, String version) {
      if (length == null) {
        return Optional.empty();
      }
      return Optional.of(figures.getOrDefault(List.of(model, version), Figures.IDLE));
    }
  }

  /**
   * What the metrics counted up to one moment for one model version.
   *
   * @param latencyBuckets requests per latency bucket (not cumulative), in the order of {@link
   *     ServingMetrics#LATENCY_BUCKETS} and +Inf last; null when none was observed
   * @param batchRows rows over all batches
   */
  record Counts(
      long requests,
      long serverErrors,
      long[] latencyBuckets,
      long batches,
      double batchRows,
      long tokens) {
    static final Counts ZERO = new Counts(0, 0, null, 0, 0, 0);

    Counts plus(Counts o) {
      return new Counts(
          requests + o.requests,
          serverErrors + o.serverErrors,
          combine(latencyBuckets, o.latencyBuckets, 1),
          batches + o.batches,
          batchRows + o.batchRows,
          tokens + o.tokens);
    }

    /** The counts since {@code base}; a counter that went back (none should) counts as 0. */
    Counts since(Counts base) {
      long[] buckets = combine(latencyBuckets, base.latencyBuckets, -1);
      if (buckets != null) {
        for (int i = 0; i < buckets.length; i++) {
          buckets[i] = Math.max(0, buckets[i]);
        }
      }
      return new Counts(
          Math.max(0, requests - base.requests),
          Math.max(0, serverErrors - base.serverErrors),
          buckets,
          Math.max(0, batches - base.batches),
          Math.max(0, batchRows - base.batchRows),
          Math.max(0, tokens - base.tokens));
    }

    private static long[] combine(long[] a, long[] b, int sign) {
      if (a == null && b == null) {
        return null;
      }
      int n = Math.max(a == null ? 0 : a.length, b == null ? 0 : b.length);
      long[] out = a == null ? new long[n] : Arrays.copyOf(a, n);
      for (int i = 0; b != null && i < b.length; i++) {
        out[i] += sign * b[i];
      }
      return out;
    }
  }

  private record Reading(long nanos, Map<List<String>, Counts> counts) {}

  private static final double[] LATENCY_BOUNDS =
      Arrays.copyOf(ServingMetrics.LATENCY_BUCKETS, ServingMetrics.LATENCY_BUCKETS.length + 1);

  static {
    LATENCY_BOUNDS[LATENCY_BOUNDS.length - 1] = Double.POSITIVE_INFINITY;
  }

  private final Supplier<Map<List<String>, Counts>> source;
  private final LongSupplier nanoTime;
  private final Deque<Reading> readings = new ArrayDeque<>();

  RecentFigures(Supplier<Map<List<String>, Counts>> source, LongSupplier nanoTime) {
    this.source = Objects.requireNonNull(source);
    this.nanoTime = Objects.requireNonNull(nanoTime);
  }

  /** Figures from these metrics. */
  public static RecentFigures of(ServingMetrics metrics) {
    return new RecentFigures(metrics::counts, System::nanoTime);
  }

  /** The figures now, over the window that ends now (and a reading that later windows start at). */
  public synchronized Window now() {
    long now = nanoTime.getAsLong();
    Map<List<String>, Counts> counts = source.get();
    while (!readings.isEmpty() && now - readings.peekFirst().nanos() > OLDEST.toNanos()) {
      readings.removeFirst();
    }
    // keep one reading at least WINDOW old, the newest such one: the window starts there
    while (readings.size() >= 2 && now - second().nanos() >= WINDOW.toNanos()) {
      readings.removeFirst();
    }
    Reading base = readings.peekFirst();
    if (readings.isEmpty() || now - readings.peekLast().nanos() >= SHORTEST.toNanos()) {
      readings.addLast(new Reading(now, counts));
    }
    if (base == null || now - base.nanos() < SHORTEST.toNanos()) {
      return new Window(null, Map.of());
    }
    double seconds = (now - base.nanos()) / 1e9;
    Map<List<String>, Figures> figures = new java.util.HashMap<>();
    counts.forEach(
        (version, total) ->
            figures.put(
                version,
                figures(total.since(base.counts().getOrDefault(version, Counts.ZERO)), seconds)));
    return new Window(Duration.ofNanos(now - base.nanos()), figures);
  }

  private Reading second() {
    Iterator<Reading> it = readings.iterator();
    it.next();
    return it.next();
  }

  /** The figures of counts made over {@code seconds}. */
  static Figures figures(Counts delta, double seconds) {
    return new Figures(
        delta.requests() / seconds,
        delta.serverErrors() / seconds,
        delta.latencyBuckets() == null
            ? Double.NaN
            : quantile(QUANTILE, LATENCY_BOUNDS, delta.latencyBuckets()),
        delta.batches() == 0 ? Double.NaN : delta.batchRows() / delta.batches(),
        delta.tokens() / seconds);
  }

  /**
   * The {@code q} quantile of observations counted in histogram buckets, as Prometheus'
   * histogram_quantile estimates it: find the bucket that holds the observation of rank {@code q *
   * total} and interpolate linearly between its bounds (the first bucket's lower bound is 0). An
   * observation in the +Inf bucket gives the highest finite bound.
   *
   * @param upperBounds each bucket's upper bound, ascending; the last may be +Inf
   * @param perBucket observations per bucket (not cumulative)
   * @return NaN when there are no observations
   */
  static double quantile(double q, double[] upperBounds, long[] perBucket) {
    if (upperBounds.length != perBucket.length) {
      throw new IllegalArgumentException(
          upperBounds.length + " bounds for " + perBucket.length + " buckets");
    }
    long total = 0;
    for (long n : perBucket) {
      total += n;
    }
    if (total == 0) {
      return Double.NaN;
    }
    double rank = q * total;
    long below = 0;
    for (int i = 0; i < perBucket.length; i++) {
      if (perBucket[i] > 0 && below + perBucket[i] >= rank) {
        double upper = upperBounds[i];
        if (Double.isInfinite(upper)) {
          return i == 0 ? Double.NaN : upperBounds[i - 1];
        }
        double lower = i == 0 ? 0 : upperBounds[i - 1];
        return lower + (upper - lower) * Math.max(0, rank - below) / perBucket[i];
      }
      below += perBucket[i];
    }
    return upperBounds[upperBounds.length - 1]; // not reached: the last bucket holds the rest
  }

  /** Whether a request's recorded status is a server error: HTTP 5xx, or a gRPC server failure. */
  static boolean isServerError(String code) {
    if (code == null) {
      return false;
    }
    if (code.length() == 3 && code.charAt(0) == '5') {
      return Character.isDigit(code.charAt(1)) && Character.isDigit(code.charAt(2));
    }
    return GRPC_SERVER_ERRORS.contains(code);
  }
}
