package dev.berth.runtime;

import java.nio.file.Path;

/**
 * What an engine gets to load one model version.
 *
 * @param name model name
 * @param version version number as text
 * @param versionDir the version's directory, e.g. {@code REPO/minilm/1}
 * @param config the model's model.yaml
 * @param executionProvider the server's execution provider ({@code cpu} or {@code cuda}, {@code
 *     berth serve --execution-provider}) for a model whose model.yaml names none
 */
public record ModelContext(
    String name, String version, Path versionDir, ModelConfig config, String executionProvider) {

  /** A context on the CPU provider unless the model's model.yaml names another. */
  public ModelContext(String name, String version, Path versionDir, ModelConfig config) {
    this(name, version, versionDir, config, DEFAULT_EXECUTION_PROVIDER);
  }

  /** The execution provider of a server that names none. */
  public static final String DEFAULT_EXECUTION_PROVIDER = "cpu";
}
