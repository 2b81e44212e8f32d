package dev.berth.kube;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.BerthException;
import dev.berth.kube.testing.MockCluster;
import dev.berth.runtime.ServiceSpec;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.Watch;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A gated canary against fabric8's mock API server: the evaluation Jobs Berth creates (from the
 * canary's image, restricted, one against a ready pod of each version) are "run" by a watcher
 * standing in for the Job controller and the kubelet: it gives each a pod whose termination message
 * is what {@code berth eval --gate --result /dev/termination-log} writes, and marks the Job done.
 * What a real cluster adds (scheduling, the image running, the network policy admitting the pod) is
 * verified only against this mock.
 */
class CanaryGateTest {
  private static final String NS = "ml";
  private static final String V1 = "registry.example/ml/fashion:1@sha256:" + "a1".repeat(32);
  private static final String V2 = "registry.example/ml/fashion:2@sha256:" + "b2".repeat(32);
  private static final String STABLE_IP = "10.0.0.1";
  private static final String CANARY_IP = "10.0.0.2";

  @TempDir Path dir;
  private MockCluster cluster;
  private KubernetesClient client;
  private final ByteArrayOutputStream progress = new ByteArrayOutputStream();
  private final ConcurrentLinkedQueue<Job> ran = new ConcurrentLinkedQueue<>();
  private Watch watch;

  /** What each version scores, by the pod IP the Job evaluates. */
  private volatile Map<String, Double> figures = Map.of();

  private volatile boolean failCanary;

  @BeforeEach
  void start() throws IOException {
    cluster = new MockCluster();
    client = cluster.client();
    Files.createDirectories(dir.resolve("models/fashion/1"));
    Files.writeString(dir.resolve("models/fashion/1/model.onnx"), "graph");
    Files.writeString(
        dir.resolve("models/fashion/model.yaml"),
        "apiVersion: berth.dev/v1\nkind: Model\n"
            + "gate: {data: gate/t.csv, min: 0.86, max-drop: 0.02}\n");
    Path file = dir.resolve("berth.yaml");
    Files.writeString(
        file,
        "apiVersion: berth.dev/v1\nkind: ModelService\nname: fashion\n"
            + "models: [{path: models/fashion}]\n"
            + "deploy: {replicas: 2, autoscaling: {enabled: false}}\n");
    ServiceSpec service = ServiceSpec.load(file);
    KubeDeployer deployer = new KubeDeployer(client, NS, new PrintStream(progress, true));
    deployer.apply(ManifestGenerator.of(service, V1, NS).objects());
    deployer.apply(ManifestGenerator.of(service, V2, NS).canary(1, 10).objects());
    pod("fashion-7d9f-abcde", "fashion", STABLE_IP);
    pod("fashion-canary-5c8b-fghij", "fashion-canary", CANARY_IP);
    watch = cluster.runJobs(NS, this::run);
  }

  @AfterEach
  void stop() {
    watch.close();
    cluster.close();
  }

  private void pod(String name, String instance, String ip) {
    cluster.readyPod(NS, name, instance, ip);
  }

  /** What {@code berth eval --gate --result /dev/termination-log} writes in each Job. */
  private MockCluster.JobOutcome run(Job job) {
    ran.add(job);
    List<String> args = job.getSpec().getTemplate().getSpec().getContainers().get(0).getArgs();
    boolean canary = args.get(1).contains(CANARY_IP);
    if (canary && failCanary) {
      return new MockCluster.JobOutcome(
          false, "berth: the model refused the first request: 400 input 'pixels' must be FP32");
    }
    return new MockCluster.JobOutcome(
        true,
        String.format(
            java.util.Locale.ROOT,
            "{\"model\":\"fashion\",\"version\":\"%s\",\"metric\":\"accuracy\","
                + "\"figure\":%s,\"min\":0.86,\"max_drop\":0.02,\"rows\":10000}",
            canary ? "2" : "1",
            figures.get(canary ? CANARY_IP : STABLE_IP)));
  }

  private CanaryGate gate() {
    return new CanaryGate(client, NS, new PrintStream(progress, true, StandardCharsets.UTF_8));
  }

