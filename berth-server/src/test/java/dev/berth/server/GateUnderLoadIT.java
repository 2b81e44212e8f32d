package dev.berth.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.berth.onnx.testing.OnnxModelWriter;
import dev.berth.onnx.testing.OnnxModelWriter.ElemType;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * model.yaml's gate under live traffic over real HTTP: each new version is evaluated in process on
 * the gate's data set before it takes traffic; one that falls below the minimum, or drops too far
 * below the version serving, stays out with its figure and threshold in the index and the metrics,
 * and the version serving keeps answering every request.
 *
 * <p>The models are three-class "classifiers" {@code y = x + bias}; the data's label is the largest
 * of a row's three values, so a zero bias is always right (accuracy 1.0), a bias of 0.5 on class 2
 * turns the 10 close rows wrong (0.9), and a bias of 5 on class 2 answers class 2 for every row
 * (0.3).
 */
class GateUnderLoadIT {
  private static final int CLIENTS = 4;

  @TempDir Path repo;
  private LifecycleServer server;
  private final AtomicBoolean running = new AtomicBoolean(true);
  private final ConcurrentLinkedQueue<String> failures = new ConcurrentLinkedQueue<>();
  private final AtomicIntegerArray answersByVersion = new AtomicIntegerArray(10);
  private final AtomicLong answers = new AtomicLong();
  private final List<Thread> clients = new ArrayList<>();

  @BeforeEach
  void start() throws IOException {
    writeData(repo.resolve("m/gate/test.csv"));
    addVersion(1, 0f);
    LifecycleServer.modelYaml(
        repo,
        "m",
        "version-policy: {latest: 1}\nlabels: [a, b, c]\n"
            + "gate: {data: gate/test.csv, metric: accuracy, min: 0.8, max-drop: 0.05}");
    server = LifecycleServer.start(repo);
    for (int i = 0; i < CLIENTS; i++) {
      clients.add(
          Thread.ofPlatform()
              .name("client-" + i)
              .start(
                  () -> {
                    while (running.get()) {
                      try {
                        LifecycleServer.Answer a = server.infer3("m");
                        if (a.status() != 200) {
                          failures.add(a.status() + " " + a.body());
                          continue;
                        }
                        answersByVersion.incrementAndGet(
                            Integer.parseInt(a.json().path("model_version").asText()));
                        answers.incrementAndGet();
                      } catch (RuntimeException | AssertionError e) {
                        failures.add(e.toString());
                      }
                    }
                  }));
    }
  }

  @AfterEach
  void stop() throws InterruptedException {
    running.set(false);
    for (Thread t : clients) {
      t.join(Duration.ofSeconds(30));
    }
    server.close();
  }

  private void awaitAnswers(long more) {
    long target = answers.get() + more;
    org.awaitility.Awaitility.await()
        .atMost(Duration.ofSeconds(60))
        .until(() -> answers.get() >= target || !failures.isEmpty());
  }

  @Test
  void aVersionBelowTheGateStaysOutWhileTheServingOneAnswersEveryRequest() {
    awaitAnswers(100);
    JsonNode first = server.indexEntry("m", "1");
    assertEquals("READY", first.path("state").asText(), first.toString());
    assertTrue(
        first.path("reason").asText().contains("accuracy 1.0000 >= 0.8000"), first.toString());

    // below the minimum, found by a poll
    addVersion(2, 5f);
    server.service().pollRepository();
    JsonNode refused = server.indexEntry("m", "2");
    assertEquals("UNAVAILABLE", refused.path("state").asText(), refused.toString());
    assertTrue(
        refused.path("reason").asText().contains("refused by the gate")
            && refused.path("reason").asText().contains("accuracy 0.3000 < 0.9500"),
        refused.toString());
    awaitAnswers(100);

    // above the minimum but 0.1 below the serving version, loaded through the repository API
    addVersion(3, 0.5f);
    LifecycleServer.Answer load = server.post("/v2/repository/models/m/load", "");
    assertTrue(load.status() >= 400, load.toString());
    assertTrue(load.body().contains("accuracy 0.9000 < 0.9500"), load.body());
    assertTrue(load.body().contains("version 1 serving at 1.0000"), load.body());
    assertEquals("UNAVAILABLE", server.indexEntry("m", "3").path("state").asText());
    awaitAnswers(100);

    // as good as the serving one: it passes and takes the traffic
    addVersion(4, 0f);
    server.service().pollRepository();
    assertEquals("READY", server.indexEntry("m", "4").path("state").asText());
    long before = answersByVersion.get(4);
    awaitAnswers(100);
    running.set(false);

    assertEquals(List.of(), List.copyOf(failures), "failed requests");
    assertEquals(0, answersByVersion.get(2) + answersByVersion.get(3), answersByVersion::toString);
    assertTrue(answersByVersion.get(4) > before, answersByVersion::toString);

    String metrics = server.get("/metrics").body();
    assertTrue(metrics.contains("berth_model_gate_passed{model=\"m\",version=\"2\"} 0.0"), metrics);
    assertTrue(metrics.contains("berth_model_gate_passed{model=\"m\",version=\"4\"} 1.0"), metrics);
    assertTrue(
        metrics.contains(
            "berth_model_gate_score{metric=\"accuracy\",model=\"m\",version=\"3\"} 0.9"),
        metrics);
    assertTrue(
        metrics.contains(
            "berth_model_gate_threshold{metric=\"accuracy\",model=\"m\",version=\"3\"} 0.95"),
        metrics);
  }

