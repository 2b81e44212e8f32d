package dev.berth.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.ByteArrayOutputStream;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The binary tensor extension over a real socket with MiniLM: requests built byte by byte, checked
 * against the JSON path's answers; lying lengths get a 400 and the server stays ready.
 */
class BinaryTensorIT {
  private static final HttpClient HTTP =
      HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
  private static final String INFER = "/v2/models/minilm/infer";
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

  private record Answer(int status, String headerLength, byte[] body) {
    JsonNode json() throws Exception {
      int length = headerLength == null ? body.length : Integer.parseInt(headerLength);
      return MiniLmServer.JSON.readTree(Arrays.copyOf(body, length));
    }

    byte[] binary() {
      return Arrays.copyOfRange(body, Integer.parseInt(headerLength), body.length);
    }
  }

  private static Answer post(String json, byte[] binary, String headerLength) throws Exception {
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    body.writeBytes(json.getBytes(StandardCharsets.UTF_8));
    body.writeBytes(binary);
    HttpRequest.Builder request =
        HttpRequest.newBuilder(server.url(INFER))
            .timeout(Duration.ofSeconds(60))
            .header("Content-Type", "application/octet-stream")
            .POST(HttpRequest.BodyPublishers.ofByteArray(body.toByteArray()));
    if (headerLength != null) {
      request.header("Inference-Header-Content-Length", headerLength);
    }
    HttpResponse<byte[]> r = HTTP.send(request.build(), HttpResponse.BodyHandlers.ofByteArray());
    return new Answer(
        r.statusCode(),
        r.headers().firstValue("Inference-Header-Content-Length").orElse(null),
        r.body());
  }

  private static Answer post(String json, byte[] binary) throws Exception {
    return post(json, binary, Integer.toString(json.getBytes(StandardCharsets.UTF_8).length));
  }

