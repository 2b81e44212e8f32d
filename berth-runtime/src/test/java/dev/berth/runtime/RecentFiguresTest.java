package dev.berth.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/**
 * The status page's live figures: rates and means over the window, p99 estimated from histogram
 * buckets as Prometheus does, and which readings a window starts at.
 */
class RecentFiguresTest {
  private static final double[] BOUNDS = {0.1, 0.5, 1, Double.POSITIVE_INFINITY};
  private static final List<String> V1 = List.of("m", "1");

  private final AtomicLong clock = new AtomicLong(1_000_000_000L);
  private final Map<List<String>, RecentFigures.Counts> counts = new HashMap<>();
  private final RecentFigures recent = new RecentFigures(() -> Map.copyOf(counts), clock::get);

  private void at(double seconds) {
    clock.set(1_000_000_000L + (long) (seconds * 1e9));
  }

  private static RecentFigures.Counts requests(long n) {
    return new RecentFigures.Counts(n, 0, null, 0, 0, 0);
  }

  /**
   * Latency bucket counts of the real histogram: {@code n1} requests in the bucket whose upper
   * bound is {@code b1}, {@code n2} in that of {@code b2}.
   */
  private static long[] latency(double b1, long n1, double b2, long n2) {
    long[] buckets = new long[ServingMetrics.LATENCY_BUCKETS.length + 1];
    List<Double> bounds = java.util.Arrays.stream(ServingMetrics.LATENCY_BUCKETS).boxed().toList();
    buckets[bounds.indexOf(b1)] += n1;
    buckets[bounds.indexOf(b2)] += n2;
    return buckets;
  }

  @Test
  void quantileInterpolatesWithinItsBucketAsPrometheusDoes() {
    // 100 observations: 50 up to 0.1 s, 40 in (0.1, 0.5], 10 in (0.5, 1]
    long[] buckets = {50, 40, 10, 0};
    // rank 99 is the 9th of the 10 in (0.5, 1]: 0.5 + 0.5 * 9/10
    assertEquals(0.95, RecentFigures.quantile(0.99, BOUNDS, buckets), 1e-12);
    // rank 50 is the last of the first bucket, whose lower bound is 0
    assertEquals(0.1, RecentFigures.quantile(0.5, BOUNDS, buckets), 1e-12);
    // rank 25: half-way through the first bucket
    assertEquals(0.05, RecentFigures.quantile(0.25, BOUNDS, buckets), 1e-12);
    // rank 70: 20 of the 40 in (0.1, 0.5]
    assertEquals(0.3, RecentFigures.quantile(0.7, BOUNDS, buckets), 1e-12);
  }

  @Test
  void quantileInTheInfBucketIsTheHighestFiniteBound() {
    assertEquals(1.0, RecentFigures.quantile(0.99, BOUNDS, new long[] {1, 0, 0, 99}));
    assertTrue(Double.isNaN(RecentFigures.quantile(0.99, BOUNDS, new long[] {0, 0, 0, 0})));
    // empty buckets between are skipped: one observation, in (0.5, 1]
    assertEquals(0.995, RecentFigures.quantile(0.99, BOUNDS, new long[] {0, 0, 1, 0}), 1e-12);
  }

  @Test
  void theFirstLookStartsTheWindowAndGivesNoFigures() {
    counts.put(V1, requests(5));
    RecentFigures.Window first = recent.now();
    assertTrue(first.length().isEmpty());
    assertTrue(first.of("m", "1").isEmpty());
    at(0.5);
    assertTrue(recent.now().length().isEmpty(), "half a second says too little");
  }

  @Test
  void ratesAndMeansAreOverTheWindowOnly() {
    counts.put(V1, new RecentFigures.Counts(100, 3, latency(0.1, 100, 1, 0), 40, 100, 1000));
    recent.now();
    at(2);
    // in 2 s: 20 requests (2 server errors), 4 batches of 5 rows on average, 300 tokens
    counts.put(V1, new RecentFigures.Counts(120, 5, latency(0.1, 100, 1, 20), 44, 120, 1300));
    RecentFigures.Window w = recent.now();
    assertEquals(Duration.ofSeconds(2), w.length().orElseThrow());
    RecentFigures.Figures f = w.of("m", "1").orElseThrow();
    assertEquals(10.0, f.requestsPerSecond(), 1e-9);
    assertEquals(1.0, f.serverErrorsPerSecond(), 1e-9);
    // the 100 fast requests before the window do not count: all 20 are in (0.5, 1]
    assertEquals(0.5 + 0.5 * 19.8 / 20, f.p99LatencySeconds(), 1e-9);
    assertEquals(5.0, f.meanBatchSize(), 1e-9);
    assertEquals(150.0, f.tokensPerSecond(), 1e-9);
  }

