package dev.berth.runtime;

import dev.berth.api.Tensor;
import dev.berth.api.TensorSpec;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A step after a {@link TensorEngine} (model.yaml's {@code postprocessing}): it turns engine
 * outputs into the outputs clients see (mean pooling of token vectors into a sentence embedding).
 * Its outputs replace the engine's in the model's signature.
 */
public interface Postprocessor {

  /** The outputs clients see. */
  List<TensorSpec> outputs();

  /** The engine outputs it reads. */
  Set<String> sources();

  /**
   * Computes this step's outputs for one joined batch.
   *
   * @param engineOutputs at least {@link #sources()}
   * @param engineInputs the inputs the engine ran on (a pooling step reads the attention mask)
   * @return every output of {@link #outputs()}, by name, with the batch's rows first
   */
  Map<String, Tensor> apply(Map<String, Tensor> engineOutputs, Map<String, Tensor> engineInputs);

  /**
   * Whether {@link #apply} may run on any thread, a request's own virtual thread included: true for
   * a step that keeps no state per thread. False unless a step says so (see {@link
   * Preprocessor#runsOnAnyThread()}).
   */
  default boolean runsOnAnyThread() {
    return false;
  }
}
