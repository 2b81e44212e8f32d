package dev.berth.runtime;

import dev.berth.api.BerthException;
import dev.berth.api.DeadlineExceededException;
import dev.berth.api.InvalidInputException;
import dev.berth.api.ModelNotReadyException;
import dev.berth.api.OverloadedException;
import dev.berth.api.Tensor;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Function;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.stream.Collectors;

/**
 * Combines concurrent requests to one model version into engine calls.
 *
 * <p>Requests wait in a bounded queue; a full queue refuses a request at once with an {@link
 * OverloadedException} rather than blocking its caller. Each of {@code instances} workers takes the
 * first waiting request, then adds waiting requests until the batch holds {@code max-batch-size}
 * rows or {@code max-queue-delay} has passed, runs the engine once, and hands each request its own
 * rows. A request whose deadline passed while it waited is answered with a {@link
 * DeadlineExceededException} without running. Queue time, batch size and compute time are recorded
 * here, where they happen.
 *
 * <p>A lone request skips the queue: when nothing waits, every instance is idle, batches are not
 * held open ({@code max-queue-delay: 0}, or the request fills a batch alone) and the runner
 * {@linkplain BatchRunner#runsOnAnyThread() allows it}, a request that arrives on a virtual thread
 * runs its batch of one on that thread. The batch is the one a worker would have formed; the
 * hand-off to the worker and back is saved, and the engine finds the caches the request's own
 * decoding left warm. Only a request like the last one, when that was a lone request answered
 * quickly, runs so: a long call would hold one of the few threads that carry virtual threads, and
 * could not be answered with its deadline before it ends. Under load batches hold several requests,
 * and every request goes to the workers. Across all models, at most one request fewer than there
 * are carrier threads runs on its caller's thread at a time.
 */