  private static byte[] bytesElements(String... values) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (String v : values) {
      byte[] b = v.getBytes(StandardCharsets.UTF_8);
      out.writeBytes(
          ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(b.length).array());
      out.writeBytes(b);
    }
    return out.toByteArray();
  }

  private static byte[] longs(long... values) {
    ByteBuffer b = ByteBuffer.allocate(values.length * 8).order(ByteOrder.LITTLE_ENDIAN);
    for (long v : values) {
      b.putLong(v);
    }
    return b.array();
  }

  private static float[][] jsonEmbeddings(List<String> sentences) {
    return MiniLmServer.embeddings(
        server.post(INFER, MiniLmServer.textRequest(sentences)).json(200));
  }

  @Test
  void serverMetadataListsTheExtension() {
    JsonNode meta = server.get("/v2").json(200);
    assertTrue(meta.get("extensions").toString().contains("binary_tensor_data"), meta.toString());
  }

  @Test
  void binaryBytesInputAnswersAsTheJsonPathDoes() throws Exception {
    byte[] raw = bytesElements("Berth serves models", "A cat sat on the mat");
    String header =
        "{\"inputs\":[{\"name\":\"text\",\"shape\":[2],\"datatype\":\"BYTES\","
            + "\"parameters\":{\"binary_data_size\":"
            + raw.length
            + "}}]}";
    Answer a = post(header, raw);
    assertEquals(200, a.status(), new String(a.body(), StandardCharsets.UTF_8));
    float[][] binary = MiniLmServer.embeddings(a.json());
    float[][] json = jsonEmbeddings(List.of("Berth serves models", "A cat sat on the mat"));
    assertArrayEquals(json[0], binary[0]);
    assertArrayEquals(json[1], binary[1]);
  }

  @Test
  void binaryOutputIsRawLittleEndianFloats() throws Exception {
    String header =
        "{\"parameters\":{\"binary_data_output\":true},\"inputs\":[{\"name\":\"text\",\"shape\":[2],"
            + "\"datatype\":\"BYTES\",\"data\":[\"one sentence\",\"another sentence\"]}]}";
    Answer a = post(header, new byte[0]);
    assertEquals(200, a.status());
    JsonNode out = a.json().get("outputs").get(0);
    assertEquals(2 * 384 * 4, out.get("parameters").get("binary_data_size").asInt());
    assertTrue(out.get("data") == null, "binary outputs carry no JSON data");
    ByteBuffer floats = ByteBuffer.wrap(a.binary()).order(ByteOrder.LITTLE_ENDIAN);
    assertEquals(2 * 384 * 4, floats.remaining());
    float[][] json = jsonEmbeddings(List.of("one sentence", "another sentence"));
    for (int r = 0; r < 2; r++) {
      for (int k = 0; k < 384; k++) {
        assertEquals(json[r][k], floats.getFloat(), "row " + r + " element " + k);
      }
    }
  }

  @Test
  void perOutputBinaryFlagAndJsonOnlyRequestsStillWork() throws Exception {
    String header =
        "{\"inputs\":[{\"name\":\"text\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"hi\"]}],"
            + "\"outputs\":[{\"name\":\"embedding\",\"parameters\":{\"binary_data\":true}}]}";
    Answer a = post(header, new byte[0], null);
    assertEquals(200, a.status());
    assertEquals(384 * 4, a.binary().length);
  }

  @Test
  void mixedJsonAndBinaryInputs() throws Exception {
    // "hello world" in the model's vocabulary: [CLS] hello world [SEP]
    byte[] ids = longs(101, 7592, 2088, 102);
    byte[] types = longs(0, 0, 0, 0);
    String header =
        "{\"inputs\":["
            + "{\"name\":\"input_ids\",\"shape\":[1,4],\"datatype\":\"INT64\","
            + "\"parameters\":{\"binary_data_size\":32}},"
            + "{\"name\":\"attention_mask\",\"shape\":[1,4],\"datatype\":\"INT64\",\"data\":[1,1,1,1]},"
            + "{\"name\":\"token_type_ids\",\"shape\":[1,4],\"datatype\":\"INT64\","
            + "\"parameters\":{\"binary_data_size\":32}}]}";
    ByteArrayOutputStream raw = new ByteArrayOutputStream();
    raw.writeBytes(ids);
    raw.writeBytes(types);
    Answer a = post(header, raw.toByteArray());
    assertEquals(200, a.status(), new String(a.body(), StandardCharsets.UTF_8));
    assertArrayEquals(
        jsonEmbeddings(List.of("hello world"))[0], MiniLmServer.embeddings(a.json())[0]);
  }

  @Test
  void lyingLengthsAre400AndTheServerStaysReady() throws Exception {
    String fp =
        "{\"inputs\":[{\"name\":\"input_ids\",\"shape\":[1,4],\"datatype\":\"INT64\","
            + "\"parameters\":{\"binary_data_size\":%d}}]}";
    String text =
        "{\"inputs\":[{\"name\":\"text\",\"shape\":[%d],\"datatype\":\"BYTES\","
            + "\"parameters\":{\"binary_data_size\":%d}}]}";
    byte[] ids = longs(101, 7592, 2088, 102);
    Object[][] cases = {
      // header longer than the body
      {String.format(fp, 32), ids, "100000", "has only"},
      // header length that cuts the JSON
      {String.format(fp, 32), ids, "10", "malformed JSON"},
      // header length not a number
      {String.format(fp, 32), ids, "ten", "whole number"},
      // size that does not match shape and datatype
      {String.format(fp, 24), Arrays.copyOf(ids, 24), null, "takes 32 bytes"},
      // size larger than the data sent
      {String.format(fp, 40), ids, null, "only 32 bytes"},
      // bytes left over after the last input
      {String.format(fp, 32), longs(1, 2, 3, 4, 5), null, "follow the last input"},
      // BYTES length prefix longer than the data
      {
        String.format(text, 1, 8),
        new byte[] {100, 0, 0, 0, 'a', 'b', 'c', 'd'},
        null,
        "says 100 bytes"
      },
      // BYTES count that does not match the shape
      {String.format(text, 2, 9), bytesElements("hello"), null, "holds 1"},
      // binary data without the header
      {String.format(fp, 32), ids, "none", "no Inference-Header-Content-Length"},
    };
    for (Object[] c : cases) {
      String json = (String) c[0];
      String headerLength =
          "none".equals(c[2])
              ? null
              : c[2] == null
                  ? Integer.toString(json.getBytes(StandardCharsets.UTF_8).length)
                  : (String) c[2];
      Answer a = post(json, (byte[]) c[1], headerLength);
      String body = new String(a.body(), StandardCharsets.UTF_8);
      assertEquals(400, a.status(), json + " -> " + body);
      String error = MiniLmServer.JSON.readTree(body).get("error").asText();
      assertTrue(error.contains((String) c[3]), json + " -> " + error);
      assertEquals(200, server.get("/v2/health/ready").status());
    }
  }
}
