package dev.berth.onnx;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.ConfigException;
import dev.berth.onnx.testing.OnnxModelWriter;
import dev.berth.onnx.testing.OnnxModelWriter.ElemType;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelContext;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code berth serve --execution-provider} (the Kubernetes manifests set it to cuda when GPUs are
 * asked for) reaches every model that names no provider of its own.
 */
class OnnxEngineProviderDefaultTest {
  @TempDir Path repo;

  /** A model served by a server whose execution provider is cuda. */
  private ModelContext model(String modelYaml) throws IOException {
    Path file = repo.resolve("add/1/model.onnx");
    Files.createDirectories(file.getParent());
    Files.write(
        file,
        OnnxModelWriter.graph("add")
            .input("x", ElemType.FLOAT, -1, 4)
            .output("y", ElemType.FLOAT, -1, 4)
            .initializer("b", new long[] {4}, new float[4])
            .node("Add", List.of("x", "b"), List.of("y"))
            .toBytes());
    if (modelYaml != null) {
      Files.writeString(repo.resolve("add/model.yaml"), modelYaml);
    }
    Path dir = repo.resolve("add");
    return new ModelContext("add", "1", dir.resolve("1"), ModelConfig.load(dir), "cuda");
  }

  @Test
  void theDefaultProviderIsCuda_onThisCpuBuildTheModelSaysSo() throws IOException {
    ModelContext context = model(null);

    ConfigException e =
        assertThrows(ConfigException.class, () -> new OnnxEngineProvider().load(context).close());

    assertTrue(e.getMessage().contains("CUDA provider is not available"), e.getMessage());
  }

  @Test
  void aModelsOwnProviderWinsOverTheDefault() throws IOException {
    ModelContext context =
        model("apiVersion: berth.dev/v1\nkind: Model\noptions: {execution-provider: cpu}\n");

    new OnnxEngineProvider().load(context).close();
  }
}
