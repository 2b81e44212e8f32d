package dev.berth.runtime;

import java.util.ArrayList;
import java.util.List;

/**
 * Where one engine call's time went, in nanoseconds: preparing its inputs (pre-processing steps,
 * joining requests' rows), running the model, and taking its outputs apart (post-processing,
 * splitting rows back). Filled by the batch runner on the batcher's worker thread.
 *
 * <p>For a batch that holds a traced request it also keeps the moments a trace draws: when
 * pre-processing ended, and each engine call with the requests it ran. Untraced batches keep none.
 */
public final class BatchTimes {
  long input;
  long infer;
  long output;

  /** {@link System#nanoTime()} when the batch's pre-processing ended; traced batches only. */
  long preprocessEnd;

  /** The engine calls of a traced batch, in order; null for an untraced one. */
  final List<EngineCall> calls;

  /**
   * One engine call of a traced batch.
   *
   * @param members the indices (in the batch) of the requests it ran
   * @param rows the rows it ran
   * @param start when the engine started
   * @param end when the engine returned
   * @param outputEnd when its outputs were post-processed and split back
   */
  record EngineCall(List<Integer> members, int rows, long start, long end, long outputEnd) {}

  public BatchTimes() {
    this(false);
  }

  BatchTimes(boolean traced) {
    this.calls = traced ? new ArrayList<>(1) : null;
  }

  /** Whether the runner should keep the moments a trace draws. */
  boolean traced() {
    return calls != null;
  }
}
