package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.onnx.testing.OnnxModelWriter;
import dev.berth.onnx.testing.OnnxModelWriter.Attribute;
import dev.berth.onnx.testing.OnnxModelWriter.ElemType;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.zip.GZIPOutputStream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code berth eval} end to end: a real {@code berth serve} on a repository of small ONNX models
 * written by the test, and {@code berth eval} run as a user runs it, on CSV, JSONL, IDX and image
 * folder data.
 *
 * <ul>
 *   <li>{@code scores}: x FP32[N,4] → softmax(x · W) FP32[N,3], W picking the first three values,
 *       so the predicted class is the position of the largest of them;
 *   <li>{@code probability}: Identity of FP32[N,1], the probability of the positive class;
 *   <li>{@code words}: text BYTES[N] → one-hot of which of "good", "bad", "meh" it equals,
 *       FP32[N,3].
 * </ul>
 */
class EvalCommandIT {
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path repo;
  @TempDir static Path serverWork;
  @TempDir Path work;
  private static BerthProcess server;
  private static String url;

  @BeforeAll
  static void serve() throws IOException {
    OnnxModelWriter.graph("scores")
        .input("x", ElemType.FLOAT, -1, 4)
        .output("probs", ElemType.FLOAT, -1, 3)
        .initializer("w", new long[] {4, 3}, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0)
        .node("MatMul", List.of("x", "w"), List.of("logits"))
        .node("Softmax", List.of("logits"), List.of("probs"), Attribute.ofInt("axis", -1))
        .write(repo.resolve("scores/1/model.onnx"));
    OnnxModelWriter.identity(ElemType.FLOAT, -1, 1).write(repo.resolve("probability/1/model.onnx"));
    OnnxModelWriter.graph("words")
        .opset(19)
        .input("text", ElemType.STRING, -1)
        .output("scores", ElemType.FLOAT, -1, 3)
        .stringInitializer("keys", new long[] {3}, "good", "bad", "meh")
        .longInitializer("axis", new long[] {1}, 1)
        .node("Unsqueeze", List.of("text", "axis"), List.of("column"))
        .node("Equal", List.of("column", "keys"), List.of("hits"))
        .node("Cast", List.of("hits"), List.of("scores"), Attribute.ofInt("to", 1))
        .write(repo.resolve("words/1/model.onnx"));
    server =
        BerthProcess.start(
            serverWork,
            "serve",
            repo.toString(),
            "--port",
            "0",
            "--grpc-port",
            "0",
            "--log-format",
            "json");
    url = server.awaitServing();
  }

  @AfterAll
  static void stop() {
    if (server != null) {
      server.close();
    }
  }

  private BerthProcess.Finished eval(String... args) throws Exception {
    String[] all = new String[args.length + 1];
    all[0] = "eval";
    System.arraycopy(args, 0, all, 1, args.length);
    return BerthProcess.run(work, Duration.ofSeconds(120), all);
  }

  @Test
  void csvFeaturesWithClassNamesAndIndicesAndAReport() throws Exception {
    Path csv =
        Files.writeString(
            work.resolve("animals.csv"),
            """
            f0,f1,f2,f3,label
            1,0,0,0,cat
            2,1,0,5,cat
            0,1,0,0,cat
            0,3,1,0,dog
            0,2,0,0,1
            0,0,1,0,dog
            0,0,4,0,bird
            0,0,2,1,2
            1,0,3,0,bird
            5,0,0,0,bird
            """);
    Path report = work.resolve("report");

    BerthProcess.Finished r =
        eval(
            url,
            "--model",
            "scores",
            "--data",
            csv.toString(),
            "--labels",
            "cat,dog,bird",
            "--batch-size",
            "3",
            "--concurrency",
            "2",
            "--report",
            report.toString());

    assertEquals(0, r.code(), r.err());
    assertTrue(
        r.out().contains("accuracy                                0.700         10"), r.out());
    assertTrue(r.out().contains("0 cat    2  1  0"), r.out());
    assertTrue(r.out().contains("2 bird   1  0  3"), r.out());
    assertTrue(r.err().contains("eval: 10/10 rows (100%)"), r.err());
    JsonNode metrics = JSON.readTree(report.resolve("metrics.json").toFile());
    assertEquals(0.7, metrics.get("accuracy").doubleValue(), 1e-12);
    assertEquals(
        JSON.readTree("[[2, 1, 0], [0, 2, 1], [1, 0, 3]]"), metrics.get("confusion_matrix"));
    assertEquals(JSON.readTree("[\"cat\", \"dog\", \"bird\"]"), metrics.get("labels"));
    // cat: P 2/3 R 2/3; dog: P 2/3 R 2/3; bird: P 3/4 R 3/4
    assertEquals((2.0 / 3 + 2.0 / 3 + 3.0 / 4) / 3, metrics.get("macro_f1").doubleValue(), 1e-12);
    assertEquals("1", metrics.get("model_version").asText());
    assertTrue(Files.readString(report.resolve("index.html")).contains("<table class=\"cm\">"));
  }

