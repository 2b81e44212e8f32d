package dev.berth.cli;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.store.TestS3;
import java.net.http.HttpClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.core.sync.RequestBody;

/**
 * berth serve s3://...: the example model served from a real S3 API server with the standard AWS
 * variables, a replaced model.yaml picked up by the poll, a restart served from the cache while the
 * store refuses, and refused credentials stopping a start from an empty cache with exit code 2.
 */
class ServeFromS3IT {
  private static final String INFER =
      "{\"inputs\":[{\"name\":\"text\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"a ship"
          + " finds its berth\"]}]}";

  @TempDir Path work;

  /** The test server's key in the standard variables, and no AWS file or instance of this host. */
  private Map<String, String> awsEnvironment() {
    return TestS3.clientEnvironment(work);
  }

  @Test
  void servesAnS3PrefixFollowsANewObjectAndRefusesWrongCredentials() throws Exception {
    try (TestS3 s3 = TestS3.start(Files.createDirectories(work.resolve("s3")));
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()) {
      Path model = BerthProcess.examples().resolve("minilm");
      s3.upload(model, "models", "team/minilm");
      Map<String, String> env = awsEnvironment();
      String[] serve = {
        "serve",
        "s3://models/team/minilm",
        "--s3-endpoint",
        s3.endpoint(),
        "--port",
        "0",
        "--grpc-port",
        "0",
        "--model-cache",
        work.resolve("cache").toString(),
        "--poll-repository",
        "300ms",
        "--log-format",
        "json"
      };
      try (BerthProcess server =
          BerthProcess.start(Files.createDirectories(work.resolve("server")), env, serve)) {
        String url = server.awaitServing();
        assertEquals(
            200, BerthProcess.post(http, url + "/v2/models/minilm/infer", INFER).statusCode());
        String yaml = Files.readString(model.resolve("model.yaml"));
        assertTrue(yaml.contains("max-batch-size: 32"));
        s3.client()
            .putObject(
                b -> b.bucket("models").key("team/minilm/model.yaml"),
                RequestBody.fromString(yaml.replace("max-batch-size: 32", "max-batch-size: 4")));
        await()
            .atMost(Duration.ofSeconds(60))
            .until(
                () ->
                    BerthProcess.get(http, url + "/v2/models/minilm/config")
                        .body()
                        .contains("\"max_batch_size\":4"));
        assertEquals(
            200, BerthProcess.post(http, url + "/v2/models/minilm/infer", INFER).statusCode());
      }

      // with what it served in the cache, a restart serves it at once, whatever the store says
      Map<String, String> wrong = new java.util.HashMap<>(env);
      wrong.put("AWS_SECRET_ACCESS_KEY", "not-the-secret");
      try (BerthProcess warm =
          BerthProcess.start(Files.createDirectories(work.resolve("warm")), wrong, serve)) {
        String url = warm.awaitServing();
        assertEquals(
            200, BerthProcess.post(http, url + "/v2/models/minilm/infer", INFER).statusCode());
        await()
            .atMost(Duration.ofSeconds(60))
            .until(
                () -> Files.readString(warm.stderr).contains("serving what the model cache holds"));
      }

      // from an empty cache, refused credentials stop the start
      serve[java.util.Arrays.asList(serve).indexOf("--model-cache") + 1] =
          work.resolve("cold-cache").toString();
      try (BerthProcess refused =
          BerthProcess.start(Files.createDirectories(work.resolve("refused")), wrong, serve)) {
        await().atMost(Duration.ofSeconds(60)).until(() -> !refused.process.isAlive());
        assertEquals(2, refused.process.exitValue());
        String err = Files.readString(refused.stderr);
        assertTrue(err.contains("s3://models/team/minilm"), err);
        assertTrue(err.contains("AWS_ACCESS_KEY_ID"), err);
      }
    }
  }

  @Test
  void modelsAddedToOrRemovedFromAnS3RepositoryLoadAndUnloadOnThePoll() throws Exception {
    try (TestS3 s3 = TestS3.start(Files.createDirectories(work.resolve("s3")));
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()) {
      Path model = BerthProcess.examples().resolve("minilm");
      s3.upload(model, "repo", "models/first");
      Map<String, String> env = awsEnvironment();
      try (BerthProcess server =
          BerthProcess.start(
              Files.createDirectories(work.resolve("server")),
              env,
              "serve",
              "s3://repo/models",
              "--s3-endpoint",
              s3.endpoint(),
              "--port",
              "0",
              "--grpc-port",
              "0",
              "--model-cache",
              work.resolve("cache").toString(),
              "--poll-repository",
              "300ms")) {
        String url = server.awaitServing();
        assertEquals(200, BerthProcess.get(http, url + "/v2/models/first/ready").statusCode());
        s3.upload(model, "repo", "models/second");
        await()
            .atMost(Duration.ofSeconds(60))
            .until(
                () -> BerthProcess.get(http, url + "/v2/models/second/ready").statusCode() == 200);
        for (var o :
            s3.client().listObjectsV2(b -> b.bucket("repo").prefix("models/first/")).contents()) {
          s3.client().deleteObject(b -> b.bucket("repo").key(o.key()));
        }
        await()
            .atMost(Duration.ofSeconds(60))
            .until(
                () -> BerthProcess.get(http, url + "/v2/models/first/ready").statusCode() != 200);
        assertEquals(200, BerthProcess.get(http, url + "/v2/models/second/ready").statusCode());
      }
    }
  }
}