  @Test
  void aCanaryWithinTheGatePassesWithBothFiguresAndItsJobsAreRestrictedAndGone() {
    figures = Map.of(STABLE_IP, 0.8843, CANARY_IP, 0.8812);

    List<CanaryGate.Result> results = gate().evaluate("fashion", Duration.ofSeconds(30));

    assertEquals(1, results.size());
    CanaryGate.Result r = results.get(0);
    assertTrue(r.verdict().passed(), r.verdict().summary());
    assertEquals(0.8812, r.canary().figure());
    assertEquals(0.8843, r.stable().figure());
    assertEquals("2", r.canary().version());
    assertEquals(
        "accuracy 0.8812 >= 0.8643 (minimum 0.8600; version 1 (stable) serving at 0.8843, largest"
            + " drop 0.0200) on its gate's data",
        r.verdict().summary());

    assertEquals(2, ran.size());
    for (Job job : ran) {
      var pod = job.getSpec().getTemplate().getSpec();
      var c = pod.getContainers().get(0);
      assertEquals(V2, c.getImage(), "both run the canary's image, which carries its gate data");
      assertEquals(
          List.of(
              "eval",
              c.getArgs().get(1),
              "--model",
              "fashion",
              "--gate",
              "/opt/berth/models/fashion/model.yaml",
              "--max-errors",
              "0",
              "--result",
              "/dev/termination-log"),
          c.getArgs());
      assertEquals(Boolean.FALSE, c.getSecurityContext().getAllowPrivilegeEscalation());
      assertEquals(Boolean.TRUE, c.getSecurityContext().getReadOnlyRootFilesystem());
      assertEquals(List.of("ALL"), c.getSecurityContext().getCapabilities().getDrop());
      assertEquals(Boolean.TRUE, pod.getSecurityContext().getRunAsNonRoot());
      assertEquals("RuntimeDefault", pod.getSecurityContext().getSeccompProfile().getType());
      assertEquals(Boolean.FALSE, pod.getAutomountServiceAccountToken());
      assertEquals(0, job.getSpec().getBackoffLimit());
      assertNull(
          client.batch().v1().jobs().inNamespace(NS).withName(job.getMetadata().getName()).get(),
          "deleted once read");
    }
    assertEquals(
        List.of("http://" + CANARY_IP + ":8080", "http://" + STABLE_IP + ":8080"),
        ran.stream()
            .map(j -> j.getSpec().getTemplate().getSpec().getContainers().get(0).getArgs().get(1))
            .toList());
  }

  @Test
  void aCanaryTooFarBelowTheStableVersionIsRefused() {
    figures = Map.of(STABLE_IP, 0.8843, CANARY_IP, 0.8612);

    CanaryGate.Result r = gate().evaluate("fashion", Duration.ofSeconds(30)).get(0);

    assertFalse(r.verdict().passed(), r.verdict().summary());
    assertTrue(r.verdict().summary().startsWith("accuracy 0.8612 < 0.8643"), r.verdict().summary());
  }

  @Test
  void aFailedEvaluationSaysWhyAndACanaryWithoutAGateIsNoGatedCanary() throws IOException {
    failCanary = true;
    BerthException e =
        assertThrows(
            CanaryGate.EvaluationFailed.class,
            () -> gate().evaluate("fashion", Duration.ofSeconds(30)));
    assertTrue(
        e.getMessage().contains("failed evaluating model 'fashion' of the canary"), e.getMessage());
    assertTrue(e.getMessage().contains("must be FP32"), e.getMessage());

    Files.createDirectories(dir.resolve("models/plain/1"));
    Files.writeString(dir.resolve("models/plain/1/model.onnx"), "graph");
    Path plain = dir.resolve("plain.yaml");
    Files.writeString(
        plain,
        "apiVersion: berth.dev/v1\nkind: ModelService\nname: plain\n"
            + "models: [{path: models/plain}]\n");
    ServiceSpec ungated = ServiceSpec.load(plain);
    KubeDeployer deployer = new KubeDeployer(client, NS, new PrintStream(progress, true));
    deployer.apply(ManifestGenerator.of(ungated, V1, NS).objects());
    deployer.apply(ManifestGenerator.of(ungated, V2, NS).canary(1, 10).objects());
    BerthException none =
        assertThrows(BerthException.class, () -> gate().evaluate("plain", Duration.ofSeconds(30)));
    assertTrue(none.getMessage().contains("has a gate in its model.yaml"), none.getMessage());
  }
}
