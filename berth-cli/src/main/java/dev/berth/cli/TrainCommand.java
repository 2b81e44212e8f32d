package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.image.ContainerEngine;
import dev.berth.image.ContainerSpec;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.ModelConfig;
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
 * that version loads. A job that fails, runs past its time limit, writes nothing or writes a model
 * that does not load publishes nothing.
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
      "Exit codes: 0 published, 1 the job failed (or wrote no loadable model), 2 bad usage or job"
          + " file, 130 stopped (Ctrl-C).",
      ""
    })
final class TrainCommand implements Callable<Integer> {
  /** Label on a training container: the job's name. */
  static final String JOB_LABEL = "dev.berth.training-job";

  private static final Duration STOP_TIMEOUT = Duration.ofSeconds(10);

  @Parameters(index = "0", paramLabel = "JOB.yaml", description = "The training job file.")
  Path jobFile;

  @Option(
      names = "--to",
      paramLabel = "DIR|oci://...",
      description =
          "Where to publish, instead of the job's 'to': a model repository directory, or a model"
              + " in a registry (oci://REGISTRY/REPOSITORY:TAG, as berth push stores it).")
  String to;

  @Override
  public Integer call() {
    TrainingJob job = TrainingJob.load(jobFile);
    try (Target target = target(job)) {
      long version = job.version() > 0 ? job.version() : nextVersion(target.modelDir());
      if (Files.exists(target.modelDir().resolve(Long.toString(version)))) {
        throw new BerthException(
            "version "
                + version
                + " of model '"
                + job.model()
                + "' exists already in "
                + target.where()
                + "; give the job another version, or leave 'version' out to publish the next one");
      }
      ContainerEngine engine = ContainerEngine.fromEnvironment();
      engine.ping();
      if (engine.inspectImage(job.image()).isEmpty()) {
        System.err.println("pulling " + job.image() + " ...");
        engine.pullImage(job.image(), line -> System.err.println("  " + line));
      }
      Path output = createOutput(job);
      try {
        int result = run(engine, job, output);
        if (result != 0) {
          return result;
        }
        String problem = checkOutput(job, output, target.modelDir(), version);
        if (problem != null) {
          System.err.println("berth train: " + problem + "; nothing was published");
          return 1;
        }
        target.publish(output, version);
        System.out.println(
            "published model '" + job.model() + "' version " + version + " to " + target.where());
        return 0;
      } finally {
        ServiceSpec.deleteTree(output);
      }
    }
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

    /** Adds the job's output as a version, at once. */
    void publish(Path output, long version);

    @Override
    void close();
  }

