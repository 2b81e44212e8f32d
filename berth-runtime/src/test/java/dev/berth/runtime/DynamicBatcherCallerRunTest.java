package dev.berth.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.berth.api.Tensor;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** A lone request on an idle model runs on its own virtual thread, and only then. */
class DynamicBatcherCallerRunTest {
  private static final Duration NO_DELAY = Duration.ZERO;

  private final ServingMetrics metrics = new ServingMetrics();
  private final ExecutorService virtualThreads = Executors.newVirtualThreadPerTaskExecutor();
  private DynamicBatcher batcher;

  @BeforeAll
  static void needsTwoCarriers() {
    // With one thread carrying virtual threads the batcher never runs a request on its caller.
    assumeTrue(DynamicBatcher.CARRIERS > 1, "one thread carries virtual threads here");
  }

  @AfterEach
  void close() {
    Recording.releaseAll();
    if (batcher != null) {
      batcher.close(Duration.ofSeconds(5));
    }
    virtualThreads.close();
  }

  /** Doubles each request's input, records the thread of each call, and can be held. */
  private static final class Recording implements DynamicBatcher.BatchRunner {
    private static final List<CountDownLatch> HOLDS = new CopyOnWriteArrayList<>();
    final boolean anyThread;
    final List<Thread> threads = new CopyOnWriteArrayList<>();
    volatile long minNanos;
    volatile CountDownLatch hold; // while set, a call waits for it
    final CountDownLatch entered = new CountDownLatch(1);

    Recording(boolean anyThread) {
      this.anyThread = anyThread;
    }

    CountDownLatch holdCalls() {
      CountDownLatch latch = new CountDownLatch(1);
      HOLDS.add(latch);
      hold = latch;
      return latch;
    }

    static void releaseAll() {
      HOLDS.forEach(CountDownLatch::countDown);
    }

    @Override
    public boolean runsOnAnyThread() {
      return anyThread;
    }

    @Override
    public List<List<Tensor>> run(List<List<Tensor>> inputs, Set<String> outputs) {
      long start = System.nanoTime();
      threads.add(Thread.currentThread());
      entered.countDown();
      CountDownLatch latch = hold;
      if (latch != null) {
        try {
          latch.await(10, TimeUnit.SECONDS);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
        }
      }
      // A slow model: the call takes at least minNanos.
      long left;
      while ((left = start + minNanos - System.nanoTime()) > 0) {
        LockSupport.parkNanos(left);
      }
      List<List<Tensor>> out = new ArrayList<>();
      for (List<Tensor> request : inputs) {
        Tensor x = request.get(0);
        if (x.floats()[0] < 0) {
          throw new dev.berth.api.InvalidInputException("negative input");
        }
        float[] values = x.floats().clone();
        for (int i = 0; i < values.length; i++) {
          values[i] *= 2;
        }
        out.add(List.of(Tensor.ofFloats("y", x.shape(), values)));
      }
      return out;
    }
  }

  private DynamicBatcher start(Recording runner, int maxBatchSize, Duration delay, int instances) {
    return new DynamicBatcher(
        "m", "1", new BatchingConfig(maxBatchSize, delay, 100), instances, runner, metrics);
  }

  private static List<Tensor> input(float... values) {
    return List.of(Tensor.ofFloats("x", new long[] {1, values.length}, values));
  }

  private static long inSeconds(long seconds) {
    return System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
  }

  /** Submits from a new virtual thread and returns what submit returned, once it has returned. */
  private CompletableFuture<List<Tensor>> fromVirtualThread(float value, long deadlineNanos)
      throws Exception {
    return virtualThreads
        .submit(() -> batcher.submit(input(value), List.of("y"), 1, deadlineNanos))
        .get(10, TimeUnit.SECONDS);
  }

  /** The first call of a model goes to a worker: how long a call takes is not known before. */
  private void warmUp() throws Exception {
    // until a lone call was quick (a pause of the machine can make one slow)
    org.awaitility.Awaitility.await()
        .until(
            () -> {
              fromVirtualThread(0, inSeconds(30)).get(10, TimeUnit.SECONDS);
              settle();
              return batcher.lastCallNanos() < TimeUnit.MILLISECONDS.toNanos(5);
            });
  }

  /** Engine calls the metrics counted for m/1. */
  private long batches() {
    return metrics.registry().scrape().stream()
        .filter(m -> m.getMetadata().getPrometheusName().equals("berth_batch_size"))
        .flatMap(m -> m.getDataPoints().stream())
        .mapToLong(
            p ->
                ((io.prometheus.metrics.model.snapshots.HistogramSnapshot
                            .HistogramDataPointSnapshot)
                        p)
                    .getCount())
        .sum();
  }

