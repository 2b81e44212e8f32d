package dev.berth.cli;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.store.DockerCredentials;
import dev.berth.store.OciModelStore;
import dev.berth.store.OciReference;
import dev.berth.store.TestRegistry;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * berth serve oci://...: served from the model cache, a restart that downloads nothing, a moved tag
 * switched to without failing a request, and a damaged push that leaves the model serving.
 */
class ServeFromRegistryIT {
  private static final String TOKEN = "registry-test-token-0123456789";
  private static final String INFER =
      "{\"inputs\":[{\"name\":\"text\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"a ship"
          + " finds its berth\"]}]}";

  @TempDir Path work;

  /** The example model with another max-batch-size: a new manifest, visible in its config. */
  private Path variant(String name, int maxBatchSize) throws Exception {
    Path dir = BerthProcess.copyTree(BerthProcess.examples().resolve("minilm"), work.resolve(name));
    Path yaml = dir.resolve("model.yaml");
    String text = Files.readString(yaml);
    assertTrue(text.contains("max-batch-size: 32"), "the example's model.yaml changed");
    Files.writeString(yaml, text.replace("max-batch-size: 32", "max-batch-size: " + maxBatchSize));
    return dir;
  }

  private static int maxBatchSize(HttpClient http, String url) throws Exception {
    String body = BerthProcess.get(http, url + "/v2/models/minilm/config").body();
    return new ObjectMapper().readTree(body).path("max_batch_size").asInt();
  }

  @Test
  void servesFromTheCacheFollowsAMovedTagAndKeepsServingThroughADamagedPush() throws Exception {
    try (TestRegistry registry = TestRegistry.start(Files.createDirectories(work.resolve("reg")));
        HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build()) {
      OciModelStore store = new OciModelStore(DockerCredentials.none(), line -> {});
      OciReference ref = OciReference.parse("oci://" + registry.address() + "/models/minilm:prod");
      store.push(variant("v1", 32), "minilm", "onnx", ref);
      String cache = work.resolve("cache").toString();
      String[] serve = {
        "serve",
        ref.toString(),
        "--port",
        "0",
        "--grpc-port",
        "0",
        "--model-cache",
        cache,
        "--poll-repository",
        "300ms",
        "--management",
        "--management-token",
        TOKEN,
        "--log-format",
        "json"
      };
      try (BerthProcess server =
          BerthProcess.start(Files.createDirectories(work.resolve("first")), serve)) {
        String url = server.awaitServing();
        assertTrue(
            Files.readString(server.stderr).contains("pulling " + ref), "a cold cache pulls");
        assertEquals(
            200, BerthProcess.post(http, url + "/v2/models/minilm/infer", INFER).statusCode());
        assertEquals(32, maxBatchSize(http, url));

        // a second server on the same cache downloads nothing
        try (BerthProcess second =
            BerthProcess.start(Files.createDirectories(work.resolve("second")), serve)) {
          String url2 = second.awaitServing();
          assertEquals(
              200, BerthProcess.post(http, url2 + "/v2/models/minilm/infer", INFER).statusCode());
          String log = Files.readString(second.stderr);
          assertTrue(log.contains("from the model cache"), log);
          assertFalse(log.contains("pulling "), log);
        }

        // requests keep flowing while the tag moves and the model reloads
        AtomicBoolean stop = new AtomicBoolean();
        AtomicInteger ok = new AtomicInteger();
        ConcurrentLinkedQueue<String> failures = new ConcurrentLinkedQueue<>();
        Thread client =
            Thread.ofPlatform()
                .start(
                    () -> {
                      while (!stop.get()) {
                        try {
                          HttpResponse<String> r =
                              BerthProcess.post(http, url + "/v2/models/minilm/infer", INFER);
                          if (r.statusCode() == 200) {
                            ok.incrementAndGet();
                          } else {
                            failures.add(r.statusCode() + " " + r.body());
                          }
                        } catch (Exception e) {
                          failures.add(e.toString());
                        }
                      }
                    });
        try {
          store.push(variant("v2", 16), "minilm", "onnx", ref);
          await().atMost(Duration.ofSeconds(60)).until(() -> maxBatchSize(http, url) == 16);
          int before = ok.get();
          await().atMost(Duration.ofSeconds(30)).until(() -> ok.get() > before + 5);
        } finally {
          stop.set(true);
          client.join();
        }
        assertEquals(List.of(), List.copyOf(failures), "no request failed across the switch");

        // a push whose version layer is damaged in the registry: the model keeps serving
        OciModelStore.Pushed bad = store.push(variant("v3", 8), "minilm", "onnx", ref);
        String manifest =
            new String(
                store.resolve(ref).manifest().bytes(), java.nio.charset.StandardCharsets.UTF_8);
        String layer =
            new ObjectMapper().readTree(manifest).path("layers").get(1).path("digest").asText();
        Path data = registry.blobData(layer);
        byte[] bytes = Files.readAllBytes(data);
        bytes[bytes.length / 3] ^= 1;
        Files.write(data, bytes);
        await()
            .atMost(Duration.ofSeconds(60))
            .until(
                () ->
                    http.send(
                            HttpRequest.newBuilder(URI.create(url + "/v2/repository/index"))
                                .header("Authorization", "Bearer " + TOKEN)
                                .POST(HttpRequest.BodyPublishers.noBody())
                                .build(),
                            HttpResponse.BodyHandlers.ofString())
                        .body()
                        .contains("could not be refreshed"));
        assertEquals(16, maxBatchSize(http, url), "still the second push");
        assertEquals(
            200, BerthProcess.post(http, url + "/v2/models/minilm/infer", INFER).statusCode());
        assertFalse(bad.digest().isEmpty());
      }
    }
  }
}
