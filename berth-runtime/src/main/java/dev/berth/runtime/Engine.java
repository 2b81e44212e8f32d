package dev.berth.runtime;

import dev.berth.api.Tensor;
import java.util.List;
import java.util.Set;

/**
 * One loaded model version. {@link #infer} may be called from several engine workers at once
 * ({@code instances} in model.yaml).
 */
public interface Engine extends AutoCloseable {

  /** The tensors this model takes and gives, as clients see them. */
  ModelSignature signature();

  /**
   * Runs a batch: one list of input tensors per request, all already checked against {@link
   * #signature()} (names, datatypes, shapes). The engine combines them into as few calls as it can
   * and returns, per request and in the same order, the named outputs with that request's rows
   * only. An error about one request's inputs is an {@link dev.berth.api.InvalidInputException}.
   *
   * @param requests inputs per request
   * @param outputs names of the outputs to compute (a subset of the signature's)
   */
  List<List<Tensor>> infer(List<List<Tensor>> requests, Set<String> outputs);

  /** Frees the engine's native resources. */
  @Override
  void close();
}
