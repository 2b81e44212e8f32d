package dev.berth.bench;

import dev.berth.onnx.testing.OnnxModelWriter;
import dev.berth.onnx.testing.OnnxModelWriter.Attribute;
import dev.berth.onnx.testing.OnnxModelWriter.ElemType;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

/**
 * Writes seeded random weights for a small convolutional classifier of 28x28 images, and the
 * network itself as {@code model.onnx}: {@code pixels} FP32 [-1, 784] -> reshape to [-1, 1, 28, 28]
 * -> for each of CHANNELS: 3x3 convolution (padding 1, stride 1) and ReLU -> global average pooling
 * -> dense layer -> softmax -> {@code probabilities} FP32 [-1, 10].
 *
 * <p>The weights file holds, little-endian FP32, each convolution's W [out, in, 3, 3] then b [out],
 * then the dense layer's W [last, 10] then b [10]: what {@code TorchScriptWriter conv} and {@code
 * SavedModelWriter conv} take (the latter turns W into TensorFlow's [3, 3, in, out]), so the three
 * files compute the same function. Its compute per image is large and does not depend on the batch
 * size (the weights are small and reused at every pixel), which makes it a model where the engine,
 * not HTTP, decides what a server can answer: bench/engines' heavier model.
 *
 * <pre>
 *   dev.berth.bench.ConvNet CHANNELS WEIGHTS.bin MODEL.onnx [--seed 7]     CHANNELS: e.g. 32,64,64
 * </pre>
 */
public final class ConvNet {
  static final int SIDE = 28;
  static final int CLASSES = 10;

  private ConvNet() {}

  public static void main(String[] args) throws IOException {
    if (args.length != 3 && !(args.length == 5 && args[3].equals("--seed"))) {
      System.err.println("usage: ConvNet CHANNELS WEIGHTS.bin MODEL.onnx [--seed N]");
      System.exit(2);
    }
    int[] channels = Arrays.stream(args[0].split(",")).mapToInt(Integer::parseInt).toArray();
    if (channels.length == 0 || Arrays.stream(channels).anyMatch(c -> c < 1)) {
      System.err.println("ConvNet: CHANNELS must be positive numbers, not " + args[0]);
      System.exit(2);
    }
    long seed = args.length == 5 ? Long.parseLong(args[4]) : 7;
    Random random = new Random(seed);
    OnnxModelWriter onnx =
        OnnxModelWriter.graph("conv_net")
            .input("pixels", ElemType.FLOAT, -1, SIDE * SIDE)
            .output("probabilities", ElemType.FLOAT, -1, CLASSES)
            .longInitializer("image_shape", new long[] {4}, -1, 1, SIDE, SIDE)
            .node("Reshape", List.of("pixels", "image_shape"), List.of("x0"));
    long macs = 0;
    long parameters = 0;
    try (OutputStream out = Files.newOutputStream(Path.of(args[1]))) {
      int in = 1;
      for (int l = 0; l < channels.length; l++) {
        int c = channels[l];
        // uniform in ±1/sqrt(fan-in): activations keep their scale through the layers
        double bound = 1 / Math.sqrt(in * 9.0);
        byte[] w = uniform(random, c * in * 9, bound);
        byte[] b = uniform(random, c, bound);
        out.write(w);
        out.write(b);
        onnx.initializer("W" + l, ElemType.FLOAT, new long[] {c, in, 3, 3}, w)
            .initializer("b" + l, ElemType.FLOAT, new long[] {c}, b)
            .node(
                "Conv",
                List.of("x" + l, "W" + l, "b" + l),
                List.of("c" + l),
                Attribute.ofInts("kernel_shape", 3, 3),
                Attribute.ofInts("pads", 1, 1, 1, 1))
            .node("Relu", List.of("c" + l), List.of("x" + (l + 1)));
        macs += (long) SIDE * SIDE * c * in * 9;
        parameters += c * in * 9L + c;
        in = c;
      }
      byte[] w = uniform(random, in * CLASSES, 1 / Math.sqrt(in));
      byte[] b = uniform(random, CLASSES, 1 / Math.sqrt(in));
      out.write(w);
      out.write(b);
      macs += (long) in * CLASSES;
      parameters += (long) in * CLASSES + CLASSES;
      String x = "x" + channels.length;
      onnx.initializer("W", ElemType.FLOAT, new long[] {in, CLASSES}, w)
          .initializer("b", ElemType.FLOAT, new long[] {CLASSES}, b)
          .node("GlobalAveragePool", List.of(x), List.of("pooled"))
          .node("Flatten", List.of("pooled"), List.of("features"), Attribute.ofInt("axis", 1))
          .node("MatMul", List.of("features", "W"), List.of("mm"))
          .node("Add", List.of("mm", "b"), List.of("logits"))
          .node("Softmax", List.of("logits"), List.of("probabilities"), Attribute.ofInt("axis", 1));
    }
    onnx.write(Path.of(args[2]));
    System.out.printf(
        "wrote %s and %s: channels %s, %,d parameters, %.1f MFLOP an image%n",
        args[1], args[2], args[0], parameters, 2.0 * macs / 1e6);
  }

