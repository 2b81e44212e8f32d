package dev.berth.pytorch.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.bytedeco.pytorch.JitModule;
import org.bytedeco.pytorch.QualifiedName;
import org.bytedeco.pytorch.Tensor;

/**
 * Writes real TorchScript files ({@code model.pt}) for tests, examples and benchmarks, with
 * libtorch itself (bytedeco's {@code org.bytedeco:pytorch}): a module with parameters and a {@code
 * forward} written in TorchScript, saved as PyTorch's {@code torch.jit.save} does.
 *
 * <p>bytedeco's libtorch must not share a JVM with the libtorch that serves the models (DJL's): two
 * copies of libtorch in one process clash. So the files are written by {@link #main} in a JVM of
 * its own, which {@link Batch#write()} starts with the caller's class path; the class path must
 * hold {@code org.bytedeco:pytorch}, {@code openblas} and {@code javacpp} (each as the plain jar
 * and the {@code linux-x86_64} one). Starting that JVM and unpacking its libtorch takes a few
 * seconds, so write every model a test class needs in one batch:
 *
 * <pre>{@code
 * TorchScriptWriter.batch()
 *     .mlp(repo.resolve("fashion/1/model.pt"), MlpWeights.random(42))
 *     .tuple(repo.resolve("tuple/1/model.pt"))
 *     .write();
 * }</pre>
 *
 * <p>From a shell: {@code java -cp CLASSPATH dev.berth.pytorch.testing.TorchScriptWriter KIND OUT
 * [ARGS] [KIND OUT [ARGS]]...} with the kinds of {@link #USAGE}.
 */
public final class TorchScriptWriter {
  public static final String USAGE =
      """
      usage: TorchScriptWriter KIND OUT [ARGS] [KIND OUT [ARGS]]...
        mlp OUT WEIGHTS         Fashion-MNIST MLP: pixels FP32 [-1,784] -> probabilities FP32 [-1,10];
                                WEIGHTS holds W1 [784,128], b1 [128], W2 [128,10], b2 [10] as
                                little-endian FP32, in that order
        conv OUT CHANNELS WEIGHTS
                                a convolutional classifier of 28x28 images: pixels FP32 [-1,784] ->
                                [-1,1,28,28] -> per channel count C in CHANNELS (e.g. 64,128,128) a
                                3x3 convolution (padding 1) and ReLU -> global average pooling ->
                                dense -> probabilities FP32 [-1,10] (softmax); WEIGHTS holds each
                                convolution's W [C,in,3,3] then b [C], then the dense W [last,10]
                                and b [10], as little-endian FP32
        tuple OUT               x FP32 [-1,4] -> (x * 2, x.sum(1, keepdim)) as a tuple
        dict OUT                x FP32 [-1,4] -> {"total": x.sum(1, keepdim), "doubled": x * 2}
        two-inputs OUT          (ids INT64 [-1,3], scale FP32 [-1,1]) -> (ids * scale FP32, ids + 1 INT64)
        echo OUT                x of any type and shape -> a copy of x
        bert OUT VOCAB HIDDEN SEED
                                (input_ids, attention_mask, token_type_ids) INT64 [-1,-1] ->
                                last_hidden_state FP32 [-1,-1,HIDDEN]: word plus token-type embedding
                                (tables of bertTables(VOCAB, HIDDEN, SEED)), zero where the mask is 0
      """;

  private TorchScriptWriter() {}

  /** The weights of the Fashion-MNIST MLP, row-major: W1 [784,128], b1, W2 [128,10], b2. */
  public record MlpWeights(float[] w1, float[] b1, float[] w2, float[] b2) {
    public static final int PIXELS = 784;
    public static final int HIDDEN = 128;
    public static final int CLASSES = 10;

    public MlpWeights {
      check("W1", w1, PIXELS * HIDDEN);
      check("b1", b1, HIDDEN);
      check("W2", w2, HIDDEN * CLASSES);
      check("b2", b2, CLASSES);
    }

    private static void check(String name, float[] values, int size) {
      if (values.length != size) {
        throw new IllegalArgumentException(name + " has " + values.length + " values, not " + size);
      }
    }

