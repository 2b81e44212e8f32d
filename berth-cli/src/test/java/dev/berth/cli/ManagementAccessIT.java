package dev.berth.cli;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code berth serve --management / --management-token / --api-keys} as a user runs them: the
 * refusals at start, the generated token, and the audit log line a management call leaves.
 */
class ManagementAccessIT {
  private static final Pattern TOKEN_LINE =
      Pattern.compile("management token \\(generated.*: (\\S+)");

  @TempDir Path work;

  /** Runs berth with a clean environment for the token (the test's own may hold one). */
  private Process start(Path out, Path err, String token, String... args) throws Exception {
    ProcessBuilder pb = new ProcessBuilder(BerthProcess.command(args));
    pb.environment().put("ORT_DISABLE_TELEMETRY", "1");
    pb.environment().put("OPT_OUT_TRACKING", "true");
    pb.environment().put("DJL_CACHE_DIR", work.resolve("djl").toString());
    pb.environment().remove("BERTH_MANAGEMENT_TOKEN");
    if (token != null) {
      pb.environment().put("BERTH_MANAGEMENT_TOKEN", token);
    }
    return pb.redirectOutput(out.toFile()).redirectError(err.toFile()).start();
  }

  private BerthProcess.Finished run(String token, String... args) throws Exception {
    Path out = work.resolve("out.txt");
    Path err = work.resolve("err.txt");
    Process p = start(out, err, token, args);
    if (!p.waitFor(120, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError("berth did not exit");
    }
    return new BerthProcess.Finished(p.exitValue(), Files.readString(out), Files.readString(err));
  }

  private static List<String> serve(String... more) {
    List<String> args =
        new java.util.ArrayList<>(
            List.of(
                "serve",
                BerthProcess.examples().toString(),
                "--port",
                "0",
                "--grpc-port",
                "0",
                "--log-format",
                "json"));
    args.addAll(List.of(more));
    return args;
  }

  @Test
  void theRepositoryApiOnAnOpenAddressNeedsAChosenToken() throws Exception {
    BerthProcess.Finished r =
        run(null, serve("--management", "--host", "0.0.0.0").toArray(String[]::new));
    assertEquals(2, r.code(), r.out() + r.err());
    assertTrue(
        r.err().contains("refusing to serve the repository API on 0.0.0.0")
            && r.err().contains("BERTH_MANAGEMENT_TOKEN"),
        r.err());
  }

  @Test
  void badTokensAndKeyFilesAreExitCodeTwo() throws Exception {
    BerthProcess.Finished shortToken =
        run(null, serve("--management", "--management-token", "too-short").toArray(String[]::new));
    assertEquals(2, shortToken.code());
    assertTrue(shortToken.err().contains("at least 16 characters"), shortToken.err());

    BerthProcess.Finished shortEnv = run("too-short", serve("--management").toArray(String[]::new));
    assertEquals(2, shortEnv.code());
    assertTrue(shortEnv.err().contains("BERTH_MANAGEMENT_TOKEN: "), shortEnv.err());

    BerthProcess.Finished lonely =
        run(null, serve("--management-token", "a-token-long-enough").toArray(String[]::new));
    assertEquals(2, lonely.code());
    assertTrue(lonely.err().contains("add --management"), lonely.err());

    BerthProcess.Finished noFile =
        run(null, serve("--api-keys", work.resolve("none.yaml").toString()).toArray(String[]::new));
    assertEquals(2, noFile.code());
    assertTrue(noFile.err().contains("is not a file"), noFile.err());

    Path bad = work.resolve("keys.yaml");
    Files.writeString(bad, "keys: [{name: app, key: the-key-of-the-app, roles: [admin]}]");
    BerthProcess.Finished badRole =
        run(null, serve("--api-keys", bad.toString()).toArray(String[]::new));
    assertEquals(2, badRole.code());
    assertTrue(
        badRole.err().contains("keys[0].roles") && badRole.err().contains("'admin' is not a role"),
        badRole.err());
  }

  @Test
  void onLoopbackATokenIsGeneratedPrintedOnceAndWorks() throws Exception {
    Path out = work.resolve("serve.out");
    Path err = work.resolve("serve.err");
    Process p = start(out, err, null, serve("--management").toArray(String[]::new));
    try {
      Pattern url = Pattern.compile("\"url\":\"(http://[^\"]+)\"");
      String[] base = new String[1];
      await()
          .atMost(Duration.ofSeconds(120))
          .pollInterval(Duration.ofMillis(100))
          .until(
              () -> {
                if (!p.isAlive()) {
                  throw new IllegalStateException("berth exited:\n" + Files.readString(err));
                }
                Matcher m = url.matcher(Files.readString(err));
                if (m.find()) {
                  base[0] = m.group(1);
                  return true;
                }
                return false;
              });
      Matcher m = TOKEN_LINE.matcher(Files.readString(out));
      assertTrue(m.find(), Files.readString(out));
      String token = m.group(1);
      assertTrue(!Files.readString(err).contains(token), "the token must not reach the log");

      HttpClient http = HttpClient.newHttpClient();
      HttpResponse<String> refused =
          http.send(
              HttpRequest.newBuilder(URI.create(base[0] + "/v2/repository/index"))
                  .POST(HttpRequest.BodyPublishers.ofString("{}"))
                  .build(),
              HttpResponse.BodyHandlers.ofString());
      assertEquals(401, refused.statusCode());
      HttpResponse<String> index =
          http.send(
              HttpRequest.newBuilder(URI.create(base[0] + "/v2/repository/index"))
                  .header("Authorization", "Bearer " + token)
                  .POST(HttpRequest.BodyPublishers.ofString("{}"))
                  .build(),
              HttpResponse.BodyHandlers.ofString());
      assertEquals(200, index.statusCode(), index.body());
      assertTrue(index.body().contains("\"name\":\"minilm\""), index.body());

      // the audit log: JSON lines from logger berth.audit, the refusal and the call
      await()
          .atMost(Duration.ofSeconds(10))
          .until(() -> Files.readString(err).contains("\"who\":\"management-token\""));
      List<String> audit =
          Files.readAllLines(err).stream().filter(l -> l.contains("\"berth.audit\"")).toList();
      assertEquals(2, audit.size(), String.join("\n", audit));
      assertTrue(
          audit.get(0).contains("\"who\":\"anonymous\"")
              && audit.get(0).contains("\"result\":\"401\"")
              && audit.get(0).contains("\"level\":\"warn\""),
          audit.get(0));
      assertTrue(
          audit.get(1).contains("\"action\":\"POST /v2/repository/index\"")
              && audit.get(1).contains("\"result\":\"200\"")
              && audit.get(1).contains("\"time\":"),
          audit.get(1));
    } finally {
      p.destroy();
      p.waitFor(30, TimeUnit.SECONDS);
    }
  }
}
