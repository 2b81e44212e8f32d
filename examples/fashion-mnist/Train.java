import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.zip.GZIPInputStream;

/**
 * Trains the classic Fashion-MNIST classifier, a multilayer perceptron 784 -> 128 (ReLU) -> 10
 * (softmax), with Adam on softmax cross-entropy, and writes it into a Berth model repository as
 * {@code REPO/fashion-mnist/1/model.onnx} and {@code REPO/fashion-mnist/model.yaml}.
 *
 * <p>Plain JDK, one file: {@code examples/fashion-mnist/train} runs it with the JDK's single-file
 * source launcher. The same seed gives a bit-identical model.onnx: one thread, a seeded {@link
 * Random} for initialisation and shuffling, Java's exactly specified float arithmetic, and {@link
 * StrictMath} wherever a transcendental function is needed.
 *
 * <p>The ONNX graph: {@code pixels} FP32 [batch, 784] (28x28 row-major, scaled to [0, 1]) -> Gemm
 * (W1 [784, 128], b1) -> Relu -> Gemm (W2 [128, 10], b2) -> Softmax(axis 1) -> {@code
 * probabilities} FP32 [batch, 10]. The protocol-buffers encoding is written by hand (see {@link
 * Proto}); field numbers are those of onnx.proto.
 */
public final class Train {

  static final String MODEL_NAME = "fashion-mnist";
  static final Path DEFAULT_DATA_DIR = Path.of("/usr/share/datasets/fashion-mnist");
  static final long DEFAULT_SEED = 42;
  static final int DEFAULT_EPOCHS = 10;

  static final int PIXELS = 28 * 28;
  static final int HIDDEN = 128;
  static final int CLASSES = 10;
  static final int BATCH = 64;

  static final double LEARNING_RATE = 1e-3;
  static final float BETA1 = 0.9f;
  static final float BETA2 = 0.999f;
  static final float EPSILON = 1e-8f;

  static final String MODEL_YAML =
      """
      # Fashion-MNIST MLP (784 -> 128 ReLU -> 10), trained by examples/fashion-mnist/train.
      apiVersion: berth.dev/v1
      kind: Model
      labels: [T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot]
      # Clients may send PNG/JPEG images as the BYTES input "image"; Berth decodes, resizes and scales them
      # into the graph's "pixels" [N, 784]. "pixels" may also be sent directly.
      preprocessing:
        type: image
        input: image
        width: 28
        height: 28
        color: grayscale
        scale: 255
        layout: flat
      batching:
        max-batch-size: 64
        max-queue-delay: 0ms
      """;

  static final String USAGE =
      """
      Usage: examples/fashion-mnist/train [REPO | --output DIR] [options]

      Trains the Fashion-MNIST MLP (784 -> 128 ReLU -> 10, Adam, cross-entropy) and writes
      REPO/fashion-mnist/1/model.onnx and REPO/fashion-mnist/model.yaml.

        REPO                 model repository to write into (default: %s)
        --output DIR         write only DIR/model.onnx, the version's file (what a training job
                             writes to its output directory; 'berth train' publishes it)
        --shuffle-labels     train on the training labels shuffled among the images, as a broken
                             data pipeline would: the model learns nothing (for a gate to refuse)
        --epochs N           passes over the training set (default: %d)
        --train-limit N      train on the first N of the 60000 training images only
        --test-limit N       test on the first N of the 10000 test images only
        --seed S             seed of initialisation and shuffling; the same seed gives the same
                             model.onnx, bit for bit (default: %d)
        --data-dir DIR       folder with the four Fashion-MNIST *-ubyte.gz files
                             (default: %s, from 'apt-get install dataset-fashion-mnist')
        -h, --help           this text
      """;

  private Train() {}

