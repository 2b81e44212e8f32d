package dev.berth.server;

import static dev.berth.server.LifecycleServer.addCorruptVersion;
import static dev.berth.server.LifecycleServer.addVersion;
import static dev.berth.server.LifecycleServer.delete;
import static dev.berth.server.LifecycleServer.modelYaml;
import static dev.berth.server.LifecycleServer.versionOf;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The model-repository API over real HTTP with real ONNX Runtime: load, reload, unload, the index
 * of what is and is not loaded, version policies, and clear errors.
 */
class ModelRepositoryApiIT {
  @TempDir Path repo;
  private LifecycleServer server;

  private LifecycleServer start() {
    server = LifecycleServer.start(repo);
    return server;
  }

  @AfterEach
  void stop() {
    if (server != null) {
      server.close();
    }
  }

  @Test
  void aModelDirectoryAddedLaterIsListedAsUnloadedAndLoadsOnRequest() {
    addVersion(repo, "m", 1);
    start();
    addVersion(repo, "late", 4);

    JsonNode listed = server.indexEntry("late", "");
    assertEquals("UNLOADED", listed.path("state").asText());
    assertTrue(listed.path("reason").asText().contains("/v2/repository/models/late/load"));
    assertEquals(404, server.infer("late", 0).status());

    JsonNode loaded = server.post("/v2/repository/models/late/load", "").json(200);
    assertEquals("late", loaded.path("name").asText());
    assertEquals("4", loaded.path("versions").path(0).path("version").asText());
    assertEquals("READY", loaded.path("versions").path(0).path("state").asText());
    assertEquals(4, versionOf(server.infer("late", 0)));
    assertEquals(Map.of("4", "READY"), server.states("late"));
  }

  @Test
  void unloadRefusesNewRequestsSayingHowToLoadAgain_andLoadBringsItBack() {
    addVersion(repo, "m", 1);
    addVersion(repo, "other", 2);
    start();
    assertEquals(1, versionOf(server.infer("m", 0)));

    JsonNode after = server.post("/v2/repository/models/m/unload", "{}").json(200);
    assertEquals("UNLOADED", after.path("versions").path(0).path("state").asText());
    LifecycleServer.Answer refused = server.infer("m", 0);
    assertEquals(503, refused.status());
    String error = refused.json().path("error").asText();
    assertTrue(error.contains("unloaded") && error.contains("/load"), error);
    assertEquals(503, server.get("/v2/models/m/ready").status());
    assertEquals(Map.of("1", "UNLOADED"), server.states("m"));
    assertEquals(2, versionOf(server.infer("other", 0)), "other models keep serving");

    server.service().pollRepository();
    assertEquals(503, server.infer("m", 0).status(), "a poll leaves an unloaded model unloaded");

    server.post("/v2/repository/models/m/load", "").json(200);
    assertEquals(1, versionOf(server.infer("m", 0)));
    assertEquals(200, server.get("/v2/models/m/ready").status());
  }

  @Test
  void loadRereadsModelYamlAndAppliesTheVersionPolicy() {
    addVersion(repo, "m", 1);
    addVersion(repo, "m", 2);
    addVersion(repo, "m", 3);
    modelYaml(repo, "m", "version-policy: {latest: 1}");
    start();
    assertEquals(Map.of("1", "UNLOADED", "2", "UNLOADED", "3", "READY"), server.states("m"));
    assertTrue(
        server.indexEntry("m", "1").path("reason").asText().contains("version-policy"),
        server.indexEntry("m", "1").toString());
    assertEquals(3, versionOf(server.infer("m", 0)));
    assertEquals(
        503,
        server
            .post(
                "/v2/models/m/versions/1/infer",
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2],\"datatype\":\"FP32\","
                    + "\"data\":[0,0]}]}")
            .status());

    modelYaml(repo, "m", "version-policy: {specific: [1, 2]}");
    server.post("/v2/repository/models/m/load", "").json(200);
    assertEquals(Map.of("1", "READY", "2", "READY", "3", "UNLOADED"), server.states("m"));
    assertEquals(2, versionOf(server.infer("m", 0)));
    assertEquals(
        1,
        versionOf(
            server.post(
                "/v2/models/m/versions/1/infer",
                "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2],\"datatype\":\"FP32\","
                    + "\"data\":[0,0]}]}")));

