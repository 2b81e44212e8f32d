package dev.berth.runtime;

import java.nio.file.Path;

/**
 * What an engine gets to load one model version.
 *
 * @param name model name
 * @param version version number as text
 * @param versionDir the version's directory, e.g. {@code REPO/minilm/1}
 * @param config the model's model.yaml
 */
public record ModelContext(String name, String version, Path versionDir, ModelConfig config) {}
