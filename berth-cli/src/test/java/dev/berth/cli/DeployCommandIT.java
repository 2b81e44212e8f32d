package dev.berth.cli;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.kube.testing.MockCluster;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.gatewayapi.v1.HTTPRoute;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code berth deploy|status|scale|rollback|undeploy} as a user runs them, the packaged jar against
 * fabric8's CRUD mock API server through a kubeconfig (contexts {@code mock}, namespace ml, and
 * {@code other}, namespace team-b). The mock runs no controllers: {@link MockCluster#rollOut} plays
 * the Deployment controller.
 */
class DeployCommandIT {
  private static final String DIGEST = "sha256:" + "c3".repeat(32);

  @TempDir Path work;
  private MockCluster cluster;
  private KubernetesClient client;
  private Path kubeconfig;
  private Path service;

  private record Run(int code, String out, String err) {}

  @BeforeEach
  void start() throws IOException {
    cluster = new MockCluster();
    client = cluster.client();
    kubeconfig = cluster.kubeconfig(work.resolve("kubeconfig"));
    Path models = BerthProcess.examples();
    service = work.resolve("berth.yaml");
    Files.writeString(
        service,
        """
        apiVersion: berth.dev/v1
        kind: ModelService
        name: minilm
        models: [{path: %s, versions: [1]}]
        image: {to: "127.0.0.1:5000/ml/minilm:1"}
        deploy: {replicas: 2, autoscaling: {enabled: false}}
        """
            .formatted(models.resolve("minilm")));
  }

  @AfterEach
  void stop() {
    cluster.close();
  }

  private Process start(String... args) throws IOException {
    ProcessBuilder pb = new ProcessBuilder(BerthProcess.command(args));
    pb.environment().put("ORT_DISABLE_TELEMETRY", "1");
    pb.environment().put("OPT_OUT_TRACKING", "true");
    pb.environment().put("HOME", work.resolve("home").toString());
    pb.environment().put("XDG_CACHE_HOME", work.resolve("cache").toString());
    pb.environment().put("KUBECONFIG", kubeconfig.toString());
    pb.redirectOutput(work.resolve("out.txt").toFile());
    pb.redirectError(work.resolve("err.txt").toFile());
    return pb.start();
  }

  private Run finish(Process p) throws Exception {
    assertTrue(p.waitFor(90, TimeUnit.SECONDS), "berth did not exit");
    return new Run(
        p.exitValue(),
        Files.readString(work.resolve("out.txt"), StandardCharsets.UTF_8),
        Files.readString(work.resolve("err.txt"), StandardCharsets.UTF_8));
  }

  private Run run(String... args) throws Exception {
    return finish(start(args));
  }

  /** A new key pair's public key, written to {@code name} in the work directory. */
  private Path publicKey(String name, String algorithm) throws IOException {
    return Files.writeString(
        work.resolve(name),
        dev.berth.runtime.SigningKeys.pem(
            dev.berth.runtime.SigningKeys.generate(algorithm).getPublic()));
  }

  private Deployment deployment(String ns, String name) {
    return client.apps().deployments().inNamespace(ns).withName(name).get();
  }

  @Test
  void dryRunPrintsKubectlYaml_andOutputDirWritesOneFilePerObject_withoutACluster()
      throws Exception {
    Files.writeString(kubeconfig, "not: [a kubeconfig"); // the dry run never reads it
    Run r =
        run(
            "deploy",
            service.toString(),
            "--dry-run",
            "-n",
            "prod",
            "-o",
            work.resolve("out").toString());

    assertEquals(0, r.code(), r.err());
    KubernetesSerialization serialization = new KubernetesSerialization();
    List<HasMetadata> printed = new ArrayList<>();
    for (String doc : r.out().split("(?m)^---\\n")) {
      if (!doc.isBlank() && !doc.startsWith("wrote ")) {
        printed.add(serialization.unmarshal(doc));
      }
    }
    assertEquals(
        List.of(
            "ServiceAccount",
            "ConfigMap",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "NetworkPolicy"),
        printed.stream().map(HasMetadata::getKind).toList());
    assertTrue(printed.stream().allMatch(o -> "prod".equals(o.getMetadata().getNamespace())));
    try (Stream<Path> files = Files.list(work.resolve("out"))) {
      assertEquals(6, files.count());
    }
    assertTrue(r.err().contains("is not pinned to a digest"), r.err());
  }

  @Test
  void aCanaryBehindAGatewayIsSplitByHttpRouteWeights() throws Exception {
    Run r =
        run(
            "deploy",
            service.toString(),
            "--dry-run",
            "--canary",
            "10",
            "--gateway",
            "public/infra");

    assertEquals(0, r.code(), r.err());
    KubernetesSerialization serialization = new KubernetesSerialization();
    HTTPRoute route = null;
    for (String doc : r.out().split("(?m)^---\\n")) {
      if (!doc.isBlank() && serialization.unmarshal(doc) instanceof HTTPRoute h) {
        route = h;
      }
    }
    assertNotNull(route, r.out());
    assertEquals("infra", route.getSpec().getParentRefs().get(0).getNamespace());
    assertEquals(
        List.of("minilm-stable=90", "minilm-canary=10"),
        route.getSpec().getRules().get(0).getBackendRefs().stream()
            .map(b -> b.getName() + "=" + b.getWeight())
            .toList());

    Run wrong = run("deploy", service.toString(), "--dry-run", "--gateway", "a/b/c");
    assertEquals(2, wrong.code());
    assertTrue(wrong.err().contains("--gateway: a gateway is NAME or NAME/NAMESPACE"), wrong.err());
  }

  @Test
  void exportsForKustomizeKServeAndMonitoring() throws Exception {
    Run kustomize =
        run("deploy", service.toString(), "--export", "kustomize", work.resolve("k").toString());
    assertEquals(0, kustomize.code(), kustomize.err());
    assertTrue(Files.isRegularFile(work.resolve("k/base/kustomization.yaml")));
    assertTrue(Files.isRegularFile(work.resolve("k/overlays/production/kustomization.yaml")));
    assertTrue(Files.isRegularFile(work.resolve("k/monitoring/minilm-dashboard.json")));
    assertTrue(kustomize.out().contains("kubectl apply -k " + work.resolve("k/monitoring")));

    Path trusted = publicKey("trusted.pub", dev.berth.runtime.SigningKeys.ECDSA_P256);
    Run policy =
        run(
            "deploy",
            service.toString(),
            "--export",
            "kustomize",
            work.resolve("k").toString(),
            "--trust",
            trusted.toString());
    assertEquals(0, policy.code(), policy.err());
    assertTrue(
        Files.readString(work.resolve("k/policy/clusterimagepolicy.yaml"))
            .contains("glob: \"127.0.0.1:5000/ml/minilm*\""));
    assertTrue(policy.out().contains("kubectl apply -k " + work.resolve("k/policy")), policy.out());
    Path edKey = publicKey("ed.pub", dev.berth.runtime.SigningKeys.ED25519);
    Run ed =
        run(
            "deploy",
            service.toString(),
            "--export",
            "kustomize",
            work.resolve("k").toString(),
            "--trust",
            edKey.toString());
    assertEquals(2, ed.code(), ed.err());
    assertTrue(ed.err().contains("berth keygen KEY.pem --algorithm ECDSA-P256"), ed.err());
    Run compose =
        run(
            "deploy",
            service.toString(),
            "--export",
            "compose",
            work.resolve("compose").toString(),
            "--require-signed",
            "--trust",
            trusted.toString());
    assertEquals(2, compose.code(), compose.err());
    assertTrue(compose.err().contains("no signature is kept"), compose.err());
    assertFalse(Files.exists(work.resolve("compose/compose.yaml")), "nothing written");

    Run kserve = run("deploy", service.toString(), "--export", "kserve");
    assertEquals(0, kserve.code(), kserve.err());
    List<String> kinds = new ArrayList<>();
    for (String doc : kserve.out().split("(?m)^---\\n")) {
      if (!doc.isBlank()) {
        kinds.add(new KubernetesSerialization().unmarshal(doc, HasMetadata.class).getKind());
      }
    }
    assertEquals(List.of("ServingRuntime", "InferenceService"), kinds);

    Run monitoring =
        run("deploy", service.toString(), "--export", "monitoring", work.resolve("mon").toString());
    assertEquals(0, monitoring.code(), monitoring.err());
    assertTrue(monitoring.out().contains("minilm-rules.yaml"), monitoring.out());
    assertTrue(monitoring.out().contains("minilm-dashboard.json"), monitoring.out());
    assertEquals(
        "PrometheusRule",
        new KubernetesSerialization()
            .unmarshal(
                Files.readString(work.resolve("mon/minilm-prometheusrule.yaml")),
                io.fabric8.kubernetes.api.model.GenericKubernetesResource.class)
            .getKind());

    Run bad = run("deploy", service.toString(), "--export", "helm");
    assertEquals(2, bad.code());
    assertTrue(
        bad.err()
            .contains("--export takes kustomize DIR, kserve [DIR], compose DIR or monitoring DIR"),
        bad.err());
  }

  @Test
  void deployAppliesIntoTheContextsNamespace_andAgainChangesNothing() throws Exception {
    Run first = run("deploy", service.toString(), "--no-wait");
    assertEquals(0, first.code(), first.err());
    assertTrue(first.err().contains("deployment/minilm created"), first.err());
    Deployment d = deployment("ml", "minilm");
    assertNotNull(d, "the current context's namespace");
    assertEquals(2, d.getSpec().getReplicas());
    String version = d.getMetadata().getResourceVersion();

    Run second = run("deploy", service.toString(), "--no-wait");

    assertEquals(0, second.code(), second.err());
    assertTrue(second.err().contains("nothing changed"), second.err());
    assertEquals(version, deployment("ml", "minilm").getMetadata().getResourceVersion());
  }

  @Test
  void contextAndNamespaceFollowKubeconfigRules() throws Exception {
    assertEquals(0, run("deploy", service.toString(), "--no-wait", "--context", "other").code());
    assertNotNull(deployment("team-b", "minilm"));
    assertEquals(
        0,
        run("deploy", service.toString(), "--no-wait", "--context", "other", "-n", "third").code());
    assertNotNull(deployment("third", "minilm"));

    Run r = run("deploy", service.toString(), "--no-wait", "--context", "nope");
    assertEquals(2, r.code());
    assertTrue(r.err().contains("kubeconfig has no context 'nope'"), r.err());
  }

  @Test
  void deployFollowsTheRolloutUntilAvailable_pinnedToTheDigestBuiltHere() throws Exception {
    // what 'berth build' leaves behind after pushing the image
    Path cache = work.resolve("cache/berth");
    BuildRecords.save(cache, "127.0.0.1:5000/ml/minilm:1", DIGEST);

    Process deploy = start("deploy", service.toString(), "--timeout", "60s");
    await().atMost(Duration.ofSeconds(60)).until(() -> deployment("ml", "minilm") != null);
    cluster.rollOut("ml", "minilm");
    Run r = finish(deploy);

    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("minilm is available in namespace ml"), r.out());
    assertTrue(r.err().contains("pinned to " + DIGEST), r.err());
    assertEquals(
        "127.0.0.1:5000/ml/minilm:1@" + DIGEST,
        deployment("ml", "minilm")
            .getSpec()
            .getTemplate()
            .getSpec()
            .getContainers()
            .get(0)
            .getImage());

    Run status = run("status", "minilm");
    assertEquals(0, status.code(), status.err());
    assertTrue(
        status.out().contains("desired 2 · updated 2 · ready 2 · available 2"), status.out());
    assertTrue(status.out().contains("models      minilm:1"), status.out());
  }

  @Test
  void aRolloutThatTimesOutIsExitCodeTwoWithTheReason() throws Exception {
    Run r = run("deploy", service.toString(), "--timeout", "2s");
    assertEquals(2, r.code());
    assertTrue(r.err().contains("did not become available within 2s"), r.err());
  }

  @Test
  void scaleCanaryRollbackAndUndeploy() throws Exception {
    assertEquals(0, run("deploy", service.toString(), "--no-wait").code());
    cluster.rollOut("ml", "minilm");

    Run scale = run("scale", "minilm", "4");
    assertEquals(0, scale.code(), scale.err());
    assertEquals(4, deployment("ml", "minilm").getSpec().getReplicas());
    cluster.rollOut("ml", "minilm");

    Run canary =
        run(
            "deploy",
            service.toString(),
            "--canary",
            "20",
            "--no-wait",
            "--image",
            "127.0.0.1:5000/ml/minilm:2");
    assertEquals(0, canary.code(), canary.err());
    assertEquals(1, deployment("ml", "minilm-canary").getSpec().getReplicas(), "1 of 5 pods");

    Run rollback = run("rollback", "minilm", "--timeout", "30s");
    assertEquals(0, rollback.code(), rollback.err());
    assertTrue(rollback.err().contains("dropped the canary"), rollback.err());
    assertNull(deployment("ml", "minilm-canary"));

    Run undeploy = run("undeploy", "minilm");
    assertEquals(0, undeploy.code(), undeploy.err());
    assertTrue(undeploy.out().contains("undeployed minilm (6 objects deleted)"), undeploy.out());
    assertTrue(client.apps().deployments().inNamespace("ml").list().getItems().isEmpty());
    assertTrue(
        client
            .configMaps()
            .inNamespace("ml")
            .withLabels(Map.of("app.kubernetes.io/part-of", "minilm"))
            .list()
            .getItems()
            .isEmpty());

    Run again = run("status", "minilm");
    assertEquals(2, again.code());
    assertTrue(again.err().contains("no model service 'minilm' in namespace ml"), again.err());
  }

  @Test
  void aGatedCanaryIsRolledBackBelowTheGateAndPromotedWithinIt() throws Exception {
    // MiniLM's directory with a gate (its data are in the image; only the key matters here)
    Path gated =
        BerthProcess.copyTree(BerthProcess.examples().resolve("minilm"), work.resolve("m"));
    Files.writeString(
        gated.resolve("model.yaml"),
        Files.readString(gated.resolve("model.yaml"))
            + "gate: {data: gate/test.csv, min: 0.86, max-drop: 0.02}\n");
    Files.writeString(
        service,
        Files.readString(service)
            .replace(BerthProcess.examples().resolve("minilm").toString(), gated.toString()));
    java.util.Map<String, Double> figures = new java.util.concurrent.ConcurrentHashMap<>();
    figures.put("10.0.0.1", 0.8843);
    io.fabric8.kubernetes.client.Watch jobs =
        cluster.runJobs(
            "ml",
            job -> {
              String url =
                  job.getSpec().getTemplate().getSpec().getContainers().get(0).getArgs().get(1);
              String ip = url.substring("http://".length(), url.lastIndexOf(':'));
              return new dev.berth.kube.testing.MockCluster.JobOutcome(
                  true,
                  "{\"version\":\""
                      + (ip.equals("10.0.0.1") ? "1" : "2")
                      + "\",\"metric\":\"accuracy\",\"figure\":"
                      + figures.get(ip)
                      + ",\"min\":0.86,\"max_drop\":0.02}");
            });
    try {
      assertEquals(0, run("deploy", service.toString(), "--no-wait").code());
      cluster.rollOut("ml", "minilm");
      cluster.readyPod("ml", "minilm-1", "minilm", "10.0.0.1");

      // deploy --canary --gate: the canary rolls out, scores 0.80, and is rolled back
      figures.put("10.0.0.2", 0.80);
      Process deploy =
          start(
              "deploy",
              service.toString(),
              "--canary",
              "20",
              "--gate",
              "--timeout",
              "60s",
              "--image",
              "127.0.0.1:5000/ml/minilm:2");
      org.awaitility.Awaitility.await()
          .atMost(java.time.Duration.ofSeconds(60))
          .until(() -> deployment("ml", "minilm-canary") != null);
      cluster.rollOut("ml", "minilm-canary");
      cluster.readyPod("ml", "minilm-canary-1", "minilm-canary", "10.0.0.2");
      Run refused = finish(deploy);
      assertEquals(3, refused.code(), refused.out() + refused.err());
      assertTrue(
          refused
              .out()
              .contains(
                  "canary (version 2) accuracy 0.8000, stable (version 1) accuracy"
                      + " 0.8843: refused (accuracy 0.8000 < 0.8643"),
          refused.out());
      assertTrue(refused.out().contains("dropped the canary minilm-canary"), refused.out());
      assertNull(deployment("ml", "minilm-canary"));

      // a canary within the gate: berth promote --gate promotes it
      assertEquals(
          0,
          run(
                  "deploy",
                  service.toString(),
                  "--canary",
                  "20",
                  "--no-wait",
                  "--image",
                  "127.0.0.1:5000/ml/minilm:3")
              .code());
      client.pods().inNamespace("ml").withName("minilm-canary-1").delete();
      cluster.readyPod("ml", "minilm-canary-2", "minilm-canary", "10.0.0.3");
      figures.put("10.0.0.3", 0.8851);
      Process promote = start("promote", "minilm", "--gate", "--timeout", "60s");
      org.awaitility.Awaitility.await()
          .atMost(java.time.Duration.ofSeconds(60))
          .until(() -> image(deployment("ml", "minilm")).endsWith(":3"));
      cluster.rollOut("ml", "minilm");
      Run promoted = finish(promote);
      assertEquals(0, promoted.code(), promoted.out() + promoted.err());
      assertTrue(
          promoted.out().contains("0.8851, stable (version 1) accuracy 0.8843: passed"),
          promoted.out());
      assertTrue(promoted.out().contains("minilm promoted"), promoted.out());
    } finally {
      jobs.close();
    }
  }

  private static String image(Deployment d) {
    return d.getSpec().getTemplate().getSpec().getContainers().get(0).getImage();
  }

  @Test
  void anUnreachableApiServerIsExitCodeTwoWithTheFix() throws Exception {
    Files.writeString(
        kubeconfig,
        """
        apiVersion: v1
        kind: Config
        clusters: [{name: gone, cluster: {server: "http://127.0.0.1:1"}}]
        users: [{name: u, user: {token: t}}]
        contexts: [{name: gone, context: {cluster: gone, user: u}}]
        current-context: gone
        """);
    Run r = run("status", "minilm");
    assertEquals(2, r.code());
    assertTrue(r.err().contains("cannot reach the Kubernetes API at http://127.0.0.1:1"), r.err());
  }
}
