package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.image.ContainerEngine;
import dev.berth.image.ContainerSpec;
import dev.berth.kube.KubeTraining;
import dev.berth.runtime.ConfigReader;
import dev.berth.runtime.GateEvaluator;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.LoadedModel;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelGate;
import dev.berth.runtime.ModelIntegrity;
import dev.berth.runtime.ModelRepository;
import dev.berth.runtime.ModelStatus;
import dev.berth.runtime.ServiceSpec;
import dev.berth.runtime.ServingMetrics;
import dev.berth.runtime.TrainingJob;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code berth train JOB.yaml}: runs a training job in a container on the local engine, streams its
 * logs, and publishes what it wrote to its output directory as the next version of a model, once
 * that version loads and passes the model's gate. A job that fails, runs past its time limit,
 * writes nothing, writes a model that does not load or one the gate refuses publishes nothing.
 */
@Command(
    name = "train",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
      "Run a training job (kind: TrainingJob) in a container on the local engine and publish what"
          + " it writes to its output directory as the next version of a model in a model"
          + " repository, once that version loads. Publication is atomic: a job that fails, runs"
          + " past its time limit, writes nothing or writes a model that does not load leaves the"
          + " repository as it was.",
      "The model's model.yaml gate, when it has one, evaluates the trained model before it is"
          + " published.",
      "Exit codes: 0 published, 1 the job failed (or wrote no loadable model), 2 bad usage or job"
          + " file, 3 refused by the gate, 130 stopped (Ctrl-C).",
      ""
    })
final class TrainCommand implements Callable<Integer> {
  /** Label on a training container: the job's name. */
  static final String JOB_LABEL = "dev.berth.training-job";

  private static final Duration STOP_TIMEOUT = Duration.ofSeconds(10);

  // the check loads models as a server would: its load lines would interleave with the job's own
  private static final java.util.logging.Logger RUNTIME_LOG =
      java.util.logging.Logger.getLogger("dev.berth.runtime");

  /** The exit code of a trained model the gate refused. */
  static final int REFUSED = 3;

  @Parameters(index = "0", paramLabel = "JOB.yaml", description = "The training job file.")
  Path jobFile;

  @Option(
      names = "--to",
      paramLabel = "DIR|oci://...|s3://...",
      description =
          "Where to publish, instead of the job's 'to': a model repository directory, a model in a"
              + " registry (oci://REGISTRY/REPOSITORY:TAG, as berth push stores it), or a model"
              + " repository in S3 (s3://BUCKET/PREFIX, the model under PREFIX/MODEL/).")
  String to;

  @Option(
      names = "--s3-endpoint",
      paramLabel = "URL",
      description =
          "An S3-compatible store for an s3:// target (MinIO, Ceph, ...), as berth serve"
              + " --s3-endpoint (default: AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, else AWS S3).")
  String s3Endpoint;

  @Option(
      names = "--base",
      paramLabel = "REF",
      description =
          "The base image of a Java job's trainer, instead of the job's java.base (with --on"
              + " kubernetes, of Berth's own image too): a registry reference, docker://NAME:TAG"
              + " or tar:PATH, with java on its PATH.")
  String base;

  @Option(
      names = "--on",
      paramLabel = "docker|kubernetes",
      description =
          "Where the job runs: the local engine (docker, the default, as berth run uses), or a"
              + " Kubernetes Job (kubernetes: the kubeconfig's cluster, the pod publishing with"
              + " Berth's own image to an oci:// or s3:// target).",
      defaultValue = "docker")
  String on;

  @Option(
      names = "--trainer-image",
      paramLabel = "REF",
      description =
          "--on kubernetes, a java job: the registry reference its packed trainer is pushed to,"
              + " for the cluster to pull.")
  String trainerImage;

  @Option(
      names = "--berth-image",
      paramLabel = "REF",
      description =
          "--on kubernetes: the registry reference Berth pushes its own image to, which the Job's"
              + " pod publishes with (default: REGISTRY/berth:VERSION of an oci:// target).")
  String berthImage;

  @Option(
      names = "--registry-secret",
      paramLabel = "NAME",
      description =
          "--on kubernetes: a kubernetes.io/dockerconfigjson Secret with the target registry's"
              + " credentials.")
  String registrySecret;

  @Option(
      names = "--s3-secret",
      paramLabel = "NAME",
      description =
          "--on kubernetes: a Secret whose keys (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,"
              + " AWS_REGION, ...) become the publisher's environment.")
  String s3Secret;

  @Option(names = "--publish-output", paramLabel = "DIR", hidden = true)
  Path publishOutput;

  @picocli.CommandLine.Mixin KubeOptions kube;

