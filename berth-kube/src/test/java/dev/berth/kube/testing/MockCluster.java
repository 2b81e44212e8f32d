package dev.berth.kube.testing;

import static java.nio.charset.StandardCharsets.UTF_8;

import io.fabric8.kubernetes.api.model.OwnerReferenceBuilder;
import io.fabric8.kubernetes.api.model.PodTemplateSpec;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.DeploymentStatus;
import io.fabric8.kubernetes.api.model.apps.DeploymentStatusBuilder;
import io.fabric8.kubernetes.api.model.apps.ReplicaSet;
import io.fabric8.kubernetes.api.model.apps.ReplicaSetBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import io.fabric8.mockwebserver.Context;
import io.fabric8.mockwebserver.MockWebServer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * fabric8's CRUD mock API server (with server-side apply, see {@link ApplyingCrudDispatcher}) and a
 * client for it. The mock runs no controllers: {@link #rollOut} does what the Deployment controller
 * would after a change (a ReplicaSet per pod template, numbered revisions, a status with every
 * replica available), so tests can follow rollouts, read status and roll back.
 */
public final class MockCluster implements AutoCloseable {
  private static final KubernetesSerialization JSON = new KubernetesSerialization();
  private static final String REVISION = "deployment.kubernetes.io/revision";

  /** The mock server logs every request at INFO; held here so the level sticks. */
  private static final java.util.logging.Logger MOCK_LOG =
      java.util.logging.Logger.getLogger("io.fabric8.mockwebserver");

  static {
    MOCK_LOG.setLevel(java.util.logging.Level.WARNING);
  }

  private final ApplyingCrudDispatcher dispatcher = new ApplyingCrudDispatcher();
  private final KubernetesMockServer server;
  private final KubernetesClient client;

  public MockCluster() {
    server =
        new KubernetesMockServer(
            new Context(), new MockWebServer(), new HashMap<>(), dispatcher, false);
    server.init();
    client = server.createClient();
  }

  public KubernetesClient client() {
    return client;
  }

  public ApplyingCrudDispatcher dispatcher() {
    return dispatcher;
  }

  /** The API server's URL. */
  public String url() {
    return server.url("/").replaceAll("/$", "");
  }

  /**
   * Writes a kubeconfig with two contexts on this server: {@code mock} (current, namespace {@code
   * ml}) and {@code other} (namespace {@code team-b}).
   */
  public Path kubeconfig(Path file) throws IOException {
    String text =
        """
        apiVersion: v1
        kind: Config
        clusters:
        - name: mock
          cluster: {server: "%s"}
        users:
        - name: tester
          user: {token: not-a-secret}
        contexts:
        - name: mock
          context: {cluster: mock, user: tester, namespace: ml}
        - name: other
          context: {cluster: mock, user: tester, namespace: team-b}
        current-context: mock
        """
            .formatted(url());
    Files.writeString(file, text, UTF_8);
    return file;
  }

  /**
   * What the Deployment controller does once a Deployment's pods run its current template: a
   * ReplicaSet for the template (a new revision, or the old ReplicaSet renumbered when the template
   * is one it ran before) and a status with every replica updated, ready and available.
   */
  public Deployment rollOut(String namespace, String name) {
    Deployment d = client.apps().deployments().inNamespace(namespace).withName(name).get();
    int replicas = Objects.requireNonNullElse(d.getSpec().getReplicas(), 1);
    PodTemplateSpec template = d.getSpec().getTemplate();
    String hash = templateHash(template);
    List<ReplicaSet> owned =
        client.apps().replicaSets().inNamespace(namespace).list().getItems().stream()
            .filter(
                rs ->
                    rs.getMetadata().getOwnerReferences() != null
                        && rs.getMetadata().getOwnerReferences().stream()
                            .anyMatch(r -> r.getUid().equals(d.getMetadata().getUid())))
            .toList();
    long next = owned.stream().mapToLong(MockCluster::revision).max().orElse(0) + 1;
    ReplicaSet same =
        owned.stream()
            .filter(rs -> hash.equals(rs.getMetadata().getLabels().get("pod-template-hash")))
            .findFirst()
            .orElse(null);
    long revision;
    if (same != null && revision(same) == next - 1) {
      revision = next - 1;
    } else {
      revision = next;
      PodTemplateSpec copy = JSON.unmarshal(JSON.asJson(template), PodTemplateSpec.class);
      copy.getMetadata().getLabels().put("pod-template-hash", hash);
      Map<String, String> selector =
          new LinkedHashMap<>(d.getSpec().getSelector().getMatchLabels());
      selector.put("pod-template-hash", hash);
      ReplicaSet rs =
          new ReplicaSetBuilder()
              .withNewMetadata()
              .withName(name + "-" + hash)
              .withNamespace(namespace)
              .withLabels(copy.getMetadata().getLabels())
              .withAnnotations(Map.of(REVISION, Long.toString(revision)))
              .withOwnerReferences(
                  new OwnerReferenceBuilder()
                      .withApiVersion("apps/v1")
                      .withKind("Deployment")
                      .withName(name)
                      .withUid(d.getMetadata().getUid())
                      .withController(true)
                      .build())
              .endMetadata()
              .withNewSpec()
              .withReplicas(replicas)
              .withNewSelector()
              .withMatchLabels(selector)
              .endSelector()
              .withTemplate(copy)
              .endSpec()
              .build();
      if (same != null) {
        client.resource(same).inNamespace(namespace).delete();
      }
      // the mock has no garbage collector: a ReplicaSet left by a deleted Deployment of the same
      // name (a dropped canary deployed again) would be gone on a cluster
      client.apps().replicaSets().inNamespace(namespace).withName(name + "-" + hash).delete();
      client.resource(rs).inNamespace(namespace).create();
    }
    client
        .apps()
        .deployments()
        .inNamespace(namespace)
        .withName(name)
        .edit(
            x -> {
              Map<String, String> a =
                  new LinkedHashMap<>(
                      Objects.requireNonNullElse(x.getMetadata().getAnnotations(), Map.of()));
              a.put(REVISION, Long.toString(revision));
              x.getMetadata().setAnnotations(a);
              return x;
            });
    return setStatus(
        namespace,
        name,
        new DeploymentStatusBuilder()
            .withReplicas(replicas)
            .withUpdatedReplicas(replicas)
            .withReadyReplicas(replicas)
            .withAvailableReplicas(replicas)
            .addNewCondition()
            .withType("Available")
            .withStatus("True")
            .withReason("MinimumReplicasAvailable")
            .endCondition()
            .addNewCondition()
            .withType("Progressing")
            .withStatus("True")
            .withReason("NewReplicaSetAvailable")
            .endCondition()
            .build());
  }

  /** Sets a Deployment's status, observed at its current generation. */
  public Deployment setStatus(String namespace, String name, DeploymentStatus status) {
    Deployment d = client.apps().deployments().inNamespace(namespace).withName(name).get();
    status.setObservedGeneration(Objects.requireNonNullElse(d.getMetadata().getGeneration(), 1L));
    d.setStatus(status);
    return client.apps().deployments().inNamespace(namespace).resource(d).updateStatus();
  }

  private static long revision(ReplicaSet rs) {
    Map<String, String> a = rs.getMetadata().getAnnotations();
    return a == null || a.get(REVISION) == null ? 0 : Long.parseLong(a.get(REVISION));
  }

  private static String templateHash(PodTemplateSpec template) {
    PodTemplateSpec copy = JSON.unmarshal(JSON.asJson(template), PodTemplateSpec.class);
    copy.getMetadata().getLabels().remove("pod-template-hash");
    try {
      byte[] sha = MessageDigest.getInstance("SHA-256").digest(JSON.asJson(copy).getBytes(UTF_8));
      return HexFormat.of().formatHex(sha, 0, 5);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** How a Job "ran": whether it succeeded, and its container's termination message. */
  public record JobOutcome(boolean succeeded, String message) {}

  /**
   * Stands in for the Job controller and the kubelet: each Job created in {@code namespace} gets a
   * pod (labelled {@code job-name}) whose container terminated with the outcome's message, and a
   * status with one pod succeeded or failed. Close the watch to stop.
   */
  public io.fabric8.kubernetes.client.Watch runJobs(
      String namespace,
      java.util.function.Function<io.fabric8.kubernetes.api.model.batch.v1.Job, JobOutcome> run) {
    return onJobCreated(
        namespace,
        job -> {
          JobOutcome outcome = run.apply(job);
          String name = job.getMetadata().getName();
          jobPod(
              job,
              name + "-run",
              Map.of(),
              Map.of(
                  "eval",
                  new io.fabric8.kubernetes.api.model.ContainerStateBuilder()
                      .withNewTerminated()
                      .withExitCode(outcome.succeeded() ? 0 : 1)
                      .withMessage(outcome.message())
                      .endTerminated()
                      .build()));
          var live = client.batch().v1().jobs().inNamespace(namespace).withName(name).get();
          live.setStatus(
              outcome.succeeded()
                  ? new io.fabric8.kubernetes.api.model.batch.v1.JobStatusBuilder()
                      .withSucceeded(1)
                      .build()
                  : new io.fabric8.kubernetes.api.model.batch.v1.JobStatusBuilder()
                      .withFailed(1)
                      .build());
          client.batch().v1().jobs().inNamespace(namespace).resource(live).updateStatus();
        });
  }

  /** Calls {@code added} with each Job created in {@code namespace}. Close the watch to stop. */
  public io.fabric8.kubernetes.client.Watch onJobCreated(
      String namespace,
      java.util.function.Consumer<io.fabric8.kubernetes.api.model.batch.v1.Job> added) {
    return client
        .batch()
        .v1()
        .jobs()
        .inNamespace(namespace)
        .watch(
            new io.fabric8.kubernetes.client.Watcher<>() {
              @Override
              public void eventReceived(
                  Action action, io.fabric8.kubernetes.api.model.batch.v1.Job job) {
                if (action == Action.ADDED) {
                  // off the watch's thread: the mock sends events while it holds its lock, and
                  // a request made from the callback would wait for it (until the client's
                  // request timeout)
                  Thread.ofVirtual().start(() -> added.accept(job));
                }
              }

              @Override
              public void onClose(io.fabric8.kubernetes.client.WatcherException cause) {}
            });
  }

  /** A container's state: running (a null exit code), or terminated with the exit code. */
  public static io.fabric8.kubernetes.api.model.ContainerState state(Integer exitCode) {
    var b = new io.fabric8.kubernetes.api.model.ContainerStateBuilder();
    return exitCode == null
        ? b.withNewRunning().endRunning().build()
        : b.withNewTerminated().withExitCode(exitCode).endTerminated().build();
  }

  /**
   * The pod a Job's controller makes (labelled {@code job-name}, owned by the Job), with its
   * containers in these states, by container name.
   */
  public void jobPod(
      io.fabric8.kubernetes.api.model.batch.v1.Job job,
      String pod,
      Map<String, io.fabric8.kubernetes.api.model.ContainerState> init,
      Map<String, io.fabric8.kubernetes.api.model.ContainerState> main) {
    String name = job.getMetadata().getName();
    var status = new io.fabric8.kubernetes.api.model.PodStatusBuilder();
    init.forEach(
        (c, st) ->
            status.addNewInitContainerStatus().withName(c).withState(st).endInitContainerStatus());
    main.forEach(
        (c, st) -> status.addNewContainerStatus().withName(c).withState(st).endContainerStatus());
    client
        .pods()
        .inNamespace(job.getMetadata().getNamespace())
        .resource(
            new io.fabric8.kubernetes.api.model.PodBuilder()
                .withNewMetadata()
                .withName(pod)
                .withLabels(Map.of("job-name", name))
                .addNewOwnerReference()
                .withApiVersion("batch/v1")
                .withKind("Job")
                .withName(name)
                .withUid(job.getMetadata().getUid())
                .endOwnerReference()
                .endMetadata()
                .withStatus(status.build())
                .build())
        .create();
  }

  /** A pod of a Deployment's (by its instance label), ready at {@code ip}. */
  public void readyPod(String namespace, String name, String instance, String ip) {
    client
        .pods()
        .inNamespace(namespace)
        .resource(
            new io.fabric8.kubernetes.api.model.PodBuilder()
                .withNewMetadata()
                .withName(name)
                .withLabels(Map.of("app.kubernetes.io/instance", instance))
                .endMetadata()
                .withNewStatus()
                .withPodIP(ip)
                .addNewCondition()
                .withType("Ready")
                .withStatus("True")
                .endCondition()
                .endStatus()
                .build())
        .create();
  }

  @Override
  public void close() {
    client.close();
    try {
      server.destroy();
    } catch (IllegalStateException e) {
      // the mock gives its connections 10 s to end; now and then (a first test of a JVM) one of
      // them stalls on the mock's own lock for that long, and the shutdown times out. The test's
      // assertions are done: what is left are the mock's own threads.
      if (!String.valueOf(e.getMessage()).contains("Unable to close MockWebServer")) {
        throw e;
      }
    }
  }
}
