import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The JDK-only half of {@code examples/fashion-mnist/convert}: reads the weights of the trained
 * network out of {@code REPO/fashion-mnist/1/model.onnx}, writes them as one little-endian FP32
 * file (W1 [784, 128], b1 [128], W2 [128, 10], b2 [10], row-major, in that order: what the engines'
 * model writers read), and writes the {@code model.yaml} of the three converted models. The script
 * then runs the writers themselves, each in a JVM of its own.
 *
 * <pre>
 * java Convert.java REPO WEIGHTS_FILE
 * </pre>
 */
public final class Convert {
  static final String SOURCE = "fashion-mnist";
  static final Map<String, long[]> WEIGHTS = new LinkedHashMap<>();

  static {
    WEIGHTS.put("W1", new long[] {784, 128});
    WEIGHTS.put("b1", new long[] {128});
    WEIGHTS.put("W2", new long[] {128, 10});
    WEIGHTS.put("b2", new long[] {10});
  }

  static final String LABELS =
      "labels: [T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle"
          + " boot]\n";

  /** The same image step as the ONNX model's: PNG/JPEG on "image", 28x28 grey, [0, 1], flat. */
  static final String IMAGE_AND_BATCHING =
      """
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

  static final String PIXELS = "  - {name: pixels, datatype: FP32, shape: [-1, 784]}\n";
  static final String PROBABILITIES =
      "  - {name: probabilities, datatype: FP32, shape: [-1, 10]}\n";

  static final Map<String, String> MODELS = new LinkedHashMap<>();

  static {
    MODELS.put(
        "fashion-mnist-torchscript",
        """
        # The Fashion-MNIST MLP of ../fashion-mnist, the same weights as TorchScript (model.pt, written
        # by libtorch), by examples/fashion-mnist/convert. TorchScript files do not say their tensors'
        # names, so model.yaml declares them.
        apiVersion: berth.dev/v1
        kind: Model
        """
            + LABELS
            + "inputs:\n"
            + PIXELS
            + "outputs:\n"
            + PROBABILITIES
            + IMAGE_AND_BATCHING);
    MODELS.put(
        "fashion-mnist-savedmodel",
        """
        # The Fashion-MNIST MLP of ../fashion-mnist, the same weights as a TensorFlow SavedModel
        # (model.savedmodel/, signature serving_default: pixels -> probabilities), by
        # examples/fashion-mnist/convert.
        apiVersion: berth.dev/v1
        kind: Model
        """
            + LABELS
            + IMAGE_AND_BATCHING);
    MODELS.put(
        "fashion-mnist-xgboost",
        """
        # A Fashion-MNIST classifier of gradient-boosted trees (XGBoost multi:softprob on the 784
        # pixels), trained on the same data by examples/fashion-mnist/convert. The input is declared
        # to give it the name the MLPs use (XGBoost's own is "features").
        apiVersion: berth.dev/v1
        kind: Model
        """
            + LABELS
            + "inputs:\n"
            + PIXELS
            + IMAGE_AND_BATCHING);
  }

  private Convert() {}

  public static void main(String[] args) throws IOException {
    if (args.length != 2) {
      System.err.println("usage: java Convert.java REPO WEIGHTS_FILE");
      System.exit(2);
    }
    Path repo = Path.of(args[0]);
    Path onnx = repo.resolve(SOURCE).resolve("1").resolve("model.onnx");
    if (!Files.isRegularFile(onnx)) {
      System.err.println(
          "convert: no " + onnx + "; train the model first: examples/fashion-mnist/train " + repo);
      System.exit(1);
    }
    Map<String, byte[]> found = initializers(Files.readAllBytes(onnx), onnx);
    ByteBuffer out =
        ByteBuffer.allocate(Math.toIntExact(floats() * Float.BYTES)).order(ByteOrder.LITTLE_ENDIAN);
    for (String name : WEIGHTS.keySet()) {
      byte[] raw = found.get(name);
      int size = Math.toIntExact(size(WEIGHTS.get(name)));
      if (raw == null || raw.length != size * Float.BYTES) {
        throw new IOException(
            onnx
                + ": expected the initializer "
                + name
                + " as FP32 raw_data of "
                + size
                + " values, as examples/fashion-mnist/train writes it");
      }
      out.put(raw);
    }
    Files.write(Path.of(args[1]), out.array());
    for (Map.Entry<String, String> model : MODELS.entrySet()) {
      Path dir = repo.resolve(model.getKey());
      Files.createDirectories(dir.resolve("1"));
      Files.writeString(dir.resolve("model.yaml"), model.getValue());
    }
    System.err.println(
        "convert: read W1, b1, W2, b2 from "
            + onnx
            + "; wrote model.yaml of "
            + String.join(", ", MODELS.keySet()));
  }

  static long floats() {
    return WEIGHTS.values().stream().mapToLong(Convert::size).sum();
  }

  static long size(long[] dims) {
    long n = 1;
    for (long d : dims) {
      n *= d;
    }
    return n;
  }

  /**
   * The FP32 initializers of an ONNX model by name, as raw little-endian bytes, with their dims
   * checked: ModelProto.graph = 7, GraphProto.initializer = 5, TensorProto dims = 1, data_type = 2
   * (1 = FLOAT), name = 8, raw_data = 9.
   */
  static Map<String, byte[]> initializers(byte[] model, Path file) throws IOException {
    Map<String, byte[]> out = new LinkedHashMap<>();
    for (ByteBuffer graph : fields(ByteBuffer.wrap(model), 7, file)) {
      for (ByteBuffer tensor : fields(graph, 5, file)) {
        String name = null;
        byte[] raw = null;
        int dataType = 0;
        List<Long> dims = new ArrayList<>();
        Proto p = new Proto(tensor, file);
        while (p.next()) {
          switch (p.field) {
            case 1 -> dims.add(p.varint);
            case 2 -> dataType = (int) p.varint;
            case 8 -> name = StandardCharsets.UTF_8.decode(p.bytes).toString();
            case 9 -> raw = bytes(p.bytes);
            default -> {}
          }
        }
        long[] expected = WEIGHTS.get(name);
        if (expected != null) {
          long[] actual = dims.stream().mapToLong(Long::longValue).toArray();
          if (dataType != 1 || !java.util.Arrays.equals(expected, actual)) {
            throw new IOException(
                file
                    + ": initializer "
                    + name
                    + " is data type "
                    + dataType
                    + " "
                    + dims
                    + ", expected FLOAT (1) "
                    + java.util.Arrays.toString(expected));
          }
          out.put(name, raw);
        }
      }
    }
    return out;
  }

  /** The length-delimited fields numbered {@code field} of a message. */
  static List<ByteBuffer> fields(ByteBuffer message, int field, Path file) throws IOException {
    List<ByteBuffer> out = new ArrayList<>();
    Proto p = new Proto(message.duplicate(), file);
    while (p.next()) {
      if (p.field == field && p.bytes != null) {
        out.add(p.bytes);
      }
    }
    return out;
  }

  static byte[] bytes(ByteBuffer b) {
    byte[] out = new byte[b.remaining()];
    b.duplicate().get(out);
    return out;
  }

  /** A protocol-buffers reader: one field at a time, varint or length-delimited. */
  static final class Proto {
    final ByteBuffer in;
    final Path file;
    int field;
    long varint;
    ByteBuffer bytes;

    Proto(ByteBuffer in, Path file) {
      this.in = in;
      this.file = file;
    }

    boolean next() throws IOException {
      if (!in.hasRemaining()) {
        return false;
      }
      long tag = readVarint();
      field = (int) (tag >>> 3);
      bytes = null;
      switch ((int) (tag & 7)) {
        case 0 -> varint = readVarint();
        case 1 -> skip(8);
        case 2 -> {
          int length = Math.toIntExact(readVarint());
          if (length > in.remaining()) {
            throw new IOException(file + ": truncated protocol-buffers field " + field);
          }
          bytes = in.slice(in.position(), length);
          skip(length);
        }
        case 5 -> skip(4);
        default ->
            throw new IOException(file + ": not an ONNX model (wire type " + (tag & 7) + ")");
      }
      return true;
    }

    private void skip(int n) throws IOException {
      if (n > in.remaining()) {
        throw new IOException(file + ": truncated protocol-buffers message");
      }
      in.position(in.position() + n);
    }

    private long readVarint() throws IOException {
      long value = 0;
      for (int shift = 0; shift < 64; shift += 7) {
        if (!in.hasRemaining()) {
          throw new IOException(file + ": truncated varint");
        }
        byte b = in.get();
        value |= (long) (b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
          return value;
        }
      }
      throw new IOException(file + ": malformed varint");
    }
  }
}