  @Option(
      names = "--cache-dir",
      paramLabel = "DIR",
      description = "Layer cache for packing a Java trainer (default: ${DEFAULT-VALUE}).",
      defaultValue = "${env:XDG_CACHE_HOME:-${sys:user.home}/.cache}/berth")
  Path cacheDir;

  /** What a Ctrl-C stops: the job's container while it runs, else the steps around it. */
  private static final class Cancel {
    volatile boolean requested;
    volatile ContainerEngine engine;
    volatile String container;

    void stopContainer() {
      String id = container;
      if (id != null && engine != null) {
        try {
          engine.stop(id, Duration.ofSeconds(2));
        } catch (RuntimeException e) {
          // gone already; the run's own clean-up removes what is left
        }
      }
    }
  }

  @Override
  public Integer call() {
    RUNTIME_LOG.setLevel(java.util.logging.Level.WARNING);
    TrainingJob job = TrainingJob.load(jobFile);
    String where = destination(job);
    if (publishOutput != null) {
      // inside a training Job's pod: the training ran before; check, gate and publish its output
      return trainAndPublish(job, where, new Cancel(), output -> 0, publishOutput);
    }
    switch (on) {
      case "kubernetes" -> {
        return onKubernetes(job, where);
      }
      case "docker" -> {}
      default -> throw new BerthException("--on takes docker or kubernetes, not '" + on + "'");
    }
    for (TrainingJob.DataSet d : job.data()) {
      if (d.claim() != null) {
        throw new BerthException(
            job.file()
                + ": a data set on the PersistentVolumeClaim '"
                + d.claim()
                + "' is for --on kubernetes; on the local engine give a path");
      }
    }
    Cancel cancel = new Cancel();
    Signals.onTerminate(
        () -> {
          cancel.requested = true;
          System.err.println("berth train: stopping (Ctrl-C again to quit at once) ...");
          cancel.stopContainer();
        },
        () -> {
          System.err.println("berth train: quitting; nothing was published");
          Runtime.getRuntime().halt(130);
        });
    ContainerEngine engine = ContainerEngine.fromEnvironment();
    cancel.engine = engine;
    engine.ping();
    if (job.java() != null) {
      TrainerImage.build(job, base, cacheDir, System.err);
    } else if (base != null) {
      throw new BerthException(
          "--base applies to a java job (its trainer's base image); this job runs " + job.image());
    } else if (engine.inspectImage(job.image()).isEmpty()) {
      System.err.println("pulling " + job.image() + " ...");
      engine.pullImage(job.image(), line -> System.err.println("  " + line));
    }
    if (cancel.requested) {
      return stopped();
    }
    return trainAndPublish(job, where, cancel, output -> run(engine, job, output, cancel), null);
  }

  /**
   * Checks the target, trains (into {@code given}, or a private directory of its own), then checks,
   * gates and publishes what the training wrote.
   */
  private int trainAndPublish(
      TrainingJob job,
      String where,
      Cancel cancel,
      java.util.function.ToIntFunction<Path> train,
      Path given) {
    try (Target target = target(job, where, s3Endpoint)) {
      Path modelDir = target.modelDir();
      // a broken model.yaml, or a gate without its data, is found before the training, not after
      ModelGate gate = gate(job, modelDir);
      if (gate != null && !Files.exists(gate.data())) {
        throw new BerthException(
            "the gate in "
                + modelYaml(job, modelDir)
                + " evaluates on "
                + gate.data()
                + ", which does not exist; give gate.data a labelled data set");
      }
      long version = job.version() > 0 ? job.version() : nextVersion(modelDir);
      if (Files.exists(modelDir.resolve(Long.toString(version)))) {
        throw new BerthException(
            "version "
                + version
                + " of model '"
                + job.model()
                + "' exists already in "
                + target.where()
                + "; give the job another version, or leave 'version' out to publish the next one");
      }
      Path workspace = createWorkspace(job);
      Path output = given != null ? given : workspace.resolve("output");
      try {
        int result = train.applyAsInt(output);
        if (result != 0) {
          return result;
        }
        if (cancel.requested) {
          return stopped();
        }
        Check check = checkOutput(job, output, modelDir, version);
        if (check.problem() != null) {
          System.err.println("berth train: " + check.problem() + "; nothing was published");
          return 1;
        }
        if (check.verdict() != null && !check.verdict().passed()) {
          System.err.println(
              "berth train: refused by the gate in model.yaml: "
                  + check.verdict().summary()
                  + "; nothing was published");
          return REFUSED;
        }
        if (check.verdict() != null) {
          System.err.println("berth train: passed the gate: " + check.verdict().summary());
        }
        if (cancel.requested) {
          return stopped();
        }
        Path newModelYaml = newModelYaml(job, modelDir, workspace);
        if (newModelYaml != null) {
          System.err.println(
              "berth train: model '"
                  + job.model()
                  + "' is new; it starts with the model.yaml of "
                  + job.modelYaml());
        }
        long published = target.publish(output, version, job.version() == 0, newModelYaml);
        System.out.println(
            "published model '" + job.model() + "' version " + published + " to " + target.where());
        return 0;
      } catch (BerthException e) {
        // the job ran: what failed after it is no usage error
        System.err.println("berth train: " + e.getMessage() + "; nothing was published");
        return 1;
      } finally {
        ServiceSpec.deleteTree(workspace);
      }
    }
  }

