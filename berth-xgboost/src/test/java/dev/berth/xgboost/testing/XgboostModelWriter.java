package dev.berth.xgboost.testing;

import dev.berth.api.DataType;
import dev.berth.api.Tensor;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelContext;
import dev.berth.runtime.TensorEngine;
import dev.berth.xgboost.XgboostEngineProvider;
import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.stream.Stream;
import java.util.zip.GZIPInputStream;
import ml.dmlc.xgboost4j.java.Booster;
import ml.dmlc.xgboost4j.java.DMatrix;
import ml.dmlc.xgboost4j.java.XGBoost;
import ml.dmlc.xgboost4j.java.XGBoostError;

/**
 * Trains real XGBoost models with XGBoost itself (xgboost4j) and saves them as {@code model.json}
 * or {@code model.ubj}, for tests, examples and benchmarks.
 *
 * <pre>{@code
 * XgboostModelWriter.Trained m =
 *     XgboostModelWriter.objective("multi:softprob").classes(3).features(5).train();
 * m.save(repo.resolve("iris/1/model.json"));
 * float[][] expected = m.booster().inplace_predict(m.features(), m.rows(), m.columns(), Float.NaN);
 * }</pre>
 *
 * <p>The training rows are synthetic and seeded: features uniform in [0, 1), about one in twenty
 * missing (NaN), and a label from a fixed weighted sum of the features: the sum itself for
 * regression, above or below its middle for {@code binary:*}, and one of {@code classes} equal
 * bands for {@code multi:*}. The same settings give the same model. Training uses one thread.
 *
 * <p>{@link #main} trains a Fashion-MNIST classifier and writes it into a model repository.
 */
public final class XgboostModelWriter {
  /** Fashion-MNIST's class names, in label order. */
  public static final List<String> FASHION_LABELS =
      List.of(
          "T-shirt/top",
          "Trouser",
          "Pullover",
          "Dress",
          "Coat",
          "Sandal",
          "Shirt",
          "Sneaker",
          "Bag",
          "Ankle boot");

  static final Path DEFAULT_DATA_DIR = Path.of("/usr/share/datasets/fashion-mnist");
  static final int PIXELS = 28 * 28;

  private final String objective;
  private String booster = "gbtree";
  private int classes;
  private int features = 5;
  private int rows = 300;
  private int rounds = 10;
  private int maxDepth = 3;
  private long seed = 1;

  private XgboostModelWriter(String objective) {
    this.objective = objective;
  }

  /** A model with this XGBoost objective, e.g. {@code multi:softprob}, {@code reg:squarederror}. */
  public static XgboostModelWriter objective(String objective) {
    return new XgboostModelWriter(objective);
  }

  /** Classes of a {@code multi:*} objective ({@code num_class}). */
  public XgboostModelWriter classes(int classes) {
    this.classes = classes;
    return this;
  }

  /** The kind of booster: {@code gbtree} (default), {@code dart} or {@code gblinear}. */
  public XgboostModelWriter booster(String booster) {
    this.booster = booster;
    return this;
  }

  /** Features per row (default 5). */
  public XgboostModelWriter features(int features) {
    this.features = features;
    return this;
  }

  /** Training rows (default 300). */
  public XgboostModelWriter rows(int rows) {
    this.rows = rows;
    return this;
  }

  /** Boosting rounds (default 10). */
  public XgboostModelWriter rounds(int rounds) {
    this.rounds = rounds;
    return this;
  }

  /** Tree depth (default 3). */
  public XgboostModelWriter maxDepth(int maxDepth) {
    this.maxDepth = maxDepth;
    return this;
  }

  /** Seed of the synthetic rows (default 1). */
  public XgboostModelWriter seed(long seed) {
    this.seed = seed;
    return this;
  }

  /** Trains the model on its synthetic rows. */
  public Trained train() {
    Random random = new Random(seed);
    float[] x = new float[rows * features];
    float[] score = new float[rows];
    for (int r = 0; r < rows; r++) {
      float sum = 0;
      for (int c = 0; c < features; c++) {
        float v = random.nextFloat();
        sum += v * (c + 1);
        x[r * features + c] = random.nextInt(20) == 0 ? Float.NaN : v;
      }
      score[r] = sum / (features * (features + 1) / 2f); // in [0, 1)
    }
    float[] labels = new float[rows];
    for (int r = 0; r < rows; r++) {
      if (objective.startsWith("multi:")) {
        labels[r] = Math.min(classes - 1, (int) (sliding(score[r]) * classes));
      } else if (objective.startsWith("binary:")) {
        labels[r] = score[r] > 0.5f ? 1 : 0;
      } else {
        labels[r] = score[r] * 10;
      }
    }
    Map<String, Object> params = new HashMap<>();
    params.put("objective", objective);
    params.put("booster", booster);
    params.put("max_depth", maxDepth);
    params.put("eta", 0.3);
    params.put("nthread", 1);
    params.put("seed", 0);
    if (classes > 0) {
      params.put("num_class", classes);
    }
    return new Trained(train(x, labels, rows, features, params, rounds), x, rows, features);
  }

