package dev.berth.runtime;

/**
 * Where one engine call's time went, in nanoseconds: preparing its inputs (pre-processing steps,
 * joining requests' rows), running the model, and taking its outputs apart (post-processing,
 * splitting rows back). Filled by the batch runner on the batcher's worker thread.
 */
public final class BatchTimes {
  long input;
  long infer;
  long output;
}