    modelYaml(repo, "m", "");
    server.post("/v2/repository/models/m/load", "").json(200);
    assertEquals(Map.of("1", "READY", "2", "READY", "3", "READY"), server.states("m"));
  }

  @Test
  void reloadSwapsInAFreshEngineForTheSameVersion() {
    addVersion(repo, "m", 1);
    start();
    assertEquals(1, versionOf(server.infer("m", 0)));
    // same version number, new weights: y = x + 1 becomes y = x + 1 computed by a new file
    addVersion(repo, "m", 1);
    server.post("/v2/repository/models/m/load", "").json(200);
    assertEquals(1, versionOf(server.infer("m", 0)));
    assertEquals(Map.of("1", "READY"), server.states("m"));
  }

  @Test
  void aCorruptNewVersionFailsTheLoadWithItsReason_andTheOldOneKeepsServing() {
    addVersion(repo, "m", 1);
    modelYaml(repo, "m", "version-policy: {latest: 1}");
    start();
    addCorruptVersion(repo, "m", 2);

    LifecycleServer.Answer failed = server.post("/v2/repository/models/m/load", "");
    assertEquals(400, failed.status(), failed.body());
    assertTrue(failed.json().path("error").asText().contains("version 2"), failed.body());

    assertEquals(Map.of("1", "READY", "2", "UNAVAILABLE"), server.states("m"));
    assertTrue(
        server.indexEntry("m", "1").path("reason").asText().contains("kept serving"),
        server.indexEntry("m", "1").toString());
    assertTrue(!server.indexEntry("m", "2").path("reason").asText().isEmpty());
    assertEquals(1, versionOf(server.infer("m", 0)));

    // a reload of a serving version that now fails keeps the engine it had
    delete(repo.resolve("m/2"));
    addCorruptVersion(repo, "m", 1);
    LifecycleServer.Answer reload = server.post("/v2/repository/models/m/load", "");
    assertEquals(400, reload.status(), reload.body());
    assertEquals(1, versionOf(server.infer("m", 0)));
    assertTrue(
        server.indexEntry("m", "1").path("reason").asText().contains("reload failed"),
        server.indexEntry("m", "1").toString());
  }

  @Test
  void errorsAreClearAndTheServerKeepsServing() throws Exception {
    addVersion(repo, "m", 1);
    Files.createDirectories(repo.resolve("badyaml/1"));
    modelYaml(repo, "badyaml", "version-policy: {latest: 0}");
    start();

    assertEquals(404, server.post("/v2/repository/models/nope/load", "").status());
    assertEquals(404, server.post("/v2/repository/models/nope/unload", "").status());
    LifecycleServer.Answer traversal = server.post("/v2/repository/models/..%2Fm/load", "");
    assertEquals(400, traversal.status());
    assertTrue(traversal.json().path("error").asText().contains("not a valid model name"));
    assertEquals(405, server.get("/v2/repository/models/m/load").status());
    assertEquals(404, server.post("/v2/repository/models/m/reload", "").status());
    LifecycleServer.Answer parameters =
        server.post("/v2/repository/models/m/load", "{\"parameters\": {\"config\": \"{}\"}}");
    assertEquals(400, parameters.status());
    assertTrue(parameters.json().path("error").asText().contains("parameters"));
    assertEquals(400, server.post("/v2/repository/models/m/load", "{not json").status());

    LifecycleServer.Answer badYaml = server.post("/v2/repository/models/badyaml/load", "");
    assertEquals(400, badYaml.status());
    String error = badYaml.json().path("error").asText();
    assertTrue(error.contains("version-policy") && error.contains("model.yaml"), error);
    assertTrue(
        server.indexEntry("badyaml", "1").path("reason").asText().contains("version-policy"));

    JsonNode readyOnly = server.post("/v2/repository/index", "{\"ready\": true}").json(200);
    assertEquals(1, readyOnly.size(), readyOnly.toString());
    assertEquals("m", readyOnly.path(0).path("name").asText());
    assertEquals(1, versionOf(server.infer("m", 0)));
    // strict readiness: badyaml is served and not ready, until it is unloaded
    assertEquals(503, server.get("/v2/health/ready").status());
    assertEquals(200, server.post("/v2/repository/models/badyaml/unload", "").status());
    assertEquals(200, server.get("/v2/health/ready").status());
  }

  @Test
  void aPollLoadsNewVersionsAndModels_andUnloadsRemovedOnes() {
    addVersion(repo, "m", 1);
    start();
    addVersion(repo, "m", 2);
    addVersion(repo, "n", 5);
    assertEquals(1, versionOf(server.infer("m", 0)), "nothing changes before a poll");

    server.service().pollRepository();
    assertEquals(Map.of("1", "READY", "2", "READY"), server.states("m"));
    assertEquals(2, versionOf(server.infer("m", 0)));
    assertEquals(5, versionOf(server.infer("n", 0)));

    delete(repo.resolve("m/2"));
    server.service().pollRepository();
    assertEquals(Map.of("1", "READY"), server.states("m"));
    assertEquals(1, versionOf(server.infer("m", 0)));

    delete(repo.resolve("n"));
    server.service().pollRepository();
    assertEquals(Map.of(), server.states("n"));
    assertEquals(404, server.infer("n", 0).status());
  }

  @Test
  void aPollFollowsTheVersionPolicy_andRetriesAFailedVersionOnceItsFilesChange() {
    addVersion(repo, "m", 1);
    modelYaml(repo, "m", "version-policy: {latest: 1}");
    start();

    addCorruptVersion(repo, "m", 2);
    server.service().pollRepository();
    assertEquals(Map.of("1", "READY", "2", "UNAVAILABLE"), server.states("m"));
    assertEquals(1, versionOf(server.infer("m", 0)));
    server.service().pollRepository();
    assertEquals(Map.of("1", "READY", "2", "UNAVAILABLE"), server.states("m"));

    addVersion(repo, "m", 2); // the copy finished: the file changed
    server.service().pollRepository();
    assertEquals(Map.of("1", "UNLOADED", "2", "READY"), server.states("m"));
    assertEquals(2, versionOf(server.infer("m", 0)));
  }

  @Test
  void pollingInTheBackgroundPicksUpANewVersion() {
    addVersion(repo, "m", 1);
    start();
    server.service().pollRepositoryEvery(java.time.Duration.ofMillis(50));
    addVersion(repo, "m", 2);
    org.awaitility.Awaitility.await()
        .atMost(java.time.Duration.ofSeconds(30))
        .until(() -> "READY".equals(server.states("m").get("2")));
    assertEquals(2, versionOf(server.infer("m", 0)));
  }
}
