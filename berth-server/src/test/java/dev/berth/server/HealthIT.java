package dev.berth.server;

import static dev.berth.server.MiniLmServer.JSON;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Health, readiness and metadata endpoints of the Open Inference Protocol, and what draining does.
 */
class HealthIT {
  @TempDir static Path dir;
  private static MiniLmServer server;

  @BeforeAll
  static void start() throws Exception {
    server =
        MiniLmServer.start(MiniLmServer.repository(Files.createDirectory(dir.resolve("serving"))));
  }

  @AfterAll
  static void stop() {
    server.close();
  }

  @Test
  void serverIsLiveAndReady() {
    assertTrue(server.get("/v2/health/live").json(200).get("live").asBoolean());
    assertTrue(server.get("/v2/health/ready").json(200).get("ready").asBoolean());
  }

  @Test
  void serverMetadata() {
    JsonNode metadata = server.get("/v2").json(200);
    assertEquals("berth", metadata.get("name").asText());
    assertTrue(metadata.get("version").isTextual());
    assertTrue(metadata.get("extensions").isArray());
  }

  @Test
  void modelMetadataShowsTextInAndEmbeddingOut() {
    JsonNode metadata = server.get("/v2/models/minilm").json(200);
    assertEquals("minilm", metadata.get("name").asText());
    assertEquals(List.of("1"), JSON.convertValue(metadata.get("versions"), List.class));
    assertEquals("onnxruntime_onnx", metadata.get("platform").asText());

    JsonNode text = metadata.get("inputs").get(0);
    assertEquals("text", text.get("name").asText());
    assertEquals("BYTES", text.get("datatype").asText());
    assertEquals(List.of(-1), JSON.convertValue(text.get("shape"), List.class));

    JsonNode outputs = metadata.get("outputs");
    assertEquals(1, outputs.size());
    assertEquals("embedding", outputs.get(0).get("name").asText());
    assertEquals("FP32", outputs.get(0).get("datatype").asText());
    assertEquals(List.of(-1, 384), JSON.convertValue(outputs.get(0).get("shape"), List.class));

    JsonNode version = server.get("/v2/models/minilm/versions/1").json(200);
    assertEquals(List.of("1"), JSON.convertValue(version.get("versions"), List.class));
  }

  @Test
  void modelAndVersionAreReady() {
    JsonNode model = server.get("/v2/models/minilm/ready").json(200);
    assertEquals("minilm", model.get("name").asText());
    assertTrue(model.get("ready").asBoolean());
    assertTrue(server.get("/v2/models/minilm/versions/1/ready").json(200).get("ready").asBoolean());
    assertEquals(404, server.get("/v2/models/minilm/versions/2/ready").status());
    assertEquals(404, server.get("/v2/models/nope/ready").status());
  }

  @Test
  void untilItsModelsHaveLoadedTheServerIsNotReadyAndSaysSo() throws Exception {
    dev.berth.runtime.InferenceService loading =
        dev.berth.runtime.InferenceService.create(
            MiniLmServer.repository(Files.createDirectory(dir.resolve("loading"))),
            new dev.berth.runtime.ServingMetrics());
    try (MiniLmServer early = MiniLmServer.serve(loading)) {
      assertEquals(200, early.get("/v2/health/live").status());
      JsonNode ready = early.get("/v2/health/ready").json(503);
      assertEquals("loading models", ready.get("reason").asText());

      loading.loadModels();
      assertTrue(early.get("/v2/health/ready").json(200).get("ready").asBoolean());
      assertFalse(early.get("/v2/health/ready").json().has("reason"));
    }
  }

  @Test
  void drainingTurnsReadinessOffAndRefusesInference() throws Exception {
    try (MiniLmServer draining =
        MiniLmServer.start(
            MiniLmServer.repository(Files.createDirectory(dir.resolve("draining"))))) {
      assertEquals(1, draining.embed(List.of("Before draining.")).length);

      assertTrue(draining.server().service().drain(Duration.ofSeconds(5)), "nothing was in flight");

      assertEquals(200, draining.get("/v2/health/live").status(), "still live while draining");
      JsonNode ready = draining.get("/v2/health/ready").json(503);
      assertFalse(ready.get("ready").asBoolean());
      assertEquals("draining", ready.get("reason").asText());
      assertFalse(draining.get("/v2/models/minilm/ready").json(503).get("ready").asBoolean());
      assertFalse(
          draining.get("/v2/models/minilm/versions/1/ready").json(503).get("ready").asBoolean());
      MiniLmServer.Response refused =
          draining.post(
              "/v2/models/minilm/infer", MiniLmServer.textRequest(List.of("After draining.")));
      assertTrue(refused.json(503).get("error").asText().contains("shutting down"), refused.body());
      assertTrue(refused.headers().firstValue("Retry-After").isPresent(), "Retry-After");
      assertEquals(
          503,
          draining
              .post("/v1/models/minilm:predict", "{\"instances\": [\"After draining.\"]}")
              .status());
    }
  }
}
