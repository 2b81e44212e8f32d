package dev.berth.server;

import static dev.berth.server.LifecycleServer.addCorruptVersion;
import static dev.berth.server.LifecycleServer.addVersion;
import static dev.berth.server.LifecycleServer.modelYaml;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicIntegerArray;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Versions switch while clients send requests over real HTTP without pause: no request fails, the
 * answers move to the new version, and a version that cannot load leaves the old one serving.
 */
class VersionSwitchUnderLoadIT {
  private static final int CLIENTS = 6;

  @TempDir Path repo;
  private LifecycleServer server;
  private final AtomicBoolean running = new AtomicBoolean(true);
  private final ConcurrentLinkedQueue<String> failures = new ConcurrentLinkedQueue<>();
  private final AtomicIntegerArray answersByVersion = new AtomicIntegerArray(10);
  private final AtomicLong answers = new AtomicLong();
  private final List<Thread> clients = new ArrayList<>();

  /** The version every request sent after {@code nanos} must be answered by (or a later one). */
  private record Switch(int version, long nanos) {}

  private volatile Switch switched;

  @BeforeEach
  void start() {
    addVersion(repo, "m", 1);
    // a short gather window keeps requests queued and in flight while a version retires
    modelYaml(repo, "m", "version-policy: {latest: 1}\nbatching: {max-queue-delay: 2ms}");
    server = LifecycleServer.start(repo);
    for (int i = 0; i < CLIENTS; i++) {
      clients.add(
          Thread.ofPlatform()
              .name("client-" + i)
              .start(
                  () -> {
                    while (running.get()) {
                      try {
                        long sent = System.nanoTime();
                        LifecycleServer.Answer a = server.infer("m", 0);
                        if (a.status() != 200) {
                          failures.add(a.status() + " " + a.body());
                          continue;
                        }
                        int version = LifecycleServer.versionOf(a);
                        Switch done = switched;
                        if (done != null && sent - done.nanos() > 0 && version < done.version()) {
                          failures.add(
                              "sent after the switch to version "
                                  + done.version()
                                  + ", answered by version "
                                  + version);
                        }
                        answersByVersion.incrementAndGet(version);
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

  /** Waits until the clients have had {@code more} further answers. */
  private void awaitAnswers(long more) {
    long target = answers.get() + more;
    org.awaitility.Awaitility.await()
        .atMost(Duration.ofSeconds(60))
        .until(() -> answers.get() >= target || !failures.isEmpty());
  }

  @Test
  void loadingANewVersionUnderTrafficFailsNoRequestAndAnswersMoveToIt() {
    awaitAnswers(200);
    addVersion(repo, "m", 2);
    server.post("/v2/repository/models/m/load", "").json(200);
    switched = new Switch(2, System.nanoTime());
    awaitAnswers(200);

    // reload the serving version repeatedly, and switch by polling, all under traffic
    for (int i = 0; i < 5; i++) {
      server.post("/v2/repository/models/m/load", "").json(200);
      awaitAnswers(50);
    }
    addVersion(repo, "m", 3);
    server.service().pollRepository();
    awaitAnswers(200);
    running.set(false);

    assertEquals(List.of(), List.copyOf(failures), "failed requests");
    assertTrue(
        answersByVersion.get(1) > 0 && answersByVersion.get(2) > 0, answersByVersion::toString);
    assertTrue(answersByVersion.get(3) > 0, answersByVersion::toString);
    assertEquals(Map.of("1", "UNLOADED", "2", "UNLOADED", "3", "READY"), server.states("m"));
  }

  @Test
  void aCorruptNewVersionUnderTrafficLeavesTheOldOneServing() {
    awaitAnswers(200);
    addCorruptVersion(repo, "m", 2);
    LifecycleServer.Answer failed = server.post("/v2/repository/models/m/load", "");
    assertEquals(400, failed.status(), failed.body());
    server.service().pollRepository();
    awaitAnswers(200);
    running.set(false);

    assertEquals(List.of(), List.copyOf(failures), "failed requests");
    assertEquals(0, answersByVersion.get(2));
    assertEquals(Map.of("1", "READY", "2", "UNAVAILABLE"), server.states("m"));
    String reason = server.indexEntry("m", "2").path("reason").asText();
    assertTrue(!reason.isEmpty(), "the index gives the reason version 2 failed");
  }
}
