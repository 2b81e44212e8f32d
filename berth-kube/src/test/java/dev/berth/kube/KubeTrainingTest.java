package dev.berth.kube;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.BerthException;
import dev.berth.kube.testing.MockCluster;
import dev.berth.runtime.TrainingJob;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerStateBuilder;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.Watch;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code berth train --on kubernetes} against fabric8's mock API server: the Job's pod (the trainer
 * as an init container, Berth's image publishing), restricted, with its claims, limits and
 * credentials; and a run followed to its end, the tests playing the Job controller and the kubelet
 * (a pod whose containers terminated as a real one's would, their logs served by the mock).
 */
class KubeTrainingTest {
  private static final String NS = "ml";
  private static final String TRAINER = "registry.example/ml/trainer:1@sha256:" + "c3".repeat(32);
  private static final String BERTH = "registry.example/berth:0.1.0@sha256:" + "d4".repeat(32);

  @TempDir Path dir;
  private MockCluster cluster;
  private KubernetesClient client;
  private final ByteArrayOutputStream err = new ByteArrayOutputStream();
  private Watch watch;

  @BeforeEach
  void start() {
    cluster = new MockCluster();
    client = cluster.client();
  }

  @AfterEach
  void stop() {
    if (watch != null) {
      watch.close();
    }
    cluster.close();
  }

  private TrainingJob job() throws IOException {
    Path file = dir.resolve("train.yaml");
    Files.writeString(
        file,
        "apiVersion: berth.dev/v1\nkind: TrainingJob\nname: fashion\nmodel: fashion-mnist\n"
            + "image: "
            + TRAINER
            + "\nargs: [--output, /output, --data-dir, /data]\n"
            + "env: {SEED: \"7\"}\n"
            + "data: [{pvc: fashion-data, sub-path: t10k, mount: /data}]\n"
            + "resources: {cpu: 2, memory: 1Gi, gpus: 1}\n"
            + "time-limit: 10m\n");
    return TrainingJob.load(file);
  }

  private List<HasMetadata> objects(TrainingJob job) {
    return KubeTraining.objects(
        job,
        new KubeTraining.Settings(
            TRAINER,
            BERTH,
            "oci://registry.example/ml/fashion:prod",
            "registry-creds",
            null,
            null,
            "apiVersion: berth.dev/v1\nkind: TrainingJob\n",
            "apiVersion: berth.dev/v1\nkind: Model\n"),
        NS);
  }

  @Test
  void theJobsPodTrainsThenPublishesWithBerthsImageUnderTheRestrictedProfile() throws IOException {
    List<HasMetadata> objects = objects(job());
    ConfigMap config = (ConfigMap) objects.get(0);
    Job job = (Job) objects.get(1);
    assertEquals("berth-train-fashion", job.getMetadata().getName());
    assertEquals(List.of("train.yaml", "model.yaml"), List.copyOf(config.getData().keySet()));
    assertEquals(
        600 + KubeTraining.PUBLISH_ALLOWANCE_SECONDS,
        job.getSpec().getActiveDeadlineSeconds(),
        "the time limit, and time to publish");
    assertEquals(0, job.getSpec().getBackoffLimit());

    PodSpec pod = job.getSpec().getTemplate().getSpec();
    assertEquals("Never", pod.getRestartPolicy());
    assertEquals("registry-creds", pod.getImagePullSecrets().get(0).getName(), "private images");
    assertEquals(Boolean.FALSE, pod.getAutomountServiceAccountToken());
    assertEquals(Boolean.TRUE, pod.getSecurityContext().getRunAsNonRoot());
    assertEquals("RuntimeDefault", pod.getSecurityContext().getSeccompProfile().getType());
    Container train = pod.getInitContainers().get(0);
    Container publish = pod.getContainers().get(0);
    for (Container c : List.of(train, publish)) {
      assertEquals(
          Boolean.FALSE, c.getSecurityContext().getAllowPrivilegeEscalation(), c.getName());
      assertEquals(List.of("ALL"), c.getSecurityContext().getCapabilities().getDrop());
    }
    assertEquals(TRAINER, train.getImage());
    assertEquals(List.of("--output", "/output", "--data-dir", "/data"), train.getArgs());
    assertEquals("/tmp", train.getEnv().get(0).getValue(), "HOME for the unprivileged user");
    assertEquals("7", train.getEnv().get(1).getValue());
    assertEquals(new Quantity("2000m"), train.getResources().getLimits().get("cpu"));
    assertEquals(new Quantity("1"), train.getResources().getLimits().get("nvidia.com/gpu"));
    var data =
        train.getVolumeMounts().stream().filter(m -> m.getMountPath().equals("/data")).findFirst();
    assertTrue(
        data.isPresent() && data.get().getReadOnly() && "t10k".equals(data.get().getSubPath()));
    var claim =
        pod.getVolumes().stream().filter(v -> v.getPersistentVolumeClaim() != null).findFirst();
    assertEquals("fashion-data", claim.orElseThrow().getPersistentVolumeClaim().getClaimName());

    assertEquals(BERTH, publish.getImage());
    assertEquals(
        List.of(
            "train",
            "/etc/berth/train/train.yaml",
            "--publish-output",
            "/output",
            "--to",
            "oci://registry.example/ml/fashion:prod"),
        publish.getArgs());
    assertEquals(Boolean.TRUE, publish.getSecurityContext().getReadOnlyRootFilesystem());
    assertTrue(
        publish.getEnv().stream()
            .anyMatch(
                e ->
                    e.getName().equals("DOCKER_CONFIG")
                        && e.getValue().equals("/etc/berth/registry")));
    assertTrue(
        publish.getVolumeMounts().stream()
            .anyMatch(m -> m.getMountPath().equals("/output") && m.getReadOnly()),
        "the publisher reads what the trainer wrote");
  }

  @Test
  void aLongJobNameIsShortenedToALabel() throws IOException {
    Path file = dir.resolve("long.yaml");
    String name = "a".repeat(60);
    Files.writeString(
        file,
        "apiVersion: berth.dev/v1\nkind: TrainingJob\nname: " + name + "\nmodel: m\nimage: i\n");
    String jobName = KubeTraining.jobName(TrainingJob.load(file));
    assertTrue(jobName.length() <= 63 && jobName.startsWith("berth-train-aaa"), jobName);
  }

  @Test
  void aLocalPathCannotBeMountedInACluster() throws IOException {
    Files.createDirectories(dir.resolve("data"));
    Path file = dir.resolve("local.yaml");
    Files.writeString(
        file,
        "apiVersion: berth.dev/v1\nkind: TrainingJob\nname: t\nmodel: m\nimage: i\n"
            + "data: [{path: data, mount: /data}]\n");
    BerthException e = assertThrows(BerthException.class, () -> objects(TrainingJob.load(file)));
    assertTrue(e.getMessage().contains("pvc: NAME"), e.getMessage());
  }

  /**
   * Plays the Job controller and kubelet: a pod whose trainer ended with {@code trainExit} (or runs
   * on, for null) and whose publisher ended with {@code publishExit} (or never started).
   */
  private void runPods(Integer trainExit, Integer publishExit) {
    watch =
        cluster.onJobCreated(
            NS,
            job -> {
              String pod = job.getMetadata().getName() + "-abcde";
              // the pod of an earlier Job of the name went with it (foreground deletion)
              client.pods().inNamespace(NS).withName(pod).delete();
              cluster.dispatcher().log(pod, "train", "epoch 1/1 accuracy 0.8838\n");
              cluster.dispatcher().log(pod, "publish", "published model 'fashion-mnist'\n");
              cluster.jobPod(
                  job,
                  pod,
                  Map.of("train", MockCluster.state(trainExit)),
                  publishExit == null
                      ? Map.of()
                      : Map.of("publish", MockCluster.state(publishExit)));
            });
  }

  private KubeTraining training() {
    return new KubeTraining(client, NS, new PrintStream(err, true, StandardCharsets.UTF_8));
  }

  private String err() {
    return err.toString(StandardCharsets.UTF_8);
  }

  @Test
  void aRunStreamsBothLogsAndEndsWithThePublishersExitCode() throws IOException {
    runPods(0, 0);
    assertEquals(0, training().run(objects(job()), () -> false), err());
    assertTrue(err().contains("epoch 1/1 accuracy 0.8838"), err());
    assertTrue(err().contains("published model 'fashion-mnist'"), err());
    ConfigMap config = client.configMaps().inNamespace(NS).withName("berth-train-fashion").get();
    assertEquals("Job", config.getMetadata().getOwnerReferences().get(0).getKind(), "goes with it");
  }

  @Test
  void aRefusedModelIsExitCodeThreeAndAFailedTrainingOne() throws IOException {
    runPods(0, 3);
    assertEquals(3, training().run(objects(job()), () -> false), err());
    watch.close();
    runPods(7, null);
    assertEquals(1, training().run(objects(job()), () -> false), err());
    assertTrue(
        err().contains("removing job/berth-train-fashion, which an earlier run left"), err());
    assertTrue(err().contains("the job failed with exit code 7"), err());
  }

  @Test
  void anImageTheClusterCannotPullFailsAtOnceAndTheJobGoes() throws IOException {
    watch =
        cluster.onJobCreated(
            NS,
            job ->
                cluster.jobPod(
                    job,
                    job.getMetadata().getName() + "-pull",
                    Map.of(
                        "train",
                        new ContainerStateBuilder()
                            .withNewWaiting()
                            .withReason("ImagePullBackOff")
                            .withMessage("Back-off pulling image")
                            .endWaiting()
                            .build()),
                    Map.of()));
    assertEquals(1, training().run(objects(job()), () -> false), err());
    assertTrue(
        err()
            .contains(
                "container train of pod berth-train-fashion-pull cannot start: ImagePullBackOff"),
        err());
    assertNull(client.batch().v1().jobs().inNamespace(NS).withName("berth-train-fashion").get());
  }

  @Test
  void ctrlCDeletesTheJob() throws IOException {
    runPods(null, null); // training runs on
    AtomicBoolean cancelled = new AtomicBoolean();
    int code =
        training()
            .run(
                objects(job()),
                () -> {
                  // Ctrl-C once the training runs
                  if (!client.pods().inNamespace(NS).list().getItems().isEmpty()) {
                    cancelled.set(true);
                  }
                  return cancelled.get();
                });
    assertEquals(130, code, err());
    assertNull(client.batch().v1().jobs().inNamespace(NS).withName("berth-train-fashion").get());
  }
}