    /** Small random weights (uniform in ±0.1), the same for the same seed. */
    public static MlpWeights random(long seed) {
      Random random = new Random(seed);
      return new MlpWeights(
          uniform(random, PIXELS * HIDDEN, 0.1f),
          uniform(random, HIDDEN, 0.1f),
          uniform(random, HIDDEN * CLASSES, 0.1f),
          uniform(random, CLASSES, 0.1f));
    }

    /** Reads weights written by {@link #write}. */
    public static MlpWeights read(Path file) {
      try {
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        int expected = (PIXELS * HIDDEN + HIDDEN + HIDDEN * CLASSES + CLASSES) * 4;
        if (b.remaining() != expected) {
          throw new IllegalArgumentException(
              file + " has " + b.remaining() + " bytes, not " + expected);
        }
        float[][] parts = {
          new float[PIXELS * HIDDEN],
          new float[HIDDEN],
          new float[HIDDEN * CLASSES],
          new float[CLASSES]
        };
        for (float[] part : parts) {
          b.asFloatBuffer().get(part);
          b.position(b.position() + part.length * 4);
        }
        return new MlpWeights(parts[0], parts[1], parts[2], parts[3]);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    /** Writes the four arrays as little-endian FP32, in order. */
    public Path write(Path file) {
      ByteBuffer b =
          ByteBuffer.allocate((w1.length + b1.length + w2.length + b2.length) * 4)
              .order(ByteOrder.LITTLE_ENDIAN);
      for (float[] part : new float[][] {w1, b1, w2, b2}) {
        b.asFloatBuffer().put(part);
        b.position(b.position() + part.length * 4);
      }
      try {
        Files.createDirectories(file.toAbsolutePath().getParent());
        return Files.write(file, b.array());
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    /** The model's answer computed in Java, for checks: probabilities [rows, 10]. */
    public float[] probabilities(float[] pixels) {
      int rows = pixels.length / PIXELS;
      float[] out = new float[rows * CLASSES];
      for (int r = 0; r < rows; r++) {
        double[] hidden = new double[HIDDEN];
        for (int h = 0; h < HIDDEN; h++) {
          double sum = b1[h];
          for (int p = 0; p < PIXELS; p++) {
            sum += pixels[r * PIXELS + p] * w1[p * HIDDEN + h];
          }
          hidden[h] = Math.max(0, sum);
        }
        double[] logits = new double[CLASSES];
        double max = Double.NEGATIVE_INFINITY;
        for (int c = 0; c < CLASSES; c++) {
          double sum = b2[c];
          for (int h = 0; h < HIDDEN; h++) {
            sum += hidden[h] * w2[h * CLASSES + c];
          }
          logits[c] = sum;
          max = Math.max(max, sum);
        }
        double total = 0;
        for (int c = 0; c < CLASSES; c++) {
          logits[c] = Math.exp(logits[c] - max);
          total += logits[c];
        }
        for (int c = 0; c < CLASSES; c++) {
          out[r * CLASSES + c] = (float) (logits[c] / total);
        }
      }
      return out;
    }
  }

  /**
   * The embedding tables of the {@code bert} model: words [vocab, hidden] then token types [2,
   * hidden], uniform in ±1, the same for the same seed.
   */
  public static float[][] bertTables(int vocab, int hidden, long seed) {
    Random random = new Random(seed);
    return new float[][] {uniform(random, vocab * hidden, 1), uniform(random, 2 * hidden, 1)};
  }

  private static float[] uniform(Random random, int n, float scale) {
    float[] out = new float[n];
    for (int i = 0; i < n; i++) {
      out[i] = (random.nextFloat() * 2 - 1) * scale;
    }
    return out;
  }

  /** Models to write in one JVM. */
  public static Batch batch() {
    return new Batch();
  }

  /** The models of one {@link #write()}; each method adds one. */
  public static final class Batch {
    private final List<String> args = new ArrayList<>();
    private final List<Path> outputs = new ArrayList<>();
    private final List<Path> scratch = new ArrayList<>();

    private Batch() {}

    private Batch add(Path out, String kind, String... extra) {
      args.add(kind);
      args.add(out.toAbsolutePath().toString());
      args.addAll(List.of(extra));
      outputs.add(out);
      return this;
    }

    /** The Fashion-MNIST MLP with these weights. */
    public Batch mlp(Path out, MlpWeights weights) {
      try {
        Path file = Files.createTempFile("mlp-weights", ".bin");
        scratch.add(file);
        return add(out, "mlp", weights.write(file).toString());
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    /** x FP32 [-1,4] -> the tuple (x * 2, x.sum(1, keepdim=True)). */
    public Batch tuple(Path out) {
      return add(out, "tuple");
    }

    /** x FP32 [-1,4] -> the dict {"total": x.sum(1, keepdim=True), "doubled": x * 2}. */
    public Batch dict(Path out) {
      return add(out, "dict");
    }

    /** (ids INT64 [-1,3], scale FP32 [-1,1]) -> (ids * scale as FP32, ids + 1 as INT64). */
    public Batch twoInputs(Path out) {
      return add(out, "two-inputs");
    }

    /** x of any datatype and shape -> a copy of x. */
    public Batch echo(Path out) {
      return add(out, "echo");
    }

    /** A BERT-shaped model over the tables of {@link #bertTables}. */
    public Batch bert(Path out, int vocab, int hidden, long seed) {
      return add(
          out, "bert", Integer.toString(vocab), Integer.toString(hidden), Long.toString(seed));
    }

    /**
     * Writes every model in a new JVM with this one's class path; its libtorch unpacks into {@code
     * java.io.tmpdir/javacpp}.
     */
    public void write() {
      Path cache = Path.of(System.getProperty("java.io.tmpdir"), "javacpp");
      List<String> command = new ArrayList<>();
      command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
      command.add("-cp");
      command.add(System.getProperty("java.class.path"));
      command.add("--enable-native-access=ALL-UNNAMED");
      command.add("-Dorg.bytedeco.javacpp.cachedir=" + cache);
      command.add(TorchScriptWriter.class.getName());
      command.addAll(args);
      try {
        for (Path out : outputs) {
          Files.createDirectories(out.toAbsolutePath().getParent());
        }
        Path log = Files.createTempFile("torchscript-writer", ".log");
        scratch.add(log);
        Process process =
            new ProcessBuilder(command)
                .redirectErrorStream(true)
                .redirectOutput(log.toFile())
                .start();
        if (!process.waitFor(5, TimeUnit.MINUTES)) {
          process.destroyForcibly();
          throw new IllegalStateException("TorchScriptWriter ran past 5 minutes: " + command);
        }
        if (process.exitValue() != 0) {
          throw new IllegalStateException(
              "TorchScriptWriter failed (exit "
                  + process.exitValue()
                  + "):\n"
                  + Files.readString(log));
        }
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted writing TorchScript files", e);
      } finally {
        for (Path p : scratch) {
          try {
            Files.deleteIfExists(p);
          } catch (IOException e) {
            // a leftover scratch file in the temporary directory
          }
        }
      }
    }
  }

  /** Writes the models named on the command line (see {@link #USAGE}); call in a JVM of its own. */
  public static void main(String[] args) throws IOException {
    if (args.length == 0) {
      System.err.print(USAGE);
      System.exit(2);
    }
    int i = 0;
    while (i < args.length) {
      String kind = args[i++];
      if (i >= args.length) {
        System.err.print("'" + kind + "' needs an output file\n" + USAGE);
        System.exit(2);
      }
      String out = args[i++];
      switch (kind) {
        case "mlp" -> mlp(MlpWeights.read(Path.of(args[i++])), out);
        case "conv" -> conv(channels(args[i++]), Path.of(args[i++]), out);
        case "tuple" ->
            save(
                module(),
                """
                def forward(self, x: Tensor) -> Tuple[Tensor, Tensor]:
                    return (x * 2.0, x.sum(1, keepdim=True))
                """,
                out);
        case "dict" ->
            save(
                module(),
                """
                def forward(self, x: Tensor) -> Dict[str, Tensor]:
                    return {"total": x.sum(1, keepdim=True), "doubled": x * 2.0}
                """,
                out);
        case "two-inputs" ->
            save(
                module(),
                """
                def forward(self, ids: Tensor, scale: Tensor) -> Tuple[Tensor, Tensor]:
                    return (ids.float() * scale, ids + 1)
                """,
                out);
        case "echo" ->
            save(
                module(),
                """
                def forward(self, x: Tensor) -> Tensor:
                    return x.clone()
                """,
                out);
        case "bert" -> {
          int vocab = Integer.parseInt(args[i++]);
          int hidden = Integer.parseInt(args[i++]);
          long seed = Long.parseLong(args[i++]);
          bert(vocab, hidden, seed, out);
        }
        default -> {
          System.err.print("unknown kind '" + kind + "'\n" + USAGE);
          System.exit(2);
        }
      }
    }
  }

  private static JitModule module() {
    return new JitModule(new QualifiedName("__torch__.M"));
  }

  private static void save(JitModule module, String forward, String out) {
    module.define(forward);
    module.save(out);
    System.out.println("wrote " + out);
  }

  private static void mlp(MlpWeights w, String out) {
    JitModule module = module();
    module.register_parameter(
        "w1", Tensor.create(w.w1(), MlpWeights.PIXELS, MlpWeights.HIDDEN), false);
    module.register_parameter("b1", Tensor.create(w.b1(), MlpWeights.HIDDEN), false);
    module.register_parameter(
        "w2", Tensor.create(w.w2(), MlpWeights.HIDDEN, MlpWeights.CLASSES), false);
    module.register_parameter("b2", Tensor.create(w.b2(), MlpWeights.CLASSES), false);
    save(
        module,
        """
        def forward(self, pixels: Tensor) -> Tensor:
            hidden = torch.relu(torch.matmul(pixels, self.w1) + self.b1)
            return torch.softmax(torch.matmul(hidden, self.w2) + self.b2, 1)
        """,
        out);
  }

  private static int[] channels(String list) {
    int[] channels = Arrays.stream(list.split(",")).mapToInt(Integer::parseInt).toArray();
    if (channels.length == 0 || Arrays.stream(channels).anyMatch(c -> c < 1)) {
      throw new IllegalArgumentException("CHANNELS must be positive numbers, not '" + list + "'");
    }
    return channels;
  }

  private static void conv(int[] channels, Path weights, String out) throws IOException {
    ByteBuffer raw = ByteBuffer.wrap(Files.readAllBytes(weights)).order(ByteOrder.LITTLE_ENDIAN);
    JitModule module = module();
    StringBuilder forward =
        new StringBuilder(
            """
            def forward(self, pixels: Tensor) -> Tensor:
                x = pixels.reshape([-1, 1, 28, 28])
            """);
    int in = 1;
    for (int l = 0; l < channels.length; l++) {
      int c = channels[l];
      module.register_parameter(
          "w" + l, Tensor.create(take(raw, c * in * 9, weights), c, in, 3, 3), false);
      module.register_parameter("b" + l, Tensor.create(take(raw, c, weights), c), false);
      forward.append(
          "    x = torch.relu(torch.conv2d(x, self.w%d, self.b%d, [1, 1], [1, 1]))\n"
              .formatted(l, l));
      in = c;
    }
    module.register_parameter("w", Tensor.create(take(raw, in * 10, weights), in, 10), false);
    module.register_parameter("b", Tensor.create(take(raw, 10, weights), 10), false);
    forward.append("    return torch.softmax(torch.matmul(x.mean([2, 3]), self.w) + self.b, 1)\n");
    if (raw.hasRemaining()) {
      throw new IllegalArgumentException(
          weights
              + " holds "
              + raw.remaining()
              + " bytes more than channels "
              + Arrays.toString(channels)
              + " take");
    }
    save(module, forward.toString(), out);
  }

  private static float[] take(ByteBuffer raw, int n, Path file) {
    if (raw.remaining() < n * 4) {
      throw new IllegalArgumentException(
          file + " ends before its weights do: the sizes do not match it");
    }
    float[] values = new float[n];
    raw.asFloatBuffer().get(values);
    raw.position(raw.position() + n * 4);
    return values;
  }

  private static void bert(int vocab, int hidden, long seed, String out) {
    float[][] tables = bertTables(vocab, hidden, seed);
    JitModule module = module();
    module.register_parameter("words", Tensor.create(tables[0], vocab, hidden), false);
    module.register_parameter("types", Tensor.create(tables[1], 2, hidden), false);
    save(
        module,
        """
        def forward(self, input_ids: Tensor, attention_mask: Tensor, token_type_ids: Tensor) -> Tensor:
            h = torch.embedding(self.words, input_ids) + torch.embedding(self.types, token_type_ids)
            return h * attention_mask.unsqueeze(2).float()
        """,
        out);
  }
}
