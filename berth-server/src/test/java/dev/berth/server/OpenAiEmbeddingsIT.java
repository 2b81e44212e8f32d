package dev.berth.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.Base64;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code POST /v1/embeddings} and {@code GET /v1/models} over the real MiniLM: the vectors equal
 * the Open Inference Protocol's, as floats or base64, usage counts the tokenizer's tokens, and
 * errors take OpenAI's shape.
 */
class OpenAiEmbeddingsIT {
  @TempDir static Path dir;
  private static MiniLmServer server;

  @BeforeAll
  static void start() {
    server = MiniLmServer.start(MiniLmServer.repository(dir));
  }

  @AfterAll
  static void stop() {
    server.server().close();
  }

  @Test
  void embeddingsEqualTheModelsOwnVectors() {
    List<String> texts = List.of("A cat sits on the mat.", "Serving models is fun");
    JsonNode answer =
        server
            .post(
                "/v1/embeddings",
                "{\"model\":\"minilm\",\"input\":[\""
                    + texts.get(0)
                    + "\",\""
                    + texts.get(1)
                    + "\"]}")
            .json(200);
    float[][] oip =
        MiniLmServer.embeddings(
            server.post("/v2/models/minilm/infer", MiniLmServer.textRequest(texts)).json(200));

    assertEquals("list", answer.get("object").asText());
    assertEquals("minilm", answer.get("model").asText());
    assertEquals(2, answer.get("data").size());
    for (int i = 0; i < 2; i++) {
      JsonNode d = answer.get("data").get(i);
      assertEquals("embedding", d.get("object").asText());
      assertEquals(i, d.get("index").asInt());
      float[] v = MiniLmServer.vector(d.get("embedding"));
      assertEquals(MiniLmServer.DIMENSIONS, v.length);
      assertTrue(MiniLmServer.maxAbsDiff(oip[i], v) < 1e-6, "row " + i);
    }
    // "[CLS] a cat sits on the mat . [SEP]" and "[CLS] serving models is fun [SEP]"
    int tokens = answer.get("usage").get("prompt_tokens").asInt();
    assertEquals(9 + 6, tokens, answer.get("usage").toString());
    assertEquals(tokens, answer.get("usage").get("total_tokens").asInt());
  }

  @Test
  void base64IsLittleEndianFloat32() {
    JsonNode floats =
        server.post("/v1/embeddings", "{\"model\":\"minilm\",\"input\":\"hello\"}").json(200);
    JsonNode packed =
        server
            .post(
                "/v1/embeddings",
                "{\"model\":\"minilm\",\"input\":\"hello\",\"encoding_format\":\"base64\"}")
            .json(200);
    ByteBuffer bytes =
        ByteBuffer.wrap(
                Base64.getDecoder().decode(packed.get("data").get(0).get("embedding").asText()))
            .order(ByteOrder.LITTLE_ENDIAN);
    float[] decoded = new float[bytes.remaining() / 4];
    bytes.asFloatBuffer().get(decoded);
    float[] expected = MiniLmServer.vector(floats.get("data").get(0).get("embedding"));
    assertEquals(0.0, MiniLmServer.maxAbsDiff(expected, decoded));
  }

  @Test
  void modelsListsWhatIsServed() {
    JsonNode list = server.get("/v1/models").json(200);
    assertEquals("list", list.get("object").asText());
    assertEquals("minilm", list.get("data").get(0).get("id").asText());
    assertEquals("model", list.get("data").get(0).get("object").asText());
    assertEquals("berth", list.get("data").get(0).get("owned_by").asText());
  }

  private static JsonNode error(MiniLmServer.Response r, int status) {
    JsonNode error = r.json(status).get("error");
    assertTrue(error.isObject(), r.body());
    assertTrue(error.has("message") && error.has("type") && error.has("param"), r.body());
    assertTrue(error.has("code"), r.body());
    return error;
  }

  @Test
  void errorsTakeOpenAisShapeAndNameTheParameter() {
    JsonNode dimensions =
        error(
            server.post(
                "/v1/embeddings", "{\"model\":\"minilm\",\"input\":\"x\",\"dimensions\":8}"),
            400);
    assertEquals("dimensions", dimensions.get("param").asText());
    assertEquals("unsupported_parameter", dimensions.get("code").asText());
    assertEquals("invalid_request_error", dimensions.get("type").asText());

    JsonNode tokens =
        error(server.post("/v1/embeddings", "{\"model\":\"minilm\",\"input\":[[1,2,3]]}"), 400);
    assertEquals("input", tokens.get("param").asText());

    JsonNode unknown =
        error(server.post("/v1/embeddings", "{\"model\":\"nope\",\"input\":\"x\"}"), 404);
    assertEquals("model_not_found", unknown.get("code").asText());
    assertEquals("not_found_error", unknown.get("type").asText());

    JsonNode notLanguage =
        error(
            server.post(
                "/v1/chat/completions",
                "{\"model\":\"minilm\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}"),
            400);
    assertTrue(
        notLanguage.get("message").asText().contains("not a language model"),
        notLanguage.toString());

    JsonNode malformed = error(server.post("/v1/chat/completions", "{\"model\":"), 400);
    assertTrue(malformed.get("message").asText().contains("malformed JSON"), malformed.toString());

    // TF Serving keeps its /v1/models/{m}
    assertEquals(200, server.get("/v1/models/minilm").status());
  }
}