  /**
   * Runs the job as a Kubernetes Job: the trainer (pushed first for a java job) as the pod's init
   * container, then Berth's own image publishing what it wrote, as this command does here.
   */
  private int onKubernetes(TrainingJob job, String where) {
    if (!where.startsWith("oci://") && !where.startsWith("s3://")) {
      throw new BerthException(
          "--on kubernetes publishes from inside the cluster, to a registry (oci://REGISTRY/REPO:TAG)"
              + " or S3 (s3://BUCKET/PREFIX), not to "
              + where);
    }
    for (int i = 0; i < job.data().size(); i++) {
      if (job.data().get(i).claim() == null) {
        throw new BerthException(
            job.file()
                + ": data["
                + i
                + "] is a path of this machine, which a cluster cannot mount; give a"
                + " PersistentVolumeClaim (pvc: NAME) for --on kubernetes");
      }
    }
    precheck(job, where);
    String trainer;
    if (job.java() != null) {
      if (trainerImage == null) {
        throw new BerthException(
            "a java job --on kubernetes needs --trainer-image REGISTRY/REPOSITORY:TAG, where Berth"
                + " pushes its packed trainer for the cluster to pull");
      }
      trainer = TrainerImage.build(job, base, cacheDir, System.err, trainerImage);
    } else {
      if (trainerImage != null) {
        throw new BerthException(
            "--trainer-image applies to a java job; this job runs " + job.image());
      }
      trainer = job.image();
    }
    String publisher = berthImage;
    if (publisher == null) {
      if (!where.startsWith("oci://")) {
        throw new BerthException(
            "--on kubernetes with an s3:// target needs --berth-image REGISTRY/REPOSITORY:TAG, where"
                + " Berth pushes its own image for the Job's pod to publish with");
      }
      publisher =
          dev.berth.store.OciReference.parse(where).registry() + "/berth:" + Main.Version.get();
    }
    publisher =
        BerthImage.push(
            publisher, base != null ? base : BerthImage.defaultBase(), cacheDir, System.err);
    // the publisher's job file: what it needs of this one
    java.util.Map<String, Object> podJob = new java.util.LinkedHashMap<>();
    podJob.put("apiVersion", ModelConfig.API_VERSION);
    podJob.put("kind", TrainingJob.KIND);
    podJob.put("name", job.name());
    podJob.put("model", job.model());
    if (job.version() > 0) {
      podJob.put("version", job.version());
    }
    podJob.put("image", trainer);
    podJob.put("output", job.output());
    String modelYaml = null;
    if (job.modelYaml() != null) {
      podJob.put("model-yaml", "model.yaml");
      try {
        modelYaml = Files.readString(job.modelYaml());
      } catch (IOException e) {
        throw new BerthException("cannot read " + job.modelYaml() + ": " + e.getMessage(), e);
      }
    }
    String jobFile;
    try {
      // as JSON, which YAML reads: every string quoted, so none turns into a number or a boolean
      jobFile =
          new com.fasterxml.jackson.databind.ObjectMapper()
                  .writerWithDefaultPrettyPrinter()
                  .writeValueAsString(podJob)
              + "\n";
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new BerthException("cannot write the Job's job file: " + e.getMessage(), e);
    }
    KubeTraining.Settings settings =
        new KubeTraining.Settings(
            trainer, publisher, where, registrySecret, s3Secret, s3Endpoint, jobFile, modelYaml);
    Cancel cancel = new Cancel();
    Signals.onTerminate(
        () -> {
          cancel.requested = true;
          System.err.println("berth train: stopping (deleting the Job) ...");
        },
        () -> {
          System.err.println("berth train: quitting; the Job may still run");
          Runtime.getRuntime().halt(130);
        });
    return kube.withDeployer(
        null,
        d -> {
          var inNamespace = KubeTraining.objects(job, settings, d.namespace());
          return d.training().run(inNamespace, () -> cancel.requested);
        });
  }

