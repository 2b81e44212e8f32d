package dev.berth.cli;

import static dev.berth.cli.ContainerTestEnv.berth;
import static dev.berth.cli.ContainerTestEnv.docker;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.http.HttpClient;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * One service per engine besides ONNX (a TorchScript model, a SavedModel, an XGBoost model), built
 * into an image by {@code berth build}, run by the Docker engine and answering over OIP v2. Each
 * image carries its own engine's libraries and natives and no other engine's.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class EngineImageIT {
  private static final ObjectMapper JSON = new ObjectMapper();

  private Path work;
  private ContainerTestEnv env;
  private final List<String> containers = new ArrayList<>();
  private final HttpClient http = HttpClient.newHttpClient();

  @BeforeAll
  void setUp() throws Exception {
    env = ContainerTestEnv.require();
    work = Files.createTempDirectory(Path.of("target").toAbsolutePath(), "engine-image-it-");
  }

  @AfterAll
  void removeContainers() throws Exception {
    for (String c : containers) {
      docker(work, "rm", "-f", c);
    }
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource({
    "torch-mlp, pytorch-native-cpu, tensorflow-core-native, probabilities, 10",
    "tf-mlp, tensorflow-core-native, pytorch-native-cpu, probabilities, 10",
    "xgb, xgboost4j, pytorch-native-cpu, probabilities, 3",
  })
  void anImageOfTheEngineServesItsModel(
      String model, String carried, String notCarried, String output, int width) throws Exception {
    Path dir = Files.createDirectories(work.resolve(model));
    Path repo = dir.resolve("models");
    switch (model) {
      case EngineModels.TORCH -> EngineModels.torch(repo);
      case EngineModels.TENSORFLOW -> EngineModels.tensorflow(repo);
      default -> EngineModels.xgboost(repo);
    }
    Path service = dir.resolve("berth.yaml");
    Files.writeString(
        service,
        "apiVersion: berth.dev/v1\nkind: ModelService\nname: "
            + model
            + "\nmodels:\n  - path: models/"
            + model
            + "\nserving:\n  log-format: json\n");
    String ref = env.registry + "/it/" + model + ":1";
    // the Java base with the OpenMP runtime, which XGBoost's library links
    berth(
            dir,
            "build",
            service.toString(),
            "--to",
            ref,
            "--base",
            env.baseLlm,
            "--cache-dir",
            work.resolve("cache").toString())
        .ok();

    String libs =
        docker(dir, "run", "--rm", "--entrypoint", "/bin/ls", ref, "/opt/berth/lib").ok().out();
    assertTrue(libs.contains(carried), "the image carries its engine:\n" + libs);
    assertFalse(libs.contains(notCarried), "and no other engine:\n" + libs);
    assertFalse(libs.contains("llama-"), libs);

    String name = "berth-engine-it-" + Long.toHexString(System.nanoTime());
    containers.add(name);
    docker(dir, "run", "-d", "--name", name, "-p", "127.0.0.1:0:8080", ref).ok();
    String port = docker(dir, "port", name, "8080/tcp").ok().out().trim();
    String url = "http://" + port.substring(port.lastIndexOf('\n') + 1).trim();
    await()
        .atMost(Duration.ofSeconds(180))
        .pollInterval(Duration.ofMillis(200))
        .ignoreExceptions()
        .until(
            () ->
                BerthProcess.get(http, url + "/v2/models/" + model + "/ready").statusCode() == 200);

    HttpResponse<String> r =
        BerthProcess.post(
            http, url + "/v2/models/" + model + "/infer", EngineModels.request(model));
    assertEquals(200, r.statusCode(), r.body());
    JsonNode out = JSON.readTree(r.body()).path("outputs").get(0);
    assertEquals(output, out.path("name").asText(), r.body());
    assertEquals(width, out.path("data").size(), r.body());
    double sum = 0;
    for (JsonNode p : out.path("data")) {
      sum += p.asDouble();
    }
    assertEquals(1.0, sum, 1e-4, "class probabilities: " + r.body());

    docker(dir, "stop", "-t", "30", name).ok();
    String exit = docker(dir, "inspect", "-f", "{{.State.ExitCode}}", name).ok().out().trim();
    assertEquals("0", exit, docker(dir, "logs", name).err());
  }
}
