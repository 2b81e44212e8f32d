package dev.berth.kube;

import static dev.berth.kube.ManifestGenerator.MANAGED_BY_LABEL;

import dev.berth.api.BerthException;
import dev.berth.runtime.TrainingJob;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.ContainerBuilder;
import io.fabric8.kubernetes.api.model.ContainerStateTerminated;
import io.fabric8.kubernetes.api.model.ContainerStatus;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.OwnerReferenceBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.SecurityContext;
import io.fabric8.kubernetes.api.model.Volume;
import io.fabric8.kubernetes.api.model.VolumeBuilder;
import io.fabric8.kubernetes.api.model.VolumeMount;
import io.fabric8.kubernetes.api.model.VolumeMountBuilder;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.api.model.batch.v1.JobBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.Watch;
import io.fabric8.kubernetes.client.Watcher;
import io.fabric8.kubernetes.client.WatcherException;
import io.fabric8.kubernetes.client.dsl.LogWatch;
import java.io.PrintStream;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * {@code berth train --on kubernetes}: a training job as a Kubernetes Job. Its pod runs the
 * training image as an init container writing into an emptyDir at the job's output directory, then
 * Berth's own image, which checks, gates and publishes what it wrote exactly as {@code berth train}
 * does on a workstation ({@code berth train JOB --publish-output DIR}), to a registry or S3. The
 * pod follows the restricted Pod Security Standard, its data sets are PersistentVolumeClaims
 * mounted read-only, and the job's time limit is the Job's deadline.
 */
public final class KubeTraining {
  /** Label on a training Job and its pod: the job's name. */
  public static final String JOB_LABEL = "dev.berth/training-job";

  /** Where the publishing container reads the job file and the new model's model.yaml. */
  public static final String JOB_DIR = "/etc/berth/train";

  private static final long USER = 65532;
  private static final String OUTPUT_VOLUME = "output";

  private final KubernetesClient client;
  private final String namespace;
  private final PrintStream err;
  // the uid of the Job this run created: its pods are owned by it (an earlier Job's are not)
  private volatile String jobUid;

  public KubeTraining(KubernetesClient client, String namespace, PrintStream err) {
    this.client = client;
    this.namespace = namespace;
    this.err = err;
  }

  /**
   * Where things come from in the cluster.
   *
   * @param trainerImage the training image, pullable by the cluster
   * @param berthImage Berth's own image, which publishes
   * @param target where the version is published ({@code oci://...} or {@code s3://...})
   * @param registrySecret a {@code kubernetes.io/dockerconfigjson} Secret for the registry, or null
   * @param s3Secret a Secret whose keys become the publisher's environment ({@code
   *     AWS_ACCESS_KEY_ID}, ...), or null
   * @param s3Endpoint an S3-compatible store's endpoint, or null
   * @param jobFile the job file the publisher reads (its data and trainer settings left out)
   * @param modelYaml the model.yaml a new model starts with, or null
   */
  public record Settings(
      String trainerImage,
      String berthImage,
      String target,
      String registrySecret,
      String s3Secret,
      String s3Endpoint,
      String jobFile,
      String modelYaml) {}

  /** The Job's name: {@code berth-train-NAME}. */
  public static String jobName(TrainingJob job) {
    String name = "berth-train-" + job.name();
    if (name.length() <= 63) {
      return name;
    }
    // a Job's name becomes its pods' job-name label: at most 63 characters
    String hash = Integer.toHexString(job.name().hashCode() & 0xffffff);
    String base = name.substring(0, 62 - hash.length());
    while (base.endsWith("-")) {
      base = base.substring(0, base.length() - 1);
    }
    return base + "-" + hash;
  }

  /**
   * How long the Job may run: the training's time limit and ten minutes for publishing, which the
   * deadline must not cut short (an S3 upload stopped midway would leave part of a version).
   */
  public static final long PUBLISH_ALLOWANCE_SECONDS = 600;

