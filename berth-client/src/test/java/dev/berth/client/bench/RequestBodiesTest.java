package dev.berth.client.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.api.BerthException;
import dev.berth.api.DataType;
import dev.berth.api.ModelMetadata;
import dev.berth.api.TensorSpec;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class RequestBodiesTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  /** What a Berth server answers to GET /v2/models/minilm. */
  private static final String MINILM =
      "{\"name\":\"minilm\",\"versions\":[\"1\"],\"platform\":\"onnxruntime_onnx\",\"inputs\":["
          + "{\"name\":\"text\",\"datatype\":\"BYTES\",\"shape\":[-1]},"
          + "{\"name\":\"input_ids\",\"datatype\":\"INT64\",\"shape\":[-1,-1]},"
          + "{\"name\":\"attention_mask\",\"datatype\":\"INT64\",\"shape\":[-1,-1]},"
          + "{\"name\":\"token_type_ids\",\"datatype\":\"INT64\",\"shape\":[-1,-1]}],"
          + "\"outputs\":[{\"name\":\"embedding\",\"datatype\":\"FP32\",\"shape\":[-1,384]}]}";

  @TempDir Path dir;

  private static ModelMetadata minilm() {
    return RequestBodies.parseMetadata(MINILM.getBytes(StandardCharsets.UTF_8));
  }

  private static JsonNode json(byte[] body) throws Exception {
    return JSON.readTree(body);
  }

  @Test
  void readsOipMetadata() {
    ModelMetadata m = minilm();
    assertEquals("minilm", m.name());
    assertEquals(List.of("1"), m.versions());
    assertEquals(4, m.inputs().size());
    assertEquals(
        new TensorSpec("input_ids", DataType.INT64, new long[] {-1, -1}), m.inputs().get(1));
    assertArrayEquals(new long[] {-1, 384}, m.outputs().get(0).shape());
  }

  @Test
  void aTextFirstInputIsSentAloneUnlessInputsAreNamed() {
    assertEquals(List.of("text"), names(RequestBodies.chooseInputs(minilm(), List.of())));
    assertEquals(
        List.of("input_ids", "attention_mask"),
        names(RequestBodies.chooseInputs(minilm(), List.of("input_ids", "attention_mask"))));
    BerthException e =
        assertThrows(
            BerthException.class, () -> RequestBodies.chooseInputs(minilm(), List.of("pixels")));
    assertTrue(
        e.getMessage().contains("'pixels'") && e.getMessage().contains("input_ids"),
        e.getMessage());
  }

  @Test
  void everyInputOfANumericModelIsSent() {
    ModelMetadata m =
        new ModelMetadata(
            "mlp",
            List.of("1"),
            "onnxruntime_onnx",
            List.of(
                new TensorSpec("x", DataType.FP32, new long[] {-1, 784}),
                new TensorSpec("mask", DataType.BOOL, new long[] {-1, 784})),
            List.of(),
            List.of());
    assertEquals(List.of("x", "mask"), names(RequestBodies.chooseInputs(m, List.of())));
  }

  @Test
  void textRequestsCarrySentencesInTheBatchShape() throws Exception {
    List<byte[]> bodies =
        RequestBodies.generate(
            List.of(minilm().inputs().get(0)), Protocol.REST_JSON, 3, BenchPlan.DEFAULT_SEED);
    assertEquals(RequestBodies.VARIANTS, bodies.size());
    JsonNode input = json(bodies.get(0)).path("inputs").get(0);
    assertEquals("text", input.path("name").asText());
    assertEquals("BYTES", input.path("datatype").asText());
    assertEquals("[3]", input.path("shape").toString());
    assertEquals(3, input.path("data").size());
    assertTrue(RequestBodies.SENTENCES.contains(input.path("data").get(0).asText()));
    // the variants differ, so the server does not see one sentence over and over
    assertFalse(
        json(bodies.get(0)).equals(json(bodies.get(1))), "variants 0 and 1 are the same request");
  }

  @Test
  void numericTensorsFillDynamicDimensionsAndTakeSeededValues() throws Exception {
    TensorSpec x = new TensorSpec("x", DataType.FP32, new long[] {-1, 3, -1});
    TensorSpec ids = new TensorSpec("ids", DataType.INT64, new long[] {-1, 4});
    List<byte[]> a = RequestBodies.generate(List.of(x, ids), Protocol.REST_JSON, 2, 42);
    List<byte[]> again = RequestBodies.generate(List.of(x, ids), Protocol.REST_JSON, 2, 42);
    List<byte[]> other = RequestBodies.generate(List.of(x, ids), Protocol.REST_JSON, 2, 43);
    assertArrayEquals(a.get(5), again.get(5), "the same seed gives the same requests");
    assertFalse(java.util.Arrays.equals(a.get(5), other.get(5)), "another seed, other values");

    JsonNode inputs = json(a.get(0)).path("inputs");
    JsonNode fx = inputs.get(0);
    assertEquals("[2,3," + RequestBodies.DYNAMIC_SIZE + "]", fx.path("shape").toString());
    assertEquals("FP32", fx.path("datatype").asText());
    assertEquals(2 * 3 * RequestBodies.DYNAMIC_SIZE, fx.path("data").size());
    for (JsonNode v : fx.path("data")) {
      assertTrue(v.isNumber() && v.asDouble() >= 0 && v.asDouble() < 1, v.toString());
    }
    JsonNode fids = inputs.get(1);
    assertEquals("[2,4]", fids.path("shape").toString());
    for (JsonNode v : fids.path("data")) {
      assertTrue(v.canConvertToLong() && v.asLong() >= 0 && v.asLong() < 10, v.toString());
    }
  }

  @Test
  void tfServingRequestsAreRowsOfTheInput() throws Exception {
    byte[] text =
        RequestBodies.generate(List.of(minilm().inputs().get(0)), Protocol.TFSERVING, 2, 1).get(0);
    JsonNode instances = json(text).path("instances");
    assertEquals(2, instances.size());
    assertTrue(instances.get(0).isTextual(), instances.toString());

    TensorSpec x = new TensorSpec("x", DataType.FP32, new long[] {-1, 2, 3});
    TensorSpec flag = new TensorSpec("flag", DataType.BOOL, new long[] {-1});
    JsonNode rows =
        json(RequestBodies.generate(List.of(x), Protocol.TFSERVING, 4, 1).get(0)).path("instances");
    assertEquals(4, rows.size());
    assertEquals(2, rows.get(0).size());
    assertEquals(3, rows.get(0).get(1).size());
    JsonNode named =
        json(RequestBodies.generate(List.of(x, flag), Protocol.TFSERVING, 2, 1).get(0))
            .path("instances");
    assertEquals(2, named.size());
    assertTrue(named.get(1).path("flag").isBoolean(), named.toString());
    assertEquals(2, named.get(1).path("x").size());
  }

  @Test
  void aDataFileIsOneBodyOrOnePerLine() throws Exception {
    Path one = dir.resolve("one.json");
    Files.writeString(
        one,
        "{\n  \"inputs\": [\n    {\"name\": \"text\", \"shape\": [1], \"datatype\": \"BYTES\", \"data\": [\"hi\"]}\n  ]\n}\n");
    List<byte[]> single = RequestBodies.read(one);
    assertEquals(1, single.size());
    assertEquals("hi", json(single.get(0)).path("inputs").get(0).path("data").get(0).asText());

    Path lines = dir.resolve("many.jsonl");
    Files.writeString(
        lines, "{\"instances\": [\"a\"]}\n\n{\"instances\": [\"b\"]}\r\n{\"instances\": [\"c\"]}");
    List<byte[]> many = RequestBodies.read(lines);
    assertEquals(3, many.size());
    // sent as they stand in the file (line ends stripped)
    assertEquals("{\"instances\": [\"b\"]}", new String(many.get(1), StandardCharsets.UTF_8));
  }

  @Test
  void aBadLineIsNamed() throws Exception {
    Path bad = dir.resolve("bad.jsonl");
    Files.writeString(bad, "{\"instances\": [\"a\"]}\n{\"instances\": [\"b\"\n");
    BerthException e = assertThrows(BerthException.class, () -> RequestBodies.read(bad));
    assertTrue(e.getMessage().contains("line 2"), e.getMessage());
    Path array = dir.resolve("array.jsonl");
    Files.writeString(array, "{\"a\": 1}\n[1, 2]\n");
    e = assertThrows(BerthException.class, () -> RequestBodies.read(array));
    assertTrue(
        e.getMessage().contains("line 2") && e.getMessage().contains("not a JSON object"),
        e.getMessage());
  }

  private static List<String> names(List<TensorSpec> specs) {
    return specs.stream().map(TensorSpec::name).toList();
  }

  @Test
  void completionPromptsHaveTheirOwnStartsAndTheWordsAndTokensAskedFor() throws Exception {
    List<byte[]> bodies = RequestBodies.completions("tiny", 12, 32, 1);
    assertEquals(RequestBodies.PROMPT_VARIANTS, bodies.size());
    java.util.Set<String> starts = new java.util.HashSet<>();
    for (byte[] b : bodies) {
      JsonNode body = json(b);
      assertEquals("tiny", body.path("model").asText());
      assertEquals(32, body.path("max_tokens").asInt());
      assertEquals(0, body.path("temperature").asInt());
      String prompt = body.path("prompt").asText();
      // "Request N:" and twelve words
      assertEquals(14, prompt.split(" ").length, prompt);
      starts.add(prompt.substring(0, prompt.indexOf(':')));
    }
    assertEquals(bodies.size(), starts.size(), "every prompt starts differently");
    assertArrayEquals(bodies.get(7), RequestBodies.completions("tiny", 12, 32, 1).get(7));
  }

  @Test
  void theModelListOfAnOpenAiServer() {
    byte[] list =
        "{\"object\":\"list\",\"data\":[{\"id\":\"tiny\",\"object\":\"model\"}]}"
            .getBytes(StandardCharsets.UTF_8);
    assertTrue(RequestBodies.listsModel(list, "tiny"));
    assertFalse(RequestBodies.listsModel(list, "minilm"));
    assertThrows(
        BerthException.class,
        () -> RequestBodies.listsModel("<html>".getBytes(StandardCharsets.UTF_8), "tiny"));
  }
}
