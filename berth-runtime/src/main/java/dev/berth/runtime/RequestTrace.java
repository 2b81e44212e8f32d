package dev.berth.runtime;

import java.util.List;

/**
 * The trace of one request, as the runtime reports into it: each step the runtime takes the request
 * through, with its start and end on {@link System#nanoTime()}'s clock, reported once the step is
 * over. A server that traces requests gives each one it records a trace (berth-server draws the
 * steps as OpenTelemetry spans under the request's own); a request that is not traced has none
 * (null), and the runtime then does no tracing work for it.
 *
 * <p>Calls come from the thread that runs a batch (a batcher worker, or a lone request's own
 * thread) and from the generation queue, never twice for one step.
 */
public interface RequestTrace {
  /** A step of one request alone. */
  enum Step {
    /**
     * Waiting in the model's queue until a worker took it (a language model: for a sequence); a
     * request that timed out or was given up while it waited, until a worker took it out.
     */
    QUEUE,
    /**
     * The pre-processing steps of its batch, up to the joining of the rows of each engine call
     * (which falls between this step and the engine call).
     */
    PREPROCESS,
    /** The post-processing step of its engine call and the splitting of the rows back. */
    POSTPROCESS
  }

  /** This request went through {@code step} from {@code startNanos} to {@code endNanos}. */
  void step(Step step, long startNanos, long endNanos);

  /**
   * One engine call ran this request's rows together with those of the other requests in {@code
   * batch}. Reported on one traced request of the call only (the first), which records the call
   * once, links it to every traced request in {@code batch}, itself included, and records each
   * one's part in the call in that request's own trace.
   *
   * @param batch the traced requests of the call, this one first; every one of the same server
   * @param requests how many requests the call ran, traced or not
   * @param rows the rows the engine ran (the batch size)
   * @param error why the call failed, or null
   */
  void engineCall(
      String model,
      String version,
      List<RequestTrace> batch,
      int requests,
      int rows,
      long startNanos,
      long endNanos,
      Throwable error);

  /** A language model generated this request's answer. */
  void generation(Generated generated);

  /**
   * One generation, once it ended.
   *
   * @param chat whether the request was a chat (messages) rather than a prompt
   * @param startNanos when it got its sequence (the wait before is the {@link Step#QUEUE} step)
   * @param firstTokenNanos when the first token came, or 0 when none did
   * @param arrivalNanos when the request arrived, for the time to its first token
   * @param finishReason why it ended, or null when its caller ended it first
   * @param seed the sampler's seed the client gave, or null
   */
  record Generated(
      String model,
      String version,
      boolean chat,
      long arrivalNanos,
      long startNanos,
      long firstTokenNanos,
      long endNanos,
      int inputTokens,
      int outputTokens,
      int maxTokens,
      double temperature,
      double topP,
      Integer seed,
      Generation.FinishReason finishReason) {}
}
