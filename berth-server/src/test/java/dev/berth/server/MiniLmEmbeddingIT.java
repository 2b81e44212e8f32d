package dev.berth.server;

import static dev.berth.server.MiniLmServer.DIMENSIONS;
import static dev.berth.server.MiniLmServer.JSON;
import static dev.berth.server.MiniLmServer.cosine;
import static dev.berth.server.MiniLmServer.embeddings;
import static dev.berth.server.MiniLmServer.maxAbsDiff;
import static dev.berth.server.MiniLmServer.norm;
import static dev.berth.server.MiniLmServer.textRequest;
import static dev.berth.server.MiniLmServer.vector;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Sentence embeddings of the MiniLM example over a real socket, checked against ONNX Runtime run
 * directly in the test.
 */
class MiniLmEmbeddingIT {
  /**
   * A sentence sent on its own runs exactly as the reference does; only summation order differs.
   */
  private static final double ALONE_TOLERANCE = 1e-5;

  private static final List<String> SENTENCES =
      List.of(
          "A man is playing a guitar.",
          "Someone plays an instrument.",
          "The stock market fell sharply today.",
          "Berth serves models over the Open Inference Protocol, version two, and over the REST API"
              + " of TensorFlow Serving, with dynamic batching of concurrent requests.",
          "Hi");

  @TempDir static Path repo;
  private static MiniLmServer server;
  private static MiniLmServer.ReferenceEmbedder reference;

  @BeforeAll
  static void start() {
    server = MiniLmServer.start(MiniLmServer.repository(repo));
    reference = new MiniLmServer.ReferenceEmbedder();
  }

  @AfterAll
  static void stop() {
    server.close();
    reference.close();
  }

  @Test
  void textInputGivesOneUnitVectorPerString() {
    JsonNode answer = server.post("/v2/models/minilm/infer", textRequest(SENTENCES)).json(200);
    assertEquals("minilm", answer.get("model_name").asText());
    assertEquals("1", answer.get("model_version").asText());
    assertEquals(1, answer.get("outputs").size());
    float[][] vectors = embeddings(answer); // checks name, FP32 and shape [N, 384]
    assertEquals(SENTENCES.size(), vectors.length);
    for (float[] v : vectors) {
      assertEquals(1.0, norm(v), 1e-5);
    }
  }

  @Test
  void sentenceSentAloneEqualsOnnxRuntimeReference() {
    for (String sentence : SENTENCES) {
      float[] served = server.embed(List.of(sentence))[0];
      double diff = maxAbsDiff(served, reference.embed(sentence));
      assertTrue(
          diff <= ALONE_TOLERANCE, "'" + sentence + "' differs from the reference by " + diff);
    }
  }

  @Test
  void sentencesBatchedInOneRequestStayCloseToReference() {
    float[][] served = server.embed(SENTENCES);
    for (int i = 0; i < SENTENCES.size(); i++) {
      double diff = maxAbsDiff(served[i], reference.embed(SENTENCES.get(i)));
      assertTrue(
          diff <= MiniLmServer.BATCHED_TOLERANCE,
          "'" + SENTENCES.get(i) + "' batched differs from the reference by " + diff);
    }
  }

  @Test
  void relatedSentencesAreCloserThanUnrelatedOnes() {
    float[][] v =
        server.embed(
            List.of(
                "A man is playing a guitar.",
                "Someone plays an instrument.",
                "The stock market fell sharply today."));
    double related = cosine(v[0], v[1]);
    double unrelated = cosine(v[0], v[2]);
    assertTrue(related > unrelated, "related " + related + " <= unrelated " + unrelated);
  }

  @Test
  void tokenTensorsGiveTheSameEmbeddingAsText() {
    String sentence = "A man is playing a guitar.";
    MiniLmServer.ReferenceEmbedder.Tokens tokens = reference.tokens(sentence);
    ObjectNode request = JSON.createObjectNode();
    ArrayNode inputs = request.putArray("inputs");
    addInt64(inputs, "input_ids", tokens.ids());
    addInt64(inputs, "attention_mask", tokens.mask());
    addInt64(inputs, "token_type_ids", tokens.typeIds());

    float[] fromTokens = embeddings(server.post("/v2/models/minilm/infer", request).json(200))[0];
    float[] fromText = server.embed(List.of(sentence))[0];
    assertTrue(maxAbsDiff(fromTokens, fromText) <= ALONE_TOLERANCE);
  }

  private static void addInt64(ArrayNode inputs, String name, long[] values) {
    ObjectNode t = inputs.addObject();
    t.put("name", name);
    t.put("datatype", "INT64");
    t.putArray("shape").add(1).add(values.length);
    ArrayNode data = t.putArray("data");
    for (long v : values) {
      data.add(v);
    }
  }

  @Test
  void requestIdIsEchoed() {
    ObjectNode request = textRequest(List.of("Hello"));
    request.put("id", "req-42");
    assertEquals(
        "req-42", server.post("/v2/models/minilm/infer", request).json(200).get("id").asText());
  }

  @Test
  void outputSelectionByName() {
    ObjectNode request = textRequest(List.of("Hello"));
    request.putArray("outputs").addObject().put("name", "embedding");
    assertEquals(1, embeddings(server.post("/v2/models/minilm/infer", request).json(200)).length);

    ObjectNode unknown = textRequest(List.of("Hello"));
    unknown.putArray("outputs").addObject().put("name", "pooler_output");
    String error = server.post("/v2/models/minilm/infer", unknown).json(400).get("error").asText();
    assertTrue(error.contains("pooler_output") && error.contains("embedding"), error);
  }

  @Test
  void tfServingInstancesGivePredictionsEqualToOip() {
    float[][] oip = server.embed(SENTENCES);
    ObjectNode request = JSON.createObjectNode();
    SENTENCES.forEach(request.putArray("instances")::add);
    JsonNode predictions =
        server.post("/v1/models/minilm:predict", request).json(200).get("predictions");
    assertEquals(SENTENCES.size(), predictions.size());
    for (int i = 0; i < SENTENCES.size(); i++) {
      assertEquals(DIMENSIONS, predictions.get(i).size());
      // Same strings in the same single request: the same engine call, so the same numbers.
      assertArrayEquals(oip[i], vector(predictions.get(i)), 1e-6f);
    }
  }

  @Test
  void tfServingColumnarInputsGiveOutputs() {
    float[][] oip = server.embed(SENTENCES);
    ObjectNode request = JSON.createObjectNode();
    SENTENCES.forEach(request.putArray("inputs")::add);
    JsonNode outputs = server.post("/v1/models/minilm:predict", request).json(200).get("outputs");
    assertEquals(SENTENCES.size(), outputs.size());
    for (int i = 0; i < SENTENCES.size(); i++) {
      assertArrayEquals(oip[i], vector(outputs.get(i)), 1e-6f);
    }
  }

  @Test
  void tfServingModelStatusIsAvailable() {
    JsonNode status = server.get("/v1/models/minilm").json(200).get("model_version_status");
    assertEquals(1, status.size());
    assertEquals("1", status.get(0).get("version").asText());
    assertEquals("AVAILABLE", status.get(0).get("state").asText());
    assertEquals("OK", status.get(0).get("status").get("error_code").asText());
  }
}