  /** Waits for the worker that answered to give its instance back. */
  private void settle() {
    org.awaitility.Awaitility.await().until(batcher::idle);
  }

  private static float answer(CompletableFuture<List<Tensor>> result) throws Exception {
    return result.get(10, TimeUnit.SECONDS).get(0).floats()[0];
  }

  private static Thread last(Recording runner) {
    return runner.threads.get(runner.threads.size() - 1);
  }

  /** Waits until the runner has been called {@code n} times. */
  private static void awaitCalls(Recording runner, int n) {
    org.awaitility.Awaitility.await().until(() -> runner.threads.size() == n);
  }

  @Test
  void aLoneRequestOnAnIdleModelRunsOnItsOwnVirtualThread() throws Exception {
    Recording runner = new Recording(true);
    batcher = start(runner, 32, NO_DELAY, 2);
    fromVirtualThread(1, inSeconds(30)).get(10, TimeUnit.SECONDS);
    assertFalse(runner.threads.get(0).isVirtual(), "the first call went to a worker");
    warmUp();
    int calls = runner.threads.size();

    CompletableFuture<List<Tensor>> result = fromVirtualThread(3, inSeconds(30));
    assertTrue(result.isDone(), "answered before submit returned");
    assertArrayEquals(new float[] {6}, result.get().get(0).floats());
    assertTrue(runner.threads.get(calls).isVirtual(), "ran on the request's own thread");
    assertEquals(0, batcher.queued());
    assertEquals(calls + 1, batches(), "the batch is counted like any other");
  }

  @Test
  void anEngineThatNeedsItsWorkersKeepsThem() throws Exception {
    Recording runner = new Recording(false);
    batcher = start(runner, 32, NO_DELAY, 1);
    warmUp();
    assertEquals(8f, answer(fromVirtualThread(4, inSeconds(30))));
    assertTrue(runner.threads.stream().noneMatch(Thread::isVirtual), runner.threads.toString());
  }

  @Test
  void aPlatformThreadCallerIsHandedToAWorker() throws Exception {
    Recording runner = new Recording(true);
    batcher = start(runner, 32, NO_DELAY, 1);
    warmUp();
    CompletableFuture<List<Tensor>> result =
        batcher.submit(input(5), List.of("y"), 1, inSeconds(30));
    assertEquals(10f, answer(result));
    assertNotSame(Thread.currentThread(), last(runner));
    assertFalse(last(runner).isVirtual());
  }

  @Test
  void aBatchHeldOpenForMoreRequestsIsFormedByAWorker() throws Exception {
    Recording runner = new Recording(true);
    batcher = start(runner, 32, Duration.ofMillis(1), 1);
    warmUp();
    assertEquals(2f, answer(fromVirtualThread(1, inSeconds(30))));
    assertFalse(last(runner).isVirtual(), "max-queue-delay > 0: a worker gathers");
  }

  @Test
  void aRequestThatFillsABatchHeldOpenRunsOnItsOwnThread() throws Exception {
    Recording runner = new Recording(true);
    batcher = start(runner, 1, Duration.ofSeconds(1), 1);
    warmUp();
    CompletableFuture<List<Tensor>> result = fromVirtualThread(2, inSeconds(30));
    assertTrue(result.isDone());
    assertTrue(last(runner).isVirtual(), "nothing more could join its batch");
  }

  @Test
  void aLargerRequestThanTheLastGoesToTheWorkers() throws Exception {
    Recording runner = new Recording(true);
    batcher = start(runner, 32, NO_DELAY, 1);
    warmUp();
    List<Tensor> three = List.of(Tensor.ofFloats("x", new long[] {3, 1}, new float[] {1, 2, 3}));
    CompletableFuture<List<Tensor>> large =
        virtualThreads
            .submit(() -> batcher.submit(three, List.of("y"), 3, inSeconds(30)))
            .get(10, TimeUnit.SECONDS);
    large.get(10, TimeUnit.SECONDS);
    assertFalse(last(runner).isVirtual(), "3 rows after calls of 1: its time is not known");
  }