  /**
   * The binary example of the metrics tests, through a real server: accuracy 0.6, precision 0.625.
   */
  @Test
  void binaryProbabilitiesWithAndWithoutAThreshold() throws Exception {
    StringBuilder csv = new StringBuilder("p,label\n");
    csv.append("0.9,positive\n".repeat(50));
    csv.append("0.2,positive\n".repeat(10));
    csv.append("0.8,negative\n".repeat(30));
    csv.append("0.1,negative\n".repeat(10));
    Path data = Files.writeString(work.resolve("binary.csv"), csv);
    Path report = work.resolve("binary");

    BerthProcess.Finished plain =
        eval(
            url,
            "-m",
            "probability",
            "-d",
            data.toString(),
            "--labels",
            "negative,positive",
            "--report",
            report.toString());
    JsonNode metrics = JSON.readTree(report.resolve("metrics.json").toFile());
    BerthProcess.Finished strict =
        eval(
            url,
            "-m",
            "probability",
            "-d",
            data.toString(),
            "--labels",
            "negative,positive",
            "--threshold",
            "0.85");

    assertEquals(0, plain.code(), plain.err());
    assertEquals(0.6, metrics.get("accuracy").doubleValue(), 1e-12);
    assertEquals(0.625, metrics.at("/binary/precision").doubleValue(), 1e-12);
    assertEquals(50.0 / 60, metrics.at("/binary/recall").doubleValue(), 1e-12);
    assertEquals(100.0 / 140, metrics.at("/binary/f1").doubleValue(), 1e-12);
    assertEquals(0.5, metrics.at("/binary/threshold").doubleValue());
    assertEquals(0, strict.code(), strict.err());
    // 0.8 falls below 0.85: the 30 negatives are now right
    assertTrue(
        strict.out().contains("accuracy                                0.900        100"),
        strict.out());
    assertTrue(
        strict
            .out()
            .contains("positive class 'positive' (score >= 0.850): precision 1.000, recall 0.833"),
        strict.out());
  }

  @Test
  void idxImagesWithTheirLabelsBeside() throws Exception {
    // four 2x2 images: the bright pixel's position is the class; the last (all in f3) scores
    // evenly and goes to class 0
    byte[] pixels = new byte[16];
    pixels[0] = (byte) 255;
    pixels[4 + 1] = (byte) 255;
    pixels[8 + 2] = (byte) 255;
    pixels[12 + 3] = (byte) 255;
    writeIdx(work.resolve("t10k-images-idx3-ubyte.gz"), new int[] {4, 2, 2}, pixels);
    writeIdx(work.resolve("t10k-labels-idx1-ubyte.gz"), new int[] {4}, new byte[] {0, 1, 2, 2});

    BerthProcess.Finished r =
        eval(
            url,
            "--model",
            "scores",
            "--data",
            work.resolve("t10k-images-idx3-ubyte.gz").toString());

    assertEquals(0, r.code(), r.err());
    assertTrue(
        r.out().contains("accuracy                                0.750          4"), r.out());
    assertTrue(r.out().contains("3 classes from class indices"), r.out());
    assertTrue(r.out().contains("\n2  1  0  1\n"), r.out());
  }

