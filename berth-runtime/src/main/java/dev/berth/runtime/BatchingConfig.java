package dev.berth.runtime;

import java.time.Duration;

/**
 * How a model's requests are combined into engine calls.
 *
 * @param maxBatchSize most rows (first-dimension entries) one engine call takes; 1 turns batching
 *     off
 * @param maxQueueDelay how long the first request of a batch may wait for more to arrive; 0 batches
 *     only what is already queued when a worker becomes free
 * @param maxQueueSize most requests waiting; beyond it requests are refused at once (429)
 */
public record BatchingConfig(int maxBatchSize, Duration maxQueueDelay, int maxQueueSize) {
  public static final int DEFAULT_MAX_BATCH_SIZE = 32;
  public static final Duration DEFAULT_MAX_QUEUE_DELAY = Duration.ZERO;
  public static final int DEFAULT_MAX_QUEUE_SIZE = 512;

  public static BatchingConfig defaults() {
    return new BatchingConfig(
        DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_QUEUE_DELAY, DEFAULT_MAX_QUEUE_SIZE);
  }

  /** The same queue, one request per engine call. */
  public BatchingConfig unbatched() {
    return new BatchingConfig(1, Duration.ZERO, maxQueueSize);
  }
}
