package dev.berth.cli;

import static dev.berth.cli.ContainerTestEnv.berth;
import static dev.berth.cli.ContainerTestEnv.docker;
import static dev.berth.cli.ContainerTestEnv.skopeo;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.store.DockerCredentials;
import dev.berth.store.OciModelStore;
import dev.berth.store.OciReference;
import dev.berth.store.TestRegistry;
import dev.berth.store.TestS3;
import java.net.http.HttpClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A runtime-only image: {@code berth build} of a service whose models are kept in a registry and in
 * S3 carries none of them (only the model store, on a jlink runtime), and its container fetches
 * them at start. A model update is a push and a new container, no build.
 */
class RemoteModelImageIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Pattern URL = Pattern.compile("\"url\":\"(http://[^\"]+)\"");
  private static final String INFER =
      "{\"inputs\":[{\"name\":\"text\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"a ship"
          + " finds its berth\"]}]}";

  @TempDir Path work;
  private final List<String> containers = new ArrayList<>();

  @AfterEach
  void removeContainers() throws Exception {
    for (String c : containers) {
      docker(work, "rm", "-f", c);
    }
  }

  @Test
  void aRuntimeOnlyImageFetchesItsModelsAtStartAndAPushUpdatesThem() throws Exception {
    ContainerTestEnv env = ContainerTestEnv.require();
    Path model = BerthProcess.examples().resolve("minilm");
    try (TestRegistry registry = TestRegistry.start(Files.createDirectories(work.resolve("reg")));
        TestS3 s3 = TestS3.start(Files.createDirectories(work.resolve("s3")));
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()) {
      OciReference ref = OciReference.parse("oci://" + registry.address() + "/models/minilm:prod");
      OciModelStore store = new OciModelStore(DockerCredentials.none(), line -> {});
      store.push(model, "minilm", "onnx", ref);
      s3.upload(model, "models", "team/minilm");
      Path service = work.resolve("berth.yaml");
      Files.writeString(
          service,
          "apiVersion: berth.dev/v1\n"
              + "kind: ModelService\n"
              + "name: remote\n"
              + "models:\n"
              + "  - source: "
              + ref
              + "\n"
              + "    name: embedder\n"
              + "    batching: {max-batch-size: 4}\n"
              + "  - source: s3://models/team/minilm\n"
              + "serving:\n"
              + "  s3-endpoint: "
              + s3.endpoint()
              + "\n"
              + "image:\n"
              + "  to: berth/remote:1\n");

      Path tar = work.resolve("remote.tar");
      // the build's class-data training run fetches the models too, with the same credentials
      ContainerTestEnv.Result built =
          berth(
                  work,
                  java.util.Map.of(
                      "AWS_ACCESS_KEY_ID",
                      TestS3.ACCESS_KEY,
                      "AWS_SECRET_ACCESS_KEY",
                      TestS3.SECRET_KEY,
                      "AWS_EC2_METADATA_DISABLED",
                      "true"),
                  "build",
                  service.toString(),
                  "--to",
                  "tar:" + tar,
                  "--base",
                  env.base,
                  "--runtime",
                  "jlink",
                  "--cache-dir",
                  work.resolve("cache").toString())
              .ok();
      assertTrue(built.err().contains("layer 1/"), built.err());
      assertFalse(
          Pattern.compile("layer \\d+/\\d+ +model ").matcher(built.err()).find(),
          "no model layer: " + built.err());
      assertFalse(built.err().contains("could not fetch"), built.err());
      assertTrue(
          Files.isDirectory(work.resolve("cache/models/sha256")),
          "the training run fetched into the build cache");
      JsonNode config =
          JSON.readTree(skopeo(work, "inspect", "--config", "oci-archive:" + tar).ok().out())
              .path("config");
      assertTrue(
          config.path("Cmd").toString().contains("\"serve\",\"/opt/berth/berth.yaml\""),
          config.toString());
      assertEquals(
          "embedder=" + ref + ",minilm=s3://models/team/minilm",
          config.path("Labels").path("dev.berth.remote-models").asText());
      assertTrue(docker(work, "load", "-i", tar.toString()).ok().out().contains("berth/remote:1"));

      String url = start(http, s3, "berth/remote:1");
      for (String name : new String[] {"embedder", "minilm"}) {
        assertEquals(
            200,
            BerthProcess.post(http, url + "/v2/models/" + name + "/infer", INFER).statusCode(),
            name);
      }
      assertEquals(4, maxBatchSize(http, url, "embedder"));
      assertEquals(32, maxBatchSize(http, url, "minilm"));
      assertEquals(2, instances(http, url, "embedder"));

      // a new model is a push and a new container: the image stays as it was
      Path next = BerthProcess.copyTree(model, work.resolve("next"));
      Path yaml = next.resolve("model.yaml");
      Files.writeString(
          yaml, Files.readString(yaml).replaceFirst("(?m)^instances: 2", "instances: 1"));
      store.push(next, "minilm", "onnx", ref);
      String url2 = start(http, s3, "berth/remote:1");
      // the pushed model.yaml is the one served, with the service's batching over it still
      assertEquals(1, instances(http, url2, "embedder"));
      assertEquals(4, maxBatchSize(http, url2, "embedder"));
    }
  }

  /** Runs the image on the host's network (the test registry and S3 listen on loopback). */
  private String start(HttpClient http, TestS3 s3, String image) throws Exception {
    String name = "berth-it-remote-" + Long.toHexString(System.nanoTime());
    containers.add(name);
    docker(
            work,
            "run",
            "-d",
            "--name",
            name,
            "--network",
            "host",
            "-e",
            "AWS_ACCESS_KEY_ID=" + TestS3.ACCESS_KEY,
            "-e",
            "AWS_SECRET_ACCESS_KEY=" + TestS3.SECRET_KEY,
            "-e",
            "AWS_EC2_METADATA_DISABLED=true",
            image,
            "serve",
            "/opt/berth/berth.yaml",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--grpc-port",
            "0",
            "--s3-endpoint",
            s3.endpoint(),
            "--log-format",
            "json")
        .ok();
    String[] url = new String[1];
    await()
        .atMost(Duration.ofSeconds(120))
        .pollInterval(Duration.ofMillis(200))
        .until(
            () -> {
              ContainerTestEnv.Result logs = docker(work, "logs", name);
              Matcher m = URL.matcher(logs.err());
              if (m.find()) {
                url[0] = m.group(1);
                return true;
              }
              String state = docker(work, "inspect", "-f", "{{.State.Running}}", name).out();
              if (state.trim().equals("false")) {
                throw new AssertionError("the container stopped:\n" + logs.out() + logs.err());
              }
              return false;
            });
    String logs = docker(work, "logs", name).err();
    assertTrue(logs.contains("pulling oci://"), logs);
    for (String line : logs.split("\n")) {
      assertTrue(line.isBlank() || line.startsWith("{\""), "not a log line of Berth's: " + line);
    }
    return url[0];
  }

  private static int instances(HttpClient http, String url, String model) throws Exception {
    String body = BerthProcess.get(http, url + "/v2/models/" + model + "/config").body();
    return JSON.readTree(body).path("instance_group").get(0).path("count").asInt();
  }

  private static int maxBatchSize(HttpClient http, String url, String model) throws Exception {
    String body = BerthProcess.get(http, url + "/v2/models/" + model + "/config").body();
    return JSON.readTree(body).path("max_batch_size").asInt();
  }
}