  @Test
  void aFolderOfPngsDecodedForAnFp32Input() throws Exception {
    png(work.resolve("shapes/0/a.png"), 0, 0);
    png(work.resolve("shapes/1/a.png"), 1, 0);
    png(work.resolve("shapes/1/b.png"), 0, 0); // looks like a 0
    png(work.resolve("shapes/2/a.png"), 0, 1);

    BerthProcess.Finished r =
        eval(url, "--model", "scores", "--data", work.resolve("shapes").toString());

    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("2x2 grayscale pixels scaled by 1/255"), r.out());
    assertTrue(
        r.out().contains("accuracy                                0.750          4"), r.out());
  }

  @Test
  void jsonlTextWithLabelsFromAFile() throws Exception {
    Path data =
        Files.writeString(
            work.resolve("words.jsonl"),
            """
            {"text": "good", "label": "good"}
            {"text": "bad", "label": "bad"}
            {"text": "meh", "label": "good"}
            {"text": "unheard of", "label": "meh"}
            {"text": "meh", "label": 2}
            """);
    Path labels = Files.writeString(work.resolve("labels.txt"), "good\nbad\nmeh\n");

    BerthProcess.Finished r =
        eval(url, "--model", "words", "--data", data.toString(), "--labels", "@" + labels);

    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("texts to BYTES input 'text'"), r.out());
    assertTrue(
        r.out().contains("accuracy                                0.600          5"), r.out());
    assertTrue(r.out().contains("0 good   1  0  1"), r.out());
    assertTrue(r.out().contains("2 meh    1  0  1"), r.out());
  }

  @Test
  void usageErrorsAreExitCodeTwoWithTheFix() throws Exception {
    Path csv = Files.writeString(work.resolve("rows.csv"), "a,b,c,d,label\n1,0,0,0,cat\n");
    int closedPort;
    try (ServerSocket s = new ServerSocket(0)) {
      closedPort = s.getLocalPort();
    }

    BerthProcess.Finished unknownModel = eval(url, "--model", "nope", "--data", csv.toString());
    BerthProcess.Finished missingData =
        eval(url, "--model", "scores", "--data", work.resolve("nope.csv").toString());
    BerthProcess.Finished unknownLabel = eval(url, "--model", "scores", "--data", csv.toString());
    BerthProcess.Finished unreachable =
        eval("http://127.0.0.1:" + closedPort, "--model", "scores", "--data", csv.toString());

    assertEquals(2, unknownModel.code());
    assertTrue(unknownModel.err().contains("has no model 'nope'"), unknownModel.err());
    assertTrue(unknownModel.err().contains("scores"), unknownModel.err());
    assertEquals(2, missingData.code());
    assertTrue(missingData.err().contains("nope.csv does not exist"), missingData.err());
    assertEquals(2, unknownLabel.code());
    assertTrue(unknownLabel.err().contains("rows.csv line 2: label 'cat'"), unknownLabel.err());
    assertTrue(unknownLabel.err().contains("pass --labels"), unknownLabel.err());
    assertEquals(2, unreachable.code());
    assertTrue(unreachable.err().contains("cannot reach the server"), unreachable.err());
  }

  private static void writeIdx(Path file, int[] dims, byte[] data) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.writeInt(0x0800 | dims.length);
      for (int d : dims) {
        out.writeInt(d);
      }
      out.write(data);
    }
    try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(file))) {
      out.write(bytes.toByteArray());
    }
  }

  /** A 2x2 grayscale PNG, black but for a white pixel at (x, y). */
  private static void png(Path file, int x, int y) throws IOException {
    Files.createDirectories(file.getParent());
    BufferedImage image = new BufferedImage(2, 2, BufferedImage.TYPE_BYTE_GRAY);
    image.getRaster().setSample(x, y, 0, 255);
    ImageIO.write(image, "png", file.toFile());
  }
}
