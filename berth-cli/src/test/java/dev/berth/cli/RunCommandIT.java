package dev.berth.cli;

import static dev.berth.cli.ContainerTestEnv.berth;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code berth run}, {@code ps}, {@code logs} and {@code stop} on a real Docker engine. */
class RunCommandIT {
  private static final Pattern READY = Pattern.compile("is ready at (http://127\\.0\\.0\\.1:\\d+)");

  @TempDir Path work;

  @Test
  void runPsLogsStop() throws Exception {
    ContainerTestEnv env = ContainerTestEnv.require();
    String service = ContainerTestEnv.examples().resolve("minilm/berth.yaml").toString();
    ContainerTestEnv.Result run =
        berth(
            work,
            "run",
            service,
            "--port",
            "0",
            "--grpc-port",
            "0",
            "--base",
            env.baseJava,
            "--cache-dir",
            work.resolve("cache").toString());
    try {
      run.ok();
      Matcher m = READY.matcher(run.out());
      assertTrue(m.find(), run.out());
      String url = m.group(1);
      HttpResponse<String> r =
          BerthProcess.post(
              HttpClient.newHttpClient(),
              url + "/v2/models/minilm/infer",
              "{\"inputs\":[{\"name\":\"text\",\"shape\":[1],\"datatype\":\"BYTES\","
                  + "\"data\":[\"hello\"]}]}");
      assertEquals(200, r.statusCode(), r.body());

      String ps = berth(work, "ps").ok().out();
      assertTrue(ps.contains("berth-minilm") && ps.contains("running"), ps);

      ContainerTestEnv.Result logs = berth(work, "logs", "minilm", "--tail", "50").ok();
      assertTrue(logs.err().contains("\"message\":\"serving\""), logs.out() + logs.err());

      ContainerTestEnv.Result again = berth(work, "run", service, "--image", "berth/minilm:1");
      assertEquals(2, again.code());
      assertTrue(again.err().contains("berth stop minilm"), again.err());
      assertEquals(0, berth(work, "stop", "minilm").code());

      // the same image run with API keys: the file is mounted read-only, never built in
      Files.writeString(
          work.resolve("keys.yaml"),
          "keys:\n  - name: ci\n    key: a-key-of-at-least-16-chars\n    roles: [infer]\n");
      Path protectedService = work.resolve("berth.yaml");
      Files.writeString(
          protectedService,
          Files.readString(Path.of(service))
              .replace(
                  "../models/minilm",
                  ContainerTestEnv.examples().resolve("models/minilm").toString())
              .replace("serving:\n", "serving:\n  api-keys: {file: keys.yaml}\n"));
      ContainerTestEnv.Result keyed =
          berth(
              work,
              "run",
              protectedService.toString(),
              "--image",
              "berth/minilm:1",
              "--port",
              "0",
              "--grpc-port",
              "0");
      keyed.ok();
      Matcher k = READY.matcher(keyed.out());
      assertTrue(k.find(), keyed.out());
      String keyedUrl = k.group(1);
      HttpClient http = HttpClient.newHttpClient();
      String body =
          "{\"inputs\":[{\"name\":\"text\",\"shape\":[1],\"datatype\":\"BYTES\","
              + "\"data\":[\"hello\"]}]}";
      assertEquals(
          401, BerthProcess.post(http, keyedUrl + "/v2/models/minilm/infer", body).statusCode());
      HttpResponse<String> withKey =
          http.send(
              HttpRequest.newBuilder(java.net.URI.create(keyedUrl + "/v2/models/minilm/infer"))
                  .header("Authorization", "Bearer a-key-of-at-least-16-chars")
                  .header("Content-Type", "application/json")
                  .POST(HttpRequest.BodyPublishers.ofString(body))
                  .build(),
              HttpResponse.BodyHandlers.ofString());
      assertEquals(200, withKey.statusCode(), withKey.body());
      assertEquals(
          200,
          http.send(
                  HttpRequest.newBuilder(java.net.URI.create(keyedUrl + "/v2/health/ready"))
                      .build(),
                  HttpResponse.BodyHandlers.ofString())
              .statusCode(),
          "health stays open for probes");
    } finally {
      ContainerTestEnv.Result stop = berth(work, "stop", "minilm");
      assertEquals(0, stop.code(), stop.err());
      assertTrue(stop.out().contains("exit code 0"), stop.out());
    }
    String after = berth(work, "ps", "--all").ok().out();
    assertFalse(after.contains("berth-minilm"), after);
  }

  @Test
  void noEngineIsAClearMessage() throws Exception {
    ContainerTestEnv.Result r =
        ContainerTestEnv.exec(
            work,
            List.of(
                "env",
                "DOCKER_HOST=unix://" + work.resolve("no-engine.sock"),
                BerthProcess.java(),
                "-jar",
                BerthProcess.jar().toString(),
                "ps"));
    assertEquals(2, r.code(), r.out() + r.err());
    assertTrue(r.err().contains("No container engine answers at"), r.err());
    assertTrue(r.err().contains("DOCKER_HOST"), r.err());
  }
}
