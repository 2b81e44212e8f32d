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
    assumeTrue(Runtime.getRuntime().availableProcessors() > 1, "this machine has one processor");
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
    fromVirtualThread(0, inSeconds(30)).get(10, TimeUnit.SECONDS);
    settle();
  }

  /** Waits for the worker that answered to give its instance back. */
  private void settle() {
    org.awaitility.Awaitility.await().until(batcher::idle);
  }

  private static float answer(CompletableFuture<List<Tensor>> result) throws Exception {
    return result.get(10, TimeUnit.SECONDS).get(0).floats()[0];
  }

  @Test
  void aLoneRequestOnAnIdleModelRunsOnItsOwnVirtualThread() throws Exception {
    Recording runner = new Recording(true);
    batcher = start(runner, 32, NO_DELAY, 2);
    fromVirtualThread(1, inSeconds(30)).get(10, TimeUnit.SECONDS);
    assertFalse(runner.threads.get(0).isVirtual(), "the first call went to a worker");
    settle();

    CompletableFuture<List<Tensor>> result = fromVirtualThread(3, inSeconds(30));
    assertTrue(result.isDone(), "answered before submit returned");
    assertArrayEquals(new float[] {6}, result.get().get(0).floats());
    assertTrue(runner.threads.get(1).isVirtual(), "ran on the request's own thread");
    assertEquals(0, batcher.queued());
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
    assertNotSame(Thread.currentThread(), runner.threads.get(1));
    assertFalse(runner.threads.get(1).isVirtual());
  }

  @Test
  void aBatchHeldOpenForMoreRequestsIsFormedByAWorker() throws Exception {
    Recording runner = new Recording(true);
    batcher = start(runner, 32, Duration.ofMillis(1), 1);
    warmUp();
    assertEquals(2f, answer(fromVirtualThread(1, inSeconds(30))));
    assertFalse(runner.threads.get(1).isVirtual(), "max-queue-delay > 0: a worker gathers");
  }

  @Test
  void aRequestThatFillsABatchHeldOpenRunsOnItsOwnThread() throws Exception {
    Recording runner = new Recording(true);
    batcher = start(runner, 1, Duration.ofSeconds(1), 1);
    warmUp();
    CompletableFuture<List<Tensor>> result = fromVirtualThread(2, inSeconds(30));
    assertTrue(result.isDone());
    assertTrue(runner.threads.get(1).isVirtual(), "nothing more could join its batch");
  }

  @Test
  void whileAnInstanceIsBusyARequestQueuesForTheWorkers() throws Exception {
    Recording runner = new Recording(true);
    batcher = start(runner, 32, NO_DELAY, 2);
    warmUp();
    CountDownLatch held = runner.holdCalls();
    // A platform caller: a worker takes it, and holds one of the two instances.
    CompletableFuture<List<Tensor>> busy = batcher.submit(input(1), List.of("y"), 1, inSeconds(30));
    org.awaitility.Awaitility.await().until(() -> runner.threads.size() == 2);
    CompletableFuture<List<Tensor>> second = fromVirtualThread(7, inSeconds(30));
    assertFalse(second.isDone(), "handed to the other worker, not run on its caller's thread");
    org.awaitility.Awaitility.await().until(() -> runner.threads.size() == 3);
    assertFalse(runner.threads.get(2).isVirtual());
    held.countDown();
    assertEquals(2f, answer(busy));
    assertEquals(14f, answer(second));
  }

  @Test
  void oneRequestAtATimeRunsOnItsCallersThread() throws Exception {
    Recording runner = new Recording(true);
    batcher = start(runner, 32, NO_DELAY, 2);
    warmUp();
    CountDownLatch held = runner.holdCalls();
    CompletableFuture<CompletableFuture<List<Tensor>>> first =
        CompletableFuture.supplyAsync(
            () -> batcher.submit(input(1), List.of("y"), 1, inSeconds(30)), virtualThreads);
    org.awaitility.Awaitility.await().until(() -> runner.threads.size() == 2);
    assertTrue(runner.threads.get(1).isVirtual(), "the first runs on its own thread");
    CompletableFuture<List<Tensor>> second = fromVirtualThread(2, inSeconds(30));
    org.awaitility.Awaitility.await().until(() -> runner.threads.size() == 3);
    assertFalse(runner.threads.get(2).isVirtual(), "the second, beside it, on a worker");
    held.countDown();
    assertEquals(2f, answer(first.get(10, TimeUnit.SECONDS)));
    assertEquals(4f, answer(second));
  }

  @Test
  void aSlowModelOrANearDeadlineKeepsTheWorkerPath() throws Exception {
    Recording runner = new Recording(true);
    batcher = start(runner, 32, NO_DELAY, 1);
    runner.minNanos = TimeUnit.MILLISECONDS.toNanos(30);
    warmUp(); // a call of 30 ms or more: slower than a request may take on its caller's thread
    fromVirtualThread(1, inSeconds(30)).get(10, TimeUnit.SECONDS);
    assertFalse(runner.threads.get(1).isVirtual(), "a slow model stays on its workers");

    runner.minNanos = TimeUnit.MILLISECONDS.toNanos(2);
    fromVirtualThread(1, inSeconds(30)).get(10, TimeUnit.SECONDS); // the last call is now quick
    settle();
    CountDownLatch held = runner.holdCalls();
    CompletableFuture<List<Tensor>> near =
        fromVirtualThread(1, System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(4));
    assertFalse(
        near.isDone(),
        "a deadline closer than a few calls' time is left to the workers, which answer it on time");
    held.countDown();
    near.handle((r, e) -> null).get(10, TimeUnit.SECONDS);
    runner.hold = null;
    settle();
    fromVirtualThread(1, inSeconds(30)).get(10, TimeUnit.SECONDS); // quick again, after the hold
    settle();
    assertTrue(fromVirtualThread(1, inSeconds(30)).isDone(), "a distant deadline runs here");
    assertTrue(runner.threads.get(runner.threads.size() - 1).isVirtual());
  }

  @Test
  void aRequestWaitingForTheInstanceCountsAsQueuedAndLeavesUnrunWhenGivenUp() throws Exception {
    Recording runner = new Recording(true);
    batcher = start(runner, 32, NO_DELAY, 1);
    warmUp();
    CountDownLatch held = runner.holdCalls();
    CompletableFuture<CompletableFuture<List<Tensor>>> running =
        CompletableFuture.supplyAsync(
            () -> batcher.submit(input(1), List.of("y"), 1, inSeconds(30)), virtualThreads);
    org.awaitility.Awaitility.await().until(() -> runner.threads.size() == 2);
    // The worker takes these from the queue and waits for the one instance, which is taken.
    CompletableFuture<List<Tensor>> first =
        batcher.submit(input(2), List.of("y"), 1, inSeconds(30));
    CompletableFuture<List<Tensor>> second =
        batcher.submit(input(3), List.of("y"), 1, inSeconds(30));
    assertEquals(2, batcher.queued());
    first.cancel(false);
    second.cancel(false);
    assertEquals(0, batcher.queued(), "given up: nothing waits");
    held.countDown();
    assertEquals(2f, answer(running.get(10, TimeUnit.SECONDS)));
    settle();
    assertEquals(4f, answer(fromVirtualThread(2, inSeconds(30))));
    assertEquals(3, runner.threads.size(), "the requests given up never ran: " + runner.threads);
  }

  @Test
  void closeWaitsForARequestRunningOnItsCallersThread() throws Exception {
    Recording runner = new Recording(true);
    batcher = start(runner, 32, NO_DELAY, 1);
    warmUp();
    CountDownLatch held = runner.holdCalls();
    CompletableFuture<CompletableFuture<List<Tensor>>> running =
        CompletableFuture.supplyAsync(
            () -> batcher.submit(input(3), List.of("y"), 1, inSeconds(30)), virtualThreads);
    org.awaitility.Awaitility.await().until(() -> runner.threads.size() == 2);
    Thread closer = Thread.ofPlatform().start(() -> batcher.close(Duration.ofSeconds(10)));
    assertFalse(
        closer.join(Duration.ofMillis(300)), "close returned while a request held the engine");
    held.countDown();
    assertTrue(closer.join(Duration.ofSeconds(10)));
    assertEquals(6f, answer(running.get(10, TimeUnit.SECONDS)));
    assertTrue(runner.threads.get(1).isVirtual());
    batcher = null;
  }
}