public final class DynamicBatcher implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(DynamicBatcher.class.getName());
  private static final Duration RETRY_AFTER = Duration.ofSeconds(1);
  // a request runs on its caller's thread only when the model's last call took less than this
  private static final long CALLER_RUN_MAX_NANOS = TimeUnit.MILLISECONDS.toNanos(20);
  // ... and its deadline leaves this many times the last call's time
  private static final int CALLER_RUN_DEADLINE_FACTOR = 4;
  // threads carrying virtual threads; with one, a request on it would stop every other
  static final int CARRIERS =
      Integer.getInteger(
          "jdk.virtualThreadScheduler.parallelism", Runtime.getRuntime().availableProcessors());
  // requests running on their callers' threads now, across every model's batcher
  private static final java.util.concurrent.atomic.AtomicInteger CALLER_RUNS =
      new java.util.concurrent.atomic.AtomicInteger();
  static final int MAX_CALLER_RUNS = Math.max(1, CARRIERS - 1);

  /** Runs one engine call: inputs per request and the outputs wanted, outputs per request back. */
  @FunctionalInterface
  public interface BatchRunner {
    List<List<Tensor>> run(List<List<Tensor>> inputs, Set<String> outputs);

    /**
     * Whether a batch may run on any thread, the request's own included, rather than only on the
     * batcher's workers: true when the engine keeps no state per thread and a call is not tied to
     * the thread that loaded it.
     */
    default boolean runsOnAnyThread() {
      return false;
    }

    /** Runs the call and says where its time went; by default all of it was the model's. */
    default List<List<Tensor>> run(
        List<List<Tensor>> inputs, Set<String> outputs, BatchTimes times) {
      long start = System.nanoTime();
      List<List<Tensor>> results = run(inputs, outputs);
      times.infer += System.nanoTime() - start;
      return results;
    }
  }

  private record Job(
      List<Tensor> inputs,
      List<String> outputs,
      int rows,
      long enqueuedNanos,
      long deadlineNanos,
      RequestTrace trace, // null unless the request is traced
      CompletableFuture<List<Tensor>> result) {}

  private final String model;
  private final String version;
  private final BatchingConfig config;
  private final BatchRunner runner;
  private final ServingMetrics metrics;
  private final BlockingQueue<Job> queue;
  // told when the engine fails a batch for a reason other than its inputs
  private volatile java.util.function.Consumer<Throwable> onEngineFailure = e -> {};
  private final ReentrantLock gatherLock = new ReentrantLock();
  private final List<Thread> workers = new ArrayList<>();
  // one permit per instance: every engine call holds one, on a worker or on its caller's thread
  private final Semaphore engines;
  private final int instances;
  private final boolean callerRuns; // the runner allows a batch on the request's own thread
  // the last batch that ran: how long it took (none yet: no request runs on its caller's
  // thread), its rows, and whether it held one request
  private volatile long lastCallNanos = Long.MAX_VALUE;
  private volatile int lastCallRows;
  private volatile boolean lastCallAlone;
  // written under gatherLock: a job that did not fit the last batch; read by the queue gauge too
  private volatile Job carried;
  // written under gatherLock: the first job of the next batch while its worker waits for an
  // instance; read by the queue gauge, and by a caller that would run its request itself
  private volatile Job awaitingInstance;
  private final java.util.function.IntSupplier waiting = this::queued;
  private volatile boolean closed;

  /**
   * Starts the workers.
   *
   * @param model model name, for metrics and thread names
   * @param version version, for metrics and thread names
   * @param config batch and queue limits
   * @param instances number of workers running batches side by side
   * @param runner the engine call
   * @param metrics where queue time, batch size and compute time go
   */
  public DynamicBatcher(
      String model,
      String version,
      BatchingConfig config,
      int instances,
      BatchRunner runner,
      ServingMetrics metrics) {
    this.model = model;
    this.version = version;
    this.config = config;
    this.runner = runner;
    this.metrics = metrics;
    this.queue = new LinkedBlockingQueue<>(config.maxQueueSize());
    this.instances = instances;
    this.engines = new Semaphore(instances, true);
    this.callerRuns = runner.runsOnAnyThread() && CARRIERS > 1;
    metrics.watchQueue(model, version, waiting, config.maxQueueSize());
    for (int i = 0; i < instances; i++) {
      Thread worker =
          Thread.ofPlatform()
              .name("berth-batcher-" + model + "-" + version + "-" + i)
              .daemon()
              .unstarted(this::work);
      workers.add(worker);
      worker.start();
    }
  }

  public BatchingConfig config() {
    return config;
  }

  /**
   * Queues one request.
   *
   * @param inputs its input tensors, already validated
   * @param outputs names of the outputs it wants, in the order it wants them
   * @param rows its size along the batch dimension
   * @param deadlineNanos {@link System#nanoTime()} after which it is no longer worth running
   * @return its outputs, or an exception: {@link DeadlineExceededException}, {@link
   *     InvalidInputException}, or the engine's error
   * @throws OverloadedException at once when the queue is full
   * @throws ModelNotReadyException when the batcher is closing
   */
  public CompletableFuture<List<Tensor>> submit(
      List<Tensor> inputs, List<String> outputs, int rows, long deadlineNanos) {
    return submit(inputs, outputs, rows, deadlineNanos, null);
  }

  /**
   * Queues one request as {@link #submit(List, List, int, long)} does, reporting its queue wait,
   * the engine call that runs it and the steps around that into {@code trace}.
   *
   * @param trace the request's trace, or null when it is not traced
   */
  public CompletableFuture<List<Tensor>> submit(
      List<Tensor> inputs, List<String> outputs, int rows, long deadlineNanos, RequestTrace trace) {
    if (closed) {
      throw new ModelNotReadyException(
          "model '" + model + "' version " + version + " is unloading; retry shortly");
    }
    long now = System.nanoTime();
    Job job = new Job(inputs, outputs, rows, now, deadlineNanos, trace, new CompletableFuture<>());
    if (callerRuns && runOnCaller(job, now)) {
      return job.result();
    }
    if (!queue.offer(job)) {
      metrics.rejected(model, version, "queue_full");
      throw new OverloadedException(
          "model '"
              + model
              + "' has "
              + config.maxQueueSize()
              + " requests waiting (batching.max-queue-size); retry after "
              + RETRY_AFTER.toSeconds()
              + "s or raise the limit in model.yaml",
          RETRY_AFTER);
    }
    // A caller that gives up takes its request out of the queue at once (a worker would skip it,
    // but only once it comes for more): the queue holds what is still wanted.
    job.result()
        .whenComplete(
            (r, e) -> {
              if (e instanceof java.util.concurrent.CancellationException) {
                queue.removeIf(j -> j == job);
              }
            });
    return job.result();
  }

  /**
   * Runs a request as a batch of its own on the caller's thread when the class comment's conditions
   * hold.
   *
   * @return whether it ran (its result is then complete)
   */
  private boolean runOnCaller(Job job, long now) {
    long last = lastCallNanos;
    if (!Thread.currentThread().isVirtual()
        || closed
        || !(config.maxQueueDelay().isZero() || job.rows() >= config.maxBatchSize())
        || last >= CALLER_RUN_MAX_NANOS
        || !lastCallAlone
        || job.rows() > lastCallRows
        || job.deadlineNanos() - now <= CALLER_RUN_DEADLINE_FACTOR * last
        || !queue.isEmpty()
        || carried != null
        || awaitingInstance != null
        || engines.availablePermits() < instances) {
      return false;
    }
    if (CALLER_RUNS.incrementAndGet() > MAX_CALLER_RUNS) {
      CALLER_RUNS.decrementAndGet();
      return false;
    }
    try {
      // A fair semaphore with a zero wait: never ahead of a worker that waits for an instance.
      if (!engines.tryAcquire(0, TimeUnit.NANOSECONDS)) {
        return false;
      }
      try {
        if (closed) {
          throw new ModelNotReadyException(
              "model '" + model + "' version " + version + " is unloading; retry shortly");
        }
        run(List.of(job));
      } finally {
        engines.release();
      }
      return true;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    } finally {
      CALLER_RUNS.decrementAndGet();
    }
  }

  /** How long the last batch took (for tests). */
  long lastCallNanos() {
    return lastCallNanos;
  }

  /** Whether no engine call runs now (for tests). */
  boolean idle() {
    return engines.availablePermits() == instances;
  }

  /** Requests waiting now, the one held back for the next batch included. */
  public int queued() {
    return queue.size() + waiting(carried) + waiting(awaitingInstance);
  }

  private static int waiting(Job held) {
    return held == null || held.result().isDone() ? 0 : 1;
  }

  private void work() {
    while (true) {
      boolean draining = closed;
      List<Job> batch;
      try {
        batch = nextBatch(!draining);
      } catch (InterruptedException e) {
        continue; // closing: go round again and drain what is left without blocking
      }
      if (batch.isEmpty()) {
        if (draining) {
          return;
        }
        continue;
      }
      try {
        run(batch);
      } finally {
        engines.release(); // nextBatch took it for the batch
      }
    }
  }

  /**
   * Gathers the next batch. Returns holding an instance (a permit of {@code engines}) when the
   * batch is not empty, which the caller gives back once it has run. The instance is awaited once a
   * first request is there, so that what waits for it still counts as waiting.
   */
  private List<Job> nextBatch(boolean block) throws InterruptedException {
    gatherLock.lock();
    boolean instance = false;
    try {
      List<Job> batch = new ArrayList<>();
      int rows = 0;
      long gatherUntil = 0;
      while (true) {
        Job next;
        if (carried != null) {
          next = carried;
          carried = null;
        } else if (batch.isEmpty()) {
          if (instance) { // the jobs taken so far had given up: wait for work without it
            engines.release();
            instance = false;
          }
          next = block ? queue.take() : queue.poll();
        } else {
          next = queue.poll();
          if (next == null && block) {
            long wait = gatherUntil - System.nanoTime();
            if (wait > 0) {
              try {
                next = queue.poll(wait, TimeUnit.NANOSECONDS);
              } catch (InterruptedException e) {
                break; // closing: run what was gathered; the loop drains the rest
              }
            }
          }
        }
        if (next == null) {
          break;
        }
        if (!instance) {
          awaitingInstance = next; // first, so that no caller takes the instance meanwhile
          engines.acquireUninterruptibly();
          awaitingInstance = null;
          instance = true;
        }
        if (next.result().isDone()) {
          // The caller gave up already, or the timer of its deadline failed it while it waited:
          // its wait ends here, where it leaves the queue. A job is taken from the queue once, so
          // this is its one report.
          if (next.trace() != null) {
            Job gone = next;
            long left = System.nanoTime();
            report(() -> gone.trace().step(RequestTrace.Step.QUEUE, gone.enqueuedNanos(), left));
          }
          continue;
        }
        long now = System.nanoTime();
        if (now - next.deadlineNanos() > 0) {
          metrics.rejected(model, version, "deadline");
          if (next.trace() != null) {
            Job late = next;
            report(() -> late.trace().step(RequestTrace.Step.QUEUE, late.enqueuedNanos(), now));
          }
          next.result()
              .completeExceptionally(
                  new DeadlineExceededException(
                      "request to model '"
                          + model
                          + "' waited past its deadline"
                          + " (request-timeout in model.yaml) before an engine was free"));
          continue;
        }
        if (!batch.isEmpty() && rows + next.rows() > config.maxBatchSize()) {
          carried = next;
          break;
        }
        if (batch.isEmpty()) {
          gatherUntil = System.nanoTime() + config.maxQueueDelay().toNanos();
        }
        batch.add(next);
        rows += next.rows();
        if (rows >= config.maxBatchSize()) {
          break;
        }
      }
      if (batch.isEmpty() && instance) {
        engines.release();
      }
      return batch;
    } catch (InterruptedException | RuntimeException | Error e) {
      if (instance) {
        engines.release();
      }
      throw e;
    } finally {
      gatherLock.unlock();
    }
  }

  /**
   * What to do when the engine fails a batch for a reason other than the requests' inputs (an
   * engine error, a lost device, a bug): the registry takes the version out of service. Called on
   * the thread that ran the batch (a worker, or a request's own virtual thread), so it must not
   * wait for requests of this batcher.
   */
  public void onEngineFailure(java.util.function.Consumer<Throwable> action) {
    this.onEngineFailure = java.util.Objects.requireNonNull(action);
  }

  private void run(List<Job> batch) {
    long start = System.nanoTime();
    int rows = 0;
    Set<String> outputs = new LinkedHashSet<>();
    List<List<Tensor>> inputs = new ArrayList<>(batch.size());
    boolean traced = false;
    for (Job job : batch) {
      metrics.queued(model, version, start - job.enqueuedNanos());
      rows += job.rows();
      outputs.addAll(job.outputs());
      inputs.add(job.inputs());
      traced |= job.trace() != null;
    }
    int batchRows = rows;
    List<List<Tensor>> results;
    BatchTimes times = traced ? new BatchTimes(true) : new BatchTimes();
    try {
      results = runner.run(inputs, outputs, times);
    } catch (InvalidInputException e) {
      if (batch.size() > 1) {
        // One request's inputs failed the engine: run each alone so only that one fails.
        for (Job job : batch) {
          run(List.of(job));
        }
      } else {
        if (traced) {
          report(() -> traceFailure(batch, start, batchRows, e));
        }
        batch.get(0).result().completeExceptionally(e);
      }
      return;
    } catch (RuntimeException | Error e) {
      LOG.log(Level.SEVERE, "model '" + model + "' version " + version + " failed a batch", e);
      if (traced) {
        report(() -> traceFailure(batch, start, batchRows, e));
      }
      onEngineFailure.accept(e);
      BerthException failure =
          e instanceof BerthException be
              ? be
              : new BerthException("model '" + model + "' failed to run this request", e);
      batch.forEach(job -> job.result().completeExceptionally(failure));
      return;
    }
    long end = System.nanoTime();
    lastCallRows = rows;
    lastCallAlone = batch.size() == 1;
    lastCallNanos = end - start;
    metrics.batch(model, version, rows, end - start, times);
    if (traced) {
      report(() -> trace(batch, start, end, batchRows, times));
    }
    for (int i = 0; i < batch.size(); i++) {
      Job job = batch.get(i);
      Map<String, Tensor> byName =
          results.get(i).stream().collect(Collectors.toMap(Tensor::name, Function.identity()));
      job.result().complete(job.outputs().stream().map(byName::get).toList());
    }
  }

  /**
   * Reports a batch that ran into the traces of its traced requests, before they are answered: each
   * one's queue wait; then per engine call its pre-processing, the call itself (once, on its first
   * traced request, linked to all of them) and its post-processing. A runner that does not say
   * where its time went is drawn as one engine call over the whole batch.
   */
  private void trace(List<Job> batch, long start, long end, int rows, BatchTimes times) {
    for (Job job : batch) {
      if (job.trace() != null) {
        job.trace().step(RequestTrace.Step.QUEUE, job.enqueuedNanos(), start);
      }
    }
    if (times.calls.isEmpty()) {
      List<RequestTrace> traces = traces(batch, null);
      traces.get(0).engineCall(model, version, traces, batch.size(), rows, start, end, null);
      return;
    }
    for (BatchTimes.EngineCall call : times.calls) {
      List<RequestTrace> traces = traces(batch, call.members());
      if (traces.isEmpty()) {
        continue;
      }
      for (RequestTrace t : traces) {
        t.step(RequestTrace.Step.PREPROCESS, start, times.preprocessEnd);
      }
      traces
          .get(0)
          .engineCall(
              model,
              version,
              traces,
              call.members().size(),
              call.rows(),
              call.start(),
              call.end(),
              null);
      for (RequestTrace t : traces) {
        t.step(RequestTrace.Step.POSTPROCESS, call.end(), call.outputEnd());
      }
    }
  }

  /**
   * Runs a report into traces: one that fails is logged, and never fails the requests. An {@link
   * Error} is caught too: thrown on the worker, it would end the worker with its batch unanswered.
   */
  private void report(Runnable report) {
    try {
      report.run();
    } catch (Throwable e) {
      LOG.log(
          Level.WARNING,
          "model '" + model + "' version " + version + ": a request's trace was not recorded",
          e);
    }
  }

  /** Reports a batch that failed as one failed engine call, after each request's queue wait. */
  private void traceFailure(List<Job> batch, long start, int rows, Throwable error) {
    for (Job job : batch) {
      if (job.trace() != null) {
        job.trace().step(RequestTrace.Step.QUEUE, job.enqueuedNanos(), start);
      }
    }
    List<RequestTrace> traces = traces(batch, null);
    traces
        .get(0)
        .engineCall(model, version, traces, batch.size(), rows, start, System.nanoTime(), error);
  }

  /** The traces of the batch's traced requests, of those at {@code members} when given. */
  private static List<RequestTrace> traces(List<Job> batch, List<Integer> members) {
    List<RequestTrace> out = new ArrayList<>();
    if (members == null) {
      for (Job job : batch) {
        if (job.trace() != null) {
          out.add(job.trace());
        }
      }
    } else {
      for (int i : members) {
        RequestTrace t = batch.get(i).trace();
        if (t != null) {
          out.add(t);
        }
      }
    }
    return out;
  }

  /**
   * Stops taking requests, finishes every request already queued, then stops the workers.
   *
   * @param timeout how long to wait for the queue to drain
   */
  public void close(Duration timeout) {
    closed = true;
    workers.forEach(Thread::interrupt);
    long until = System.nanoTime() + timeout.toNanos();
    for (Thread worker : workers) {
      try {
        long left = until - System.nanoTime();
        if (left > 0) {
          worker.join(Duration.ofNanos(left));
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    // A request running on its caller's thread holds an instance: the engine outlives it.
    try {
      // a call on a caller's thread is a quick one (see the class comment): give it a few seconds
      long wait = Math.max(until - System.nanoTime(), TimeUnit.SECONDS.toNanos(5));
      if (engines.tryAcquire(instances, wait, TimeUnit.NANOSECONDS)) {
        engines.release(instances);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    metrics.unwatchQueue(model, version, waiting);
  }

  @Override
  public void close() {
    close(Duration.ofSeconds(30));
  }
}
