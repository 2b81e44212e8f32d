package dev.berth.runtime;

import java.time.Duration;

/**
 * A model version that is ready: its engine, its batcher and its settings.
 *
 * @param name model name
 * @param version version
 * @param config its model.yaml
 * @param engine the loaded engine
 * @param batcher its request queue
 */
public record LoadedModel(
    String name, String version, ModelConfig config, Engine engine, DynamicBatcher batcher) {

  public ModelSignature signature() {
    return engine.signature();
  }

  void close(Duration drainTimeout) {
    batcher.close(drainTimeout);
    engine.close();
  }
}