  /** --to, else the job's {@code to}. */
  private Target target(TrainingJob job) {
    String where = to != null ? to : job.to();
    if (where == null) {
      throw new BerthException(
          job.file()
              + " names nowhere to publish; add 'to: DIR' (a model repository) or 'to:"
              + " oci://REGISTRY/REPOSITORY:TAG', or give --to");
    }
    if (where.startsWith("oci://")) {
      if (!Main.onClassPath("dev.berth.store.OciModelStore")) {
        throw new BerthException("this Berth has no model store; publish into a directory");
      }
      return new RegistryTarget(job.model(), where);
    }
    if (ServiceSpec.RemoteModel.isRemote(where)) {
      throw new BerthException(
          "berth train publishes into a model repository directory or an oci:// registry, not "
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
      public void publish(Path output, long version) {
        TrainCommand.publish(output, modelDir.resolve(Long.toString(version)));
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
   * An empty directory for the job's output, writable by whatever user the training image runs as.
   */
  private static Path createOutput(TrainingJob job) {
    try {
      Path dir = Files.createTempDirectory("berth-train-" + job.name() + "-");
      Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxrwxrwx"));
      return dir;
    } catch (IOException e) {
      throw new BerthException("cannot create the job's output directory: " + e.getMessage(), e);
    }
  }

  /**
   * Runs the job's container to its end, its logs on standard error; stops it at its time limit or
   * on Ctrl-C.
   *
   * @return 0 when the job succeeded, else the command's exit code
   */
  private static int run(ContainerEngine engine, TrainingJob job, Path output) {
    ContainerSpec.Builder spec =
        ContainerSpec.builder(job.image())
            .name("berth-train-" + job.name())
            .label(JOB_LABEL, job.name())
            .stopTimeout(STOP_TIMEOUT)
            .mountWritable(output, job.output())
            .cpus(job.cpus())
            .memory(job.memoryBytes());
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
    String id;
    try {
      id = engine.createContainer(spec.build());
    } catch (dev.berth.image.ContainerEngineException e) {
      if (e.status() == 409) {
        throw new BerthException(
            "a training container for job '"
                + job.name()
                + "' exists already (berth-train-"
                + job.name()
                + "): another run of it is going on, or one was interrupted; remove it with"
                + " 'docker rm -f berth-train-"
                + job.name()
                + "'",
            e);
      }
      throw e;
    }
    AtomicBoolean cancelled = new AtomicBoolean();
    AtomicBoolean timedOut = new AtomicBoolean();
    ScheduledExecutorService timer =
        Executors.newSingleThreadScheduledExecutor(
            r -> Thread.ofPlatform().name("berth-train-limit").daemon().unstarted(r));
    try {
      Signals.onTerminate(
          () -> {
            cancelled.set(true);
            System.err.println("berth train: stopping the job ...");
            engine.stop(id, STOP_TIMEOUT);
          });
      long started = System.nanoTime();
      engine.start(id);
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
            timedOut.set(true);
            engine.stop(id, STOP_TIMEOUT);
          },
          job.timeLimit().toMillis(),
          TimeUnit.MILLISECONDS);
      Thread logs =
          Thread.ofPlatform()
              .name("berth-train-logs")
              .daemon()
              .start(() -> engine.logs(id, true, null, -1, System.err, System.err));
      int code = engine.waitFor(id);
      try {
        logs.join(Duration.ofSeconds(5));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      double seconds = (System.nanoTime() - started) / 1e9;
      if (cancelled.get()) {
        System.err.println("berth train: stopped; nothing was published");
        return 130;
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
      try {
        engine.remove(id, true);
      } catch (RuntimeException e) {
        System.err.println("berth train: could not remove container " + id + ": " + e.getMessage());
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
   * Why what the job wrote cannot be published, or null: it must hold files, and load as a version
   * of the model with the model's model.yaml (or the defaults for a new model).
   */
  private static String checkOutput(TrainingJob job, Path output, Path modelDir, long version) {
    try (Stream<Path> s = Files.list(output)) {
      if (s.findAny().isEmpty()) {
        return "the job wrote nothing to " + job.output() + " (the model's files go there)";
      }
    } catch (IOException e) {
      return "cannot read the job's output: " + e.getMessage();
    }
    Path staging = null;
    try {
      staging = Files.createTempDirectory("berth-train-check-");
      Path model = Files.createDirectories(staging.resolve(job.model()));
      Path ownYaml = modelDir.resolve(ModelConfig.FILE_NAME);
      if (Files.isRegularFile(ownYaml)) {
        Files.copy(ownYaml, model.resolve(ModelConfig.FILE_NAME));
      }
      Files.createSymbolicLink(model.resolve(Long.toString(version)), output);
      System.err.println("berth train: loading the trained model to check it ...");
      try (InferenceService check =
          InferenceService.create(
              staging, new ServingMetrics(), ModelIntegrity.pinsOnly(), "cpu")) {
        check.loadModels();
        List<ModelStatus> statuses = check.index();
        for (ModelStatus status : statuses) {
          if (status.state() != ServingMetrics.ModelState.READY) {
            return "the trained model does not load as version "
                + version
                + " of '"
                + job.model()
                + "': "
                + status.reason();
          }
        }
        if (statuses.isEmpty()) {
          return "the job's output is no model version an engine recognises (model.onnx,"
              + " model.gguf, model.pt, model.savedmodel/, model.json or model.ubj)";
        }
      }
      return null;
    } catch (IOException e) {
      return "cannot check the trained model: " + e.getMessage();
    } catch (RuntimeException e) {
      return "the trained model does not load: " + e.getMessage();
    } finally {
      if (staging != null) {
        ServiceSpec.deleteTree(staging);
      }
    }
  }

  /** Copies the output into place as the version's directory, renamed in at once. */
  static void publish(Path output, Path versionDir) {
    Path partial =
        versionDir.resolveSibling(
            "." + versionDir.getFileName() + ".partial-" + ProcessHandle.current().pid());
    try {
      Files.createDirectories(versionDir.getParent());
      try (Stream<Path> walk = Files.walk(output)) {
        for (Path p : walk.toList()) {
          Path target = partial.resolve(output.relativize(p).toString());
          if (Files.isDirectory(p)) {
            Files.createDirectories(target);
          } else {
            Files.copy(p, target);
          }
        }
      }
      Files.move(partial, versionDir, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      ServiceSpec.deleteTree(partial);
      throw new BerthException(
          "cannot publish the trained model to " + versionDir + ": " + e.getMessage(), e);
    }
  }
}
