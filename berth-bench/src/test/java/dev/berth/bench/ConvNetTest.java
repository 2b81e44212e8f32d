package dev.berth.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.berth.tensorflow.testing.SavedModelWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * bench/engines' heavier model computes what ConvNet says it does, as model.onnx (ONNX Runtime) and
 * as the SavedModel written from the same weights file (TensorFlow, whose convolution weights are
 * laid out otherwise): both against the plain-Java forward pass. The TorchScript file is checked
 * against the ONNX one by bench/engines itself, which stops when the engines' answers differ.
 */
class ConvNetTest {
  private static final int[] CHANNELS = {3, 5};
  private static final int ROWS = 3;

  @Test
  void theOnnxAndSavedModelFilesComputeTheReferenceNetwork(@TempDir Path dir) throws Exception {
    Path weights = dir.resolve("weights.bin");
    Path onnx = dir.resolve("model.onnx");
    ConvNet.main(new String[] {"3,5", weights.toString(), onnx.toString(), "--seed", "11"});
    int in = 1;
    float[][] parts = new float[2 * CHANNELS.length + 2][];
    for (int l = 0; l < CHANNELS.length; l++) {
      parts[2 * l] = new float[CHANNELS[l] * in * 9];
      parts[2 * l + 1] = new float[CHANNELS[l]];
      in = CHANNELS[l];
    }
    parts[2 * CHANNELS.length] = new float[in * ConvNet.CLASSES];
    parts[2 * CHANNELS.length + 1] = new float[ConvNet.CLASSES];
    ByteBuffer raw = ByteBuffer.wrap(Files.readAllBytes(weights)).order(ByteOrder.LITTLE_ENDIAN);
    for (float[] part : parts) {
      raw.asFloatBuffer().get(part);
      raw.position(raw.position() + part.length * 4);
    }
    assertEquals(0, raw.remaining(), "the weights file holds exactly the network's weights");
    Path savedModel = SavedModelWriter.conv(dir.resolve("model.savedmodel"), CHANNELS, parts);

    float[] pixels = new float[ROWS * 784];
    Random random = new Random(5);
    for (int i = 0; i < pixels.length; i++) {
      pixels[i] = random.nextFloat();
    }
    float[] expected = ConvNet.forward(CHANNELS, weights, pixels, ROWS);
    try (EngineCeiling.Model model = new EngineCeiling.Onnx(onnx, 1)) {
      assertClose(expected, model.run(pixels, ROWS, new EngineCeiling.Stages()), "ONNX Runtime");
    }
    try (EngineCeiling.Model model = new EngineCeiling.Tensorflow(savedModel, 1)) {
      assertClose(expected, model.run(pixels, ROWS, new EngineCeiling.Stages()), "TensorFlow");
    }
  }

  private static void assertClose(float[] expected, float[] actual, String engine) {
    assertEquals(expected.length, actual.length, engine + ": values");
    for (int i = 0; i < expected.length; i++) {
      assertEquals(expected[i], actual[i], 1e-5, engine + ": value " + i);
    }
  }
}