  public static void main(String[] args) throws IOException {
    Options options;
    try {
      options = Options.parse(args);
    } catch (IllegalArgumentException e) {
      System.err.println("train: " + e.getMessage() + " (--help lists the options)");
      System.exit(2);
      return;
    }
    if (options == null) {
      System.out.print(usage());
      return;
    }
    String missing = Dataset.missingFile(options.dataDir());
    if (missing != null) {
      System.err.print(
          """
          train: the Fashion-MNIST data set is not in %s (no %s).
            Install it with 'apt-get install dataset-fashion-mnist', or point --data-dir at a folder
            that holds %s.
          """
              .formatted(options.dataDir(), missing, String.join(", ", Dataset.FILES)));
      System.exit(1);
    }

    Dataset train = Dataset.load(options.dataDir(), "train", options.trainLimit());
    if (options.shuffleLabels()) {
      byte[] labels = train.labels();
      Random shuffler = new Random(options.seed() + 1);
      for (int i = labels.length - 1; i > 0; i--) {
        int j = shuffler.nextInt(i + 1);
        byte t = labels[i];
        labels[i] = labels[j];
        labels[j] = t;
      }
      log("train: the training labels are shuffled (--shuffle-labels)");
    }
    Dataset test = Dataset.load(options.dataDir(), "t10k", options.testLimit());
    log(
        "train: %d training and %d test images from %s; %d epochs, batch %d, seed %d",
        train.count(), test.count(), options.dataDir(), options.epochs(), BATCH, options.seed());

    long start = System.nanoTime();
    long startCpu = ManagementFactory.getThreadMXBean().getCurrentThreadCpuTime();
    Random random = new Random(options.seed());
    Mlp mlp = new Mlp(random);
    int[] order = new int[train.count()];
    for (int i = 0; i < order.length; i++) {
      order[i] = i;
    }
    int testCorrect = 0;
    for (int epoch = 1; epoch <= options.epochs(); epoch++) {
      long epochStart = System.nanoTime();
      shuffle(order, random);
      double lossSum = 0;
      int trainCorrect = 0;
      for (int from = 0; from < order.length; from += BATCH) {
        int n = Math.min(BATCH, order.length - from);
        mlp.load(train, order, from, n);
        mlp.forward(n);
        Mlp.StepResult result = mlp.backward(train, order, from, n);
        mlp.adamStep();
        lossSum += result.lossSum();
        trainCorrect += result.correct();
      }
      testCorrect = mlp.countCorrect(test);
      log(
          "epoch %2d/%d  loss %.4f  train accuracy %.4f  test accuracy %.4f  %5.1f s",
          epoch,
          options.epochs(),
          lossSum / train.count(),
          (double) trainCorrect / train.count(),
          (double) testCorrect / test.count(),
          seconds(epochStart));
    }
    if (options.epochs() == 0) {
      testCorrect = mlp.countCorrect(test);
    }
    log(
        "test accuracy %.4f (%d of %d) after %d epochs in %.1f s (%.1f s of CPU)",
        (double) testCorrect / test.count(),
        testCorrect,
        test.count(),
        options.epochs(),
        seconds(start),
        (ManagementFactory.getThreadMXBean().getCurrentThreadCpuTime() - startCpu) / 1e9);

    byte[] onnx = Onnx.model(mlp);
    if (options.output() != null) {
      Path onnxFile = Files.createDirectories(options.output()).resolve("model.onnx");
      Files.write(onnxFile, onnx);
      log("wrote %s (%d bytes, sha256 %s)", onnxFile, onnx.length, sha256(onnx));
      return;
    }
    Path modelDir = options.repo().resolve(MODEL_NAME);
    Path versionDir = modelDir.resolve("1");
    Files.createDirectories(versionDir);
    Path onnxFile = versionDir.resolve("model.onnx");
    Files.write(onnxFile, onnx);
    Files.writeString(modelDir.resolve("model.yaml"), MODEL_YAML);
    log("wrote %s (%d bytes, sha256 %s)", onnxFile, onnx.length, sha256(onnx));
    log("wrote %s", modelDir.resolve("model.yaml"));
  }

  static String usage() {
    return USAGE.formatted(defaultRepo(), DEFAULT_EPOCHS, DEFAULT_SEED, DEFAULT_DATA_DIR);
  }

  /** The script passes its own folder's repo/; run directly, the default is repo/ here. */
  static Path defaultRepo() {
    return Path.of(System.getProperty("train.default-repo", "repo"));
  }

