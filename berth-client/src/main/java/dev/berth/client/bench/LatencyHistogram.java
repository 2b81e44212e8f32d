package dev.berth.client.bench;

/**
 * A small log-linear histogram of latencies in microseconds (32 buckets per power of two, so a
 * value is known within about 3%), for the progress lines: recording costs a few instructions and
 * merging a thousand counters, so the p99 so far can be shown every second without sorting. The
 * final figures come from the exact latencies, not from here.
 */
final class LatencyHistogram {
  private static final int SUB_BITS = 5;
  private static final int SUB = 1 << SUB_BITS; // 32
  private static final int BUCKETS = 64 * SUB;

  private final long[] counts = new long[BUCKETS];
  private long total;

  void record(long nanos) {
    counts[index(Math.max(0, nanos / 1000))]++;
    total++;
  }

  /** Adds another histogram's counts (read without locking: a progress figure may lag a little). */
  void add(LatencyHistogram other) {
    for (int i = 0; i < BUCKETS; i++) {
      long c = other.counts[i];
      counts[i] += c;
      total += c;
    }
  }

  long total() {
    return total;
  }

  /**
   * The nearest-rank percentile {@code p}, in milliseconds (the middle of its bucket); NaN if
   * empty.
   */
  double percentileMs(double p) {
    if (total == 0) {
      return Double.NaN;
    }
    long rank = Math.max(1, (long) Math.ceil(p / 100.0 * total));
    long seen = 0;
    for (int i = 0; i < BUCKETS; i++) {
      seen += counts[i];
      if (seen >= rank) {
        return (lowerBound(i) + upperBound(i)) / 2.0 / 1000.0;
      }
    }
    return upperBound(BUCKETS - 1) / 1000.0;
  }

  static int index(long micros) {
    if (micros < 2 * SUB) {
      return (int) micros;
    }
    int exp = 63 - Long.numberOfLeadingZeros(micros); // >= SUB_BITS + 1
    int shift = exp - SUB_BITS;
    int i = shift * SUB + (int) (micros >>> shift);
    return Math.min(i, BUCKETS - 1);
  }

  static long lowerBound(int index) {
    if (index < 2 * SUB) {
      return index;
    }
    int shift = index / SUB - 1;
    return (long) (index - shift * SUB) << shift;
  }

  static long upperBound(int index) {
    if (index < 2 * SUB) {
      return index;
    }
    int shift = index / SUB - 1;
    return ((long) (index - shift * SUB + 1) << shift) - 1;
  }
}