  /** Spreads the weighted sum (which gathers near 0.5) so that every class gets rows. */
  private static float sliding(float score) {
    return Math.max(0, Math.min(0.999f, (score - 0.5f) * 2.5f + 0.5f));
  }

  /** Trains a booster on a dense row-major matrix (NaN for missing). */
  public static Booster train(
      float[] x, float[] labels, int rows, int columns, Map<String, Object> params, int rounds) {
    try {
      DMatrix data = new DMatrix(x, rows, columns, Float.NaN);
      try {
        data.setLabel(labels);
        return XGBoost.train(data, params, rounds, Map.of(), null, null);
      } finally {
        data.dispose();
      }
    } catch (XGBoostError e) {
      throw new IllegalStateException("XGBoost could not train: " + e.getMessage(), e);
    }
  }

  /**
   * A trained model and the rows it was trained on.
   *
   * @param booster the model
   * @param features its training rows, row-major, NaN for missing
   * @param rows rows in {@code features}
   * @param columns features per row
   */
  public record Trained(Booster booster, float[] features, int rows, int columns) {

    /** Saves the model; the file's extension ({@code .json} or {@code .ubj}) picks the format. */
    public Path save(Path file) {
      return XgboostModelWriter.save(booster, file);
    }

    /** The first {@code n} training rows, row-major. */
    public float[] firstRows(int n) {
      return Arrays.copyOf(features, n * columns);
    }
  }

