package dev.berth.runtime;

import java.util.Optional;
import java.util.ServiceLoader;

/**
 * Measures a model version's gate metric in process, before the version takes traffic: the gate's
 * data set goes through the loaded version as requests would. Berth's server module provides it
 * (found with {@link ServiceLoader}); without one on the class path a gated version is refused.
 */
public interface GateEvaluator {
  /**
   * The gate's figure for one loaded version.
   *
   * @throws dev.berth.api.BerthException when the version cannot be evaluated on the gate's data (a
   *     missing file, data that do not fit the model, failed requests), naming what to fix
   */
  double measure(ModelGate gate, LoadedModel model);

  /** The evaluator on the class path, if any. */
  static Optional<GateEvaluator> find() {
    return ServiceLoader.load(GateEvaluator.class).findFirst();
  }
}