  /**
   * Before a Job is created: the target as this machine sees it (a model.yaml that does not parse,
   * a version that exists already), when it can be read from here; else the Job's pod finds out.
   */
  private void precheck(TrainingJob job, String where) {
    Target target;
    try {
      target = target(job, where, s3Endpoint);
    } catch (BerthException e) {
      System.err.println(
          "berth train: cannot read "
              + where
              + " from here ("
              + e.getMessage()
              + "); the Job's pod checks it after the training");
      return;
    }
    try (target) {
      Path modelDir = target.modelDir();
      gate(job, modelDir); // a broken model.yaml stops the job before it runs
      if (job.version() > 0 && Files.exists(modelDir.resolve(Long.toString(job.version())))) {
        throw new BerthException(
            "version "
                + job.version()
                + " of model '"
                + job.model()
                + "' exists already in "
                + target.where()
                + "; give the job another version, or leave 'version' out to publish the next one");
      }
    }
  }

  /**
   * The model.yaml a new model starts with: the job's {@code model-yaml}, its gate's relative paths
   * made absolute (they were the job file's directory's, and stay so once the file lies in the
   * model's directory). Null when the model exists (it keeps its own, or none) or the job gives
   * none.
   */
  @SuppressWarnings("unchecked")
  static Path newModelYaml(TrainingJob job, Path modelDir, Path workspace) {
    if (job.modelYaml() == null || Files.exists(modelDir)) {
      return null;
    }
    ConfigReader yaml =
        ConfigReader.readYaml(
            job.modelYaml(), "starting with 'apiVersion: " + ModelConfig.API_VERSION + "'");
    Path base = job.modelYaml().toAbsolutePath().getParent();
    if (yaml == null
        || !(yaml.values().get(ModelGate.KEY) instanceof java.util.Map<?, ?> gate)
        || java.util.stream.Stream.of("data", "data-labels")
            .noneMatch(k -> gate.get(k) instanceof String p && !Path.of(p).isAbsolute())) {
      return job.modelYaml();
    }
    java.util.Map<String, Object> values = new java.util.LinkedHashMap<>(yaml.values());
    java.util.Map<String, Object> absolute =
        new java.util.LinkedHashMap<>((java.util.Map<String, Object>) gate);
    for (String key : List.of("data", "data-labels")) {
      if (absolute.get(key) instanceof String p) {
        absolute.put(key, base.resolve(p).normalize().toString());
      }
    }
    values.put(ModelGate.KEY, absolute);
    Path out = workspace.resolve(ModelConfig.FILE_NAME);
    try {
      ServiceSpec.writeYaml(out, values);
    } catch (IOException e) {
      throw new BerthException("cannot write " + out + ": " + e.getMessage(), e);
    }
    return out;
  }

  private static int stopped() {
    System.err.println("berth train: stopped; nothing was published");
    return 130;
  }

  /**
   * Where a job publishes: a model repository directory, or a model in a registry (pulled first,
   * pushed back with the new version under the same tag).
   */
  interface Target extends AutoCloseable {
    /** The model's directory as it is now (it may not exist: a new model). */
    Path modelDir();

    /** Where it goes, for messages. */
    String where();

    /**
     * Adds the job's output as a version, at once.
     *
     * @param next whether the version was counted as the next one: when another publication took it
     *     meanwhile, the one after is taken
     * @param newModelYaml for a new model, the model.yaml it starts with (in place before or with
     *     its first version), else null
     * @return the version published
     */
    long publish(Path output, long version, boolean next, Path newModelYaml);

    @Override
    void close();
  }

  /** --to, else the job's {@code to}, checked before anything runs. */
  private String destination(TrainingJob job) {
    String where = to != null ? to : job.to();
    if (where == null) {
      throw new BerthException(
          job.file()
              + " names nowhere to publish; add 'to: DIR' (a model repository), 'to:"
              + " oci://REGISTRY/REPOSITORY:TAG' or 'to: s3://BUCKET/PREFIX', or give --to");
    }
    if (where.startsWith("oci://") && where.contains("@")) {
      throw new BerthException(
          where
              + " pins a digest; berth train publishes under a tag (oci://REGISTRY/REPOSITORY:TAG)");
    }
    return where;
  }