  @Test
  void aVersionWithoutTrafficIsIdleAndANewOneCountsFromZero() {
    counts.put(V1, requests(7));
    recent.now();
    at(1);
    counts.put(List.of("m", "2"), requests(3));
    RecentFigures.Window w = recent.now();
    RecentFigures.Figures idle = w.of("m", "1").orElseThrow();
    assertEquals(0.0, idle.requestsPerSecond());
    assertTrue(Double.isNaN(idle.p99LatencySeconds()));
    assertTrue(Double.isNaN(idle.meanBatchSize()));
    assertEquals(3.0, w.of("m", "2").orElseThrow().requestsPerSecond(), 1e-9);
    assertEquals(0.0, w.of("other", "1").orElseThrow().requestsPerSecond());
  }

  @Test
  void theWindowSlidesToTheNewestReadingAtLeastTenSecondsOld() {
    // a page polling every 2 s: readings at 0, 2, ..., 12; one request a second
    for (int t = 0; t <= 12; t += 2) {
      at(t);
      counts.put(V1, requests(t));
      RecentFigures.Window w = recent.now();
      if (t > 0) {
        assertEquals(Duration.ofSeconds(Math.min(t, 10)), w.length().orElseThrow(), "at " + t);
        assertEquals(1.0, w.of("m", "1").orElseThrow().requestsPerSecond(), 1e-9, "at " + t);
      }
    }
    // a burst of 40 requests in the last 2 s is spread over the 10 s window that holds it: from
    // the reading at 4 s (4 requests) to 52, 4.8 a second
    at(14);
    counts.put(V1, requests(12 + 40));
    assertEquals(
        (52.0 - 4) / 10, recent.now().of("m", "1").orElseThrow().requestsPerSecond(), 1e-9);
  }

  @Test
  void lookingOftenKeepsAtMostOneReadingASecond() {
    counts.put(V1, requests(0));
    recent.now();
    for (int i = 1; i <= 40; i++) {
      at(i * 0.25); // four looks a second for 10 s
      counts.put(V1, requests(i));
      RecentFigures.Window w = recent.now();
      if (i * 0.25 >= 1) {
        assertFalse(w.length().isEmpty());
        // readings are 1 s apart: the window starts at a whole second
        long ms = w.length().orElseThrow().toMillis();
        assertEquals(0, Math.round(i * 250.0 - ms) % 1000, "at " + i * 0.25 + " s: " + ms);
        assertEquals(4.0, w.of("m", "1").orElseThrow().requestsPerSecond(), 1e-9);
      }
    }
  }

  @Test
  void aLookAfterALongPauseStartsOver() {
    counts.put(V1, requests(0));
    recent.now();
    at(61);
    counts.put(V1, requests(610));
    assertTrue(recent.now().length().isEmpty(), "a minute-old reading is not a window");
    at(63);
    counts.put(V1, requests(630));
    assertEquals(10.0, recent.now().of("m", "1").orElseThrow().requestsPerSecond(), 1e-9);
  }

  @Test
  void serverErrorsAreTheAlertRulesOnes() {
    for (String code : List.of("500", "503", "504", "INTERNAL", "UNAVAILABLE", "UNKNOWN")) {
      assertTrue(RecentFigures.isServerError(code), code);
    }
    for (String code : List.of("200", "400", "429", "499", "OK", "CANCELLED", "5xx", "")) {
      assertFalse(RecentFigures.isServerError(code), code);
    }
  }

  @Test
  void readsTheServingMetricsThemselves() {
    ServingMetrics metrics = new ServingMetrics();
    metrics.request("m", "1", "rest", "200", 20_000_000); // 20 ms
    metrics.request("m", "1", "grpc", "INTERNAL", 2_000_000_000L); // 2 s
    metrics.request("m", "", "rest", "404", 1_000_000); // before a version was chosen: left out
    metrics.batch("m", "1", 3, 1_000_000, new BatchTimes());
    metrics.llmGeneratedToken("m", "1");
    RecentFigures.Counts c = metrics.counts().get(V1);
    assertEquals(2, c.requests());
    assertEquals(1, c.serverErrors());
    assertEquals(ServingMetrics.LATENCY_BUCKETS.length + 1, c.latencyBuckets().length);
    assertEquals(2, java.util.Arrays.stream(c.latencyBuckets()).sum());
    assertEquals(1, c.latencyBuckets()[5], "20 ms is in (10 ms, 25 ms]");
    assertEquals(1, c.batches());
    assertEquals(3.0, c.batchRows());
    assertEquals(1, c.tokens());
    assertEquals(1, metrics.counts().size());
  }
}
