package dev.berth.tensorflow;

import dev.berth.runtime.Engine;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelContext;
import dev.berth.tensorflow.testing.SavedModelWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.tensorflow.Operand;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt64;

/** Models the engine tests share, and loading them as the runtime would. */
final class TensorflowModels {
  static final float[][] W = {{1, 2}, {3, 4}, {5, 6}};
  static final float[] B = {10, 20};

  private TensorflowModels() {}

  /**
   * x FP32 [-1, 3] and ids INT64 [-1, -1] in; y = x·W + b FP32 [-1, 2] and doubled = ids × 2 INT64
   * [-1, -1] out; a second signature "ids_only" takes ids alone.
   */
  static Path twoInTwoOut(Path dir) {
    try (SavedModelWriter w = SavedModelWriter.create()) {
      Ops tf = w.ops();
      Placeholder<TFloat32> x =
          tf.withName("x").placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, 3)));
      Placeholder<TInt64> ids =
          tf.withName("ids").placeholder(TInt64.class, Placeholder.shape(Shape.of(-1, -1)));
      Operand<TFloat32> y =
          tf.math.add(
              tf.linalg.matMul(x, w.weights("w", Shape.of(3, 2), new float[] {1, 2, 3, 4, 5, 6})),
              w.weights("b", Shape.of(2), B));
      Operand<TInt64> doubled = tf.math.mul(ids, tf.constant(2L));
      return w.signature(
              SavedModelWriter.serving()
                  .input("x", x)
                  .input("ids", ids)
                  .output("y", y)
                  .output("doubled", doubled))
          .signature(
              SavedModelWriter.serving("ids_only").input("ids", ids).output("doubled", doubled))
          .write(dir);
    }
  }

  /**
   * Loads {@code repo/NAME/1/model.savedmodel} with {@code repo/NAME/model.yaml} holding {@code
   * yaml} after the header (none when null).
   */
  static Engine load(Path repo, String name, String yaml) {
    Path modelDir = repo.resolve(name);
    try {
      Files.createDirectories(modelDir);
      Path file = modelDir.resolve(ModelConfig.FILE_NAME);
      Files.deleteIfExists(file);
      if (yaml != null) {
        Files.writeString(file, "apiVersion: berth.dev/v1\nkind: Model\n" + yaml);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    ModelConfig config = ModelConfig.load(modelDir);
    return new TensorflowEngineProvider()
        .load(new ModelContext(name, "1", modelDir.resolve("1"), config));
  }

  /** Where a model's SavedModel goes in a repository: {@code repo/NAME/1/model.savedmodel}. */
  static Path savedModel(Path repo, String name) {
    return repo.resolve(name).resolve("1").resolve(TensorflowEngineProvider.MODEL_DIR);
  }
}