  @Test
  void afterABatchOfSeveralRequestsTheNextLoneOneGoesToTheWorkers() throws Exception {
    Recording runner = new Recording(true);
    batcher = start(runner, 32, NO_DELAY, 1);
    warmUp();
    int calls = runner.threads.size();
    CountDownLatch held = runner.holdCalls();
    // a platform caller holds the instance; two more queue and then run as one batch
    CompletableFuture<List<Tensor>> busy = batcher.submit(input(1), List.of("y"), 1, inSeconds(30));
    awaitCalls(runner, calls + 1);
    CompletableFuture<List<Tensor>> a = batcher.submit(input(2), List.of("y"), 1, inSeconds(30));
    CompletableFuture<List<Tensor>> b = batcher.submit(input(3), List.of("y"), 1, inSeconds(30));
    held.countDown();
    runner.hold = null;
    answer(busy);
    answer(a);
    answer(b);
    settle();
    assertEquals(calls + 2, runner.threads.size(), "the two queued ran as one batch");
    answer(fromVirtualThread(4, inSeconds(30)));
    assertFalse(last(runner).isVirtual(), "the last batch held two requests: under load");
    assertTrue(fromVirtualThread(5, inSeconds(30)).isDone(), "then a lone one runs here again");
    assertTrue(last(runner).isVirtual());
  }

  @Test
  void whileAnInstanceIsBusyARequestQueuesForTheWorkers() throws Exception {
    Recording runner = new Recording(true);
    batcher = start(runner, 32, NO_DELAY, 2);
    warmUp();
    int calls = runner.threads.size();
    CountDownLatch held = runner.holdCalls();
    // A platform caller: a worker takes it, and holds one of the two instances.
    CompletableFuture<List<Tensor>> busy = batcher.submit(input(1), List.of("y"), 1, inSeconds(30));
    awaitCalls(runner, calls + 1);
    CompletableFuture<List<Tensor>> second = fromVirtualThread(7, inSeconds(30));
    assertFalse(second.isDone(), "handed to the other worker, not run on its caller's thread");
    awaitCalls(runner, calls + 2);
    assertFalse(last(runner).isVirtual());
    held.countDown();
    assertEquals(2f, answer(busy));
    assertEquals(14f, answer(second));
  }

  @Test
  void atMostOneRequestRunsOnACallersThreadAcrossModels() throws Exception {
    assumeTrue(
        DynamicBatcher.MAX_CALLER_RUNS == 1,
        "with " + DynamicBatcher.CARRIERS + " carrier threads more than one may run so");
    Recording runner = new Recording(true);
    Recording otherRunner = new Recording(true);
    batcher = start(runner, 32, NO_DELAY, 1);
    DynamicBatcher other =
        new DynamicBatcher(
            "other", "1", new BatchingConfig(32, NO_DELAY, 100), 1, otherRunner, metrics);
    try {
      warmUp();
      org.awaitility.Awaitility.await()
          .until(
              () -> {
                other.submit(input(0), List.of("y"), 1, inSeconds(30)).get(10, TimeUnit.SECONDS);
                org.awaitility.Awaitility.await().until(other::idle);
                return other.lastCallNanos() < TimeUnit.MILLISECONDS.toNanos(5);
              });
      int calls = runner.threads.size();
      CountDownLatch held = runner.holdCalls();
      CompletableFuture<CompletableFuture<List<Tensor>>> first =
          CompletableFuture.supplyAsync(
              () -> batcher.submit(input(1), List.of("y"), 1, inSeconds(30)), virtualThreads);
      awaitCalls(runner, calls + 1);
      assertTrue(last(runner).isVirtual(), "the first runs on its own thread");
      int otherCalls = otherRunner.threads.size();
      CompletableFuture<List<Tensor>> second =
          virtualThreads
              .submit(() -> other.submit(input(2), List.of("y"), 1, inSeconds(30)))
              .get(10, TimeUnit.SECONDS);
      assertEquals(4f, answer(second));
      assertFalse(
          otherRunner.threads.get(otherCalls).isVirtual(),
          "another model's lone request, beside it, goes to that model's worker"
              + " (this machine carries virtual threads on "
              + DynamicBatcher.CARRIERS
              + " threads)");
      held.countDown();
      assertEquals(2f, answer(first.get(10, TimeUnit.SECONDS)));
    } finally {
      other.close(Duration.ofSeconds(5));
    }
  }