  /**
   * Saves a booster, making the parent directories; the file's extension ({@code .json} or {@code
   * .ubj}) picks the format.
   */
  public static Path save(Booster booster, Path file) {
    try {
      Files.createDirectories(file.toAbsolutePath().getParent());
      booster.saveModel(file.toString());
      return file;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (XGBoostError e) {
      throw new IllegalStateException("XGBoost could not save " + file + ": " + e.getMessage(), e);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Fashion-MNIST

  static final String USAGE =
      """
      Usage: XgboostModelWriter REPO [options]

      Trains a Fashion-MNIST classifier with XGBoost (multi:softprob, 10 classes, 784 pixel
      features scaled to [0, 1]) and writes REPO/NAME/1/model.ubj and REPO/NAME/model.yaml (input
      'pixels' FP32 [-1, 784], output 'probabilities' FP32 [-1, 10], the class names as labels).
      Prints the accuracy on the test set and the prediction throughput in batches of 1 and 64
      rows: Booster.inplace_predict, Booster.predict on a DMatrix, and the engine's run.

        --name NAME          model name in the repository (default: fashion-mnist-xgboost)
        --rounds N           boosting rounds (default: 30)
        --max-depth N        tree depth (default: 6)
        --max-bin N          histogram bins per feature (default: 16)
        --train-limit N      train on the first N of the 60000 training images (default: 20000)
        --test-limit N       test on the first N of the 10000 test images (default: 10000)
        --threads N          XGBoost threads for training (default: 1; more help on an idle
                             machine only: OpenMP threads that wait for a busy core spin, and
                             training gets many times slower)
        --data-dir DIR       folder with the four Fashion-MNIST *-ubyte.gz files
                             (default: %s, from 'apt-get install dataset-fashion-mnist')
        --no-bench           skip the throughput measurement
      """
          .formatted(DEFAULT_DATA_DIR);

  static final String MODEL_YAML =
      """
      # Fashion-MNIST gradient-boosted trees (XGBoost multi:softprob, %d rounds of depth %d on %d
      # training images), written by dev.berth.xgboost.testing.XgboostModelWriter.
      apiVersion: berth.dev/v1
      kind: Model
      labels: [T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot]
      # The 784 pixels of a 28x28 image, row-major, scaled to [0, 1]; the answer is "probabilities",
      # one row of ten per image in the order of labels.
      inputs:
        - name: pixels
          datatype: FP32
          shape: [-1, 784]
      batching:
        max-batch-size: 64
        max-queue-delay: 0ms
      """;

  /**
   * Trains the Fashion-MNIST classifier and writes it into a model repository; see {@link #USAGE}.
   */
  public static void main(String[] args) throws IOException, XGBoostError {
    Path repo = null;
    String name = "fashion-mnist-xgboost";
    int rounds = 30;
    int depth = 6;
    int maxBin = 16;
    int trainLimit = 20_000;
    int testLimit = 10_000;
    int threads = 1;
    Path dataDir = DEFAULT_DATA_DIR;
    boolean bench = true;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "-h", "--help" -> {
          System.out.print(USAGE);
          return;
        }
        case "--name" -> name = args[++i];
        case "--rounds" -> rounds = Integer.parseInt(args[++i]);
        case "--max-depth" -> depth = Integer.parseInt(args[++i]);
        case "--max-bin" -> maxBin = Integer.parseInt(args[++i]);
        case "--train-limit" -> trainLimit = Integer.parseInt(args[++i]);
        case "--test-limit" -> testLimit = Integer.parseInt(args[++i]);
        case "--threads" -> threads = Integer.parseInt(args[++i]);
        case "--data-dir" -> dataDir = Path.of(args[++i]);
        case "--no-bench" -> bench = false;
        default -> {
          if (args[i].startsWith("-") || repo != null) {
            System.err.println("XgboostModelWriter: unexpected '" + args[i] + "'\n" + USAGE);
            System.exit(2);
          }
          repo = Path.of(args[i]);
        }
      }
    }
    if (repo == null) {
      System.err.print(USAGE);
      System.exit(2);
      return;
    }
    Images train = Images.load(dataDir, "train", trainLimit);
    Images test = Images.load(dataDir, "t10k", testLimit);
    Map<String, Object> params = new HashMap<>();
    params.put("objective", "multi:softprob");
    params.put("num_class", FASHION_LABELS.size());
    params.put("max_depth", depth);
    params.put("eta", 0.3);
    params.put("tree_method", "hist");
    params.put("max_bin", maxBin);
    params.put("nthread", threads);
    params.put("seed", 0);
    long start = System.nanoTime();
    Booster booster = train(train.pixels(), train.labels(), train.count(), PIXELS, params, rounds);
    double trainSeconds = (System.nanoTime() - start) / 1e9;
    Path file = save(booster, repo.resolve(name).resolve("1").resolve("model.ubj"));
    Files.writeString(
        repo.resolve(name).resolve("model.yaml"),
        MODEL_YAML.formatted(rounds, depth, train.count()));
    double accuracy = accuracy(booster, test);
    System.out.printf(
        Locale.ROOT,
        "trained on %d images, %d rounds of depth %d, %d threads: %.1f s%n"
            + "test accuracy on %d images: %.4f%n"
            + "wrote %s (%d bytes) and %s%n",
        train.count(),
        rounds,
        depth,
        threads,
        trainSeconds,
        test.count(),
        accuracy,
        file,
        Files.size(file),
        repo.resolve(name).resolve("model.yaml"));
    if (bench) {
      booster.setParam("nthread", 1);
      Path modelDir = repo.resolve(name);
      ModelContext context =
          new ModelContext(name, "1", file.getParent(), ModelConfig.load(modelDir));
      try (TensorEngine engine = (TensorEngine) new XgboostEngineProvider().load(context)) {
        for (int batch : new int[] {1, 64}) {
          List<float[]> inputs = batches(test, batch);
          report(
              "Booster.inplace_predict",
              batch,
              rowsPerSecond(
                  batch,
                  inputs,
                  in -> {
                    booster.inplace_predict(in, batch, PIXELS, Float.NaN);
                  }));
          report(
              "Booster.predict(DMatrix)",
              batch,
              rowsPerSecond(
                  batch,
                  inputs,
                  in -> {
                    DMatrix m = new DMatrix(in, batch, PIXELS, Float.NaN);
                    try {
                      booster.predict(m);
                    } finally {
                      m.dispose();
                    }
                  }));
          List<Tensor> tensors = inputs.stream().map(in -> pixels(in, batch)).toList();
          Iterator<Tensor> next = Stream.generate(() -> tensors).flatMap(List::stream).iterator();
          report(
              "XgboostEngine.run",
              batch,
              rowsPerSecond(
                  batch,
                  inputs,
                  in -> {
                    engine.run(Map.of("pixels", next.next()), Set.of("probabilities"));
                  }));
        }
      }
    }
    booster.dispose();
  }

  /** The share of test images whose most probable class is their label. */
  static double accuracy(Booster booster, Images test) throws XGBoostError {
    float[][] probabilities =
        booster.inplace_predict(test.pixels(), test.count(), PIXELS, Float.NaN);
    int correct = 0;
    for (int i = 0; i < test.count(); i++) {
      int best = 0;
      for (int c = 1; c < probabilities[i].length; c++) {
        if (probabilities[i][c] > probabilities[i][best]) {
          best = c;
        }
      }
      correct += best == (int) test.labels()[i] ? 1 : 0;
    }
    return (double) correct / test.count();
  }

  /** One prediction of a batch, for {@link #rowsPerSecond}. */
  interface Prediction {
    void run(float[] batch) throws XGBoostError;
  }

  /** The test images in batches of {@code batch} rows, row-major. */
  static List<float[]> batches(Images test, int batch) {
    List<float[]> out = new ArrayList<>();
    for (int from = 0; from + batch <= test.count(); from += batch) {
      out.add(Arrays.copyOfRange(test.pixels(), from * PIXELS, (from + batch) * PIXELS));
    }
    return out;
  }

  /** A batch as the runtime hands it to an engine: a direct little-endian buffer. */
  static Tensor pixels(float[] values, int batch) {
    ByteBuffer data =
        ByteBuffer.allocateDirect(values.length * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
    data.asFloatBuffer().put(values);
    return Tensor.of("pixels", DataType.FP32, new long[] {batch, PIXELS}, data);
  }

  /** Rows predicted per second, one thread, for about two seconds after a warm-up. */
  static double rowsPerSecond(int batch, List<float[]> inputs, Prediction prediction)
      throws XGBoostError {
    for (int b = 0; b < Math.min(inputs.size(), 200); b++) {
      prediction.run(inputs.get(b));
    }
    long rows = 0;
    long start = System.nanoTime();
    long end = start + 2_000_000_000L;
    int b = 0;
    while (System.nanoTime() < end) {
      prediction.run(inputs.get(b));
      rows += batch;
      b = (b + 1) % inputs.size();
    }
    return rows / ((System.nanoTime() - start) / 1e9);
  }

  private static void report(String what, int batch, double rowsPerSecond) {
    System.out.printf(
        Locale.ROOT,
        "%-25s batches of %2d rows: %,9.0f rows/s (%6.1f us per batch)%n",
        what,
        batch,
        rowsPerSecond,
        batch / rowsPerSecond * 1e6);
  }

  /**
   * Fashion-MNIST images as pixel rows scaled to [0, 1], and their labels.
   *
   * @param count images
   * @param pixels row-major, {@value #PIXELS} per image
   * @param labels class index per image
   */
  public record Images(int count, float[] pixels, float[] labels) {

    /** The first {@code limit} images of {@code prefix} ("train" or "t10k") in {@code dir}. */
    public static Images load(Path dir, String prefix, int limit) throws IOException {
      byte[] pixels = readIdx(dir.resolve(prefix + "-images-idx3-ubyte.gz"), 3, PIXELS, limit);
      byte[] labels = readIdx(dir.resolve(prefix + "-labels-idx1-ubyte.gz"), 1, 1, limit);
      if (pixels.length != labels.length * PIXELS) {
        throw new IOException(dir + ": " + prefix + " images and labels differ in number");
      }
      float[] scaled = new float[pixels.length];
      for (int i = 0; i < pixels.length; i++) {
        scaled[i] = (pixels[i] & 0xff) / 255f;
      }
      float[] classes = new float[labels.length];
      for (int i = 0; i < labels.length; i++) {
        classes[i] = labels[i];
      }
      return new Images(labels.length, scaled, classes);
    }

    /**
     * Reads a gzipped IDX file of unsigned bytes: big-endian magic {@code 0x0000080D} (D
     * dimensions), one int per dimension, then the data.
     */
    static byte[] readIdx(Path file, int dimensions, int itemSize, int limit) throws IOException {
      if (!Files.isReadable(file)) {
        throw new IOException(
            file
                + " is missing; install the data set with 'apt-get install dataset-fashion-mnist'"
                + " or pass --data-dir");
      }
      try (DataInputStream in =
          new DataInputStream(
              new BufferedInputStream(new GZIPInputStream(Files.newInputStream(file), 1 << 16)))) {
        if (in.readInt() != (0x0800 | dimensions)) {
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
}