  private static Target target(TrainingJob job, String where, String s3Endpoint) {
    if (where.startsWith("oci://")) {
      if (!Main.onClassPath("dev.berth.store.OciModelStore")) {
        throw new BerthException("this Berth has no model store; publish into a directory");
      }
      return new RegistryTarget(job.model(), where);
    }
    if (where.startsWith("s3://")) {
      if (!Main.onClassPath("dev.berth.store.S3Models")) {
        throw new BerthException("this Berth has no model store; publish into a directory");
      }
      return new S3Target(job.model(), where, s3Endpoint);
    }
    if (ServiceSpec.RemoteModel.isRemote(where)) {
      throw new BerthException(
          "berth train publishes into a model repository directory, an oci:// registry or an"
              + " s3:// store, not "
              + where
              + "; publish into a directory and upload that");
    }
    Path repository = Path.of(where).toAbsolutePath().normalize();
    Path modelDir = repository.resolve(job.model());
    return new Target() {
      @Override
      public Path modelDir() {
        return modelDir;
      }

      @Override
      public String where() {
        return repository.toString();
      }

      @Override
      public long publish(Path output, long version, boolean next, Path newModelYaml) {
        if (newModelYaml != null && publishNewModel(output, version, newModelYaml)) {
          return version;
        }
        long v = version;
        for (int tries = 0; ; tries++) {
          try {
            TrainCommand.publish(output, modelDir.resolve(Long.toString(v)));
            return v;
          } catch (VersionTaken e) {
            if (!next || tries == 5) {
              throw new BerthException(
                  "version "
                      + v
                      + " of model '"
                      + job.model()
                      + "' appeared in "
                      + repository
                      + " while the job ran; nothing was published");
            }
            v = nextVersion(modelDir); // another job published meanwhile: take the one after
          }
        }
      }

      /**
       * A new model: its model.yaml and first version, staged side by side under a hidden name and
       * renamed into place at once. False when the model appeared meanwhile (it keeps its own).
       */
      private boolean publishNewModel(Path output, long version, Path yaml) {
        Path stage =
            repository.resolve("." + job.model() + ".partial-" + ProcessHandle.current().pid());
        try {
          Files.createDirectories(stage);
          Files.copy(yaml, stage.resolve(ModelConfig.FILE_NAME));
          TrainCommand.publish(output, stage.resolve(Long.toString(version)));
          Files.move(stage, modelDir, StandardCopyOption.ATOMIC_MOVE);
          return true;
        } catch (java.nio.file.FileAlreadyExistsException
            | java.nio.file.DirectoryNotEmptyException e) {
          ServiceSpec.deleteTree(stage);
          return false;
        } catch (IOException e) {
          ServiceSpec.deleteTree(stage);
          throw new BerthException(
              "cannot publish the new model to " + modelDir + ": " + e.getMessage(), e);
        }
      }

      @Override
      public void close() {}
    };
  }

  /** The version after the highest in a model's directory (1 for a new model). */
  static long nextVersion(Path modelDir) {
    if (!Files.isDirectory(modelDir)) {
      return 1;
    }
    try (Stream<Path> s = Files.list(modelDir)) {
      return 1
          + s.map(p -> p.getFileName().toString())
              .filter(ModelRepository::isValidVersion)
              .mapToLong(Long::parseLong)
              .max()
              .orElse(0);
    } catch (IOException e) {
      throw new BerthException("cannot read " + modelDir + ": " + e.getMessage(), e);
    }
  }

