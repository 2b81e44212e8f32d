package dev.berth.llm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.llm.GgufWriter.TensorType;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * llama.cpp reads the F16, Q8_0 and Q4_0 layouts GgufWriter writes as the same weights: the same
 * seed gives nearly the next-token logits of the F32 model, a wrong block or nibble layout would
 * give unrelated ones.
 */
class LlamaCppReadsQuantizedWeightsTest {
  private static final String TEXT = "hello world, the model is here";

  @TempDir static Path dir;

  private static float[] f32;

  @BeforeAll
  static void f32Logits() {
    LlamaCpp.load();
    f32 = embedding(TensorType.F32, 42);
  }

  @ParameterizedTest
  @CsvSource({"F16, 0.999", "Q8_0, 0.995", "Q4_0, 0.97"})
  void quantizedModelPredictsLikeTheF32Model(TensorType type, double minimumCosine) {
    float[] quantized = embedding(type, 42);

    assertEquals(f32.length, quantized.length);
    double cosine = cosine(f32, quantized);
    assertTrue(cosine > minimumCosine, type + " cosine " + cosine);
    assertTrue(cosine(f32, embedding(type, 43)) < 0.5, "another seed is another model");
  }

  /** The logits after the text's last token. */
  private static float[] embedding(TensorType type, long seed) {
    Path file =
        GgufWriter.tiny()
            .feedForward(192)
            .type(type)
            .seed(seed)
            .write(dir.resolve(type + "-" + seed + ".gguf"));
    long model = LlamaCpp.loadModel(file.toString(), 0);
    try {
      long context = LlamaCpp.newContext(model, 128, 1, 64, 2, 2);
      long batch = LlamaCpp.newBatch(64);
      try {
        int[] tokens = LlamaCpp.tokenize(model, TEXT.getBytes(StandardCharsets.UTF_8), true, false);
        int n = tokens.length;
        int[] positions = new int[n];
        boolean[] outputs = new boolean[n];
        for (int i = 0; i < n; i++) {
          positions[i] = i;
        }
        outputs[n - 1] = true;
        assertEquals(0, LlamaCpp.decode(context, batch, n, tokens, positions, new int[n], outputs));
        return LlamaCpp.logits(model, context, n - 1);
      } finally {
        LlamaCpp.freeBatch(batch);
        LlamaCpp.freeContext(context);
      }
    } finally {
      LlamaCpp.freeModel(model);
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