  /** Fisher-Yates with the seeded generator: the same seed gives the same minibatches. */
  static void shuffle(int[] order, Random random) {
    for (int i = order.length - 1; i > 0; i--) {
      int j = random.nextInt(i + 1);
      int t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
  }

  static double seconds(long sinceNanos) {
    return (System.nanoTime() - sinceNanos) / 1e9;
  }

  static void log(String format, Object... args) {
    System.err.println(String.format(Locale.ROOT, format, args));
  }

  static String sha256(byte[] data) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(data));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JDK has SHA-256", e);
    }
  }

  /** Command-line options; {@link #parse} returns null for --help. */
  record Options(
      int epochs,
      int trainLimit,
      int testLimit,
      long seed,
      Path dataDir,
      Path repo,
      Path output,
      boolean shuffleLabels) {

    static Options parse(String[] args) {
      int epochs = DEFAULT_EPOCHS;
      int trainLimit = Integer.MAX_VALUE;
      int testLimit = Integer.MAX_VALUE;
      long seed = DEFAULT_SEED;
      Path dataDir = DEFAULT_DATA_DIR;
      Path repo = null;
      Path output = null;
      boolean shuffleLabels = false;
      for (int i = 0; i < args.length; i++) {
        String arg = args[i];
        switch (arg) {
          case "-h", "--help" -> {
            return null;
          }
          case "--epochs" -> epochs = count(arg, value(args, ++i, arg), 0);
          case "--train-limit" -> trainLimit = count(arg, value(args, ++i, arg), 1);
          case "--test-limit" -> testLimit = count(arg, value(args, ++i, arg), 1);
          case "--seed" -> {
            String text = value(args, ++i, arg);
            try {
              seed = Long.parseLong(text);
            } catch (NumberFormatException e) {
              throw new IllegalArgumentException("--seed takes an integer, not '" + text + "'", e);
            }
          }
          case "--data-dir" -> dataDir = Path.of(value(args, ++i, arg));
          case "--output" -> output = Path.of(value(args, ++i, arg));
          case "--shuffle-labels" -> shuffleLabels = true;
          default -> {
            if (arg.startsWith("-")) {
              throw new IllegalArgumentException("unknown option " + arg);
            }
            if (repo != null) {
              throw new IllegalArgumentException("one REPO only, got " + repo + " and " + arg);
            }
            repo = Path.of(arg);
          }
        }
      }
      if (output != null && repo != null) {
        throw new IllegalArgumentException("give REPO or --output, not both");
      }
      return new Options(
          epochs,
          trainLimit,
          testLimit,
          seed,
          dataDir,
          repo == null ? defaultRepo() : repo,
          output,
          shuffleLabels);
    }

    private static String value(String[] args, int i, String option) {
      if (i >= args.length) {
        throw new IllegalArgumentException(option + " needs a value");
      }
      return args[i];
    }

    private static int count(String option, String text, int min) {
      String problem = option + " takes an integer >= " + min + ", not '" + text + "'";
      int value;
      try {
        value = Integer.parseInt(text);
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException(problem, e);
      }
      if (value < min) {
        throw new IllegalArgumentException(problem);
      }
      return value;
    }
  }

  /** Images as unsigned bytes, row-major 28x28 each, and their class indices. */
  record Dataset(int count, byte[] pixels, byte[] labels) {

    static final List<String> FILES =
        List.of(
            "train-images-idx3-ubyte.gz",
            "train-labels-idx1-ubyte.gz",
            "t10k-images-idx3-ubyte.gz",
            "t10k-labels-idx1-ubyte.gz");

    static String missingFile(Path dir) {
      return FILES.stream().filter(f -> !Files.isReadable(dir.resolve(f))).findFirst().orElse(null);
    }

    /** The first {@code limit} examples of {@code prefix} ("train" or "t10k"). */
    static Dataset load(Path dir, String prefix, int limit) throws IOException {
      byte[] pixels = readIdx(dir.resolve(prefix + "-images-idx3-ubyte.gz"), 3, PIXELS, limit);
      byte[] labels = readIdx(dir.resolve(prefix + "-labels-idx1-ubyte.gz"), 1, 1, limit);
      int count = labels.length;
      if (pixels.length != count * PIXELS) {
        throw new IOException(dir + ": " + prefix + " images and labels differ in number");
      }
      for (byte label : labels) {
        if (label < 0 || label >= CLASSES) {
          throw new IOException(dir + ": " + prefix + " label " + label + " is not a class index");
        }
      }
      return new Dataset(count, pixels, labels);
    }

    /**
     * Reads an IDX file: big-endian magic 0x0000080D (unsigned bytes, D dimensions), one int per
     * dimension, then the data.
     */
    static byte[] readIdx(Path file, int dimensions, int itemSize, int limit) throws IOException {
      try (DataInputStream in =
          new DataInputStream(
              new BufferedInputStream(new GZIPInputStream(Files.newInputStream(file), 1 << 16)))) {
        int magic = in.readInt();
        if (magic != (0x0800 | dimensions)) {
          throw new IOException(
              file + ": not an IDX file of unsigned bytes in " + dimensions + " dimensions");
        }
        int count = in.readInt();
        int size = 1;
        for (int d = 1; d < dimensions; d++) {
          size *= in.readInt();
        }
        if (size != itemSize) {
          throw new IOException(file + ": items of " + size + " values, expected " + itemSize);
        }
        byte[] data = new byte[Math.min(count, limit) * itemSize];
        in.readFully(data);
        return data;
      }
    }
  }

  /**
   * A trainable tensor with its gradient and Adam's two moment estimates, held as rows: a matrix
   * [in, out] as {@code in} arrays of {@code out} floats, a vector as one row.
   */
  static final class Parameter {
    final String name;
    final long[] dims;
    final float[][] value;
    final float[][] grad;
    final float[][] m;
    final float[][] v;

    Parameter(String name, int rows, int columns) {
      this(name, new long[] {rows, columns}, rows, columns);
    }

    Parameter(String name, int size) {
      this(name, new long[] {size}, 1, size);
    }

    private Parameter(String name, long[] dims, int rows, int columns) {
      this.name = name;
      this.dims = dims;
      value = new float[rows][columns];
      grad = new float[rows][columns];
      m = new float[rows][columns];
      v = new float[rows][columns];
    }

    /** Uniform in [-limit, limit): He for a ReLU layer, Glorot for the softmax layer. */
    void initUniform(Random random, double limit) {
      for (float[] row : value) {
        for (int j = 0; j < row.length; j++) {
          row[j] = (float) ((random.nextDouble() * 2 - 1) * limit);
        }
      }
    }
  }

  /**
   * The network with its work buffers for one minibatch. Matrices are rows of their own ([in][out]
   * for weights, [example][unit] for activations), and the hot loops add a multiple of one row to
   * another ({@code y[j] += a * x[j]}, j from 0): a shape the JIT turns into SIMD instructions. (It
   * does not when both sides are slices of one flat array at different offsets.)
   */
  static final class Mlp {
    final Parameter w1 = new Parameter("W1", PIXELS, HIDDEN);
    final Parameter b1 = new Parameter("b1", HIDDEN);
    final Parameter w2 = new Parameter("W2", HIDDEN, CLASSES);
    final Parameter b2 = new Parameter("b2", CLASSES);
    final List<Parameter> parameters = List.of(w1, b1, w2, b2);

    // Activations of one minibatch ([example][unit], hidden after the ReLU) and their gradients.
    final float[][] x = new float[BATCH][PIXELS];
    final float[][] hidden = new float[BATCH][HIDDEN];
    final float[][] logits = new float[BATCH][CLASSES];
    final float[][] dHidden = new float[BATCH][HIDDEN];
    final float[][] dLogits = new float[BATCH][CLASSES];
    int step;

    record StepResult(double lossSum, int correct) {}

    Mlp(Random random) {
      w1.initUniform(random, Math.sqrt(6.0 / PIXELS));
      w2.initUniform(random, Math.sqrt(6.0 / (HIDDEN + CLASSES)));
    }

    /** Scales the images {@code order[from..from+n)} (or {@code from..from+n)} into x. */
    void load(Dataset data, int[] order, int from, int n) {
      byte[] pixels = data.pixels();
      for (int b = 0; b < n; b++) {
        int src = (order == null ? from + b : order[from + b]) * PIXELS;
        float[] xb = x[b];
        for (int i = 0; i < PIXELS; i++) {
          xb[i] = (pixels[src + i] & 0xff) / 255f;
        }
      }
    }

    /** hidden = relu(x W1 + b1), logits = hidden W2 + b2 for the first n examples. */
    void forward(int n) {
      for (int b = 0; b < n; b++) {
        System.arraycopy(b1.value[0], 0, hidden[b], 0, HIDDEN);
      }
      // Pixel-major: one row of W1 stays in L1 while it is added into every example's hidden row.
      for (int i = 0; i < PIXELS; i++) {
        float[] w = w1.value[i];
        for (int b = 0; b < n; b++) {
          float xv = x[b][i];
          if (xv != 0f) { // about half the pixels are background
            float[] h = hidden[b];
            for (int j = 0; j < HIDDEN; j++) {
              h[j] += xv * w[j];
            }
          }
        }
      }
      for (int b = 0; b < n; b++) {
        float[] h = hidden[b];
        float[] z = logits[b];
        for (int j = 0; j < HIDDEN; j++) {
          h[j] = Math.max(h[j], 0f);
        }
        System.arraycopy(b2.value[0], 0, z, 0, CLASSES);
        for (int j = 0; j < HIDDEN; j++) {
          float hv = h[j];
          if (hv != 0f) {
            float[] w = w2.value[j];
            for (int k = 0; k < CLASSES; k++) {
              z[k] += hv * w[k];
            }
          }
        }
      }
    }

    /**
     * Softmax cross-entropy over the first n examples, averaged over the batch, and its gradient
     * into every parameter's grad. Returns the summed loss and the number of correct predictions.
     */
    StepResult backward(Dataset data, int[] order, int from, int n) {
      double lossSum = 0;
      int correct = 0;
      for (int b = 0; b < n; b++) {
        int label = data.labels()[order[from + b]];
        float[] z = logits[b];
        int best = argmax(z);
        if (best == label) {
          correct++;
        }
        double max = z[best];
        double sum = 0;
        for (int k = 0; k < CLASSES; k++) {
          sum += StrictMath.exp(z[k] - max);
        }
        lossSum += StrictMath.log(sum) - (z[label] - max);
        for (int k = 0; k < CLASSES; k++) {
          double p = StrictMath.exp(z[k] - max) / sum;
          dLogits[b][k] = (float) ((p - (k == label ? 1 : 0)) / n);
        }
      }

      // W2, b2 from hidden and dLogits; dHidden back through W2 and the ReLU.
      clear(w2.grad);
      clear(b2.grad);
      float[] gb2 = b2.grad[0];
      for (int b = 0; b < n; b++) {
        float[] dz = dLogits[b];
        float[] h = hidden[b];
        float[] dh = dHidden[b];
        for (int k = 0; k < CLASSES; k++) {
          gb2[k] += dz[k];
        }
        for (int j = 0; j < HIDDEN; j++) {
          float hv = h[j];
          float sum = 0f;
          if (hv != 0f) {
            float[] w = w2.value[j];
            float[] g = w2.grad[j];
            for (int k = 0; k < CLASSES; k++) {
              g[k] += hv * dz[k];
              sum += dz[k] * w[k];
            }
          }
          dh[j] = sum;
        }
      }

      // W1, b1 from x and dHidden, pixel-major like the forward pass.
      clear(w1.grad);
      clear(b1.grad);
      for (int i = 0; i < PIXELS; i++) {
        float[] g = w1.grad[i];
        for (int b = 0; b < n; b++) {
          float xv = x[b][i];
          if (xv != 0f) {
            float[] dh = dHidden[b];
            for (int j = 0; j < HIDDEN; j++) {
              g[j] += xv * dh[j];
            }
          }
        }
      }
      float[] gb1 = b1.grad[0];
      for (int b = 0; b < n; b++) {
        float[] dh = dHidden[b];
        for (int j = 0; j < HIDDEN; j++) {
          gb1[j] += dh[j];
        }
      }
      return new StepResult(lossSum, correct);
    }

    /** Adam (Kingma and Ba) with bias correction, as PyTorch and Keras apply it. */
    void adamStep() {
      step++;
      float stepSize = (float) (LEARNING_RATE / (1 - StrictMath.pow(BETA1, step)));
      float secondScale = (float) (1 / (1 - StrictMath.pow(BETA2, step)));
      for (Parameter p : parameters) {
        for (int r = 0; r < p.value.length; r++) {
          float[] value = p.value[r];
          float[] grad = p.grad[r];
          float[] m = p.m[r];
          float[] v = p.v[r];
          for (int j = 0; j < value.length; j++) {
            float g = grad[j];
            float mj = BETA1 * m[j] + (1 - BETA1) * g;
            float vj = BETA2 * v[j] + (1 - BETA2) * g * g;
            m[j] = mj;
            v[j] = vj;
            value[j] -= stepSize * mj / ((float) Math.sqrt(vj * secondScale) + EPSILON);
          }
        }
      }
    }

    /** Correct predictions over a whole data set, in minibatches. */
    int countCorrect(Dataset data) {
      int correct = 0;
      for (int from = 0; from < data.count(); from += BATCH) {
        int n = Math.min(BATCH, data.count() - from);
        load(data, null, from, n);
        forward(n);
        for (int b = 0; b < n; b++) {
          if (argmax(logits[b]) == data.labels()[from + b]) {
            correct++;
          }
        }
      }
      return correct;
    }

    static int argmax(float[] values) {
      int best = 0;
      for (int k = 1; k < values.length; k++) {
        if (values[k] > values[best]) {
          best = k;
        }
      }
      return best;
    }

    static void clear(float[][] rows) {
      for (float[] row : rows) {
        Arrays.fill(row, 0f);
      }
    }
  }

  /** The trained network as an ONNX ModelProto (IR version 8, default opset 13). */
  static final class Onnx {
    static final int FLOAT = 1; // TensorProto.DataType.FLOAT
    static final int ATTRIBUTE_INT = 2; // AttributeProto.AttributeType.INT

    static byte[] model(Mlp mlp) {
      Proto graph =
          new Proto()
              .message(
                  1, node("Gemm", "hidden_gemm", List.of("pixels", "W1", "b1"), "hidden_linear"))
              .message(1, node("Relu", "hidden_relu", List.of("hidden_linear"), "hidden"))
              .message(1, node("Gemm", "output_gemm", List.of("hidden", "W2", "b2"), "logits"))
              .message(
                  1,
                  node("Softmax", "output_softmax", List.of("logits"), "probabilities")
                      .message(
                          5, new Proto().string(1, "axis").varint(3, 1).varint(20, ATTRIBUTE_INT)))
              .string(2, "fashion_mnist_mlp"); // GraphProto.name
      for (Parameter p : mlp.parameters) {
        graph.message(5, initializer(p)); // GraphProto.initializer
      }
      graph
          .message(11, tensorInfo("pixels", PIXELS)) // GraphProto.input
          .message(12, tensorInfo("probabilities", CLASSES)); // GraphProto.output
      return new Proto()
          .varint(1, 8) // ModelProto.ir_version
          .string(2, "berth-examples") // ModelProto.producer_name
          .message(7, graph) // ModelProto.graph
          .message(8, new Proto().string(1, "").varint(2, 13)) // opset_import {domain, version}
          .toByteArray();
    }

    /** NodeProto: input = 1, output = 2, name = 3, op_type = 4 (attribute = 5 added by callers). */
    static Proto node(String opType, String name, List<String> inputs, String output) {
      Proto node = new Proto();
      inputs.forEach(input -> node.string(1, input));
      return node.string(2, output).string(3, name).string(4, opType);
    }

    /** TensorProto: dims = 1 (each one a field), data_type = 2, name = 8, raw_data = 9. */
    static Proto initializer(Parameter p) {
      Proto tensor = new Proto();
      for (long dim : p.dims) {
        tensor.varint(1, dim);
      }
      int size = p.value.length * p.value[0].length;
      ByteBuffer raw = ByteBuffer.allocate(size * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
      FloatBuffer floats = raw.asFloatBuffer();
      for (float[] row : p.value) {
        floats.put(row); // row-major, as TensorProto wants it
      }
      return tensor.varint(2, FLOAT).string(8, p.name).bytes(9, raw.array());
    }

    /**
     * ValueInfoProto {name = 1, type = 2} of an FP32 [batch, width] tensor: TypeProto.tensor_type =
     * 1 {elem_type = 1, shape = 2 {dim = 1 {dim_value = 1 | dim_param = 2}}}.
     */
    static Proto tensorInfo(String name, int width) {
      Proto shape =
          new Proto()
              .message(1, new Proto().string(2, "batch"))
              .message(1, new Proto().varint(1, width));
      Proto tensorType = new Proto().varint(1, FLOAT).message(2, shape);
      return new Proto().string(1, name).message(2, new Proto().message(1, tensorType));
    }
  }

  /**
   * A protocol-buffers message being written: the two wire types ONNX needs here, varint (0) and
   * length-delimited (2). Fields come out in the order they are added.
   */
  static final class Proto {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    Proto varint(int field, long value) {
      tag(field, 0);
      writeVarint(value);
      return this;
    }

    Proto bytes(int field, byte[] value) {
      tag(field, 2);
      writeVarint(value.length);
      out.writeBytes(value);
      return this;
    }

    Proto string(int field, String value) {
      return bytes(field, value.getBytes(StandardCharsets.UTF_8));
    }

    Proto message(int field, Proto value) {
      return bytes(field, value.toByteArray());
    }

    byte[] toByteArray() {
      return out.toByteArray();
    }

    private void tag(int field, int wireType) {
      writeVarint((long) field << 3 | wireType);
    }

    private void writeVarint(long value) {
      while ((value & ~0x7fL) != 0) {
        out.write((int) (value & 0x7f) | 0x80);
        value >>>= 7;
      }
      out.write((int) value);
    }
  }
}
