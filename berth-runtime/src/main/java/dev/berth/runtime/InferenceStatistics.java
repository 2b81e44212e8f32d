package dev.berth.runtime;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/**
 * One model version's cumulative request and batch figures since it loaded, in the shape of
 * Triton's statistics extension: requests that succeeded and failed with their time in the server,
 * time in the queue, and the engine's time split into preparing inputs, running the model and
 * taking outputs apart, in total and per batch size. Updated lock-free on the serving path.
 */
public final class InferenceStatistics {
  /** A count and the nanoseconds spent over it. */
  public record Duration(long count, long nanos) {}

  /** What batches of one size cost. */
  public record Batch(
      long batchSize, Duration computeInput, Duration computeInfer, Duration computeOutput) {}

  /**
   * The figures at one moment.
   *
   * @param lastInferenceMillis when the last request was answered, milliseconds since the epoch (0
   *     when none was)
   * @param inferenceCount rows answered successfully (a request of 8 rows counts 8)
   * @param executionCount engine calls
   */
  public record Snapshot(
      String model,
      String version,
      long lastInferenceMillis,
      long inferenceCount,
      long executionCount,
      Duration success,
      Duration fail,
      Duration queue,
      Duration computeInput,
      Duration computeInfer,
      Duration computeOutput,
      List<Batch> batches) {}

  /** A count and a nanosecond sum, each added to without a lock. */
  private static final class Adder {
    final LongAdder count = new LongAdder();
    final LongAdder nanos = new LongAdder();

    void add(long n) {
      count.increment();
      nanos.add(n);
    }

    Duration read() {
      return new Duration(count.sum(), nanos.sum());
    }
  }

  private static final class Stages {
    final Adder input = new Adder();
    final Adder infer = new Adder();
    final Adder output = new Adder();

    void add(long inputNanos, long inferNanos, long outputNanos) {
      input.add(inputNanos);
      infer.add(inferNanos);
      output.add(outputNanos);
    }
  }

  private final String model;
  private final String version;
  private final Adder success = new Adder();
  private final Adder fail = new Adder();
  private final Adder queue = new Adder();
  private final Stages compute = new Stages();
  private final Map<Integer, Stages> batches = new ConcurrentSkipListMap<>();
  private final LongAdder rows = new LongAdder();
  private final AtomicLong lastInference = new AtomicLong();

  InferenceStatistics(String model, String version) {
    this.model = model;
    this.version = version;
  }

  void succeeded(int requestRows, long nanos) {
    success.add(nanos);
    rows.add(requestRows);
    lastInference.set(System.currentTimeMillis());
  }

  void failed(long nanos) {
    fail.add(nanos);
    lastInference.set(System.currentTimeMillis());
  }

  void queued(long nanos) {
    queue.add(nanos);
  }

  void executed(int batchRows, long inputNanos, long inferNanos, long outputNanos) {
    compute.add(inputNanos, inferNanos, outputNanos);
    batches.computeIfAbsent(batchRows, k -> new Stages()).add(inputNanos, inferNanos, outputNanos);
  }

  /** The figures now. */
  public Snapshot snapshot() {
    List<Batch> perSize = new ArrayList<>();
    batches.forEach(
        (size, s) -> perSize.add(new Batch(size, s.input.read(), s.infer.read(), s.output.read())));
    return new Snapshot(
        model,
        version,
        lastInference.get(),
        rows.sum(),
        compute.infer.count.sum(),
        success.read(),
        fail.read(),
        queue.read(),
        compute.input.read(),
        compute.infer.read(),
        compute.output.read(),
        perSize);
  }
}
