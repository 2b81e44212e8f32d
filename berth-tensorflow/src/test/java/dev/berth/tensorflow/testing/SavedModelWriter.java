package dev.berth.tensorflow.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.tensorflow.Graph;
import org.tensorflow.Operand;
import org.tensorflow.SavedModelBundle;
import org.tensorflow.Session;
import org.tensorflow.Signature;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.op.core.Variable;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TInt64;

/**
 * Writes real TensorFlow SavedModels with TensorFlow Java, for tests, examples and benchmarks: a
 * graph built with the Ops API, weights held in variables (so they live in {@code variables/}, not
 * in saved_model.pb), and serving signatures with the method name TensorFlow Serving expects.
 *
 * <pre>{@code
 * try (SavedModelWriter w = SavedModelWriter.create()) {
 *   Ops tf = w.ops();
 *   Placeholder<TFloat32> x = tf.withName("x").placeholder(TFloat32.class,
 *       Placeholder.shape(Shape.of(-1, 3)));
 *   Operand<TFloat32> y = tf.math.add(tf.linalg.matMul(x, w.weights("w", Shape.of(3, 2), ws)),
 *       w.weights("b", Shape.of(2), bs));
 *   w.signature(SavedModelWriter.serving().input("x", x).output("y", y)).write(dir);
 * }
 * }</pre>
 *
 * <p>Ready-made models: {@link #mlp} (the Fashion-MNIST classifier), {@link #bert} (a BERT-shaped
 * embedding model for text tests), {@link #conv} (a convolutional classifier, for benchmarks),
 * {@link #dense}. {@link #main} writes them from the command line.
 */
public final class SavedModelWriter implements AutoCloseable {
  /** The method name TensorFlow Serving's predict API expects of a signature. */
  public static final String PREDICT_METHOD = "tensorflow/serving/predict";

  public static final int PIXELS = 784;
  public static final int HIDDEN = 128;
  public static final int CLASSES = 10;

  /** The number of tokens in the vocabulary of BERT's uncased tokenizer (and MiniLM's). */
  public static final int BERT_VOCAB = 30522;

  private final Graph graph = new Graph();
  private final Ops tf = Ops.create(graph);
  private final List<Weight> weights = new ArrayList<>();
  private final List<Signature> signatures = new ArrayList<>();

  private record Weight(
      Placeholder<TFloat32> feed, Operand<?> assign, Shape shape, float[] value) {}

  private SavedModelWriter() {}

  /** A new, empty graph. */
  public static SavedModelWriter create() {
    return new SavedModelWriter();
  }

  /** A builder of the {@code serving_default} signature with the predict method name. */
  public static Signature.Builder serving() {
    return serving(Signature.DEFAULT_KEY);
  }

  /** A builder of a signature with the predict method name. */
  public static Signature.Builder serving(String key) {
    return Signature.builder().key(key).methodName(PREDICT_METHOD);
  }

  /** The graph's operations builder. */
  public Ops ops() {
    return tf;
  }

  /**
   * A variable holding {@code value} (row-major), written to {@code variables/} on {@link #write}.
   */
  public Operand<TFloat32> weights(String name, Shape shape, float[] value) {
    if (shape.size() != value.length) {
      throw new IllegalArgumentException(
          name + ": shape " + shape + " holds " + shape.size() + " values, not " + value.length);
    }
    Variable<TFloat32> v = tf.withName(name).variable(shape, TFloat32.class);
    Placeholder<TFloat32> feed =
        tf.withName(name + "_value").placeholder(TFloat32.class, Placeholder.shape(shape));
    weights.add(new Weight(feed, tf.withName(name + "_assign").assign(v, feed), shape, value));
    return v;
  }

  /** Adds a signature. */
  public SavedModelWriter signature(Signature.Builder signature) {
    signatures.add(signature.build());
    return this;
  }

  /** Writes the SavedModel (saved_model.pb and variables/) into {@code dir}, with tag "serve". */
  public Path write(Path dir) {
    try (Session session = new Session(graph)) {
      for (Weight w : weights) {
        try (TFloat32 value =
            TFloat32.tensorOf(w.shape(), DataBuffers.of(w.value(), true, false))) {
          session.runner().feed(w.feed(), value).addTarget(w.assign()).run();
        }
      }
      Files.createDirectories(dir);
      SavedModelBundle.exporter(dir.toString())
          .withTags("serve")
          .withSession(session)
          .withSignatures(signatures.toArray(new Signature[0]))
          .export();
      return dir;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write a SavedModel into " + dir, e);
    }
  }

