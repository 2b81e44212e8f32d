package dev.berth.cli;

import static dev.berth.cli.ContainerTestEnv.docker;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.kube.testing.MockCluster;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.Watch;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code berth train --on kubernetes} end to end but for the cluster: Berth builds and pushes its
 * own image to a real registry and creates the Job in fabric8's mock API server; the test plays the
 * kubelet with the real Docker engine, running the pod's init container (the trainer) and then its
 * publishing container (Berth's image, with the Job's ConfigMap mounted) as the pod spec says, and
 * reports their exit codes and logs back. What a real cluster adds (scheduling, PVCs, the
 * restricted profile being enforced) is verified only against the mock.
 */
class TrainOnKubernetesIT {
  @TempDir Path work;

  @Test
  void theJobsPodTrainsAndBerthsOwnImagePublishesToTheRegistry() throws Exception {
    ContainerTestEnv env = ContainerTestEnv.require();
    Path data = BerthProcess.examples().resolve("minilm/1");
    try (MockCluster cluster = new MockCluster();
        dev.berth.store.TestRegistry registry =
            dev.berth.store.TestRegistry.start(Files.createDirectories(work.resolve("registry")))) {
      KubernetesClient client = cluster.client();
      Path kubeconfig = cluster.kubeconfig(work.resolve("kubeconfig"));
      String target = "oci://" + registry.address() + "/models/embedder:prod";
      List<String> kubelet = new ArrayList<>();
      Watch watch =
          cluster.onJobCreated(
              "ml",
              job -> {
                try {
                  runPod(cluster, job, data, kubelet);
                } catch (Exception e) {
                  kubelet.add("kubelet failed: " + e);
                }
              });
      try {
        Path job = work.resolve("train.yaml");
        Files.writeString(
            job,
            "apiVersion: berth.dev/v1\nkind: TrainingJob\nname: embedder\nmodel: embedder\n"
                + "image: "
                + env.base
                + "\ncommand: [sh, -c]\n"
                + "args: ['cp /data/model.onnx /data/tokenizer.json /output/ && echo trained']\n"
                + "data: [{pvc: minilm-data, mount: /data}]\n");
        ContainerTestEnv.Result r =
            ContainerTestEnv.berth(
                work,
                Map.of("KUBECONFIG", kubeconfig.toString()),
                "train",
                job.toString(),
                "--on",
                "kubernetes",
                "--to",
                target,
                "--berth-image",
                registry.address() + "/berth:it",
                "--base",
                env.baseJava,
                "--cache-dir",
                work.resolve("cache").toString());
        assertEquals(0, r.code(), r.out() + r.err() + kubelet);
        assertTrue(r.err().contains("job/berth-train-embedder created in namespace ml"), r.err());
        assertTrue(r.err().contains("trained"), "the trainer's log streams: " + r.err());
        assertTrue(
            r.err().contains("published model 'embedder' version 1 to " + target),
            "the publisher's log streams: " + r.err());
        var pulled =
            new dev.berth.store.OciModelStore(dev.berth.store.DockerCredentials.none(), line -> {})
                .find(dev.berth.store.OciReference.parse(target))
                .orElseThrow();
        assertEquals("1", pulled.annotations().get(dev.berth.store.ModelArtifact.VERSIONS));
      } finally {
        watch.close();
      }
    }
  }

  /**
   * The kubelet's part: runs the init container, then the main one, with the pod's volumes as
   * directories of this machine (the claim is MiniLM's files), and writes their ends back.
   */
  private void runPod(MockCluster cluster, Job job, Path claim, List<String> kubelet)
      throws Exception {
    KubernetesClient client = cluster.client();
    String name = job.getMetadata().getName();
    var spec = job.getSpec().getTemplate().getSpec();
    Path output = Files.createDirectories(work.resolve("pod/output"));
    Files.setPosixFilePermissions(output, PosixFilePermissions.fromString("rwxrwxrwx"));
    Path jobDir = Files.createDirectories(work.resolve("pod/job"));
    ConfigMap config =
        await()
            .atMost(Duration.ofSeconds(30))
            .until(
                () -> client.configMaps().inNamespace("ml").withName(name).get(), c -> c != null);
    for (var e : config.getData().entrySet()) {
      Files.writeString(jobDir.resolve(e.getKey()), e.getValue());
    }
    String pod = name + "-kubelet";
    Container train = spec.getInitContainers().get(0);
    List<String> trainRun =
        new ArrayList<>(
            List.of(
                "run",
                "--rm",
                "--user",
                "65532",
                "-v",
                output + ":/output",
                "-v",
                claim + ":/data:ro"));
    if (train.getCommand() != null && !train.getCommand().isEmpty()) {
      trainRun.addAll(List.of("--entrypoint", train.getCommand().get(0)));
    }
    trainRun.add(train.getImage());
    trainRun.addAll(train.getCommand().subList(1, train.getCommand().size()));
    trainRun.addAll(train.getArgs());
    ContainerTestEnv.Result trained = docker(work, trainRun.toArray(String[]::new));
    cluster.dispatcher().log(pod, "train", trained.out() + trained.err());
    Container publish = spec.getContainers().get(0);
    List<String> publishRun =
        new ArrayList<>(
            List.of(
                "run",
                "--rm",
                "--network",
                "host",
                "--user",
                "65532",
                "-e",
                "HOME=/tmp",
                "-v",
                output + ":/output:ro",
                "-v",
                jobDir + ":/etc/berth/train:ro",
                publish.getImage()));
    publishRun.addAll(publish.getArgs());
    ContainerTestEnv.Result published =
        trained.code() == 0 ? docker(work, publishRun.toArray(String[]::new)) : null;
    if (published != null) {
      cluster.dispatcher().log(pod, "publish", published.out() + published.err());
    }
    kubelet.add(
        "train " + trained.code() + (published == null ? "" : ", publish " + published.code()));
    cluster.jobPod(
        job,
        pod,
        Map.of("train", MockCluster.state(trained.code())),
        published == null ? Map.of() : Map.of("publish", MockCluster.state(published.code())));
  }
}
