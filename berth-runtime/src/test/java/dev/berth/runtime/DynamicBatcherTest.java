package dev.berth.runtime;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.DeadlineExceededException;
import dev.berth.api.InvalidInputException;
import dev.berth.api.ModelNotReadyException;
import dev.berth.api.OverloadedException;
import dev.berth.api.Tensor;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

class DynamicBatcherTest {
  private final ServingMetrics metrics = new ServingMetrics();
  private final List<Integer> batchRows = new CopyOnWriteArrayList<>();
  private final CountDownLatch release = new CountDownLatch(1);
  private final CountDownLatch firstCallStarted = new CountDownLatch(1);
  private DynamicBatcher batcher;

  /** Answers each request with its own input doubled, after the test releases the first call. */
  private List<List<Tensor>> doubling(List<List<Tensor>> inputs, Set<String> outputs) {
    firstCallStarted.countDown();
    try {
      release.await(10, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    int rows = 0;
    List<List<Tensor>> out = new ArrayList<>();
    for (List<Tensor> request : inputs) {
      Tensor x = request.get(0);
      rows += (int) x.dim(0);
      if (x.floats().length > 0 && x.floats()[0] < 0) {
        throw new InvalidInputException("negative input");
      }
      float[] values = x.floats();
      for (int i = 0; i < values.length; i++) {
        values[i] *= 2;
      }
      out.add(List.of(Tensor.ofFloats("y", x.shape(), values)));
    }
    batchRows.add(rows);
    return out;
  }

  private static List<Tensor> input(float... values) {
    return List.of(Tensor.ofFloats("x", new long[] {1, values.length}, values));
  }

  private static long later() {
    return System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
  }

  @AfterEach
  void close() {
    release.countDown();
    if (batcher != null) {
      batcher.close(Duration.ofSeconds(5));
    }
  }

  @Test
  void combinesWaitingRequestsAndHandsEachItsOwnRows() throws Exception {
    batcher =
        new DynamicBatcher(
            "m", "1", new BatchingConfig(8, Duration.ZERO, 100), 1, this::doubling, metrics);
    CompletableFuture<List<Tensor>> first = batcher.submit(input(0), List.of("y"), 1, later());
    assertTrue(firstCallStarted.await(5, TimeUnit.SECONDS));
    List<CompletableFuture<List<Tensor>>> waiting = new ArrayList<>();
    for (int i = 1; i <= 5; i++) {
      waiting.add(batcher.submit(input(i, i + 100), List.of("y"), 1, later()));
    }
    release.countDown();
    assertArrayEquals(new float[] {0}, first.get(5, TimeUnit.SECONDS).get(0).floats());
    for (int i = 1; i <= 5; i++) {
      assertArrayEquals(
          new float[] {2 * i, 2 * (i + 100)},
          waiting.get(i - 1).get(5, TimeUnit.SECONDS).get(0).floats());
    }
    assertEquals(List.of(1, 5), batchRows);
  }

  @Test
  void neverExceedsMaxBatchSize() throws Exception {
    batcher =
        new DynamicBatcher(
            "m", "1", new BatchingConfig(4, Duration.ZERO, 100), 1, this::doubling, metrics);
    CompletableFuture<List<Tensor>> first = batcher.submit(input(0), List.of("y"), 1, later());
    assertTrue(firstCallStarted.await(5, TimeUnit.SECONDS));
    List<CompletableFuture<List<Tensor>>> waiting = new ArrayList<>();
    for (int i = 0; i < 10; i++) {
      waiting.add(batcher.submit(input(i), List.of("y"), 1, later()));
    }
    release.countDown();
    first.get(5, TimeUnit.SECONDS);
    for (CompletableFuture<List<Tensor>> f : waiting) {
      f.get(5, TimeUnit.SECONDS);
    }
    assertEquals(List.of(1, 4, 4, 2), batchRows);
  }

  @Test
  void waitsUpToMaxQueueDelayForMoreRequests() throws Exception {
    release.countDown();
    batcher =
        new DynamicBatcher(
            "m",
            "1",
            new BatchingConfig(2, Duration.ofSeconds(10), 100),
            1,
            this::doubling,
            metrics);
    CompletableFuture<List<Tensor>> a = batcher.submit(input(1), List.of("y"), 1, later());
    CompletableFuture<List<Tensor>> b = batcher.submit(input(2), List.of("y"), 1, later());
    a.get(5, TimeUnit.SECONDS);
    b.get(5, TimeUnit.SECONDS);
    assertEquals(List.of(2), batchRows, "the two requests arrived within the delay: one call");
  }

  @Test
  void fullQueueRefusesAtOnceWithRetryAfter() throws Exception {
    batcher =
        new DynamicBatcher(
            "m", "1", new BatchingConfig(1, Duration.ZERO, 2), 1, this::doubling, metrics);
    batcher.submit(input(0), List.of("y"), 1, later());
    assertTrue(firstCallStarted.await(5, TimeUnit.SECONDS));
    batcher.submit(input(1), List.of("y"), 1, later());
    batcher.submit(input(2), List.of("y"), 1, later());
    OverloadedException e =
        assertThrows(
            OverloadedException.class, () -> batcher.submit(input(3), List.of("y"), 1, later()));
    assertTrue(e.getMessage().contains("max-queue-size"), e.getMessage());
    assertTrue(e.retryAfter().toSeconds() >= 1);
  }

  @Test
  void requestPastItsDeadlineIsNotRun() throws Exception {
    batcher =
        new DynamicBatcher(
            "m", "1", new BatchingConfig(1, Duration.ZERO, 10), 1, this::doubling, metrics);
    CompletableFuture<List<Tensor>> first = batcher.submit(input(0), List.of("y"), 1, later());
    assertTrue(firstCallStarted.await(5, TimeUnit.SECONDS));
    CompletableFuture<List<Tensor>> late =
        batcher.submit(input(1), List.of("y"), 1, System.nanoTime());
    release.countDown();
    first.get(5, TimeUnit.SECONDS);
    ExecutionException e =
        assertThrows(ExecutionException.class, () -> late.get(5, TimeUnit.SECONDS));
    assertInstanceOf(DeadlineExceededException.class, e.getCause());
    assertEquals(List.of(1), batchRows, "the expired request never reached the engine");
  }

  @Test
  void oneBadRequestFailsAloneNotItsBatch() throws Exception {
    batcher =
        new DynamicBatcher(
            "m", "1", new BatchingConfig(8, Duration.ZERO, 10), 1, this::doubling, metrics);
    CompletableFuture<List<Tensor>> first = batcher.submit(input(0), List.of("y"), 1, later());
    assertTrue(firstCallStarted.await(5, TimeUnit.SECONDS));
    CompletableFuture<List<Tensor>> good = batcher.submit(input(3), List.of("y"), 1, later());
    CompletableFuture<List<Tensor>> bad = batcher.submit(input(-1), List.of("y"), 1, later());
    release.countDown();
    first.get(5, TimeUnit.SECONDS);
    assertArrayEquals(new float[] {6}, good.get(5, TimeUnit.SECONDS).get(0).floats());
    ExecutionException e =
        assertThrows(ExecutionException.class, () -> bad.get(5, TimeUnit.SECONDS));
    assertInstanceOf(InvalidInputException.class, e.getCause());
  }

  @Test
  void closeFinishesEveryQueuedRequestThenRefusesNewOnes() throws Exception {
    batcher =
        new DynamicBatcher(
            "m", "1", new BatchingConfig(2, Duration.ZERO, 100), 2, this::doubling, metrics);
    List<CompletableFuture<List<Tensor>>> all = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      all.add(batcher.submit(input(i), List.of("y"), 1, later()));
    }
    assertTrue(firstCallStarted.await(5, TimeUnit.SECONDS));
    Thread closer = Thread.ofVirtual().start(() -> batcher.close(Duration.ofSeconds(10)));
    await()
        .atMost(Duration.ofSeconds(5))
        .until(
            () -> {
              try {
                batcher.submit(input(99), List.of("y"), 1, later());
                return false;
              } catch (ModelNotReadyException e) {
                return true;
              }
            });
    release.countDown();
    closer.join(Duration.ofSeconds(10));
    for (int i = 0; i < 20; i++) {
      assertArrayEquals(new float[] {2 * i}, all.get(i).get(1, TimeUnit.SECONDS).get(0).floats());
    }
  }

  @Test
  void recordsBatchSizeQueueAndComputeTime() throws Exception {
    release.countDown();
    batcher =
        new DynamicBatcher(
            "m", "1", new BatchingConfig(8, Duration.ZERO, 10), 1, this::doubling, metrics);
    batcher.submit(input(1), List.of("y"), 1, later()).get(5, TimeUnit.SECONDS);
    var names =
        metrics.registry().scrape().stream().map(s -> s.getMetadata().getPrometheusName()).toList();
    assertTrue(
        names.containsAll(
            List.of(
                "berth_batch_size",
                "berth_queue_duration_seconds",
                "berth_compute_duration_seconds")),
        names.toString());
  }

  @Test
  void aRequestGivenUpLeavesTheQueueAtOnceAndTheGaugeSaysSo() throws Exception {
    batcher =
        new DynamicBatcher(
            "m", "1", new BatchingConfig(1, Duration.ZERO, 100), 1, this::doubling, metrics);
    CompletableFuture<List<Tensor>> running = batcher.submit(input(1), List.of("y"), 1, later());
    assertTrue(firstCallStarted.await(5, TimeUnit.SECONDS));
    List<CompletableFuture<List<Tensor>>> waiting = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      waiting.add(batcher.submit(input(i), List.of("y"), 1, later()));
    }
    assertEquals(5, queueGauge());
    assertEquals(100, value("berth_queue_capacity", Map.of()), "batching.max-queue-size");
    assertEquals(
        0,
        value("berth_rejected_requests", Map.of("reason", "queue_full")),
        "a version's refusals read 0 before the first");
    assertEquals(0, value("berth_rejected_requests", Map.of("reason", "deadline")));
    waiting.subList(0, 4).forEach(f -> f.cancel(false));
    // the engine is still busy with the first request: nothing but the cancellation changed
    assertEquals(1, batcher.queued());
    assertEquals(1, queueGauge());
    release.countDown();
    assertEquals(2f, running.get(5, TimeUnit.SECONDS).get(0).floats()[0]);
    assertEquals(8f, waiting.get(4).get(5, TimeUnit.SECONDS).get(0).floats()[0]);
    assertEquals(List.of(1, 1), batchRows, "the cancelled requests never ran");
    assertEquals(0, queueGauge());
    batcher.close(Duration.ofSeconds(5));
    assertEquals(-1, queueGauge(), "a closed batcher's queue is no longer reported");
  }

  /** berth_queue_size of m/1 as a scrape reads it, -1 when it is not reported. */
  private double queueGauge() {
    return value("berth_queue_size", Map.of());
  }

  /** A gauge's or counter's value for m/1 with {@code labels} as a scrape reads it, else -1. */
  private double value(String name, Map<String, String> labels) {
    return metrics.registry().scrape().stream()
        .filter(s -> s.getMetadata().getPrometheusName().equals(name))
        .flatMap(s -> s.getDataPoints().stream())
        .filter(
            p ->
                p.getLabels().get("model").equals("m")
                    && p.getLabels().get("version").equals("1")
                    && labels.entrySet().stream()
                        .allMatch(e -> e.getValue().equals(p.getLabels().get(e.getKey()))))
        .mapToDouble(
            p ->
                switch (p) {
                  case io.prometheus.metrics.model.snapshots.GaugeSnapshot.GaugeDataPointSnapshot
                          g ->
                      g.getValue();
                  case io.prometheus.metrics.model.snapshots.CounterSnapshot
                              .CounterDataPointSnapshot
                          c ->
                      c.getValue();
                  default -> throw new AssertionError(name + " is no gauge or counter");
                })
        .findFirst()
        .orElse(-1);
  }
}