  @Test
  void aGateThatCannotEvaluateRefusesTheVersionAndSaysWhy() throws IOException {
    awaitAnswers(50);
    Files.delete(repo.resolve("m/gate/test.csv"));
    addVersion(2, 0f);
    server.service().pollRepository();
    JsonNode entry = server.indexEntry("m", "2");
    assertEquals("UNAVAILABLE", entry.path("state").asText(), entry.toString());
    assertTrue(
        entry.path("reason").asText().contains("could not evaluate")
            && entry.path("reason").asText().contains("test.csv"),
        entry.toString());
    awaitAnswers(50);
    running.set(false);
    assertEquals(List.of(), List.copyOf(failures), "failed requests");
    assertEquals(0, answersByVersion.get(2), answersByVersion::toString);
  }

  @Test
  void aStartWithARefusedNewestVersionServesTheOneBelowIt(@TempDir Path other) {
    writeData(other.resolve("m/gate/test.csv"));
    addVersion(other, 1, 0f);
    addVersion(other, 2, 0.5f); // 0.9: above the minimum, 0.1 below version 1
    LifecycleServer.modelYaml(
        other,
        "m",
        "version-policy: {latest: 1}\nlabels: [a, b, c]\n"
            + "gate: {data: gate/test.csv, min: 0.8, max-drop: 0.05}");
    try (LifecycleServer restarted = LifecycleServer.start(other)) {
      JsonNode refused = restarted.indexEntry("m", "2");
      assertEquals("UNAVAILABLE", refused.path("state").asText(), refused.toString());
      assertTrue(
          refused.path("reason").asText().contains("version 1 serving at 1.0000"),
          refused.toString());
      JsonNode kept = restarted.indexEntry("m", "1");
      assertEquals("READY", kept.path("state").asText(), kept.toString());
      LifecycleServer.Answer a = restarted.infer3("m");
      assertEquals("1", a.json(200).path("model_version").asText(), a.body());
    }
  }

  /** {@code y = x + [0, 0, bias]} over three classes. */
  private void addVersion(int version, float bias) {
    addVersion(repo, version, bias);
  }

  private static void addVersion(Path repo, int version, float bias) {
    OnnxModelWriter.graph("bias_" + version)
        .input("x", ElemType.FLOAT, -1, 3)
        .output("y", ElemType.FLOAT, -1, 3)
        .initializer("c", new long[] {3}, 0f, 0f, bias)
        .node("Add", List.of("x", "c"), List.of("y"))
        .write(LifecycleServer.modelFile(repo, "m", version));
  }

  /**
   * 100 rows, 30 of each class with a clear margin and 10 more of class a where c is close behind:
   * a bias of 0.5 on c turns just those wrong.
   */
  private static void writeData(Path file) {
    StringBuilder csv = new StringBuilder("x0,x1,x2,label\n");
    String[] clear = {"1,0,0,a", "0,1,0,b", "0,0,1,c"};
    for (int i = 0; i < 30; i++) {
      for (String row : clear) {
        csv.append(row).append('\n');
      }
    }
    for (int i = 0; i < 10; i++) {
      csv.append("1,0,0.8,a\n");
    }
    try {
      Files.createDirectories(file.getParent());
      Files.writeString(file, csv);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
