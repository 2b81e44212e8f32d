package dev.berth.runtime;

import java.nio.file.Path;

/**
 * A kind of pre- or post-processing step, found through {@link java.util.ServiceLoader} and named
 * by model.yaml's {@code preprocessing.type} or {@code postprocessing.type}. A module lists its
 * providers in {@code META-INF/services/dev.berth.runtime.StageProvider}.
 */
public interface StageProvider {

  /** Where a step goes. */
  enum Kind {
    PRE,
    POST
  }

  /** The {@code type} that names it, e.g. {@code tokenize}. */
  String type();

  Kind kind();

  /**
   * Loads a preprocessor for {@link Kind#PRE}.
   *
   * @throws dev.berth.api.ConfigException naming the section's key and the fix
   */
  default Preprocessor preprocessor(Context context) {
    throw new UnsupportedOperationException(type() + " is not a preprocessing step");
  }

  /**
   * Loads a postprocessor for {@link Kind#POST}.
   *
   * @throws dev.berth.api.ConfigException naming the section's key and the fix
   */
  default Postprocessor postprocessor(Context context) {
    throw new UnsupportedOperationException(type() + " is not a postprocessing step");
  }

  /**
   * What a step gets to load.
   *
   * @param section its model.yaml section ({@code preprocessing} or {@code postprocessing})
   * @param versionDir the version's directory, where files it names (a tokenizer.json) are found
   * @param engine the engine's signature, which the step's names are checked against
   */
  record Context(ConfigReader section, Path versionDir, ModelSignature engine) {}
}
