package dev.berth.kube;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.BerthException;
import dev.berth.kube.KubeDeployer.Applied;
import dev.berth.kube.KubeDeployer.Change;
import dev.berth.kube.testing.MockCluster;
import dev.berth.runtime.ServiceSpec;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.EventBuilder;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.DeploymentStatusBuilder;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.gatewayapi.v1.HTTPRoute;
import io.fabric8.kubernetes.client.KubernetesClient;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Apply, rollout, status, scale, rollback, canary and undeploy against fabric8's CRUD mock API
 * server. The mock runs no controllers: {@link MockCluster#rollOut} stands in for the Deployment
 * controller where a test needs one.
 */
class KubeDeployerTest {
  private static final String NS = "ml";
  private static final String V1 = "registry.example/ml/minilm:1@sha256:" + "a1".repeat(32);
  private static final String V2 = "registry.example/ml/minilm:1@sha256:" + "b2".repeat(32);

  @TempDir Path dir;
  private MockCluster cluster;
  private KubernetesClient client;

  /** Progress lines; every write wakes {@link #awaitProgress}. */
  private final ByteArrayOutputStream progress =
      new ByteArrayOutputStream() {
        @Override
        public void write(byte[] b, int off, int len) {
          super.write(b, off, len); // under this stream's lock, released before the wake-up
          synchronized (KubeDeployerTest.this) {
            KubeDeployerTest.this.notifyAll();
          }
        }
      };

  private KubeDeployer deployer;

  @BeforeEach
  void start() throws IOException {
    cluster = new MockCluster();
    client = cluster.client();
    deployer =
        new KubeDeployer(client, NS, new PrintStream(progress, true, StandardCharsets.UTF_8));
    Files.createDirectories(dir.resolve("models/minilm/1"));
    Files.writeString(dir.resolve("models/minilm/1/model.onnx"), "graph");
  }

  @AfterEach
  void stop() {
    cluster.close();
  }

  private ServiceSpec service(String extra) throws IOException {
    Path file = dir.resolve("berth.yaml");
    Files.writeString(
        file,
        "apiVersion: berth.dev/v1\nkind: ModelService\nname: minilm\n"
            + "models: [{path: models/minilm}]\n"
            + extra);
    return ServiceSpec.load(file);
  }

  /** Two replicas, no autoscaler: replicas are the deployer's to set. */
  private ServiceSpec fixed() throws IOException {
    return service("deploy: {replicas: 2, autoscaling: {enabled: false}}\n");
  }

  private List<Applied> deploy(ServiceSpec service, String image) {
    return deployer.apply(ManifestGenerator.of(service, image, NS).objects());
  }

  private String progress() {
    return progress.toString(StandardCharsets.UTF_8);
  }

  private Deployment live(String name) {
    return client.apps().deployments().inNamespace(NS).withName(name).get();
  }

  private static String image(Deployment d) {
    return d.getSpec().getTemplate().getSpec().getContainers().get(0).getImage();
  }

  @Test
  void applyCreatesEveryObject_andApplyingAgainChangesNothing() throws IOException {
    ServiceSpec service = service("");
    List<HasMetadata> objects = ManifestGenerator.of(service, V1, NS).objects();

    List<Applied> first = deployer.apply(objects);
    assertEquals(objects.size(), first.size());
    assertTrue(first.stream().allMatch(a -> a.change() == Change.CREATED), first.toString());
    Map<String, String> versions = resourceVersions(objects);
    int writes = cluster.dispatcher().writes();

    List<Applied> second = deploy(service, V1);

    assertTrue(second.stream().allMatch(a -> a.change() == Change.UNCHANGED), second.toString());
    assertEquals(writes, cluster.dispatcher().writes(), "an unchanged apply writes nothing");
    assertEquals(versions, resourceVersions(objects));
    assertTrue(progress().contains("deployment/minilm created"), progress());
    assertTrue(progress().contains("deployment/minilm unchanged"), progress());
    // the live objects are what was generated, namespace filled in
    Deployment d = live("minilm");
    assertEquals(V1, image(d));
    assertNull(d.getSpec().getReplicas(), "with an autoscaler, replicas are the HPA's");
    assertNotNull(
        client
            .autoscaling()
            .v2()
            .horizontalPodAutoscalers()
            .inNamespace(NS)
            .withName("minilm")
            .get());
  }

  @Test
  void aServiceWithRemoteModelsAppliesWithItsImageVolumes_andAgainChangesNothing()
      throws IOException {
    Path file = dir.resolve("berth.yaml");
    Files.writeString(
        file,
        "apiVersion: berth.dev/v1\nkind: ModelService\nname: minilm\n"
            + "models: [{source: oci://registry.example/models/minilm:3}]\n"
            + "deploy: {oci-models: image-volume, model-cache: {claim: models-cache},"
            + " model-credentials: {registry: regcred}}\n");
    ServiceSpec service = ServiceSpec.load(file);
    deploy(service, V1);

    List<Applied> second = deploy(service, V1);

    assertTrue(second.stream().allMatch(a -> a.change() == Change.UNCHANGED), second.toString());
    var pod = live("minilm").getSpec().getTemplate().getSpec();
    assertEquals(
        "registry.example/models/minilm:3",
        pod.getVolumes().stream()
            .filter(v -> v.getImage() != null)
            .findFirst()
            .orElseThrow()
            .getImage()
            .getReference());
    assertEquals("regcred", pod.getImagePullSecrets().get(0).getName());
    assertEquals(
        "minilm=/opt/berth/mounted/minilm",
        client
            .configMaps()
            .inNamespace(NS)
            .withName(configOf(live("minilm")))
            .get()
            .getData()
            .get("BERTH_MODEL_MOUNT"));
  }

  private Map<String, String> resourceVersions(List<HasMetadata> objects) {
    Map<String, String> out = new java.util.TreeMap<>();
    for (HasMetadata o : objects) {
      HasMetadata l = client.resource(o).inNamespace(NS).get();
      out.put(o.getKind() + "/" + o.getMetadata().getName(), l.getMetadata().getResourceVersion());
    }
    return out;
  }

  @Test
  void aNewImageChangesTheDeploymentOnly() throws IOException {
    ServiceSpec service = service("");
    deploy(service, V1);

    List<Applied> second = deploy(service, V2);

    for (Applied a : second) {
      assertEquals(
          a.kind().equals("Deployment") ? Change.CONFIGURED : Change.UNCHANGED,
          a.change(),
          a.toString());
    }
    assertEquals(V2, image(live("minilm")));
  }

  @Test
  void aServingConfigChangeMakesANewConfigMapAndRollsThePods() throws IOException {
    deploy(service("serving: {log-level: info}\n"), V1);
    String before = configOf(live("minilm"));

    List<Applied> second = deploy(service("serving: {log-level: debug}\n"), V1);

    String after = configOf(live("minilm"));
    assertTrue(!before.equals(after), "the pod template names the new config: " + after);
    assertTrue(second.contains(new Applied("ConfigMap", after, Change.CREATED)), second.toString());
    assertEquals(
        "debug",
        client.configMaps().inNamespace(NS).withName(after).get().getData().get("BERTH_LOG_LEVEL"));
  }

  private static String configOf(Deployment d) {
    return d.getSpec()
        .getTemplate()
        .getSpec()
        .getContainers()
        .get(0)
        .getEnvFrom()
        .get(0)
        .getConfigMapRef()
        .getName();
  }

  @Test
  void awaitRolloutFollowsTheControllerUntilEveryReplicaIsAvailable() throws Exception {
    deploy(fixed(), V1);
    cluster.setStatus(
        NS, "minilm", new DeploymentStatusBuilder().withReplicas(1).withUpdatedReplicas(1).build());

    CompletableFuture<Deployment> done =
        CompletableFuture.supplyAsync(() -> deployer.awaitRollout("minilm", Duration.ofMinutes(1)));
    // the follower has seen the first step before the controller moves on
    awaitProgress("1 of 2 new replicas updated");
    cluster.setStatus(
        NS,
        "minilm",
        new DeploymentStatusBuilder()
            .withReplicas(2)
            .withUpdatedReplicas(2)
            .withAvailableReplicas(1)
            .build());
    awaitProgress("1 of 2 updated replicas available");
    cluster.rollOut(NS, "minilm");

    Deployment d = done.get(30, TimeUnit.SECONDS);
    assertEquals(2, d.getStatus().getAvailableReplicas());
    assertTrue(progress().contains("deployment/minilm: 2 of 2 available"), progress());
  }

  private synchronized void awaitProgress(String text) throws InterruptedException {
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!progress().contains(text)) {
      long left = until - System.nanoTime();
      if (left <= 0) {
        throw new AssertionError("no '" + text + "' in: " + progress());
      }
      TimeUnit.NANOSECONDS.timedWait(this, left);
    }
  }

  @Test
  void aStalledRolloutSaysWhatTheClusterSays_pullErrorsAndWarningEvents() throws IOException {
    deploy(fixed(), "registry.example/ml/minilm:missing");
    client
        .pods()
        .inNamespace(NS)
        .resource(
            new PodBuilder()
                .withNewMetadata()
                .withName("minilm-5d9f-abcde")
                .withLabels(
                    Map.of(
                        "app.kubernetes.io/name", "minilm", "app.kubernetes.io/instance", "minilm"))
                .endMetadata()
                .withNewStatus()
                .addNewContainerStatus()
                .withName("server")
                .withNewState()
                .withNewWaiting()
                .withReason("ImagePullBackOff")
                .withMessage("Back-off pulling image \"registry.example/ml/minilm:missing\"")
                .endWaiting()
                .endState()
                .endContainerStatus()
                .endStatus()
                .build())
        .create();
    client
        .v1()
        .events()
        .inNamespace(NS)
        .resource(
            new EventBuilder()
                .withNewMetadata()
                .withName("minilm-5d9f-abcde.1")
                .endMetadata()
                .withType("Warning")
                .withReason("Failed")
                .withMessage("Failed to pull image: manifest unknown")
                .withNewInvolvedObject()
                .withKind("Pod")
                .withName("minilm-5d9f-abcde")
                .endInvolvedObject()
                .build())
        .create();
    cluster.setStatus(
        NS,
        "minilm",
        new DeploymentStatusBuilder()
            .withReplicas(1)
            .withUpdatedReplicas(1)
            .addNewCondition()
            .withType("Progressing")
            .withStatus("False")
            .withReason("ProgressDeadlineExceeded")
            .withMessage("ReplicaSet \"minilm-5d9f\" has timed out progressing.")
            .endCondition()
            .build());

    BerthException e =
        assertThrows(
            BerthException.class, () -> deployer.awaitRollout("minilm", Duration.ofMinutes(1)));

    assertTrue(e.getMessage().contains("exceeded its progress deadline"), e.getMessage());
    assertTrue(e.getMessage().contains("ImagePullBackOff"), e.getMessage());
    assertTrue(e.getMessage().contains("Failed to pull image: manifest unknown"), e.getMessage());
  }

  @Test
  void aRolloutThatOutlivesItsTimeoutNamesTheFailingProbe() throws IOException {
    deploy(fixed(), V1);
    client
        .v1()
        .events()
        .inNamespace(NS)
        .resource(
            new EventBuilder()
                .withNewMetadata()
                .withName("minilm.2")
                .endMetadata()
                .withType("Warning")
                .withReason("Unhealthy")
                .withMessage("Readiness probe failed: HTTP probe failed with statuscode: 503")
                .withNewInvolvedObject()
                .withKind("Deployment")
                .withName("minilm")
                .endInvolvedObject()
                .build())
        .create();
    cluster.setStatus(
        NS, "minilm", new DeploymentStatusBuilder().withReplicas(2).withUpdatedReplicas(2).build());

    BerthException e =
        assertThrows(
            BerthException.class, () -> deployer.awaitRollout("minilm", Duration.ofMillis(500)));

    assertTrue(e.getMessage().contains("did not become available within"), e.getMessage());
    assertTrue(e.getMessage().contains("0 of 2 updated replicas available"), e.getMessage());
    assertTrue(e.getMessage().contains("Readiness probe failed"), e.getMessage());
  }

  @Test
  void statusShowsReplicasImageModelsAndTheAutoscaler() throws IOException {
    deploy(service(""), V1);
    // an HPA-managed Deployment: the API server would default replicas; the HPA sets them
    client
        .apps()
        .deployments()
        .inNamespace(NS)
        .withName("minilm")
        .edit(
            d -> {
              d.getSpec().setReplicas(2);
              return d;
            });
    cluster.rollOut(NS, "minilm");
    HorizontalPodAutoscaler hpa =
        client
            .autoscaling()
            .v2()
            .horizontalPodAutoscalers()
            .inNamespace(NS)
            .withName("minilm")
            .get();
    hpa.setStatus(
        new io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscalerStatusBuilder()
            .withCurrentReplicas(2)
            .withDesiredReplicas(2)
            .build());
    client.resource(hpa).inNamespace(NS).updateStatus();

    String report = StatusReport.format(deployer.state("minilm"));

    assertTrue(report.contains("desired 2 · updated 2 · ready 2 · available 2"), report);
    assertTrue(report.contains("revision 1"), report);
    assertTrue(report.contains(V1), report);
    assertTrue(report.contains("models      minilm:1"), report);
    assertTrue(report.contains("autoscaler  2..10 replicas, now 2 (wants 2)"), report);
    assertTrue(report.contains("Available=True"), report);
  }

  @Test
  void statusOfAServiceThatIsNotThereSaysSo() {
    BerthException e = assertThrows(BerthException.class, () -> deployer.state("nope"));
    assertTrue(e.getMessage().contains("no model service 'nope' in namespace ml"), e.getMessage());
  }

  @Test
  void scaleSetsReplicas_butNotUnderAnAutoscaler() throws IOException {
    deploy(fixed(), V1);
    deployer.scale("minilm", 5);
    assertEquals(5, live("minilm").getSpec().getReplicas());

    deploy(service(""), V1);
    BerthException e = assertThrows(BerthException.class, () -> deployer.scale("minilm", 3));
    assertTrue(e.getMessage().contains("autoscaled between 2 and 10"), e.getMessage());
  }

  @Test
  void rollbackPutsThePreviousRevisionsTemplateBack() throws IOException {
    ServiceSpec v1config =
        service("serving: {log-level: info}\ndeploy: {autoscaling: {enabled: false}}\n");
    deploy(v1config, V1);
    cluster.rollOut(NS, "minilm");
    String v1Config = configOf(live("minilm"));
    ServiceSpec v2config =
        service("serving: {log-level: debug}\ndeploy: {autoscaling: {enabled: false}}\n");
    deploy(v2config, V2);
    cluster.rollOut(NS, "minilm");
    assertEquals(V2, image(live("minilm")));

    String done = deployer.rollback("minilm");

    assertTrue(done.contains("from revision 2 to revision 1"), done);
    Deployment d = live("minilm");
    assertEquals(V1, image(d));
    assertEquals(v1Config, configOf(d), "the old revision's own config comes back with it");
    assertNotNull(client.configMaps().inNamespace(NS).withName(v1Config).get());
    assertTrue(
        !d.getSpec().getTemplate().getMetadata().getLabels().containsKey("pod-template-hash"),
        "the controller's own label stays out of the template");
    cluster.rollOut(NS, "minilm");
    deployer.awaitRollout("minilm", Duration.ofSeconds(30));
  }

  @Test
  void rollbackWithoutAnEarlierRevisionSaysSo() throws IOException {
    deploy(fixed(), V1);
    cluster.rollOut(NS, "minilm");

    BerthException e = assertThrows(BerthException.class, () -> deployer.rollback("minilm"));

    assertTrue(e.getMessage().contains("no earlier revision"), e.getMessage());
  }

  @Test
  void pruneDeletesConfigsThatNoRevisionNames() throws IOException {
    deploy(service("serving: {log-level: info}\n"), V1);
    String first = configOf(live("minilm"));
    deploy(service("serving: {log-level: debug}\n"), V1);
    String second = configOf(live("minilm"));
    deploy(service("serving: {log-level: warn}\n"), V1);
    String third = configOf(live("minilm"));
    cluster.rollOut(NS, "minilm"); // only the third ever ran: the controller kept one revision

    deployer.pruneConfigs("minilm");

    assertNull(client.configMaps().inNamespace(NS).withName(first).get());
    assertNull(client.configMaps().inNamespace(NS).withName(second).get());
    assertNotNull(client.configMaps().inNamespace(NS).withName(third).get());
  }

  @Test
  void aCanaryRunsBesideTheStableOneBehindTheSameService_andPromotionMakesItStable()
      throws IOException {
    ServiceSpec stable =
        service(
            "serving: {log-level: info}\ndeploy: {replicas: 9, autoscaling: {enabled: false}}\n");
    deploy(stable, V1);
    cluster.rollOut(NS, "minilm");
    ServiceSpec next =
        service(
            "serving: {log-level: debug}\ndeploy: {replicas: 9, autoscaling: {enabled: false}}\n");

    int replicas = deployer.canaryReplicas("minilm", 10);
    assertEquals(1, replicas, "1 of 10 pods: 10% of requests");
    ManifestGenerator canary = ManifestGenerator.of(next, V2, NS).canary(replicas, 10);
    List<Applied> applied = deployer.apply(canary.objects());
    assertEquals(List.of("ConfigMap", "Deployment"), applied.stream().map(Applied::kind).toList());
    cluster.rollOut(NS, "minilm-canary");

    Deployment c = live("minilm-canary");
    assertEquals(V2, image(c));
    assertEquals(1, c.getSpec().getReplicas());
    Map<String, String> serviceSelector =
        client.services().inNamespace(NS).withName("minilm").get().getSpec().getSelector();
    assertTrue(
        c.getSpec()
            .getTemplate()
            .getMetadata()
            .getLabels()
            .entrySet()
            .containsAll(serviceSelector.entrySet()),
        "the Service sends the canary its share");
    assertEquals(V1, image(live("minilm")), "the stable version is untouched");
    assertTrue(
        StatusReport.format(deployer.state("minilm"))
            .contains("1 of 10 ready pods are the canary: about 10% of requests"));

    deployer.promote("minilm");

    Deployment d = live("minilm");
    assertEquals(V2, image(d));
    assertEquals(
        "minilm",
        d.getSpec().getTemplate().getMetadata().getLabels().get("app.kubernetes.io/instance"));
    String config = configOf(d);
    assertTrue(config.startsWith("minilm-serving-"), config);
    assertEquals(
        "debug",
        client
            .configMaps()
            .inNamespace(NS)
            .withName(config)
            .get()
            .getData()
            .get("BERTH_LOG_LEVEL"));
    assertNull(live("minilm-canary"));
    assertTrue(
        client
            .configMaps()
            .inNamespace(NS)
            .withLabel("app.kubernetes.io/instance", "minilm-canary")
            .list()
            .getItems()
            .isEmpty());
    cluster.rollOut(NS, "minilm");
    deployer.awaitRollout("minilm", Duration.ofSeconds(30));
  }

  @Test
  void rollbackDropsACanaryAndLeavesTheStableOneAlone() throws IOException {
    ServiceSpec service = fixed();
    deploy(service, V1);
    cluster.rollOut(NS, "minilm");
    deployer.apply(ManifestGenerator.of(service, V2, NS).canary(1, 10).objects());
    String stableVersion = live("minilm").getMetadata().getResourceVersion();

    String done = deployer.rollback("minilm");

    assertTrue(done.contains("dropped the canary minilm-canary"), done);
    assertNull(live("minilm-canary"));
    assertEquals(stableVersion, live("minilm").getMetadata().getResourceVersion());
  }

  @Test
  void aCanaryNeedsAStableVersion_andAPromotionACanary() throws IOException {
    BerthException e =
        assertThrows(BerthException.class, () -> deployer.canaryReplicas("minilm", 10));
    assertTrue(e.getMessage().contains("deploy it without --canary first"), e.getMessage());
    deploy(fixed(), V1);
    e = assertThrows(BerthException.class, () -> deployer.promote("minilm"));
    assertTrue(e.getMessage().contains("no canary to promote"), e.getMessage());
  }

  @Test
  void undeployDeletesEverythingBerthMadeForTheService_andOnlyThat() throws IOException {
    ServiceSpec service = service("");
    deploy(service, V1);
    deployer.apply(ManifestGenerator.of(service, V2, NS).canary(1, 10).objects());
    client
        .configMaps()
        .inNamespace(NS)
        .resource(
            new io.fabric8.kubernetes.api.model.ConfigMapBuilder()
                .withNewMetadata()
                .withName("someone-elses")
                .endMetadata()
                .build())
        .create();

    List<String> deleted = deployer.undeploy("minilm");

    assertTrue(deleted.contains("deployment/minilm"), deleted.toString());
    assertTrue(deleted.contains("deployment/minilm-canary"), deleted.toString());
    assertTrue(deleted.contains("horizontalpodautoscaler/minilm"), deleted.toString());
    assertEquals(9, deleted.size(), deleted.toString());
    assertTrue(client.apps().deployments().inNamespace(NS).list().getItems().isEmpty());
    List<ConfigMap> left = client.configMaps().inNamespace(NS).list().getItems();
    assertEquals(
        List.of("someone-elses"), left.stream().map(m -> m.getMetadata().getName()).toList());

    BerthException e = assertThrows(BerthException.class, () -> deployer.undeploy("minilm"));
    assertTrue(e.getMessage().contains("nothing Berth deployed as 'minilm'"), e.getMessage());
  }

  private HTTPRoute route() {
    return client.resources(HTTPRoute.class).inNamespace(NS).withName("minilm").get();
  }

  /** The route's backends as {@code service=weight}. */
  private List<String> weights() {
    return route().getSpec().getRules().stream()
        .flatMap(r -> r.getBackendRefs().stream())
        .map(b -> b.getName() + "=" + b.getWeight())
        .toList();
  }

  @Test
  void behindAGatewayACanaryTakesItsWeight_andRollbackOrPromotionGivesItBack() throws IOException {
    ServiceSpec service =
        service(
            "deploy: {replicas: 9, autoscaling: {enabled: false},"
                + " gateway: {name: public, namespace: infra}}\n");
    List<Applied> first = deploy(service, V1);
    assertTrue(
        first.contains(new Applied("HTTPRoute", "minilm", Change.CREATED)), first.toString());
    cluster.rollOut(NS, "minilm");
    assertEquals(List.of("minilm-stable=100"), weights());
    assertEquals(
        "public", route().getSpec().getParentRefs().get(0).getName(), "attached to the gateway");

    // a canary at 25%: one pod of ten, yet a quarter of what comes through the gateway
    ManifestGenerator canary = ManifestGenerator.of(service, V2, NS).canary(1, 25);
    List<Applied> applied = deployer.apply(canary.objects());
    assertEquals(
        List.of("ConfigMap", "Deployment", "Service", "Service", "HTTPRoute"),
        applied.stream().map(Applied::kind).toList());
    assertEquals(Change.UNCHANGED, applied.get(2).change(), "minilm-stable was there already");
    assertEquals(Change.CONFIGURED, applied.get(4).change());
    cluster.rollOut(NS, "minilm-canary");
    assertEquals(List.of("minilm-stable=75", "minilm-canary=25"), weights());
    assertEquals(
        Map.of("app.kubernetes.io/name", "minilm", "app.kubernetes.io/instance", "minilm-canary"),
        client.services().inNamespace(NS).withName("minilm-canary").get().getSpec().getSelector());
    String status = StatusReport.format(deployer.state("minilm"));
    assertTrue(
        status.contains(
            "httproute/minilm on gateway infra/public: minilm-stable 75%, minilm-canary 25%"),
        status);

    deployer.rollback("minilm");
    assertEquals(List.of("minilm-stable=100"), weights());
    assertNull(client.services().inNamespace(NS).withName("minilm-canary").get());
    assertNull(live("minilm-canary"));
    assertEquals(V1, image(live("minilm")));

    deployer.apply(canary.objects());
    cluster.rollOut(NS, "minilm-canary");
    assertEquals(List.of("minilm-stable=75", "minilm-canary=25"), weights());
    deployer.promote("minilm");
    assertEquals(List.of("minilm-stable=100"), weights());
    assertNull(client.services().inNamespace(NS).withName("minilm-canary").get());
    assertEquals(V2, image(live("minilm")));
    assertTrue(progress().contains("httproute/minilm sends every request to minilm-stable"));

    List<String> deleted = deployer.undeploy("minilm");
    assertTrue(deleted.contains("httproute/minilm"), deleted.toString());
    assertTrue(deleted.contains("service/minilm-stable"), deleted.toString());
    assertNull(route());
  }
}