  /** The ConfigMap holding the publisher's job file, and the Job. */
  public static List<io.fabric8.kubernetes.api.model.HasMetadata> objects(
      TrainingJob job, Settings s, String namespace) {
    String name = jobName(job);
    Map<String, String> labels = new LinkedHashMap<>();
    labels.put(MANAGED_BY_LABEL, "berth");
    labels.put("app.kubernetes.io/component", "training");
    labels.put(JOB_LABEL, job.name());
    Map<String, String> files = new LinkedHashMap<>();
    files.put("train.yaml", s.jobFile());
    if (s.modelYaml() != null) {
      files.put("model.yaml", s.modelYaml());
    }
    ConfigMap config =
        new ConfigMapBuilder()
            .withNewMetadata()
            .withName(name)
            .withNamespace(namespace)
            .withLabels(labels)
            .endMetadata()
            .withData(files)
            .build();

    SecurityContext restricted = ManifestGenerator.restricted(false);
    List<Volume> volumes = new ArrayList<>();
    volumes.add(
        new VolumeBuilder().withName(OUTPUT_VOLUME).withNewEmptyDir().endEmptyDir().build());
    // the trainer and the publisher (which holds the store's credentials) share only the output
    volumes.add(new VolumeBuilder().withName("train-tmp").withNewEmptyDir().endEmptyDir().build());
    volumes.add(new VolumeBuilder().withName("tmp").withNewEmptyDir().endEmptyDir().build());
    volumes.add(
        new VolumeBuilder()
            .withName("job")
            .withNewConfigMap()
            .withName(name)
            .endConfigMap()
            .build());
    List<VolumeMount> trainMounts = new ArrayList<>();
    trainMounts.add(mount(OUTPUT_VOLUME, job.output(), false, null));
    for (int i = 0; i < job.data().size(); i++) {
      TrainingJob.DataSet d = job.data().get(i);
      if (d.claim() == null) {
        throw new BerthException(
            job.file()
                + ": data["
                + i
                + "] is a path of this machine ("
                + d.path()
                + "), which a cluster cannot mount; give a PersistentVolumeClaim (pvc: NAME) for"
                + " --on kubernetes");
      }
      String volume = "data-" + i;
      volumes.add(
          new VolumeBuilder()
              .withName(volume)
              .withNewPersistentVolumeClaim()
              .withClaimName(d.claim())
              .withReadOnly(true)
              .endPersistentVolumeClaim()
              .build());
      trainMounts.add(mount(volume, d.mount(), true, d.subPath()));
    }
    Map<String, Quantity> requests = new LinkedHashMap<>();
    Map<String, Quantity> limits = new LinkedHashMap<>();
    if (job.cpus() > 0) {
      Quantity cpu = new Quantity(Long.toString(Math.round(job.cpus() * 1000)) + "m");
      requests.put("cpu", cpu);
      limits.put("cpu", cpu);
    }
    if (job.memoryBytes() > 0) {
      Quantity memory = new Quantity(Long.toString(job.memoryBytes()));
      requests.put("memory", memory);
      limits.put("memory", memory);
    }
    if (job.gpus() > 0) {
      limits.put("nvidia.com/gpu", new Quantity(Integer.toString(job.gpus())));
    }
    List<EnvVar> env = new ArrayList<>();
    if (!job.env().containsKey("HOME")) {
      env.add(new EnvVar("HOME", "/tmp", null)); // the unprivileged user has no home of its own
    }
    job.env().forEach((k, v) -> env.add(new EnvVar(k, v, null)));
    ContainerBuilder train =
        new ContainerBuilder()
            .withName("train")
            .withImage(s.trainerImage())
            .withImagePullPolicy(s.trainerImage().contains("@sha256:") ? "IfNotPresent" : "Always")
            .withEnv(env)
            .withNewResources()
            .withRequests(requests)
            .withLimits(limits)
            .endResources()
            .withSecurityContext(restricted)
            .withVolumeMounts(trainMounts)
            .addToVolumeMounts(mount("train-tmp", "/tmp", false, null));
    if (!job.command().isEmpty()) {
      train.withCommand(job.command());
    }
    if (!job.args().isEmpty()) {
      train.withArgs(job.args());
    }

    List<String> publishArgs =
        new ArrayList<>(
            List.of(
                "train",
                JOB_DIR + "/train.yaml",
                "--publish-output",
                job.output(),
                "--to",
                s.target()));
    if (s.s3Endpoint() != null) {
      publishArgs.addAll(List.of("--s3-endpoint", s.s3Endpoint()));
    }
    List<EnvVar> publishEnv = new ArrayList<>();
    publishEnv.add(new EnvVar("HOME", "/tmp", null));
    List<VolumeMount> publishMounts = new ArrayList<>();
    publishMounts.add(mount(OUTPUT_VOLUME, job.output(), true, null));
    publishMounts.add(mount("job", JOB_DIR, true, null));
    publishMounts.add(mount("tmp", "/tmp", false, null));
    if (s.registrySecret() != null) {
      volumes.add(
          new VolumeBuilder()
              .withName("registry")
              .withNewSecret()
              .withSecretName(s.registrySecret())
              .addNewItem()
              .withKey(".dockerconfigjson")
              .withPath("config.json")
              .endItem()
              .endSecret()
              .build());
      publishMounts.add(mount("registry", "/etc/berth/registry", true, null));
      publishEnv.add(new EnvVar("DOCKER_CONFIG", "/etc/berth/registry", null));
    }
    ContainerBuilder publish =
        new ContainerBuilder()
            .withName("publish")
            .withImage(s.berthImage())
            .withImagePullPolicy(s.berthImage().contains("@sha256:") ? "IfNotPresent" : "Always")
            .withArgs(publishArgs)
            .withEnv(publishEnv)
            .withSecurityContext(ManifestGenerator.restricted(true))
            .withVolumeMounts(publishMounts)
            .withNewResources()
            .withRequests(Map.of("cpu", new Quantity("500m"), "memory", new Quantity("1Gi")))
            .withLimits(Map.of("memory", new Quantity("4Gi")))
            .endResources();
    if (s.s3Secret() != null) {
      publish.addNewEnvFrom().withNewSecretRef().withName(s.s3Secret()).endSecretRef().endEnvFrom();
    }

    Job kubeJob =
        new JobBuilder()
            .withNewMetadata()
            .withName(name)
            .withNamespace(namespace)
            .withLabels(labels)
            .endMetadata()
            .withNewSpec()
            .withBackoffLimit(0)
            .withActiveDeadlineSeconds(
                Math.max(1, job.timeLimit().toSeconds()) + PUBLISH_ALLOWANCE_SECONDS)
            .withTtlSecondsAfterFinished(3600)
            .withNewTemplate()
            .withNewMetadata()
            .withLabels(labels)
            .endMetadata()
            .withNewSpec()
            .withRestartPolicy("Never")
            .withAutomountServiceAccountToken(false)
            .withNewSecurityContext()
            .withRunAsNonRoot(true)
            .withRunAsUser(USER)
            .withRunAsGroup(USER)
            .withFsGroup(USER)
            .withNewSeccompProfile()
            .withType("RuntimeDefault")
            .endSeccompProfile()
            .endSecurityContext()
            .withImagePullSecrets(
                s.registrySecret() == null
                    ? List.of()
                    : List.of(
                        new io.fabric8.kubernetes.api.model.LocalObjectReference(
                            s.registrySecret())))
            .withInitContainers(train.build())
            .withContainers(publish.build())
            .withVolumes(volumes)
            .endSpec()
            .endTemplate()
            .endSpec()
            .build();
    return List.of(config, kubeJob);
  }

