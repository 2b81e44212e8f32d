package dev.berth.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.berth.onnx.testing.OnnxModelWriter;
import dev.berth.onnx.testing.OnnxModelWriter.ElemType;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.ServingMetrics;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every datatype the ONNX engine carries, sent as Open Inference Protocol JSON to a real server on
 * a real socket, through Identity models written by {@link OnnxModelWriter}; plus versions, a
 * broken model next to working ones, and values out of their type's range.
 */
class DatatypesOverHttpIT {
  private static final String TOKEN = "datatypes-test-management-token";
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final HttpClient CLIENT =
      HttpClient.newBuilder()
          .version(HttpClient.Version.HTTP_1_1)
          .connectTimeout(Duration.ofSeconds(10))
          .build();

  @TempDir static Path repo;
  private static BerthServer server;
  private static URI base;

  /**
   * One datatype with four values (shape [2, 2]) that survive JSON and the type exactly.
   *
   * @param datatype protocol name
   * @param elem ONNX element type of its Identity model
   * @param values the four values as a JSON array
   */
  record TypeCase(String datatype, ElemType elem, String values) {
    String model() {
      return "id_" + datatype.toLowerCase(Locale.ROOT);
    }

    @Override
    public String toString() {
      return datatype;
    }
  }

  static Stream<TypeCase> types() {
    return Stream.of(
        new TypeCase("BOOL", ElemType.BOOL, "[true, false, false, true]"),
        new TypeCase("UINT8", ElemType.UINT8, "[0, 255, 1, 128]"),
        new TypeCase("INT8", ElemType.INT8, "[-128, 127, 0, -1]"),
        new TypeCase("INT16", ElemType.INT16, "[-32768, 32767, 0, -2]"),
        new TypeCase("INT32", ElemType.INT32, "[-2147483648, 2147483647, 0, 7]"),
        new TypeCase(
            "INT64",
            ElemType.INT64,
            "[9223372036854775807, -9223372036854775808, 9007199254740993, -9007199254740993]"),
        // half precision: 0.5, -2, its largest value, its smallest normal value (2^-14)
        new TypeCase("FP16", ElemType.FLOAT16, "[0.5, -2.0, 65504.0, 6.103515625E-5]"),
        new TypeCase("FP32", ElemType.FLOAT, "[0.1, -3.5, 3.4028235E38, 1.4E-45]"),
        new TypeCase("FP64", ElemType.DOUBLE, "[0.1, -1.0E300, 4.9E-324, 3.141592653589793]"),
        new TypeCase("BYTES", ElemType.STRING, "[\"hello\", \"\", \"wörld\", \"日本語 ✓\"]"));
  }

  @BeforeAll
  static void start() {
    types().forEach(t -> OnnxModelWriter.identity(t.elem(), -1, 2).write(modelFile(t.model(), 1)));
    OnnxModelWriter.identity(ElemType.FLOAT, -1, 2).write(modelFile("m", 1));
    OnnxModelWriter.graph("add_one")
        .input("x", ElemType.FLOAT, -1, 2)
        .output("y", ElemType.FLOAT, -1, 2)
        .initializer("one", new long[0], 1f)
        .node("Add", List.of("x", "one"), List.of("y"))
        .write(modelFile("m", 2));
    OnnxModelWriter.identity(ElemType.UINT32, -1, 2).write(modelFile("id_uint32", 1));
    OnnxModelWriter.writeGarbage(modelFile("broken", 1));

    InferenceService service = InferenceService.load(repo, new ServingMetrics());
    server = BerthServer.builder(service).port(0).access(Access.of(TOKEN, null)).build().start();
    base = URI.create("http://127.0.0.1:" + server.port());
  }

  @AfterAll
  static void stop() {
    if (server != null) {
      server.shutdown(Duration.ofSeconds(5));
    }
  }

