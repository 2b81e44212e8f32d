package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code berth serve berth.yaml}: a service file's models with its serving settings, secrets read
 * from its files, options winning over the file.
 */
class ServeServiceFileIT {
  private static final String KEY = "a-key-of-at-least-16-chars";
  private static final String TOKEN = "a-token-of-at-least-16-chars";
  private static final HttpClient HTTP = HttpClient.newHttpClient();

  @TempDir Path dir;

  private Path serviceFile(String serving) throws Exception {
    Path file = dir.resolve("berth.yaml");
    Files.writeString(
        file,
        "apiVersion: berth.dev/v1\nkind: ModelService\nname: minilm\n"
            + "models: [{path: "
            + BerthProcess.examples().resolve("minilm")
            + ", versions: [1]}]\n"
            + "serving:\n"
            + serving);
    return file;
  }

  private static HttpResponse<String> send(String url, String body, String bearer)
      throws Exception {
    HttpRequest.Builder b = HttpRequest.newBuilder(URI.create(url));
    if (bearer != null) {
      b.header("Authorization", "Bearer " + bearer);
    }
    b.header("Content-Type", "application/json");
    b.method(
        body == null ? "GET" : "POST",
        body == null
            ? HttpRequest.BodyPublishers.noBody()
            : HttpRequest.BodyPublishers.ofString(body));
    return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  private static String sentences(int n) {
    StringBuilder data = new StringBuilder();
    for (int i = 0; i < n; i++) {
      data.append(i == 0 ? "" : ",").append("\"sentence ").append(i).append('"');
    }
    return "{\"inputs\":[{\"name\":\"text\",\"shape\":["
        + n
        + "],\"datatype\":\"BYTES\",\"data\":["
        + data
        + "]}]}";
  }

  @Test
  void servesTheFilesModelsWithItsSettingsAndSecrets() throws Exception {
    Files.writeString(
        dir.resolve("keys.yaml"),
        "keys:\n  - name: ci\n    key: " + KEY + "\n    roles: [infer]\n");
    Files.writeString(dir.resolve("token.txt"), TOKEN + "\n");
    Path file =
        serviceFile(
            "  port: 1234\n" // the option below wins
                + "  max-request-rows: 2\n"
                + "  api-keys: {file: keys.yaml, secret: {name: keys, key: keys.yaml}}\n"
                + "  management-token: {file: token.txt}\n");
    try (BerthProcess berth =
        BerthProcess.start(
            dir,
            "serve",
            file.toString(),
            "--port",
            "0",
            "--grpc-port",
            "0",
            "--log-format",
            "json")) {
      String url = berth.awaitServing();
      String infer = url + "/v2/models/minilm/infer";
      assertEquals(401, send(infer, sentences(1), null).statusCode());
      HttpResponse<String> ok = send(infer, sentences(2), KEY);
      assertEquals(200, ok.statusCode(), ok.body());
      HttpResponse<String> rows = send(infer, sentences(3), KEY);
      assertEquals(413, rows.statusCode(), rows.body());
      assertTrue(rows.body().contains("--max-request-rows"), rows.body());
      assertEquals(200, send(url + "/v2/health/ready", null, null).statusCode());
      HttpResponse<String> index = send(url + "/v2/repository/index", "{}", TOKEN);
      assertEquals(200, index.statusCode(), index.body());
    }
  }

  @Test
  void aSecretGivenOnlyForKubernetesIsAClearError() throws Exception {
    Path file = serviceFile("  api-keys: {secret: {name: keys, key: keys.yaml}}\n");
    BerthProcess.Finished r =
        BerthProcess.run(dir, Duration.ofSeconds(60), "serve", file.toString(), "--port", "0");
    assertEquals(2, r.code(), r.out() + r.err());
    assertTrue(r.err().contains("serving.api-keys"), r.err());
    assertTrue(r.err().contains("serving.api-keys.file"), r.err());
  }
}