  private static VolumeMount mount(String volume, String path, boolean readOnly, String subPath) {
    return new VolumeMountBuilder()
        .withName(volume)
        .withMountPath(path)
        .withReadOnly(readOnly ? Boolean.TRUE : null)
        .withSubPath(subPath)
        .build();
  }

  /**
   * Runs the Job: replaces one a killed run left, creates the Job and its ConfigMap (owned by the
   * Job, so it goes with it), streams the training's and then the publisher's log as they are
   * written, and waits for the end.
   *
   * @param cancelled asked while waiting: true deletes the Job (Ctrl-C)
   * @return 0 published, 1 the training failed or ran past its time limit (or the publisher could
   *     not publish), 3 refused by the gate, 130 cancelled
   */
  @SuppressWarnings("try") // the watch only has to live as long as the run
  public int run(
      List<io.fabric8.kubernetes.api.model.HasMetadata> objects, BooleanSupplier cancelled) {
    ConfigMap config = (ConfigMap) objects.get(0);
    Job job = (Job) objects.get(1);
    String name = job.getMetadata().getName();
    var jobs = client.batch().v1().jobs().inNamespace(namespace);
    Job left = jobs.withName(name).get();
    if (left != null
        && left.getStatus() != null
        && left.getStatus().getActive() != null
        && left.getStatus().getActive() > 0) {
      throw new BerthException(
          "job/"
              + name
              + " is running in namespace "
              + namespace
              + " (another berth train of this job?); wait for it, or delete it with 'kubectl"
              + " delete job "
              + name
              + "'");
    }
    if (left != null) {
      err.println("berth train: removing job/" + name + ", which an earlier run left");
      jobs.withName(name)
          .withPropagationPolicy(io.fabric8.kubernetes.api.model.DeletionPropagation.FOREGROUND)
          .delete();
      jobs.withName(name).waitUntilCondition(Objects::isNull, 2, TimeUnit.MINUTES);
    }
    client.configMaps().inNamespace(namespace).withName(name).delete();
    BlockingQueue<Pod> changes = new LinkedBlockingQueue<>();
    java.util.concurrent.atomic.AtomicBoolean noticed =
        new java.util.concurrent.atomic.AtomicBoolean();
    try (Watch watch =
        client
            .pods()
            .inNamespace(namespace)
            .withLabel("job-name", name)
            .watch(
                new Watcher<>() {
                  @Override
                  public void eventReceived(Action action, Pod pod) {
                    if (action != Action.DELETED && owned(pod)) {
                      changes.add(pod);
                    }
                  }

                  @Override
                  public void onClose(WatcherException cause) {}
                })) {
      // the ConfigMap first, so that the pod mounts it at once; it goes with the Job
      client.configMaps().inNamespace(namespace).resource(config).create();
      Job created = jobs.resource(job).create();
      jobUid = created.getMetadata().getUid();
      client
          .configMaps()
          .inNamespace(namespace)
          .withName(name)
          .edit(
              c -> {
                c.getMetadata()
                    .setOwnerReferences(
                        List.of(
                            new OwnerReferenceBuilder()
                                .withApiVersion("batch/v1")
                                .withKind("Job")
                                .withName(name)
                                .withUid(created.getMetadata().getUid())
                                .withController(false)
                                .build()));
                return c;
              });
      err.println(
          "berth train: job/"
              + name
              + " created in namespace "
              + namespace
              + " (time limit "
              + job.getSpec().getActiveDeadlineSeconds()
              + " s); its output:");
      Pod pod = await(changes, name, p -> started(p, "train", true) || over(p), cancelled);
      if (pod == null) {
        return cancel(name);
      }
      if (started(pod, "train", true)) {
        pod = stream(changes, pod, "train", true, cancelled);
        if (pod == null) {
          return cancel(name);
        }
      }
      ContainerStateTerminated trained = terminated(pod, "train", true);
      if (trained == null || trained.getExitCode() != 0) {
        return failed(name, trained);
      }
      // publishing is not interrupted: a Ctrl-C now would leave part of a version in S3
      BooleanSupplier publishing =
          () -> {
            if (cancelled.getAsBoolean() && !noticed.getAndSet(true)) {
              err.println(
                  "berth train: the model is being published; waiting for that to finish (Ctrl-C"
                      + " again quits, the Job keeps on)");
            }
            return false;
          };
      pod = await(changes, name, p -> started(p, "publish", false) || over(p), publishing);
      if (!started(pod, "publish", false)) {
        err.println("berth train: job/" + name + " ended without its publishing step");
        return 1;
      }
      pod = stream(changes, pod, "publish", false, publishing);
      ContainerStateTerminated published = terminated(pod, "publish", false);
      if (published == null) {
        err.println("berth train: job/" + name + " ended without its publishing step");
        return 1;
      }
      // 0 published, 3 refused by the gate; anything else (a killed publisher too) is a failure
      int code = published.getExitCode();
      return code == 0 || code == 3 ? code : 1;
    } catch (JobFailed e) {
      err.println("berth train: " + e.getMessage() + "; nothing was published");
      jobs.withName(name)
          .withPropagationPolicy(io.fabric8.kubernetes.api.model.DeletionPropagation.BACKGROUND)
          .delete();
      return 1;
    } catch (KubernetesClientException e) {
      throw new BerthException(
          "lost job/" + name + " in namespace " + namespace + ": " + e.getMessage(), e);
    }
  }

