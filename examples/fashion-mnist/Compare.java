import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.zip.GZIPInputStream;

/**
 * Sends the Fashion-MNIST test images to several models of one Berth server and compares their
 * answers with a reference model's: how many each gets right, on how many images its most probable
 * class is the reference's, and the largest absolute difference of any class probability. Plain
 * JDK, one file; {@code examples/fashion-mnist/compare} runs it.
 *
 * <p>Requests use the Open Inference Protocol v2 over REST with the binary tensor extension: the
 * pixels go as raw little-endian FP32 (the 784 bytes of an image divided by 255, as {@code train}
 * scales them) and the probabilities come back raw, so the comparison sees exactly the floats each
 * runtime computed.
 */
public final class Compare {
  static final int PIXELS = 784;
  static final int CLASSES = 10;

  static final String USAGE =
      """
      Usage: examples/fashion-mnist/compare URL [options]

      Sends the test images to each model and compares its probabilities with the reference model's.

        URL                  the server, e.g. http://127.0.0.1:8080
        --reference MODEL    the model to compare with (default: fashion-mnist)
        --models A,B,...     the models to compare (default: fashion-mnist-torchscript,
                             fashion-mnist-savedmodel, fashion-mnist-xgboost)
        --data FILE          IDX images; the labels file beside it (default:
                             /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz)
        --limit N            the first N images only (default: all)
        --batch-size N       images a request (default: 100)
        --max-difference D   exit with status 1 when a model's largest probability difference
                             exceeds D (default: no check)
        --only-models A,...  apply --max-difference to these models only (default: all of --models)
      """;

  private Compare() {}

  public static void main(String[] args) throws Exception {
    String url = null;
    String reference = "fashion-mnist";
    List<String> models =
        List.of("fashion-mnist-torchscript", "fashion-mnist-savedmodel", "fashion-mnist-xgboost");
    Path data = Path.of("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
    int limit = Integer.MAX_VALUE;
    int batch = 100;
    double maxDifference = Double.NaN;
    List<String> checked = null;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "-h", "--help" -> {
          System.out.print(USAGE);
          return;
        }
        case "--reference" -> reference = args[++i];
        case "--models" -> models = List.of(args[++i].split(","));
        case "--data" -> data = Path.of(args[++i]);
        case "--limit" -> limit = Integer.parseInt(args[++i]);
        case "--batch-size" -> batch = Integer.parseInt(args[++i]);
        case "--max-difference" -> maxDifference = Double.parseDouble(args[++i]);
        case "--only-models" -> checked = List.of(args[++i].split(","));
        default -> {
          if (args[i].startsWith("-") || url != null) {
            System.err.print("compare: unexpected '" + args[i] + "'\n" + USAGE);
            System.exit(2);
          }
          url = args[i].replaceAll("/+$", "");
        }
      }
    }
    if (url == null) {
      System.err.print(USAGE);
      System.exit(2);
    }
    byte[] images = readIdx(data, limit);
    byte[] labels =
        readIdx(
            data.resolveSibling(
                data.getFileName().toString().replace("images-idx3", "labels-idx1")),
            limit);
    int count = labels.length;
    if (images.length != count * PIXELS) {
      throw new IOException(data + ": images and labels differ in number");
    }

    HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build();
    float[] expected = probabilities(http, url, reference, images, count, batch);
    List<String> all = new ArrayList<>(List.of(reference));
    all.addAll(models);
    System.out.printf(
        Locale.ROOT,
        "%-27s %7s %8s %9s %16s %16s%n",
        "model",
        "images",
        "correct",
        "accuracy",
        "same class as ref",
        "max |p - p_ref|");
    boolean failed = false;
    for (String model : all) {
      float[] got =
          model.equals(reference)
              ? expected
              : probabilities(http, url, model, images, count, batch);
      int correct = 0;
      int same = 0;
      double largest = 0;
      for (int r = 0; r < count; r++) {
        int best = argmax(got, r);
        correct += best == labels[r] ? 1 : 0;
        same += best == argmax(expected, r) ? 1 : 0;
        for (int c = 0; c < CLASSES; c++) {
          largest = Math.max(largest, Math.abs(got[r * CLASSES + c] - expected[r * CLASSES + c]));
        }
      }
      System.out.printf(
          Locale.ROOT,
          "%-27s %7d %8d %9.4f %16d %16.3g%n",
          model,
          count,
          correct,
          (double) correct / count,
          same,
          largest);
      boolean isChecked = checked == null ? !model.equals(reference) : checked.contains(model);
      if (isChecked && largest > maxDifference) {
        System.err.printf(
            Locale.ROOT,
            "compare: %s differs from %s by %.3g, more than --max-difference %s%n",
            model,
            reference,
            largest,
            maxDifference);
        failed = true;
      }
    }
    if (failed) {
      System.exit(1);
    }
  }

  /** The model's probabilities for every image, row-major [count, 10]. */
  static float[] probabilities(
      HttpClient http, String url, String model, byte[] images, int count, int batch)
      throws IOException, InterruptedException {
    float[] out = new float[count * CLASSES];
    for (int from = 0; from < count; from += batch) {
      int n = Math.min(batch, count - from);
      ByteBuffer raw = ByteBuffer.allocate(n * PIXELS * Float.BYTES).order(ByteOrder.LITTLE_ENDIAN);
      for (int i = from * PIXELS; i < (from + n) * PIXELS; i++) {
        raw.putFloat((images[i] & 0xff) / 255f);
      }
      byte[] header =
          """
          {"inputs":[{"name":"pixels","datatype":"FP32","shape":[%d,%d],\
          "parameters":{"binary_data_size":%d}}],\
          "outputs":[{"name":"probabilities","parameters":{"binary_data":true}}]}\
          """
              .formatted(n, PIXELS, raw.capacity())
              .getBytes(StandardCharsets.UTF_8);
      byte[] body = Arrays.copyOf(header, header.length + raw.capacity());
      System.arraycopy(raw.array(), 0, body, header.length, raw.capacity());
      HttpRequest request =
          HttpRequest.newBuilder(URI.create(url + "/v2/models/" + model + "/infer"))
              .timeout(Duration.ofSeconds(60))
              .header("Content-Type", "application/octet-stream")
              .header("Inference-Header-Content-Length", Integer.toString(header.length))
              .POST(HttpRequest.BodyPublishers.ofByteArray(body))
              .build();
      HttpResponse<byte[]> response = http.send(request, HttpResponse.BodyHandlers.ofByteArray());
      byte[] answer = response.body();
      if (response.statusCode() != 200) {
        throw new IOException(
            model
                + ": HTTP "
                + response.statusCode()
                + " "
                + new String(answer, StandardCharsets.UTF_8));
      }
      int jsonLength =
          Integer.parseInt(
              response
                  .headers()
                  .firstValue("Inference-Header-Content-Length")
                  .orElseThrow(() -> new IOException(model + ": the answer is not binary")));
      int floats = (answer.length - jsonLength) / Float.BYTES;
      if (floats != n * CLASSES) {
        throw new IOException(
            model + ": expected " + n * CLASSES + " probabilities, got " + floats + " values");
      }
      ByteBuffer.wrap(answer, jsonLength, answer.length - jsonLength)
          .order(ByteOrder.LITTLE_ENDIAN)
          .asFloatBuffer()
          .get(out, from * CLASSES, n * CLASSES);
    }
    return out;
  }

  static int argmax(float[] p, int row) {
    int best = 0;
    for (int c = 1; c < CLASSES; c++) {
      if (p[row * CLASSES + c] > p[row * CLASSES + best]) {
        best = c;
      }
    }
    return best;
  }

  /** The data of a gzipped IDX file of unsigned bytes, first {@code limit} items. */
  static byte[] readIdx(Path file, int limit) throws IOException {
    try (DataInputStream in =
        new DataInputStream(
            new BufferedInputStream(new GZIPInputStream(Files.newInputStream(file))))) {
      int magic = in.readInt();
      if ((magic & 0xffffff00) != 0x0800) {
        throw new IOException(file + ": not an IDX file of unsigned bytes");
      }
      int count = in.readInt();
      int size = 1;
      for (int d = 1; d < (magic & 0xff); d++) {
        size *= in.readInt();
      }
      return in.readNBytes(Math.min(count, limit) * size);
    }
  }
}
