package dev.berth.runtime;

/**
 * One loaded model version, as its engine provider made it. An engine is one of two kinds: a {@link
 * TensorEngine} runs batches of named tensors (the runtime batches, pre- and post-processes around
 * it), a {@link TextGenerator} generates text token by token (the runtime admits its requests
 * through a queue of its own).
 */
public sealed interface Engine extends AutoCloseable permits TensorEngine, TextGenerator {

  /**
   * The tensors this engine takes and gives: for a {@link TensorEngine} the model file's own (after
   * model.yaml's declarations), before any pre- or post-processing stage.
   */
  ModelSignature signature();

  /** Frees the engine's native resources. */
  @Override
  void close();
}
