package dev.berth.tensorflow;

import dev.berth.api.Tensor;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelContext;
import dev.berth.runtime.TensorEngine;
import dev.berth.tensorflow.testing.SavedModelWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;

/**
 * In-process throughput of the Fashion-MNIST MLP through the engine (copies in and out included),
 * at batch 1 and 64. Not a test: run it with the test class path.
 *
 * <pre>MlpThroughput [SECONDS] [model.yaml options, e.g. "inter-op-threads: 0"]</pre>
 */
public final class MlpThroughput {
  private MlpThroughput() {}

  public static void main(String[] args) throws Exception {
    double seconds = args.length > 0 ? Double.parseDouble(args[0]) : 3;
    String options = args.length > 1 ? args[1] : "";
    Path repo = Files.createTempDirectory("berth-tf-bench");
    SavedModelWriter.mlp(repo.resolve("mlp/1/model.savedmodel"), 1);
    Files.writeString(
        repo.resolve("mlp/model.yaml"),
        "apiVersion: berth.dev/v1\nkind: Model\noptions: {" + options + "}\n");
    ModelConfig config = ModelConfig.load(repo.resolve("mlp"));
    try (TensorEngine engine =
        (TensorEngine)
            new TensorflowEngineProvider()
                .load(new ModelContext("mlp", "1", repo.resolve("mlp/1"), config))) {
      for (int batch : new int[] {1, 64}) {
        Tensor pixels = pixels(batch);
        Map<String, Tensor> in = Map.of("pixels", pixels);
        Set<String> out = Set.of("probabilities");
        long end = System.nanoTime() + (long) (seconds / 3 * 1e9);
        while (System.nanoTime() < end) {
          engine.run(in, out); // warm-up
        }
        long runs = 0;
        long start = System.nanoTime();
        end = start + (long) (seconds * 1e9);
        while (System.nanoTime() < end) {
          engine.run(in, out);
          runs++;
        }
        double elapsed = (System.nanoTime() - start) / 1e9;
        System.out.printf(
            Locale.ROOT,
            "batch %3d: %9.0f runs/s %10.0f rows/s  %8.1f us/run  (options {%s})%n",
            batch,
            runs / elapsed,
            runs * batch / elapsed,
            elapsed / runs * 1e6,
            options);
      }
    }
  }

  /** A direct buffer of random pixels, as the runtime's joined batches are. */
  private static Tensor pixels(int batch) {
    Random random = new Random(batch);
    ByteBuffer b =
        ByteBuffer.allocateDirect(batch * SavedModelWriter.PIXELS * 4)
            .order(ByteOrder.LITTLE_ENDIAN);
    while (b.hasRemaining()) {
      b.putFloat(random.nextFloat());
    }
    b.flip();
    return Tensor.of(
        "pixels", dev.berth.api.DataType.FP32, new long[] {batch, SavedModelWriter.PIXELS}, b);
  }
}