  /**
   * The job's pod once {@code until} holds for it, as the watch reports it; null when cancelled
   * first. A Job whose pod is gone (deleted by someone else) ends the wait too.
   */
  private Pod await(
      BlockingQueue<Pod> changes,
      String name,
      java.util.function.Predicate<Pod> until,
      BooleanSupplier cancelled) {
    Pod latest = current(name);
    while (latest == null || !until.test(latest)) {
      if (cancelled.getAsBoolean()) {
        return null;
      }
      String stuck = stuck(latest);
      if (stuck != null) {
        throw new JobFailed(stuck);
      }
      try {
        Pod next = changes.poll(1, TimeUnit.SECONDS);
        if (next != null) {
          latest = next;
          continue;
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return null;
      }
      // nothing heard for a second: look for ourselves (a watch that died tells nothing)
      Pod listed = current(name);
      if (listed != null) {
        latest = listed;
        if (until.test(latest)) {
          break;
        }
      }
      Job job = client.batch().v1().jobs().inNamespace(namespace).withName(name).get();
      if (job == null) {
        throw new BerthException("job/" + name + " was deleted while it ran");
      }
      if (job.getStatus() != null && job.getStatus().getConditions() != null) {
        for (var c : job.getStatus().getConditions()) {
          if ("Failed".equals(c.getType()) && "True".equals(c.getStatus())) {
            // its pod is gone, or never ran (past the deadline before it started)
            throw new JobFailed(
                "DeadlineExceeded".equals(c.getReason())
                    ? "job/" + name + " ran past its time limit and was stopped"
                    : "job/" + name + " failed: " + c.getReason() + " " + c.getMessage());
          }
        }
      }
    }
    return latest;
  }

  /** The pod of this run's Job, as the API server has it now, or null. */
  private Pod current(String name) {
    return client
        .pods()
        .inNamespace(namespace)
        .withLabel("job-name", name)
        .list()
        .getItems()
        .stream()
        .filter(this::owned)
        .findFirst()
        .orElse(null);
  }

  private boolean owned(Pod p) {
    return p.getMetadata().getOwnerReferences() != null
        && p.getMetadata().getOwnerReferences().stream()
            .anyMatch(o -> Objects.equals(o.getUid(), jobUid));
  }

  /** A Job that will not get further: why, for the message. */
  static final class JobFailed extends BerthException {
    JobFailed(String message) {
      super(message);
    }
  }

  /**
   * Why a pod's containers cannot start (an image that cannot be pulled, a missing Secret or
   * claim), or null.
   */
  private static String stuck(Pod p) {
    if (p == null || p.getStatus() == null) {
      return null;
    }
    List<ContainerStatus> all = new ArrayList<>();
    if (p.getStatus().getInitContainerStatuses() != null) {
      all.addAll(p.getStatus().getInitContainerStatuses());
    }
    if (p.getStatus().getContainerStatuses() != null) {
      all.addAll(p.getStatus().getContainerStatuses());
    }
    for (ContainerStatus s : all) {
      var waiting = s.getState() == null ? null : s.getState().getWaiting();
      if (waiting != null
          && java.util.Set.of(
                  "ImagePullBackOff",
                  "InvalidImageName",
                  "CreateContainerConfigError",
                  "CreateContainerError")
              .contains(waiting.getReason())) {
        return "container "
            + s.getName()
            + " of pod "
            + p.getMetadata().getName()
            + " cannot start: "
            + waiting.getReason()
            + (waiting.getMessage() == null ? "" : " (" + waiting.getMessage() + ")");
      }
    }
    return null;
  }

  /**
   * Follows a container's log, as it writes it, until it has terminated; returns the pod as it is
   * then, or null when cancelled first.
   */
  private Pod stream(
      BlockingQueue<Pod> changes,
      Pod pod,
      String container,
      boolean init,
      BooleanSupplier cancelled) {
    String podName = pod.getMetadata().getName();
    try (LogWatch log =
        client
            .pods()
            .inNamespace(namespace)
            .withName(podName)
            .inContainer(container)
            .watchLog(err)) {
      Pod done =
          await(
              changes,
              pod.getMetadata().getLabels().get("job-name"),
              p -> terminated(p, container, init) != null || over(p),
              cancelled);
      if (done == null) {
        return null;
      }
      try {
        // what the log still held when the container ended
        log.onClose().toCompletableFuture().get(10, TimeUnit.SECONDS);
      } catch (java.util.concurrent.TimeoutException | java.util.concurrent.ExecutionException e) {
        // the rest of the log is lost; the result is not
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      return done;
    }
  }

  private int cancel(String name) {
    client
        .batch()
        .v1()
        .jobs()
        .inNamespace(namespace)
        .withName(name)
        .withPropagationPolicy(io.fabric8.kubernetes.api.model.DeletionPropagation.FOREGROUND)
        .delete();
    err.println("berth train: stopped; job/" + name + " deleted, nothing was published");
    return 130;
  }

  private int failed(String name, ContainerStateTerminated trained) {
    Job job = client.batch().v1().jobs().inNamespace(namespace).withName(name).get();
    boolean deadline =
        job != null
            && job.getStatus() != null
            && job.getStatus().getConditions() != null
            && job.getStatus().getConditions().stream()
                .anyMatch(c -> "DeadlineExceeded".equals(c.getReason()));
    if (deadline) {
      err.println(
          "berth train: job/"
              + name
              + " ran past its time limit and was stopped; nothing was published");
    } else {
      err.println(
          "berth train: the job failed"
              + (trained == null ? "" : " with exit code " + trained.getExitCode())
              + (trained != null && "OOMKilled".equals(trained.getReason())
                  ? " (killed for memory: raise resources.memory)"
                  : "")
              + "; nothing was published");
    }
    return 1;
  }

  /** A pod that will run nothing more. */
  private static boolean over(Pod p) {
    return p.getStatus() != null
        && ("Failed".equals(p.getStatus().getPhase())
            || "Succeeded".equals(p.getStatus().getPhase()));
  }

  private static boolean started(Pod p, String container, boolean init) {
    ContainerStatus s = status(p, container, init);
    return s != null
        && s.getState() != null
        && (s.getState().getRunning() != null || s.getState().getTerminated() != null);
  }

  private static ContainerStatus status(Pod p, String container, boolean init) {
    if (p == null || p.getStatus() == null) {
      return null;
    }
    List<ContainerStatus> all =
        init ? p.getStatus().getInitContainerStatuses() : p.getStatus().getContainerStatuses();
    if (all == null) {
      return null;
    }
    return all.stream().filter(c -> container.equals(c.getName())).findFirst().orElse(null);
  }

  private static ContainerStateTerminated terminated(Pod p, String container, boolean init) {
    ContainerStatus s = status(p, container, init);
    return s == null || s.getState() == null ? null : s.getState().getTerminated();
  }
}
