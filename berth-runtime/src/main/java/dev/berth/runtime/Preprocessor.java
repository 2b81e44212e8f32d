package dev.berth.runtime;

import dev.berth.api.Tensor;
import dev.berth.api.TensorSpec;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

/**
 * A step before a {@link TensorEngine} (model.yaml's {@code preprocessing}): clients send what it
 * takes (text, image files) in place of some of the engine's inputs, and it makes those inputs. Any
 * tensor engine can use any preprocessor; they are found through {@link StageProvider}.
 */
public interface Preprocessor extends AutoCloseable {

  /** The inputs clients may send in place of the engine inputs this step fills. */
  List<TensorSpec> inputs();

  /**
   * Turns the requests of one batch into engine inputs. Requests are processed together so that a
   * step can make them joinable (a tokenizer pads every text of the batch to one length).
   *
   * @param requests per request, its tensors by name, checked against the model's signature; a
   *     request that sends none of {@link #inputs()} passes through, though the step may complete
   *     it (default token type ids)
   * @return per request and in the same order, its tensors with this step's inputs replaced by the
   *     engine inputs they make
   * @throws dev.berth.api.InvalidInputException when a request's values are refused
   */
  List<Map<String, Tensor>> apply(List<Map<String, Tensor>> requests);

  /** Tokens the texts take when this step tokenizes text; empty otherwise. */
  default OptionalInt countTokens(List<String> texts) {
    return OptionalInt.empty();
  }

  @Override
  default void close() {}

  /**
   * Whether {@link #apply} may run on any thread, a request's own virtual thread included, not only
   * on the batcher's workers: true for a step that keeps no state per thread. False unless a step
   * says so; a pipeline runs a lone request without a hand-off only when every step and the engine
   * say so.
   */
  default boolean runsOnAnyThread() {
    return false;
  }
}
