package dev.berth.client.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.berth.api.BerthException;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The evaluator against an Open Inference Protocol server on a real socket: a small stand-in that
 * decodes binary-extension requests as the protocol defines them, so the wire format is checked
 * byte for byte, plus failing answers, unknown models and a port nobody listens on.
 */
class EvaluationIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static HttpServer server;
  private static URI url;
  private static final AtomicInteger binaryRequests = new AtomicInteger();

  @TempDir Path dir;

  @BeforeAll
  static void start() throws IOException {
    server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
    server.setExecutor(Executors.newVirtualThreadPerTaskExecutor());
    server.createContext(
        "/v2/models/pets",
        ex -> {
          if (ex.getRequestMethod().equals("GET")) {
            answer(
                ex,
                200,
                """
                {"name": "pets", "versions": ["3"], "platform": "onnxruntime_onnx",
                 "inputs": [{"name": "image", "datatype": "BYTES", "shape": [-1]}],
                 "outputs": [{"name": "probs", "datatype": "FP32", "shape": [-1, 2]}],
                 "parameters": {"labels": ["dark", "bright"]}}
                """);
          } else {
            classifyImages(ex);
          }
        });
    server.createContext(
        "/v2/models/flaky",
        ex -> {
          if (ex.getRequestMethod().equals("GET")) {
            answer(
                ex,
                200,
                """
                {"name": "flaky", "versions": ["1"], "platform": "onnxruntime_onnx",
                 "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}],
                 "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 2]}]}
                """);
          } else {
            echoUnlessNegative(ex);
          }
        });
    server.createContext(
        "/v2/models/", ex -> answer(ex, 404, "{\"error\": \"model is not in the repository\"}"));
    server.createContext(
        "/v2/repository/index",
        ex -> answer(ex, 200, "[{\"name\": \"pets\", \"version\": \"3\"}, {\"name\": \"flaky\"}]"));
    server.start();
    url = URI.create("http://127.0.0.1:" + server.getAddress().getPort());
  }

  @AfterAll
  static void stop() {
    server.stop(0);
  }

  private static void answer(HttpExchange ex, int status, String body) throws IOException {
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    ex.getResponseHeaders().set("Content-Type", "application/json");
    ex.sendResponseHeaders(status, bytes.length);
    ex.getResponseBody().write(bytes);
    ex.close();
  }

  /**
   * Reads a binary tensor extension request (JSON header of Inference-Header-Content-Length bytes,
   * then each BYTES element as a 4-byte little-endian length and its bytes), decodes each image and
   * scores it dark or bright by its mean pixel value.
   */
  private static void classifyImages(HttpExchange ex) throws IOException {
    byte[] body = ex.getRequestBody().readAllBytes();
    int headerLength =
        Integer.parseInt(ex.getRequestHeaders().getFirst("Inference-Header-Content-Length"));
    JsonNode header = JSON.readTree(new String(body, 0, headerLength, StandardCharsets.UTF_8));
    JsonNode input = header.at("/inputs/0");
    int n = input.at("/shape/0").asInt();
    if (!input.path("datatype").asText().equals("BYTES")
        || input.at("/parameters/binary_data_size").asInt() != body.length - headerLength
        || !header.at("/outputs/0/name").asText().equals("probs")) {
      answer(ex, 400, "{\"error\": \"bad header " + header.toString().replace('"', '\'') + "\"}");
      return;
    }
    ByteBuffer raw =
        ByteBuffer.wrap(body, headerLength, body.length - headerLength)
            .order(ByteOrder.LITTLE_ENDIAN);
    ArrayNode data = JSON.createArrayNode();
    for (int i = 0; i < n; i++) {
      byte[] png = new byte[raw.getInt()];
      raw.get(png);
      BufferedImage image = ImageIO.read(new ByteArrayInputStream(png));
      double bright = (image.getRGB(0, 0) & 0xFF) / 255.0;
      data.add(1 - bright).add(bright);
    }
    if (raw.hasRemaining()) {
      answer(ex, 400, "{\"error\": \"bytes left over\"}");
      return;
    }
    binaryRequests.incrementAndGet();
    ObjectNode out = JSON.createObjectNode().put("model_name", "pets").put("model_version", "3");
    out.putArray("outputs")
        .addObject()
        .put("name", "probs")
        .put("datatype", "FP32")
        .set("shape", JSON.createArrayNode().add(n).add(2));
    ((ObjectNode) out.at("/outputs/0")).set("data", data);
    answer(ex, 200, out.toString());
  }

  /** Answers its input as the scores, or 500 when the batch's first value is negative. */
  private static void echoUnlessNegative(HttpExchange ex) throws IOException {
    JsonNode request = JSON.readTree(ex.getRequestBody());
    JsonNode input = request.at("/inputs/0");
    if (input.at("/data/0").asDouble() < 0) {
      answer(ex, 500, "{\"error\": \"engine failed on a negative value\"}");
      return;
    }
    ObjectNode out = JSON.createObjectNode().put("model_name", "flaky").put("model_version", "1");
    ObjectNode y = out.putArray("outputs").addObject().put("name", "y").put("datatype", "FP32");
    y.set("shape", input.get("shape"));
    y.set("data", input.get("data"));
    answer(ex, 200, out.toString());
  }

  private static void png(Path file, int gray) throws IOException {
    Files.createDirectories(file.getParent());
    BufferedImage image = new BufferedImage(3, 3, BufferedImage.TYPE_INT_RGB);
    for (int y = 0; y < 3; y++) {
      for (int x = 0; x < 3; x++) {
        image.setRGB(x, y, gray * 0x010101);
      }
    }
    ImageIO.write(image, "png", file.toFile());
  }

  @Test
  void imageFilesTravelAsBinaryTensorsAndClassNamesComeFromTheMetadata() throws Exception {
    png(dir.resolve("pets/dark/1.png"), 0);
    png(dir.resolve("pets/dark/2.png"), 20);
    png(dir.resolve("pets/dark/3.png"), 250); // a dark one the model calls bright
    png(dir.resolve("pets/bright/1.png"), 255);
    png(dir.resolve("pets/bright/2.png"), 200);
    int before = binaryRequests.get();
    List<Progress> progress = new ArrayList<>();

    EvalResult r =
        Evaluation.builder(url, "pets")
            .batchSize(2)
            .concurrency(2)
            .progress(
                p -> {
                  synchronized (progress) {
                    progress.add(p);
                  }
                })
            .build()
            .run(DataSet.reader(dir.resolve("pets")).read());

    assertEquals(List.of("dark", "bright"), r.labels());
    assertEquals("model metadata", r.labelSource());
    assertEquals("3", r.modelVersion());
    assertEquals(
        ConfusionMatrix.of(List.of("dark", "bright"), new long[][] {{2, 1}, {0, 2}}),
        r.metrics().matrix());
    assertEquals(0.8, r.metrics().accuracy(), 1e-12);
    assertEquals(3, binaryRequests.get() - before); // 5 rows in batches of 2
    assertEquals(0, r.errors().requests());
    assertEquals(3, progress.size());
    assertEquals(5, progress.stream().mapToLong(Progress::done).max().orElseThrow());
    assertTrue(r.sent().contains("binary tensor extension"), r.sent());
  }

  private Path features(int rows, int... negativeRows) throws IOException {
    StringBuilder csv = new StringBuilder("a,b,label\n");
    for (int i = 0; i < rows; i++) {
      boolean negative = false;
      for (int n : negativeRows) {
        negative |= n == i;
      }
      // scores (a, b): class 1 wins on even rows; every row is labelled 1
      csv.append(negative ? "-1" : i % 2 == 0 ? "0.2" : "0.9")
          .append(',')
          .append(i % 2 == 0 ? "0.8" : "0.1")
          .append(",1\n");
    }
    return Files.writeString(dir.resolve("rows.csv"), csv);
  }

  @Test
  void failedRequestsAreCountedAndTheirRowsLeftOut() throws Exception {
    Path csv = features(10, 3, 5, 7);

    EvalResult r =
        Evaluation.builder(url, "flaky")
            .batchSize(1)
            .concurrency(3)
            .maxErrors(3)
            .build()
            .run(DataSet.reader(csv).read());

    assertEquals(3, r.errors().requests());
    assertEquals(3, r.errors().rows());
    assertEquals(List.of("500 engine failed on a negative value"), r.errors().messages());
    assertEquals(7, r.evaluated());
    assertEquals(10, r.rows());
    // rows 0, 2, 4, 6, 8 right; 1 and 9 wrong
    assertEquals(5.0 / 7, r.metrics().accuracy(), 1e-12);
    assertEquals("class indices", r.labelSource());
  }

  @Test
  void moreFailedRequestsThanAllowedFailTheRunWithTheServersMessage() throws Exception {
    Path csv = features(10, 3, 5, 7);

    BerthException e =
        assertThrows(
            BerthException.class,
            () ->
                Evaluation.builder(url, "flaky")
                    .batchSize(1)
                    .concurrency(1)
                    .maxErrors(2)
                    .build()
                    .run(DataSet.reader(csv).read()));

    assertTrue(e.getMessage().contains("3 requests to "), e.getMessage());
    assertTrue(e.getMessage().contains("more than --max-errors 2"), e.getMessage());
    assertTrue(e.getMessage().contains("500 engine failed on a negative value"), e.getMessage());
  }

  @Test
  void aRefusedFirstRequestStopsTheRunAtOnce() throws Exception {
    Path csv = features(10, 0);

    BerthException e =
        assertThrows(
            BerthException.class,
            () -> Evaluation.builder(url, "flaky").build().run(DataSet.reader(csv).read()));

    assertTrue(e.getMessage().contains("refused the first request"), e.getMessage());
    assertTrue(e.getMessage().contains("500 engine failed"), e.getMessage());
  }

  @Test
  void anUnknownModelNamesTheModelsTheServerHas() throws Exception {
    Path csv = features(2);

    BerthException e =
        assertThrows(
            BerthException.class,
            () -> Evaluation.builder(url, "nope").build().run(DataSet.reader(csv).read()));

    assertTrue(e.getMessage().contains("has no model 'nope'"), e.getMessage());
    assertTrue(e.getMessage().contains("it serves: pets, flaky"), e.getMessage());
  }

  @Test
  void aLabelThatNamesNoClassNamesTheRow() throws Exception {
    png(dir.resolve("pets/dark/1.png"), 0);
    png(dir.resolve("pets/cat/1.png"), 0);

    BerthException e =
        assertThrows(
            BerthException.class,
            () ->
                Evaluation.builder(url, "pets")
                    .build()
                    .run(DataSet.reader(dir.resolve("pets")).read()));

    assertTrue(e.getMessage().contains("pets/cat/1.png: label 'cat'"), e.getMessage());
    assertTrue(e.getMessage().contains("[dark, bright]"), e.getMessage());
  }

  @Test
  void anUnreachableServerSaysSo() throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    Path csv = features(2);

    BerthException e =
        assertThrows(
            BerthException.class,
            () ->
                Evaluation.builder(URI.create("http://127.0.0.1:" + port), "m")
                    .build()
                    .run(DataSet.reader(csv).read()));

    assertTrue(
        e.getMessage().contains("cannot reach the server at http://127.0.0.1:" + port),
        e.getMessage());
    assertTrue(e.getMessage().contains("berth serve"), e.getMessage());
  }
}