  /**
   * A private directory (0700) holding the job's output directory ({@code output/}, writable by
   * whatever user the training image runs as): no other local user can reach what the job writes.
   */
  private static Path createWorkspace(TrainingJob job) {
    try {
      Path dir =
          Files.createTempDirectory(
              "berth-train-" + job.name() + "-",
              PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
      Path output = Files.createDirectory(dir.resolve("output"));
      Files.setPosixFilePermissions(output, PosixFilePermissions.fromString("rwxrwxrwx"));
      return dir;
    } catch (IOException e) {
      throw new BerthException("cannot create the job's output directory: " + e.getMessage(), e);
    }
  }

  /**
   * Runs the job's container to its end, its logs on standard error; stops it at its time limit or
   * on Ctrl-C, and removes it in every case.
   *
   * @return 0 when the job succeeded, else the command's exit code
   */
  private static int run(ContainerEngine engine, TrainingJob job, Path output, Cancel cancel) {
    ContainerSpec.Builder spec =
        ContainerSpec.builder(job.image())
            .name("berth-train-" + job.name())
            .label(JOB_LABEL, job.name())
            .stopTimeout(STOP_TIMEOUT)
            .mountWritable(output, job.output())
            .cpus(job.cpus())
            .memory(job.memoryBytes())
            .gpus(job.gpus());
    if (!job.command().isEmpty()) {
      spec.entrypoint(job.command());
    }
    if (!job.args().isEmpty()) {
      spec.command(job.args());
    }
    job.env().forEach(spec::env);
    for (TrainingJob.DataSet d : job.data()) {
      spec.mountReadOnly(d.path(), d.mount());
    }
    String id = create(engine, job, spec.build());
    cancel.container = id;
    AtomicBoolean timedOut = new AtomicBoolean();
    ScheduledExecutorService timer =
        Executors.newSingleThreadScheduledExecutor(
            r -> Thread.ofPlatform().name("berth-train-limit").daemon().unstarted(r));
    Thread logs = null;
    try {
      if (cancel.requested) {
        return stopped();
      }
      long started = System.nanoTime();
      engine.start(id);
      if (cancel.requested) { // Ctrl-C while it started: the stop found it not running yet
        cancel.stopContainer();
      }
      System.err.println(
          "training '"
              + job.name()
              + "' in "
              + job.image()
              + " (time limit "
              + job.timeLimit().toSeconds()
              + " s); its output:");
      timer.schedule(
          () -> {
            try {
              if (engine.inspectContainer(id).running()) {
                timedOut.set(true);
                engine.stop(id, STOP_TIMEOUT);
              }
            } catch (RuntimeException e) {
              timedOut.set(true);
              engine.remove(id, true); // a stop that failed must not leave it running on
            }
          },
          job.timeLimit().toMillis(),
          TimeUnit.MILLISECONDS);
      logs =
          Thread.ofPlatform()
              .name("berth-train-logs")
              .daemon()
              .start(() -> engine.logs(id, true, null, -1, System.err, System.err));
      int code;
      try {
        code = engine.waitFor(id);
      } catch (RuntimeException e) {
        System.err.println(
            "berth train: lost the container engine while the job ran ("
                + e.getMessage()
                + "); the job is stopped and nothing was published");
        return 1;
      }
      timer.shutdownNow(); // the job ended: no limit can stop it any more
      try {
        logs.join(Duration.ofSeconds(5));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      double seconds = (System.nanoTime() - started) / 1e9;
      if (cancel.requested) {
        return stopped();
      }
      if (timedOut.get()) {
        System.err.println(
            "berth train: the job ran past its time limit ("
                + job.timeLimit().toSeconds()
                + " s, 'time-limit') and was stopped; nothing was published");
        return 1;
      }
      if (code != 0) {
        System.err.println(
            "berth train: the job failed with exit code "
                + code
                + (code == 137 ? " (killed: often for memory beyond resources.memory)" : "")
                + " after "
                + String.format(Locale.ROOT, "%.1f", seconds)
                + " s; its last lines:\n"
                + lastLines(engine, id)
                + "nothing was published");
        return 1;
      }
      System.err.println(
          String.format(Locale.ROOT, "berth train: the job finished in %.1f s", seconds));
      return 0;
    } finally {
      timer.shutdownNow();
      cancel.container = null;
      try {
        engine.remove(id, true);
      } catch (RuntimeException e) {
        System.err.println("berth train: could not remove container " + id + ": " + e.getMessage());
      }
      if (logs != null) {
        logs.interrupt();
      }
    }
  }

  /**
   * Creates the job's container; a stopped one a run before left (killed before it could remove it)
   * is removed first, a running one refused.
   */
  private static String create(ContainerEngine engine, TrainingJob job, ContainerSpec spec) {
    for (int attempt = 0; ; attempt++) {
      try {
        return engine.createContainer(spec);
      } catch (dev.berth.image.ContainerEngineException e) {
        if (e.status() != 409) {
          throw e;
        }
        var left =
            engine.listContainers(java.util.Map.of(JOB_LABEL, job.name()), true).stream()
                .filter(c -> !c.running())
                .findFirst();
        if (attempt == 0 && left.isPresent()) {
          engine.remove(left.get().id(), true);
          continue;
        }
        throw new BerthException(
            "job '"
                + job.name()
                + "' is running already (container berth-train-"
                + job.name()
                + "); wait for it, or stop it with 'docker rm -f berth-train-"
                + job.name()
                + "'",
            e);
      }
    }
  }

  private static String lastLines(ContainerEngine engine, String id) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try {
      engine.logs(id, false, null, 10, out, out);
    } catch (RuntimeException e) {
      return "  (its logs cannot be read: " + e.getMessage() + ")\n";
    }
    StringBuilder lines = new StringBuilder();
    for (String line : out.toString(StandardCharsets.UTF_8).split("\n")) {
      if (!line.isBlank()) {
        lines.append("  ").append(line).append('\n');
      }
    }
    return lines.toString();
  }

  /**
   * What checking a job's output found: why it cannot be published (exit 1), or the gate's verdict
   * (null when the model has no gate), or neither.
   */
  record Check(String problem, ModelGate.Verdict verdict) {
    static Check problem(String problem) {
      return new Check(problem, null);
    }
  }

  /**
   * The model.yaml the published version will be served with: the model's own, else the job's
   * {@code model-yaml} for a new model; null for neither (the defaults: a model that exists without
   * a model.yaml keeps none).
   */
  static Path modelYaml(TrainingJob job, Path modelDir) {
    Path own = modelDir.resolve(ModelConfig.FILE_NAME);
    if (Files.isRegularFile(own)) {
      return own;
    }
    return Files.exists(modelDir) ? null : job.modelYaml();
  }

  /** The gate the version must pass, or null. */
  static ModelGate gate(TrainingJob job, Path modelDir) {
    Path yaml = modelYaml(job, modelDir);
    return yaml == null ? null : ModelConfig.read(yaml).gate();
  }

  /**
   * Checks what the job wrote: it must hold files, load as a version of the model with the
   * model.yaml it will be served with (or the defaults for a new model), and pass the model's gate,
   * measured on the gate's data set in process, against the model's highest version as it is now
   * when the gate limits the drop.
   */
  private static Check checkOutput(TrainingJob job, Path output, Path modelDir, long version) {
    String files = outputFiles(job, output);
    if (files != null) {
      return Check.problem(files);
    }
    ModelGate gate = gate(job, modelDir);
    System.err.println("berth train: loading the trained model to check it ...");
    Staged candidate;
    try {
      candidate = Staged.load(job, modelDir, version, output);
    } catch (RuntimeException e) {
      return Check.problem("the trained model does not load: " + e.getMessage());
    }
    try (candidate) {
      if (candidate.problem() != null) {
        return Check.problem(candidate.problem());
      }
      if (gate == null) {
        return new Check(null, null);
      }
      return new Check(null, gate(job, gate, candidate.model(), modelDir));
    }
  }

  /**
   * The gate's verdict on the trained model, measured in process, against the model's highest
   * version as it is now when the gate limits the drop. A model the gate cannot evaluate, or that
   * cannot be compared as the gate asks, is refused.
   */
  private static ModelGate.Verdict gate(
      TrainingJob job, ModelGate gate, LoadedModel trained, Path modelDir) {
    java.util.function.Function<String, ModelGate.Verdict> refused =
        why -> new ModelGate.Verdict(false, Double.NaN, Double.NaN, why);
    GateEvaluator evaluator = GateEvaluator.find().orElse(null);
    if (evaluator == null) {
      return refused.apply(
          "this Berth has no gate evaluator on its class path (the berth-server module)");
    }
    System.err.println(
        "berth train: evaluating the trained model on the gate's data ("
            + gate.metricName()
            + " on "
            + gate.data()
            + ") ...");
    double figure;
    try {
      figure = evaluator.measure(gate, trained);
    } catch (RuntimeException e) {
      return refused.apply("the gate could not evaluate it: " + e.getMessage());
    }
    long serving = nextVersion(modelDir) - 1;
    if (!gate.comparesWithServing() || serving < 1) {
      return gate.judge(figure, Double.NaN, null);
    }
    System.err.println(
        "berth train: evaluating version " + serving + " of the model to compare with ...");
    String cannot =
        "it scored "
            + String.format(java.util.Locale.ROOT, "%.4f", figure)
            + " but cannot be compared with version "
            + serving
            + ", as gate.max-drop asks: ";
    try (Staged current =
        Staged.load(job, modelDir, serving, modelDir.resolve(Long.toString(serving)))) {
      if (current.problem() != null) {
        return refused.apply(cannot + current.problem());
      }
      return gate.judge(figure, evaluator.measure(gate, current.model()), Long.toString(serving));
    } catch (RuntimeException e) {
      return refused.apply(cannot + "measuring it failed (" + e.getMessage() + ")");
    }
  }

  /**
   * One version loaded on its own, as a server would load it: in a staging repository holding the
   * model's model.yaml and the files its versions share (linked), and the version's directory.
   */
  private record Staged(Path staging, InferenceService service, LoadedModel model, String problem)
      implements AutoCloseable {
    static Staged load(TrainingJob job, Path modelDir, long version, Path versionDir) {
      Path staging = null;
      InferenceService service = null;
      try {
        staging = Files.createTempDirectory("berth-train-check-");
        Path model = Files.createDirectories(staging.resolve(job.model()));
        if (Files.isDirectory(modelDir)) {
          try (Stream<Path> own = Files.list(modelDir)) {
            for (Path p : own.toList()) {
              String name = p.getFileName().toString();
              if (!ModelRepository.isValidVersion(name) && !name.startsWith(".")) {
                Files.createSymbolicLink(model.resolve(name), p.toAbsolutePath());
              }
            }
          }
        }
        Path yaml = modelYaml(job, modelDir);
        if (yaml != null && !Files.exists(model.resolve(ModelConfig.FILE_NAME))) {
          Files.createSymbolicLink(model.resolve(ModelConfig.FILE_NAME), yaml.toAbsolutePath());
        }
        Files.createSymbolicLink(
            model.resolve(Long.toString(version)), versionDir.toAbsolutePath());
        service =
            InferenceService.create(
                staging, new ServingMetrics(), ModelIntegrity.pinsOnly(), "cpu");
        service.gating(false); // berth train evaluates the gate itself, against the right version
        service.loadModels();
        String label = Long.toString(version);
        List<ModelStatus> statuses =
            service.index().stream().filter(st -> st.version().equals(label)).toList();
        String problem = null;
        for (ModelStatus status : statuses) {
          if (status.state() != ServingMetrics.ModelState.READY) {
            problem =
                "the trained model does not load as version "
                    + version
                    + " of '"
                    + job.model()
                    + "': "
                    + status.reason();
          }
        }
        if (statuses.isEmpty()) {
          problem =
              "version "
                  + version
                  + " does not load: the model's model.yaml leaves it out (version-policy), or the"
                  + " job's output is no model an engine recognises (model.onnx, model.gguf,"
                  + " model.pt, model.savedmodel/, model.json or model.ubj)";
        }
        LoadedModel loaded =
            service.loadedModels().stream()
                .filter(m -> m.version().equals(label))
                .findFirst()
                .orElse(null);
        return new Staged(staging, service, loaded, problem);
      } catch (IOException e) {
        if (service != null) {
          service.close();
        }
        if (staging != null) {
          ServiceSpec.deleteTree(staging);
        }
        throw new BerthException("cannot check the trained model: " + e.getMessage(), e);
      } catch (RuntimeException e) {
        if (service != null) {
          service.close();
        }
        if (staging != null) {
          ServiceSpec.deleteTree(staging);
        }
        throw e;
      }
    }

    @Override
    public void close() {
      try {
        service.close();
      } finally {
        ServiceSpec.deleteTree(staging);
      }
    }
  }

  /**
   * Why the job's output cannot be a version, or null: it must hold something, and only regular
   * files and directories. A link (it would be read on this machine, not in the container) or a
   * device or pipe is refused.
   */
  static String outputFiles(TrainingJob job, Path output) {
    try (Stream<Path> walk = Files.walk(output)) {
      boolean any = false;
      for (Path p : walk.toList()) {
        if (p.equals(output)) {
          continue;
        }
        any = true;
        var attributes =
            Files.readAttributes(
                p,
                java.nio.file.attribute.BasicFileAttributes.class,
                java.nio.file.LinkOption.NOFOLLOW_LINKS);
        if (!attributes.isRegularFile() && !attributes.isDirectory()) {
          return "the job's output holds "
              + job.output()
              + "/"
              + output.relativize(p)
              + ", which is "
              + (attributes.isSymbolicLink() ? "a symbolic link" : "no regular file")
              + "; write the model's files themselves there";
        }
      }
      return any
          ? null
          : "the job wrote nothing to " + job.output() + " (the model's files go there)";
    } catch (IOException | java.io.UncheckedIOException e) {
      return "cannot read the job's output: " + e.getMessage();
    }
  }

  /** Another publication took a version first. */
  static final class VersionTaken extends BerthException {
    VersionTaken(Path versionDir) {
      super(versionDir + " exists already");
    }
  }

  /**
   * Copies the output (regular files and directories only) into place as the version's directory,
   * renamed in at once.
   *
   * @throws VersionTaken when the version's directory appeared meanwhile
   */
  static void publish(Path output, Path versionDir) {
    Path partial =
        versionDir.resolveSibling(
            "." + versionDir.getFileName() + ".partial-" + ProcessHandle.current().pid());
    try {
      Files.createDirectories(versionDir.getParent());
      try (Stream<Path> walk = Files.walk(output)) {
        for (Path p : walk.toList()) {
          Path target = partial.resolve(output.relativize(p).toString());
          if (Files.isDirectory(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            Files.createDirectories(target);
          } else if (Files.isRegularFile(p, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
            Files.copy(p, target, java.nio.file.LinkOption.NOFOLLOW_LINKS);
          }
        }
      }
      if (Files.exists(versionDir)) {
        ServiceSpec.deleteTree(partial);
        throw new VersionTaken(versionDir);
      }
      Files.move(partial, versionDir, StandardCopyOption.ATOMIC_MOVE);
    } catch (java.nio.file.FileAlreadyExistsException
        | java.nio.file.DirectoryNotEmptyException e) {
      ServiceSpec.deleteTree(partial);
      throw new VersionTaken(versionDir);
    } catch (IOException | java.io.UncheckedIOException e) {
      ServiceSpec.deleteTree(partial);
      throw new BerthException(
          "cannot publish the trained model to " + versionDir + ": " + e.getMessage(), e);
    }
  }
}
