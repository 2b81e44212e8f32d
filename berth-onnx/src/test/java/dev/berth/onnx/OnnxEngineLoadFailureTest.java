package dev.berth.onnx;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.ModelLoadException;
import dev.berth.onnx.testing.OnnxModelWriter;
import dev.berth.onnx.testing.OnnxModelWriter.ElemType;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelContext;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A model.onnx that ONNX Runtime cannot read is a {@link ModelLoadException} naming the file. */
class OnnxEngineLoadFailureTest {
  @TempDir Path repo;

  @Test
  void randomBytesAreAModelLoadException() {
    Path file = OnnxModelWriter.writeGarbage(repo.resolve("broken/1/model.onnx"));
    assertFailsNaming(file);
  }

  @Test
  void anEmptyFileIsAModelLoadException() throws IOException {
    Path file = repo.resolve("broken/1/model.onnx");
    Files.createDirectories(file.getParent());
    Files.write(file, new byte[0]);
    assertFailsNaming(file);
  }

  @Test
  void aTruncatedModelIsAModelLoadException() throws IOException {
    byte[] whole =
        OnnxModelWriter.graph("add")
            .input("x", ElemType.FLOAT, -1, 64)
            .output("y", ElemType.FLOAT, -1, 64)
            .initializer("b", new long[] {64}, new float[64])
            .node("Add", List.of("x", "b"), List.of("y"))
            .toBytes();
    Path file = repo.resolve("broken/1/model.onnx");
    Files.createDirectories(file.getParent());
    Files.write(file, Arrays.copyOf(whole, whole.length / 2));
    assertFailsNaming(file);
  }

  private void assertFailsNaming(Path file) {
    Path modelDir = repo.resolve("broken");
    ModelContext context =
        new ModelContext("broken", "1", modelDir.resolve("1"), ModelConfig.load(modelDir));
    OnnxEngineProvider provider = new OnnxEngineProvider();
    assertTrue(provider.canLoad(context), "a model.onnx is there, whatever it holds");

    ModelLoadException e =
        assertThrows(ModelLoadException.class, () -> provider.load(context).close());

    assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
  }
}