  @Test
  void aFailedRequestOnItsCallersThreadFailsAloneAndTheInstanceIsFreeAgain() throws Exception {
    Recording runner = new Recording(true);
    batcher = start(runner, 32, NO_DELAY, 1);
    warmUp();
    CompletableFuture<List<Tensor>> bad = fromVirtualThread(-1, inSeconds(30));
    assertTrue(last(runner).isVirtual());
    java.util.concurrent.ExecutionException e =
        org.junit.jupiter.api.Assertions.assertThrows(
            java.util.concurrent.ExecutionException.class, () -> bad.get(10, TimeUnit.SECONDS));
    assertTrue(e.getCause() instanceof dev.berth.api.InvalidInputException, e.toString());
    assertTrue(batcher.idle(), "the instance was given back");
    assertTrue(fromVirtualThread(1, inSeconds(30)).isDone(), "and the next runs here as before");
  }

  @Test
  void aSlowModelOrANearDeadlineKeepsTheWorkerPath() throws Exception {
    Recording runner = new Recording(true);
    batcher = start(runner, 32, NO_DELAY, 1);
    warmUp();
    runner.minNanos = TimeUnit.MILLISECONDS.toNanos(30);
    answer(fromVirtualThread(1, inSeconds(30))); // runs here, and takes 30 ms or more
    settle();
    answer(fromVirtualThread(1, inSeconds(30)));
    assertFalse(last(runner).isVirtual(), "after a slow call, requests stay on the workers");

    runner.minNanos = TimeUnit.MILLISECONDS.toNanos(10);
    answer(fromVirtualThread(1, inSeconds(30))); // on a worker; the last call is now 10 ms
    settle();
    int calls = runner.threads.size();
    CountDownLatch held = runner.holdCalls();
    // Run here, this request would hold its caller until released: that it comes back at all
    // shows it was handed to the worker.
    CompletableFuture<List<Tensor>> near =
        fromVirtualThread(1, System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(30));
    held.countDown();
    near.handle((r, e) -> null).get(10, TimeUnit.SECONDS);
    assertTrue(
        runner.threads.stream().skip(calls).noneMatch(Thread::isVirtual),
        "a deadline closer than a few calls' time is left to the workers, which answer it on time");
    runner.hold = null;
  }

  @Test
  void aRequestWaitingForTheInstanceCountsAsQueuedAndLeavesUnrunWhenGivenUp() throws Exception {
    Recording runner = new Recording(true);
    batcher = start(runner, 32, NO_DELAY, 1);
    warmUp();
    int calls = runner.threads.size();
    CountDownLatch held = runner.holdCalls();
    CompletableFuture<CompletableFuture<List<Tensor>>> running =
        CompletableFuture.supplyAsync(
            () -> batcher.submit(input(1), List.of("y"), 1, inSeconds(30)), virtualThreads);
    awaitCalls(runner, calls + 1);
    // The worker takes these from the queue and waits for the one instance, which is taken.
    CompletableFuture<List<Tensor>> first =
        batcher.submit(input(2), List.of("y"), 1, inSeconds(30));
    CompletableFuture<List<Tensor>> second =
        batcher.submit(input(3), List.of("y"), 1, inSeconds(30));
    org.awaitility.Awaitility.await().until(() -> batcher.queued() == 2);
    first.cancel(false);
    second.cancel(false);
    assertEquals(0, batcher.queued(), "given up: nothing waits");
    held.countDown();
    runner.hold = null;
    assertEquals(2f, answer(running.get(10, TimeUnit.SECONDS)));
    settle();
    assertEquals(4f, answer(fromVirtualThread(2, inSeconds(30))));
    assertEquals(
        calls + 2, runner.threads.size(), "the requests given up never ran: " + runner.threads);
  }

  @Test
  void closeWaitsForARequestRunningOnItsCallersThread() throws Exception {
    Recording runner = new Recording(true);
    batcher = start(runner, 32, NO_DELAY, 1);
    warmUp();
    int calls = runner.threads.size();
    CountDownLatch held = runner.holdCalls();
    CompletableFuture<CompletableFuture<List<Tensor>>> running =
        CompletableFuture.supplyAsync(
            () -> batcher.submit(input(3), List.of("y"), 1, inSeconds(30)), virtualThreads);
    awaitCalls(runner, calls + 1);
    assertTrue(last(runner).isVirtual());
    Thread closer = Thread.ofPlatform().start(() -> batcher.close(Duration.ofSeconds(10)));
    assertFalse(
        closer.join(Duration.ofMillis(300)), "close returned while a request held the engine");
    held.countDown();
    assertTrue(closer.join(Duration.ofSeconds(10)));
    assertEquals(6f, answer(running.get(10, TimeUnit.SECONDS)));
    batcher = null;
  }
}
