package dev.berth.llm;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.ModelLoadException;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelContext;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LlamaEngineProviderTest {
  @TempDir Path dir;

  @Test
  void gpuLayersWithTheBundledCpuBuildAreRefusedWithTheWayOut() throws Exception {
    Path version = Files.createDirectories(dir.resolve("tiny/1"));
    GgufWriter.tiny().write(version.resolve("model.gguf"));
    Files.writeString(
        dir.resolve("tiny/model.yaml"),
        "apiVersion: berth.dev/v1\nkind: Model\nllm: {context-size: 64, gpu-layers: 4}\n");
    ModelContext context =
        new ModelContext("tiny", "1", version, ModelConfig.load(dir.resolve("tiny")));

    ModelLoadException e =
        assertThrows(ModelLoadException.class, () -> new LlamaEngineProvider().load(context));

    assertTrue(
        e.getMessage().startsWith("4 layers of this model should run on a GPU"), e.getMessage());
    assertTrue(e.getMessage().contains("-Dberth.llama.backends=DIR"), e.getMessage());
    assertTrue(e.getMessage().contains("@node-llama-cpp/linux-x64-cuda@3.21.1"), e.getMessage());
    assertTrue(e.getMessage().contains("llm.gpu-layers: 0"), e.getMessage());
  }

  @Test
  void everyLayerOnTheGpuIsNamedSo() {
    ModelLoadException e =
        assertThrows(ModelLoadException.class, () -> LlamaEngine.requireGpu(-1, 0));
    assertTrue(e.getMessage().startsWith("every layer of this model"), e.getMessage());
  }

  @Test
  void aGpuBackendOrNoGpuLayersPass() {
    LlamaEngine.requireGpu(-1, 1);
    LlamaEngine.requireGpu(0, 0);
  }
}
