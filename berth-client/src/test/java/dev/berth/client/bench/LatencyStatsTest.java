package dev.berth.client.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class LatencyStatsTest {
  private static long[] millis(long... ms) {
    return Arrays.stream(ms).map(v -> v * 1_000_000).sorted().toArray();
  }

  @Test
  void percentilesAreNearestRank() {
    long[] oneToHundred = new long[100];
    for (int i = 0; i < 100; i++) {
      oneToHundred[i] = (i + 1) * 1_000_000L;
    }
    LatencyStats s = LatencyStats.ofSorted(oneToHundred);
    assertEquals(50.5, s.meanMs(), 1e-9);
    assertEquals(50, s.p50Ms(), 1e-9);
    assertEquals(90, s.p90Ms(), 1e-9);
    assertEquals(95, s.p95Ms(), 1e-9);
    assertEquals(99, s.p99Ms(), 1e-9);
    assertEquals(100, s.maxMs(), 1e-9);
  }

  @Test
  void fewValuesRoundTheRankUp() {
    // 3 values: p50 is the 2nd (ceil(1.5)), p90 and p99 the 3rd
    LatencyStats s = LatencyStats.ofSorted(millis(30, 10, 20));
    assertEquals(20, s.p50Ms(), 1e-9);
    assertEquals(30, s.p90Ms(), 1e-9);
    assertEquals(30, s.p99Ms(), 1e-9);
    assertEquals(20, s.meanMs(), 1e-9);
    LatencyStats one = LatencyStats.ofSorted(millis(7));
    assertEquals(7, one.p50Ms(), 1e-9);
    assertEquals(7, one.p99Ms(), 1e-9);
  }

  @Test
  void noValuesIsNotANumber() {
    LatencyStats s = LatencyStats.ofSorted(new long[0]);
    assertTrue(Double.isNaN(s.p50Ms()) && Double.isNaN(s.meanMs()) && Double.isNaN(s.maxMs()));
  }

  @Test
  void theProgressHistogramAgreesWithTheExactFigureWithinItsBucketWidth() {
    SplittableRandom random = new SplittableRandom(7);
    long[] values = new long[20_000];
    LatencyHistogram h = new LatencyHistogram();
    for (int i = 0; i < values.length; i++) {
      // log-normal-ish latencies from 50 us to a few seconds
      values[i] = (long) (Math.exp(random.nextDouble(Math.log(50_000), Math.log(3e9))));
      h.record(values[i]);
    }
    Arrays.sort(values);
    for (double p : new double[] {50, 90, 99, 99.9}) {
      double exact = LatencyStats.percentile(values, p) / 1e6;
      assertEquals(exact, h.percentileMs(p), exact * 0.035, "p" + p);
    }
    assertEquals(values.length, h.total());
  }

  @Test
  void histogramBucketsCoverEveryValueWithoutGaps() {
    long previousUpper = -1;
    for (int i = 0; i < 1500; i++) {
      long lo = LatencyHistogram.lowerBound(i);
      long hi = LatencyHistogram.upperBound(i);
      assertEquals(previousUpper + 1, lo, "bucket " + i);
      assertEquals(i, LatencyHistogram.index(lo));
      assertEquals(i, LatencyHistogram.index(hi));
      assertTrue(i < 64 || (hi - lo + 1) <= lo / 32.0 + 1, "bucket " + i + " too wide");
      previousUpper = hi;
    }
  }
}
