package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * berth serve berth.yaml whose models come from a directory, a registry and an S3 prefix at once:
 * each under the service's name for it, with the service's settings over its own, and a model the
 * pod has mounted (--model-mount) served from the mount without asking its source.
 */
class ServeServiceFromStoresIT {
  private static final String INFER =
      "{\"inputs\":[{\"name\":\"text\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"a ship"
          + " finds its berth\"]}]}";

  @TempDir Path work;

  private Map<String, String> awsEnvironment() {
    return TestS3.clientEnvironment(work);
  }

  private static int maxBatchSize(HttpClient http, String url, String model) throws Exception {
    String body = BerthProcess.get(http, url + "/v2/models/" + model + "/config").body();
    return new ObjectMapper().readTree(body).path("max_batch_size").asInt();
  }

  @Test
  void servesADirectoryARegistryAndAnS3PrefixAsOneServiceAndAMountedModelFromItsMount()
      throws Exception {
    Path model = BerthProcess.examples().resolve("minilm");
    Path service = work.resolve("berth.yaml");
    String[] serve = {
      "serve",
      service.toString(),
      "--port",
      "0",
      "--grpc-port",
      "0",
      "--model-cache",
      work.resolve("cache").toString(),
      "--log-format",
      "json"
    };
    String registryAddress;
    try (TestRegistry registry = TestRegistry.start(Files.createDirectories(work.resolve("reg")));
        TestS3 s3 = TestS3.start(Files.createDirectories(work.resolve("s3")));
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()) {
      registryAddress = registry.address();
      OciReference ref = OciReference.parse("oci://" + registryAddress + "/models/minilm:1");
      new OciModelStore(DockerCredentials.none(), line -> {}).push(model, "minilm", "onnx", ref);
      s3.upload(model, "models", "team/minilm");
      Files.writeString(
          service,
          "apiVersion: berth.dev/v1\n"
              + "kind: ModelService\n"
              + "name: mixed\n"
              + "models:\n"
              + "  - path: "
              + model
              + "\n"
              + "    name: local\n"
              + "  - source: "
              + ref
              + "\n"
              + "    name: embedder\n"
              + "    batching: {max-batch-size: 4}\n"
              + "  - source: s3://models/team/minilm\n"
              + "serving:\n"
              + "  s3-endpoint: "
              + s3.endpoint()
              + "\n");
      try (BerthProcess server =
          BerthProcess.start(
              Files.createDirectories(work.resolve("server")), awsEnvironment(), serve)) {
        String url = server.awaitServing();
        for (String name : new String[] {"local", "embedder", "minilm"}) {
          assertEquals(
              200,
              BerthProcess.post(http, url + "/v2/models/" + name + "/infer", INFER).statusCode(),
              name);
        }
        assertEquals(4, maxBatchSize(http, url, "embedder"), "the service's batching applies");
        assertEquals(32, maxBatchSize(http, url, "minilm"), "the model's own settings apply");
      }
    }

    // the registry is gone; a pod that has the model mounted serves it from the mount
    Path mounted = work.resolve("mounted");
    BerthProcess.copyTree(model, mounted);
    Files.writeString(
        service,
        "apiVersion: berth.dev/v1\n"
            + "kind: ModelService\n"
            + "name: mounted\n"
            + "models:\n"
            + "  - source: oci://"
            + registryAddress
            + "/models/minilm:1\n"
            + "    name: embedder\n"
            + "    batching: {max-batch-size: 4}\n");
    String[] mountedServe = java.util.Arrays.copyOf(serve, serve.length + 2);
    mountedServe[serve.length] = "--model-mount";
    mountedServe[serve.length + 1] = "embedder=" + mounted;
    mountedServe[java.util.Arrays.asList(serve).indexOf("--model-cache") + 1] =
        work.resolve("empty-cache").toString();
    try (HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        BerthProcess server =
            BerthProcess.start(Files.createDirectories(work.resolve("mount")), mountedServe)) {
      String url = server.awaitServing();
      assertEquals(
          200, BerthProcess.post(http, url + "/v2/models/embedder/infer", INFER).statusCode());
      assertEquals(4, maxBatchSize(http, url, "embedder"));
      String log = Files.readString(server.stderr);
      assertTrue(log.contains("as mounted at " + mounted), log);
    }

    // a mount for a model the service does not have is refused, naming the ones it has
    BerthProcess.Finished wrong =
        BerthProcess.run(
            Files.createDirectories(work.resolve("wrong")),
            Duration.ofSeconds(60),
            "serve",
            service.toString(),
            "--port",
            "0",
            "--grpc-port",
            "0",
            "--model-mount",
            "other=" + mounted);
    assertEquals(2, wrong.code(), wrong.err());
    assertTrue(wrong.err().contains("no remote model 'other' (it has [embedder])"), wrong.err());
  }
}
