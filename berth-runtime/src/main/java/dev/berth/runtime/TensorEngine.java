package dev.berth.runtime;

import dev.berth.api.Tensor;
import java.util.Map;
import java.util.Set;

/**
 * An engine that runs one batch of named tensors at a time. The runtime owns batching: it joins the
 * rows of waiting requests along the batch (first) dimension, calls {@link #run} once per joined
 * batch, splits the outputs back and picks each request's outputs. So an engine only converts
 * tensors to its library's types, runs, and converts back.
 *
 * <p>{@link #run} may be called from several batcher workers at once ({@code instances} in
 * model.yaml).
 */
public non-sealed interface TensorEngine extends Engine {

  /**
   * Runs one batch.
   *
   * @param inputs every input of {@link #signature()}, by name; when the signature is {@link
   *     ModelSignature#batchable() batchable} their first dimensions are equal (the rows of the
   *     batch), and every other dimension fits the signature
   * @param outputs the outputs to compute, a non-empty subset of the signature's
   * @return at least the outputs asked for, by name, each with the batch's rows first when
   *     batchable
   * @throws dev.berth.api.InvalidInputException when the inputs' values are refused (the runtime
   *     then runs the batch's requests one by one, so only the guilty one fails)
   * @throws dev.berth.api.BerthException any other failure is the engine's: the runtime takes the
   *     version out of service
   */
  Map<String, Tensor> run(Map<String, Tensor> inputs, Set<String> outputs);

  /**
   * Whether {@link #run} may be called from any thread, a request's own virtual thread included,
   * not only from the batcher's workers: true for an engine that keeps no settings or state per
   * thread. A lone request on an idle model then runs without a hand-off (see {@link
   * DynamicBatcher}). False unless an engine says so.
   */
  default boolean runsOnAnyThread() {
    return false;
  }
}
