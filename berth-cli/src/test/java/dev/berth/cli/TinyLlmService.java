package dev.berth.cli;

import dev.berth.llm.GgufWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** A service file of one tiny random-weight GGUF language model, "tiny" version 1. */
final class TinyLlmService {
  private TinyLlmService() {}

  /** Writes {@code dir/berth.yaml} (service tiny-llm, with {@code more} appended) and its model. */
  static Path write(Path dir, String more) throws IOException {
    Path version = Files.createDirectories(dir.resolve("models/tiny/1"));
    GgufWriter.tiny().write(version.resolve("model.gguf"));
    Files.writeString(
        version.resolveSibling("model.yaml"),
        "apiVersion: berth.dev/v1\nkind: Model\nllm: {context-size: 256, parallel: 2}\n");
    Path service = dir.resolve("berth.yaml");
    Files.writeString(
        service,
        """
        apiVersion: berth.dev/v1
        kind: ModelService
        name: tiny-llm
        models:
          - path: models/tiny
        serving:
          log-format: json
        """
            + more);
    return service;
  }
}