  @Override
  public void close() {
    graph.close();
  }

  /**
   * The Fashion-MNIST classifier with the given weights: {@code pixels} FP32 [-1, 784] -> x·W1 + b1
   * -> ReLU -> ·W2 + b2 -> softmax -> {@code probabilities} FP32 [-1, 10], signature {@code
   * serving_default}. The weights are row-major: W1 [784, 128], b1 [128], W2 [128, 10], b2 [10], as
   * in the ONNX example's Gemm initializers, so the same weights give the same answers.
   */
  public static Path mlp(Path dir, float[] w1, float[] b1, float[] w2, float[] b2) {
    try (SavedModelWriter w = create()) {
      Ops tf = w.ops();
      Placeholder<TFloat32> pixels =
          tf.withName("pixels")
              .placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, PIXELS)));
      Operand<TFloat32> hidden =
          tf.nn.relu(
              tf.math.add(
                  tf.linalg.matMul(pixels, w.weights("W1", Shape.of(PIXELS, HIDDEN), w1)),
                  w.weights("b1", Shape.of(HIDDEN), b1)));
      Operand<TFloat32> logits =
          tf.math.add(
              tf.linalg.matMul(hidden, w.weights("W2", Shape.of(HIDDEN, CLASSES), w2)),
              w.weights("b2", Shape.of(CLASSES), b2));
      Operand<TFloat32> probabilities = tf.withName("probabilities").nn.softmax(logits);
      return w.signature(serving().input("pixels", pixels).output("probabilities", probabilities))
          .write(dir);
    }
  }

  /**
   * A convolutional classifier of 28x28 images: {@code pixels} FP32 [-1, 784] -> [-1, 28, 28, 1] ->
   * for each channel count C: a 3x3 convolution (padding SAME, stride 1) and ReLU -> global average
   * pooling -> dense -> softmax -> {@code probabilities} FP32 [-1, 10]. {@code weights} holds each
   * convolution's W as [C, in, 3, 3] (ONNX's and PyTorch's layout, turned here into TensorFlow's
   * [3, 3, in, C]) and b [C], then the dense W [last, 10] and b [10], as the ONNX and TorchScript
   * writers take them, so the same weights give the same answers.
   */
  public static Path conv(Path dir, int[] channels, float[][] weights) {
    if (weights.length != 2 * channels.length + 2) {
      throw new IllegalArgumentException(
          channels.length
              + " convolutions need "
              + (2 * channels.length + 2)
              + " weight arrays, not "
              + weights.length);
    }
    try (SavedModelWriter w = create()) {
      Ops tf = w.ops();
      Placeholder<TFloat32> pixels =
          tf.withName("pixels")
              .placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, PIXELS)));
      Operand<TFloat32> x = tf.reshape(pixels, tf.constant(new long[] {-1, 28, 28, 1}));
      int in = 1;
      for (int l = 0; l < channels.length; l++) {
        int c = channels[l];
        float[] hwio = new float[c * in * 9];
        float[] oihw = weights[2 * l];
        for (int o = 0; o < c; o++) {
          for (int i = 0; i < in; i++) {
            for (int k = 0; k < 9; k++) {
              hwio[(k * in + i) * c + o] = oihw[(o * in + i) * 9 + k];
            }
          }
        }
        Operand<TFloat32> filter = w.weights("W" + l, Shape.of(3, 3, in, c), hwio);
        x =
            tf.nn.relu(
                tf.nn.biasAdd(
                    tf.nn.conv2d(x, filter, List.of(1L, 1L, 1L, 1L), "SAME"),
                    w.weights("b" + l, Shape.of(c), weights[2 * l + 1])));
        in = c;
      }
      Operand<TFloat32> pooled = tf.math.mean(x, tf.constant(new int[] {1, 2}));
      Operand<TFloat32> logits =
          tf.math.add(
              tf.linalg.matMul(
                  pooled, w.weights("W", Shape.of(in, CLASSES), weights[2 * channels.length])),
              w.weights("b", Shape.of(CLASSES), weights[2 * channels.length + 1]));
      Operand<TFloat32> probabilities = tf.withName("probabilities").nn.softmax(logits);
      return w.signature(serving().input("pixels", pixels).output("probabilities", probabilities))
          .write(dir);
    }
  }

  /** The Fashion-MNIST classifier with seeded random weights (see {@link #mlpWeights}). */
  public static Path mlp(Path dir, long seed) {
    float[][] p = mlpWeights(seed);
    return mlp(dir, p[0], p[1], p[2], p[3]);
  }

  /**
   * Seeded random weights for {@link #mlp}: {W1, b1, W2, b2}, each uniform in ±1/sqrt(fan-in), so
   * the softmax is neither flat nor saturated.
   */
  public static float[][] mlpWeights(long seed) {
    Random random = new Random(seed);
    return new float[][] {
      uniform(random, PIXELS * HIDDEN, 1 / Math.sqrt(PIXELS)),
      uniform(random, HIDDEN, 1 / Math.sqrt(PIXELS)),
      uniform(random, HIDDEN * CLASSES, 1 / Math.sqrt(HIDDEN)),
      uniform(random, CLASSES, 1 / Math.sqrt(HIDDEN))
    };
  }

  /**
   * A BERT-shaped text model: {@code input_ids}, {@code attention_mask} and {@code token_type_ids}
   * INT64 [-1, -1] -> {@code last_hidden_state} FP32 [-1, -1, hidden] = (word embedding of the id +
   * token type embedding) × the mask, from seeded random tables of {@code vocab} and 2 rows. Mean
   * pooling and tokenization work on it as on a real BERT; {@code vocab} must cover the tokenizer's
   * ids ({@link #BERT_VOCAB} for MiniLM's).
   */
  public static Path bert(Path dir, int vocab, int hidden, long seed) {
    Random random = new Random(seed);
    try (SavedModelWriter w = create()) {
      Ops tf = w.ops();
      Shape tokens = Shape.of(-1, -1);
      Placeholder<TInt64> ids =
          tf.withName("input_ids").placeholder(TInt64.class, Placeholder.shape(tokens));
      Placeholder<TInt64> mask =
          tf.withName("attention_mask").placeholder(TInt64.class, Placeholder.shape(tokens));
      Placeholder<TInt64> types =
          tf.withName("token_type_ids").placeholder(TInt64.class, Placeholder.shape(tokens));
      Operand<TFloat32> words =
          w.weights("word_embeddings", Shape.of(vocab, hidden), uniform(random, vocab * hidden, 1));
      Operand<TFloat32> typeTable =
          w.weights("token_type_embeddings", Shape.of(2, hidden), uniform(random, 2 * hidden, 1));
      Operand<TFloat32> embedded =
          tf.math.add(
              tf.gather(words, ids, tf.constant(0)), tf.gather(typeTable, types, tf.constant(0)));
      Operand<TFloat32> masked =
          tf.withName("last_hidden_state")
              .math
              .mul(embedded, tf.expandDims(tf.dtypes.cast(mask, TFloat32.class), tf.constant(-1)));
      return w.signature(
              serving()
                  .input("input_ids", ids)
                  .input("attention_mask", mask)
                  .input("token_type_ids", types)
                  .output("last_hidden_state", masked))
          .write(dir);
    }
  }

  /** A dense layer: {@code x} FP32 [-1, rows of w] -> {@code y} = x·W + b FP32 [-1, b.length]. */
  public static Path dense(Path dir, float[][] w, float[] b) {
    int in = w.length;
    int out = b.length;
    float[] flat = new float[in * out];
    for (int i = 0; i < in; i++) {
      System.arraycopy(w[i], 0, flat, i * out, out);
    }
    try (SavedModelWriter m = create()) {
      Ops tf = m.ops();
      Placeholder<TFloat32> x =
          tf.withName("x").placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, in)));
      Operand<TFloat32> y =
          tf.withName("y")
              .math
              .add(
                  tf.linalg.matMul(x, m.weights("w", Shape.of(in, out), flat)),
                  m.weights("b", Shape.of(out), b));
      return m.signature(serving().input("x", x).output("y", y)).write(dir);
    }
  }

  private static float[] uniform(Random random, int n, double bound) {
    float[] out = new float[n];
    for (int i = 0; i < n; i++) {
      out[i] = (float) ((random.nextDouble() * 2 - 1) * bound);
    }
    return out;
  }

  /**
   * Writes a model from the command line:
   *
   * <pre>
   * mlp DIR [--seed N | --weights FILE]    FILE: W1, b1, W2, b2 as little-endian FP32, row-major
   * bert DIR [--vocab 30522] [--hidden 8] [--seed 7]
   * conv DIR --channels C1,C2,... --weights FILE      FILE: W and b of each layer, as {@link #conv}
   * </pre>
   *
   * DIR is the SavedModel directory, e.g. {@code REPO/fashion-mnist/1/model.savedmodel}.
   */
  public static void main(String[] args) throws IOException {
    if (args.length < 2 || args.length % 2 != 0) {
      System.err.println(
          "usage: SavedModelWriter mlp DIR [--seed N | --weights FILE]\n"
              + "       SavedModelWriter bert DIR [--vocab N] [--hidden N] [--seed N]\n"
              + "       SavedModelWriter conv DIR --channels C1,C2,... --weights FILE");
      System.exit(2);
    }
    Path dir = Path.of(args[1]);
    java.util.Map<String, String> flags = new java.util.HashMap<>();
    for (int i = 2; i < args.length; i += 2) {
      flags.put(args[i], args[i + 1]);
    }
    long seed = Long.parseLong(flags.getOrDefault("--seed", "7"));
    switch (args[0]) {
      case "mlp" -> {
        if (flags.containsKey("--weights")) {
          ByteBuffer raw =
              ByteBuffer.wrap(Files.readAllBytes(Path.of(flags.get("--weights"))))
                  .order(ByteOrder.LITTLE_ENDIAN);
          int[] sizes = {PIXELS * HIDDEN, HIDDEN, HIDDEN * CLASSES, CLASSES};
          int total = java.util.Arrays.stream(sizes).sum();
          if (raw.remaining() != total * 4) {
            throw new IllegalArgumentException(
                flags.get("--weights") + " holds " + raw.remaining() + " bytes, not " + total * 4);
          }
          float[][] p = new float[4][];
          for (int i = 0; i < 4; i++) {
            p[i] = new float[sizes[i]];
            raw.asFloatBuffer().get(p[i]);
            raw.position(raw.position() + sizes[i] * 4);
          }
          mlp(dir, p[0], p[1], p[2], p[3]);
        } else {
          mlp(dir, seed);
        }
      }
      case "conv" -> {
        int[] channels =
            java.util.Arrays.stream(flags.getOrDefault("--channels", "").split(","))
                .mapToInt(Integer::parseInt)
                .toArray();
        ByteBuffer raw =
            ByteBuffer.wrap(Files.readAllBytes(Path.of(flags.get("--weights"))))
                .order(ByteOrder.LITTLE_ENDIAN);
        float[][] p = new float[2 * channels.length + 2][];
        int in = 1;
        for (int l = 0; l < channels.length; l++) {
          p[2 * l] = new float[channels[l] * in * 9];
          p[2 * l + 1] = new float[channels[l]];
          in = channels[l];
        }
        p[2 * channels.length] = new float[in * CLASSES];
        p[2 * channels.length + 1] = new float[CLASSES];
        for (float[] part : p) {
          if (raw.remaining() < part.length * 4) {
            throw new IllegalArgumentException(
                flags.get("--weights")
                    + " ends before its weights do: the channels do not match it");
          }
          raw.asFloatBuffer().get(part);
          raw.position(raw.position() + part.length * 4);
        }
        if (raw.hasRemaining()) {
          throw new IllegalArgumentException(
              flags.get("--weights")
                  + " holds "
                  + raw.remaining()
                  + " bytes more than the channels take");
        }
        conv(dir, channels, p);
      }
      case "bert" ->
          bert(
              dir,
              Integer.parseInt(flags.getOrDefault("--vocab", String.valueOf(BERT_VOCAB))),
              Integer.parseInt(flags.getOrDefault("--hidden", "8")),
              seed);
      default -> {
        System.err.println("unknown model '" + args[0] + "'; use mlp, bert or conv");
        System.exit(2);
      }
    }
    System.out.println("wrote " + dir);
  }
}
