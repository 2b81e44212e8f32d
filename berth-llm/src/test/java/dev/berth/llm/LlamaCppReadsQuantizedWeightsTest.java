package dev.berth.llm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import de.kherud.llama.LlamaModel;
import de.kherud.llama.ModelParameters;
import dev.berth.llm.GgufWriter.TensorType;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * llama.cpp reads the F16, Q8_0 and Q4_0 layouts GgufWriter writes as the same weights: the same
 * seed gives nearly the embedding of the F32 model, a wrong block or nibble layout would give an
 * unrelated one.
 */
class LlamaCppReadsQuantizedWeightsTest {
  private static final String TEXT = "hello world, the model is here";

  @TempDir static Path dir;

  private static float[] f32;

  @BeforeAll
  static void f32Embedding() {
    f32 = embedding(TensorType.F32, 42);
  }

  @ParameterizedTest
  @CsvSource({"F16, 0.999", "Q8_0, 0.995", "Q4_0, 0.97"})
  void quantizedModelEmbedsLikeTheF32Model(TensorType type, double minimumCosine) {
    float[] quantized = embedding(type, 42);

    assertEquals(f32.length, quantized.length);
    double cosine = cosine(f32, quantized);
    assertTrue(cosine > minimumCosine, type + " cosine " + cosine);
    assertTrue(cosine(f32, embedding(type, 43)) < 0.5, "another seed is another model");
  }

  private static float[] embedding(TensorType type, long seed) {
    Path file =
        GgufWriter.tiny()
            .feedForward(192)
            .type(type)
            .seed(seed)
            .write(dir.resolve(type + "-" + seed + ".gguf"));
    try (LlamaModel model =
        new LlamaModel(
            new ModelParameters()
                .setModel(file.toString())
                .setCtxSize(128)
                .setThreads(2)
                .enableEmbedding()
                .disableLog())) {
      return model.embed(TEXT);
    }
  }

  private static double cosine(float[] a, float[] b) {
    double dot = 0;
    double na = 0;
    double nb = 0;
    for (int i = 0; i < a.length; i++) {
      dot += a[i] * b[i];
      na += a[i] * a[i];
      nb += b[i] * b[i];
    }
    return dot / Math.sqrt(na * nb);
  }
}
