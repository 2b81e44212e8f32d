package dev.berth.cli;

import static dev.berth.cli.ContainerTestEnv.berth;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.http.HttpClient;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The example's loop, as its README gives it, on a real Docker engine and the real data set: {@code
 * examples/fashion-mnist/train.yaml} packs Train.java into an image, trains in a container, passes
 * the gate (accuracy >= 0.86 on the 10,000 test images) and publishes version 1; {@code berth
 * serve} serves it and {@code berth eval} measures it; then {@code train-shuffled.yaml} trains the
 * same network on shuffled labels, the gate refuses it (exit code 3), nothing is published, and the
 * good version answers every request sent meanwhile. The job files are used as they are; only
 * {@code --to} (a scratch repository) and {@code --base} (the test's Java base, as the machine has
 * no registry access) are given.
 */
class FashionMnistTrainingLoopIT {
  private static final Path EXAMPLE = BerthProcess.examples().resolveSibling("fashion-mnist");
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path work;

  private ContainerTestEnv.Result train(ContainerTestEnv env, String job, Path repo)
      throws Exception {
    return berth(
        work,
        "train",
        EXAMPLE.resolve(job).toString(),
        "--to",
        repo.toString(),
        "--base",
        env.baseJava,
        "--cache-dir",
        work.resolve("cache").toString());
  }

  @Test
  void trainGateServeEvaluateThenABrokenRunIsRefusedWhileTheGoodVersionAnswers() throws Exception {
    ContainerTestEnv env = ContainerTestEnv.require();
    Path repo = work.resolve("repo");

    ContainerTestEnv.Result good = train(env, "train.yaml", repo).ok();
    Matcher passed =
        Pattern.compile("passed the gate: accuracy (0\\.\\d+) >= 0\\.8600").matcher(good.err());
    assertTrue(passed.find(), good.err());
    double gated = Double.parseDouble(passed.group(1));
    assertTrue(good.out().contains("published model 'fashion-mnist' version 1"), good.out());
    assertEquals(
        Files.readString(EXAMPLE.resolve("model.yaml")),
        Files.readString(repo.resolve("fashion-mnist/model.yaml")));

    Path serverWork = Files.createDirectories(work.resolve("server"));
    try (BerthProcess server =
        BerthProcess.start(
            serverWork,
            "serve",
            repo.toString(),
            "--port",
            "0",
            "--grpc-port",
            "0",
            "--poll-repository",
            "1s",
            "--log-format",
            "json")) {
      String url = server.awaitServing();
      BerthProcess.Finished eval =
          BerthProcess.run(
              work,
              Duration.ofSeconds(120),
              "eval",
              url,
              "--model",
              "fashion-mnist",
              "--data",
              "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz",
              "--report",
              work.resolve("report").toString());
      assertEquals(0, eval.code(), eval.err());
      JsonNode metrics = JSON.readTree(work.resolve("report/metrics.json").toFile());
      assertEquals(gated, metrics.get("accuracy").asDouble(), 1e-4, "the gate measured it so");
      // what a gated canary's evaluation Job runs: the gate's own data and metric, as JSON
      BerthProcess.Finished byGate =
          BerthProcess.run(
              work,
              Duration.ofSeconds(120),
              "eval",
              url,
              "--model",
              "fashion-mnist",
              "--gate",
              repo.resolve("fashion-mnist/model.yaml").toString(),
              "--result",
              work.resolve("gate.json").toString());
      assertEquals(0, byGate.code(), byGate.err());
      JsonNode result = JSON.readTree(work.resolve("gate.json").toFile());
      assertEquals(gated, result.get("figure").asDouble(), 1e-4, result.toString());
      assertEquals("accuracy", result.get("metric").asText());
      assertEquals(0.86, result.get("min").asDouble());
      assertEquals(0.02, result.get("max_drop").asDouble());
      assertEquals("1", result.get("version").asText());

      // the broken run trains while a client calls the served version, 50 times a second
      AtomicLong answered = new AtomicLong();
      ConcurrentLinkedQueue<String> failures = new ConcurrentLinkedQueue<>();
      String pixels = "[" + String.join(",", java.util.Collections.nCopies(784, "0.5")) + "]";
      String body =
          "{\"inputs\":[{\"name\":\"pixels\",\"shape\":[1,784],\"datatype\":\"FP32\",\"data\":"
              + pixels
              + "}]}";
      try (HttpClient http = HttpClient.newHttpClient();
          var client = java.util.concurrent.Executors.newSingleThreadScheduledExecutor()) {
        client.scheduleAtFixedRate(
            () -> {
              try {
                HttpResponse<String> r =
                    BerthProcess.post(http, url + "/v2/models/fashion-mnist/infer", body);
                if (r.statusCode() != 200 || !r.body().contains("\"1\"")) {
                  failures.add(r.statusCode() + " " + r.body());
                }
                answered.incrementAndGet();
              } catch (Exception e) {
                failures.add(e.toString());
              }
            },
            0,
            20,
            java.util.concurrent.TimeUnit.MILLISECONDS);
        ContainerTestEnv.Result shuffled = train(env, "train-shuffled.yaml", repo);
        client.shutdown();
        assertTrue(client.awaitTermination(30, java.util.concurrent.TimeUnit.SECONDS));
        assertEquals(3, shuffled.code(), shuffled.out() + shuffled.err());
        assertTrue(
            shuffled.err().contains("refused by the gate in model.yaml: accuracy 0.")
                && shuffled.err().contains("version 1 serving at"),
            shuffled.err());
        assertTrue(shuffled.err().contains("nothing was published"), shuffled.err());
      }
      assertEquals(List.of(), List.copyOf(failures), "failed requests");
      assertTrue(answered.get() > 0, "the clients were answered meanwhile");
      try (var versions = Files.list(repo.resolve("fashion-mnist"))) {
        assertEquals(
            List.of("1", "model.yaml"),
            versions.map(p -> p.getFileName().toString()).sorted().toList(),
            "nothing published, nothing left behind");
      }
      String log =
          Files.readString(serverWork.resolve("stdout.log"))
              + Files.readString(serverWork.resolve("stderr.log"));
      assertTrue(log.contains("version 1 passed its gate: accuracy"), log);
    }
  }
}
