package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.onnx.testing.OnnxModelWriter;
import dev.berth.onnx.testing.OnnxModelWriter.ElemType;
import java.net.http.HttpClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code berth models list|load|unload} against a real {@code berth serve} started from the
 * packaged jar, polling its repository.
 */
class ModelsCommandIT {
  private static final String TOKEN = "models-test-management-token";
  private static final Duration RUN = Duration.ofSeconds(60);

  @TempDir Path work;

  private static void addVersion(Path repo, String model, int version) {
    OnnxModelWriter.graph("add_" + version)
        .input("x", ElemType.FLOAT, -1, 2)
        .output("y", ElemType.FLOAT, -1, 2)
        .initializer("c", new long[0], (float) version)
        .node("Add", List.of("x", "c"), List.of("y"))
        .write(repo.resolve(model).resolve(Integer.toString(version)).resolve("model.onnx"));
  }

  @Test
  void listLoadAndUnloadAgainstARunningServer() throws Exception {
    Path repo = Files.createDirectories(work.resolve("repo"));
    addVersion(repo, "m", 1);
    try (BerthProcess berth =
        BerthProcess.start(
            work,
            "serve",
            repo.toString(),
            "--port",
            "0",
            "--grpc-port",
            "0",
            "--log-format",
            "json",
            "--poll-repository",
            "200ms",
            "--management",
            "--management-token",
            TOKEN)) {
      String url = berth.awaitServing();

      BerthProcess.Finished refused = BerthProcess.run(work, RUN, "models", "list", "--url", url);
      assertEquals(2, refused.code(), refused.out());
      assertTrue(refused.err().contains("401"), refused.err());

      BerthProcess.Finished list =
          BerthProcess.run(work, RUN, "models", "list", "--url", url, "--token", TOKEN);
      assertEquals(0, list.code(), list.err());
      assertTrue(
          list.out().matches("(?s)MODEL +VERSION +STATE +REASON\\R+m +1 +READY\\R"), list.out());

      // the poll loads a new version folder by itself
      addVersion(repo, "m", 2);
      HttpClient http = HttpClient.newHttpClient();
      org.awaitility.Awaitility.await()
          .atMost(Duration.ofSeconds(60))
          .until(
              () ->
                  http.send(
                          java.net.http.HttpRequest.newBuilder(
                                  java.net.URI.create(url + "/v2/repository/index"))
                              .header("Authorization", "Bearer " + TOKEN)
                              .POST(
                                  java.net.http.HttpRequest.BodyPublishers.ofString(
                                      "{\"ready\":true}"))
                              .build(),
                          java.net.http.HttpResponse.BodyHandlers.ofString())
                      .body()
                      .contains("\"version\":\"2\""));

      BerthProcess.Finished unload =
          BerthProcess.run(work, RUN, "models", "unload", "m", "--url", url, "--token", TOKEN);
      assertEquals(0, unload.code(), unload.err());
      assertTrue(unload.out().contains("unloaded model 'm'"), unload.out());
      assertTrue(unload.out().matches("(?s).*m +2 +UNLOADED +unloaded on request.*"), unload.out());
      String infer =
          "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2],\"datatype\":\"FP32\",\"data\":[0,0]}]}";
      assertEquals(503, BerthProcess.post(http, url + "/v2/models/m/infer", infer).statusCode());

      BerthProcess.Finished load =
          BerthProcess.run(work, RUN, "models", "load", "m", "--url", url, "--token", TOKEN);
      assertEquals(0, load.code(), load.err());
      assertTrue(load.out().matches("(?s).*m +1 +READY\\R.*m +2 +READY.*"), load.out());
      assertTrue(
          BerthProcess.post(http, url + "/v2/models/m/infer", infer)
              .body()
              .contains("\"model_version\":\"2\""));

      BerthProcess.Finished missing =
          BerthProcess.run(work, RUN, "models", "load", "nope", "--url", url, "--token", TOKEN);
      assertEquals(2, missing.code());
      assertTrue(
          missing.err().contains("404")
              && missing.err().contains("'nope' is not in the repository"),
          missing.err());

      BerthProcess.Finished badName =
          BerthProcess.run(work, RUN, "models", "unload", "../m", "--url", url, "--token", TOKEN);
      assertEquals(2, badName.code());
      assertTrue(badName.err().contains("not a valid model name"), badName.err());
    }
  }

  @Test
  void aServerThatIsNotThereIsExitCodeTwoWithTheFix() throws Exception {
    int port;
    try (java.net.ServerSocket free =
        new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      port = free.getLocalPort();
    }
    BerthProcess.Finished r =
        BerthProcess.run(work, RUN, "models", "list", "--url", "http://127.0.0.1:" + port);
    assertEquals(2, r.code(), r.out());
    assertTrue(r.err().contains("connection refused") && r.err().contains("--url"), r.err());
  }
}
