package dev.berth.runtime;

/**
 * A kind of inference engine, found through {@link java.util.ServiceLoader}: the runtime hard-wires
 * none. An engine module lists its provider in {@code
 * META-INF/services/dev.berth.runtime.EngineProvider}.
 */
public interface EngineProvider {

  /** Name used in model.yaml's {@code engine} key, e.g. {@code onnx}. */
  String name();

  /** The files it recognises, for messages, e.g. {@code model.onnx}. */
  default String files() {
    return name();
  }

  /** Whether this engine recognises the files of a version directory (e.g. a model.onnx). */
  boolean canLoad(ModelContext context);

  /**
   * Loads one model version.
   *
   * @throws dev.berth.api.ModelLoadException or {@link dev.berth.api.ConfigException} with a
   *     message that says what to fix
   */
  Engine load(ModelContext context);
}