  private static Path modelFile(String model, int version) {
    return repo.resolve(model).resolve(Integer.toString(version)).resolve("model.onnx");
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("types")
  void flatDataIsEchoed(TypeCase t) {
    JsonNode values = parse(t.values());

    Answer a = post("/v2/models/" + t.model() + "/infer", inferBody(t.datatype(), values));

    assertEquals(200, a.status(), a.json().toString());
    assertEquals(t.model(), a.json().path("model_name").asText());
    assertEquals("1", a.json().path("model_version").asText());
    JsonNode out = a.json().path("outputs").path(0);
    assertEquals("y", out.path("name").asText());
    assertEquals(t.datatype(), out.path("datatype").asText());
    assertEquals(parse("[2, 2]"), out.path("shape"));
    assertSameValues(t.datatype(), values, out.path("data"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("types")
  void nestedDataIsEchoedFlat(TypeCase t) {
    JsonNode values = parse(t.values());
    ArrayNode nested = JSON.createArrayNode();
    nested.addArray().add(values.get(0)).add(values.get(1));
    nested.addArray().add(values.get(2)).add(values.get(3));

    Answer a = post("/v2/models/" + t.model() + "/infer", inferBody(t.datatype(), nested));

    assertEquals(200, a.status(), a.json().toString());
    JsonNode out = a.json().path("outputs").path(0);
    assertEquals(parse("[2, 2]"), out.path("shape"));
    assertSameValues(t.datatype(), values, out.path("data"));
  }

  @Test
  void theHighestVersionAnswersWhenNoneIsNamed() {
    Answer a = post("/v2/models/m/infer", inferBody("FP32", parse("[1.0, 2.0, 3.0, 4.0]")));

    assertEquals(200, a.status(), a.json().toString());
    assertEquals("2", a.json().path("model_version").asText());
    assertSameValues("FP32", parse("[2.0, 3.0, 4.0, 5.0]"), a.json().at("/outputs/0/data"));
  }

  @Test
  void aNamedVersionAnswers() {
    Answer one =
        post("/v2/models/m/versions/1/infer", inferBody("FP32", parse("[1.0, 2.0, 3.0, 4.0]")));
    Answer two =
        post("/v2/models/m/versions/2/infer", inferBody("FP32", parse("[1.0, 2.0, 3.0, 4.0]")));

    assertEquals(200, one.status(), one.json().toString());
    assertEquals("1", one.json().path("model_version").asText());
    assertSameValues("FP32", parse("[1.0, 2.0, 3.0, 4.0]"), one.json().at("/outputs/0/data"));
    assertEquals(200, two.status(), two.json().toString());
    assertEquals("2", two.json().path("model_version").asText());
    assertSameValues("FP32", parse("[2.0, 3.0, 4.0, 5.0]"), two.json().at("/outputs/0/data"));
  }

  @Test
  void metadataOfOneVersion() {
    Answer a = get("/v2/models/m/versions/1");

    assertEquals(200, a.status(), a.json().toString());
    assertEquals(
        parse(
            """
            {"name": "m", "versions": ["1"], "platform": "onnxruntime_onnx",
             "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}],
             "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 2]}]}
            """),
        a.json());
  }

  @Test
  void metadataOfTheModelListsItsReadyVersions() {
    Answer a = get("/v2/models/m");

    assertEquals(200, a.status(), a.json().toString());
    assertEquals(parse("[\"1\", \"2\"]"), a.json().path("versions"));
  }

  @Test
  void brokenModelsAreUnavailableInTheIndexWithAReasonWhileTheOthersServe() {
    Answer a =
        send(
            HttpRequest.newBuilder(base.resolve("/v2/repository/index"))
                .header("Authorization", "Bearer " + TOKEN)
                .POST(HttpRequest.BodyPublishers.ofString("{}")));

    assertEquals(200, a.status(), a.json().toString());
    List<String> ready = new ArrayList<>();
    JsonNode broken = null;
    JsonNode uint32 = null;
    for (JsonNode entry : a.json()) {
      String name = entry.path("name").asText();
      switch (name) {
        case "broken" -> broken = entry;
        case "id_uint32" -> uint32 = entry;
        default -> {
          assertEquals("READY", entry.path("state").asText(), entry.toString());
          ready.add(name + "/" + entry.path("version").asText());
        }
      }
    }
    List<String> expected = new ArrayList<>(types().map(t -> t.model() + "/1").toList());
    expected.add("m/1");
    expected.add("m/2");
    assertEquals(expected.stream().sorted().toList(), ready.stream().sorted().toList());

    assertNotNull(broken, "the broken model is listed");
    assertEquals("UNAVAILABLE", broken.path("state").asText());
    assertEquals("1", broken.path("version").asText());
    assertTrue(broken.path("reason").asText().contains("model.onnx"), broken.toString());

    assertNotNull(uint32, "the UINT32 model is listed");
    assertEquals("UNAVAILABLE", uint32.path("state").asText());
    assertTrue(uint32.path("reason").asText().contains("'x'"), uint32.toString());

    // the others serve, but strict readiness keeps traffic from a replica with a broken model
    assertEquals(503, get("/v2/health/ready").status());
    assertTrue(get("/v2/health/ready").json().path("reason").asText().contains("no ready version"));
  }

  @Test
  void aBrokenModelIsNotReady() {
    Answer ready = get("/v2/models/broken/ready");
    Answer infer =
        post("/v2/models/broken/infer", inferBody("FP32", parse("[1.0, 2.0, 3.0, 4.0]")));

    assertEquals(503, ready.status(), ready.json().toString());
    assertFalse(ready.json().path("ready").asBoolean(true));
    assertEquals(503, infer.status(), infer.json().toString());
    assertTrue(infer.json().path("error").isTextual(), infer.json().toString());
    assertEquals(200, get("/v2/models/id_fp32/ready").status());
  }

  @ParameterizedTest(name = "{0} {1}")
  @CsvSource({
    "UINT8, 256",
    "UINT8, -1",
    "INT8, -129",
    "INT8, 128",
    "INT16, 32768",
    "INT32, -2147483649",
    "INT64, 9223372036854775808",
  })
  void valuesOutOfTheTypesRangeAreRefused(String datatype, String value) {
    String model = "id_" + datatype.toLowerCase(Locale.ROOT);
    JsonNode values = parse("[0, 0, 0, " + value + "]");

    Answer a = post("/v2/models/" + model + "/infer", inferBody(datatype, values));

    assertEquals(400, a.status(), a.json().toString());
    String error = a.json().path("error").asText();
    assertTrue(error.contains("out of range for " + datatype), error);
    assertTrue(error.contains(value), error);
  }

  // --- helpers

  private static String inferBody(String datatype, JsonNode data) {
    ObjectNode input = JSON.createObjectNode();
    input.put("name", "x");
    input.put("datatype", datatype);
    input.putArray("shape").add(2).add(2);
    input.set("data", data);
    ObjectNode body = JSON.createObjectNode();
    body.putArray("inputs").add(input);
    return body.toString();
  }

  /** Compares element by element, each as its datatype reads it. */
  private static void assertSameValues(String datatype, JsonNode expected, JsonNode actual) {
    assertTrue(actual.isArray(), "data is an array: " + actual);
    assertEquals(expected.size(), actual.size(), actual.toString());
    for (int i = 0; i < expected.size(); i++) {
      JsonNode e = expected.get(i);
      JsonNode a = actual.get(i);
      String at = datatype + " element " + i + ": " + actual;
      switch (datatype) {
        case "BOOL" -> {
          assertTrue(a.isBoolean(), at);
          assertEquals(e.booleanValue(), a.booleanValue(), at);
        }
        case "BYTES" -> {
          assertTrue(a.isTextual(), at);
          assertEquals(e.textValue(), a.textValue(), at);
        }
        case "FP16", "FP32" -> {
          assertTrue(a.isNumber(), at);
          assertEquals((float) e.doubleValue(), (float) a.doubleValue(), at);
        }
        case "FP64" -> {
          assertTrue(a.isNumber(), at);
          assertEquals(e.doubleValue(), a.doubleValue(), at);
        }
        default -> {
          assertTrue(a.isIntegralNumber(), at);
          assertEquals(e.bigIntegerValue(), a.bigIntegerValue(), at);
        }
      }
    }
  }

  private static JsonNode parse(String json) {
    try {
      return JSON.readTree(json);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** An HTTP status with the JSON body. */
  private record Answer(int status, JsonNode json) {}

  private static Answer get(String path) {
    return send(HttpRequest.newBuilder(base.resolve(path)).GET());
  }

  private static Answer post(String path, String json) {
    return send(
        HttpRequest.newBuilder(base.resolve(path))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(json)));
  }

  private static Answer send(HttpRequest.Builder request) {
    try {
      HttpResponse<String> response =
          CLIENT.send(
              request.timeout(Duration.ofSeconds(30)).build(),
              HttpResponse.BodyHandlers.ofString());
      return new Answer(response.statusCode(), parse(response.body()));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }
}
