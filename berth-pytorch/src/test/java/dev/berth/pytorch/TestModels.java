package dev.berth.pytorch;

import dev.berth.pytorch.testing.TorchScriptWriter;
import dev.berth.pytorch.testing.TorchScriptWriter.MlpWeights;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelContext;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * The TorchScript files the tests serve, written once per test JVM by {@link TorchScriptWriter}
 * (its JVM and libtorch take seconds to start), and model directories around them.
 */
final class TestModels {
  static final MlpWeights WEIGHTS = MlpWeights.random(42);
  static final int VOCAB = 30522;
  static final int HIDDEN = 8;
  static final long BERT_SEED = 7;

  static final String MLP_YAML =
      """
      apiVersion: berth.dev/v1
      kind: Model
      inputs:
        - {name: pixels, datatype: FP32, shape: [-1, 784]}
      outputs:
        - {name: probabilities, datatype: FP32, shape: [-1, 10]}
      """;

  private static Path files;

  private TestModels() {}

  /** The directory holding mlp.pt, tuple.pt, dict.pt, two-inputs.pt, echo.pt and bert.pt. */
  static synchronized Path files() {
    if (files == null) {
      try {
        Path dir = Files.createTempDirectory("torchscript");
        long start = System.nanoTime();
        TorchScriptWriter.batch()
            .mlp(dir.resolve("mlp.pt"), WEIGHTS)
            .tuple(dir.resolve("tuple.pt"))
            .dict(dir.resolve("dict.pt"))
            .twoInputs(dir.resolve("two-inputs.pt"))
            .echo(dir.resolve("echo.pt"))
            .bert(dir.resolve("bert.pt"), VOCAB, HIDDEN, BERT_SEED)
            .write();
        System.out.printf(
            "TorchScriptWriter wrote 6 models in %d ms%n", (System.nanoTime() - start) / 1_000_000);
        files = dir;
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return files;
  }

  /**
   * Lays out {@code repo/name/1/model.pt} (a copy of {@code file}) and {@code repo/name/model.yaml}
   * and returns the version's context.
   */
  static ModelContext model(Path repo, String name, String file, String yaml) {
    try {
      Path version = Files.createDirectories(repo.resolve(name).resolve("1"));
      Files.copy(
          files().resolve(file),
          version.resolve(PytorchEngineProvider.MODEL_FILE),
          java.nio.file.StandardCopyOption.REPLACE_EXISTING);
      Files.writeString(repo.resolve(name).resolve(ModelConfig.FILE_NAME), yaml);
      return new ModelContext(name, "1", version, ModelConfig.load(repo.resolve(name)));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** model.yaml with these tensor declarations and options (YAML lines, may be empty). */
  static String yaml(String declarations) {
    return "apiVersion: berth.dev/v1\nkind: Model\n" + declarations;
  }
}