  /**
   * The network computed in plain Java from a weights file, for checking what the writers wrote:
   * {@code rows} images of 784 pixels (row-major) in, their [rows, 10] probabilities out.
   */
  static float[] forward(int[] channels, Path weights, float[] pixels, int rows)
      throws IOException {
    FloatBuffer w =
        ByteBuffer.wrap(Files.readAllBytes(weights)).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer();
    float[][] kernels = new float[channels.length][];
    float[][] biases = new float[channels.length][];
    int in = 1;
    for (int l = 0; l < channels.length; l++) {
      kernels[l] = next(w, channels[l] * in * 9);
      biases[l] = next(w, channels[l]);
      in = channels[l];
    }
    float[] dense = next(w, in * CLASSES);
    float[] denseBias = next(w, CLASSES);
    float[] out = new float[rows * CLASSES];
    int area = SIDE * SIDE;
    for (int r = 0; r < rows; r++) {
      float[] x = Arrays.copyOfRange(pixels, r * area, (r + 1) * area);
      int c = 1;
      for (int l = 0; l < channels.length; l++) {
        float[] y = new float[channels[l] * area];
        for (int o = 0; o < channels[l]; o++) {
          for (int i = 0; i < SIDE; i++) {
            for (int j = 0; j < SIDE; j++) {
              double sum = biases[l][o];
              for (int ci = 0; ci < c; ci++) {
                for (int k = 0; k < 9; k++) {
                  int ii = i + k / 3 - 1;
                  int jj = j + k % 3 - 1;
                  if (ii >= 0 && ii < SIDE && jj >= 0 && jj < SIDE) {
                    sum += kernels[l][(o * c + ci) * 9 + k] * x[ci * area + ii * SIDE + jj];
                  }
                }
              }
              y[o * area + i * SIDE + j] = (float) Math.max(0, sum);
            }
          }
        }
        x = y;
        c = channels[l];
      }
      double[] logits = new double[CLASSES];
      for (int k = 0; k < CLASSES; k++) {
        logits[k] = denseBias[k];
        for (int ci = 0; ci < c; ci++) {
          double mean = 0;
          for (int p = 0; p < area; p++) {
            mean += x[ci * area + p];
          }
          logits[k] += mean / area * dense[ci * CLASSES + k];
        }
      }
      double max = Arrays.stream(logits).max().orElseThrow();
      double total = Arrays.stream(logits).map(v -> Math.exp(v - max)).sum();
      for (int k = 0; k < CLASSES; k++) {
        out[r * CLASSES + k] = (float) (Math.exp(logits[k] - max) / total);
      }
    }
    return out;
  }

  private static float[] next(FloatBuffer weights, int n) {
    float[] values = new float[n];
    weights.get(values);
    return values;
  }

  private static byte[] uniform(Random random, int n, double bound) {
    ByteBuffer b = ByteBuffer.allocate(n * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < n; i++) {
      b.putFloat((float) ((random.nextDouble() * 2 - 1) * bound));
    }
    return b.array();
  }
}
