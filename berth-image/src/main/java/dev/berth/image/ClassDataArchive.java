package dev.berth.image;

import dev.berth.api.BerthException;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelRepository;
import dev.berth.runtime.ServeSettings;
import dev.berth.runtime.ServiceSpec;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * Application class-data sharing for images that bring their own Java runtime: a training run of
 * {@code berth serve} on the service's models, with the runtime and jars laid out (and
 * time-stamped) exactly as the image has them, records the classes it loads into a dynamic CDS
 * archive. The server in the container maps that archive instead of parsing and verifying thousands
 * of classes again, which is most of its start-up time. CDS accepts the archive at a different
 * absolute path, as long as the runtime, the jars and their times are the same; when they are not,
 * the JVM ignores it and starts the slow way. Archives are cached by runtime and jar contents, so
 * rebuilding gives the same layer.
 */
public final class ClassDataArchive {
  /** File times in image layers (jib's fixed time); CDS compares jar and runtime times. */
  static final Instant IMAGE_FILE_TIME = Instant.ofEpochSecond(1);

  /** Whether this JDK writes AOT caches (JDK 25's -XX:AOTCacheOutput) rather than CDS archives. */
  private static final boolean AOT = Runtime.version().feature() >= 25;

  private static final Duration TRAINING_TIMEOUT = Duration.ofMinutes(5);

  private ClassDataArchive() {}

  /**
   * The archive for a runtime and distribution, from the cache or made by a training run.
   *
   * @param javaRuntime the jlink runtime the image brings
   * @param berth Berth's jars
   * @param service the service whose models the training run loads
   * @param jvmOptions the JVM options the image starts with (CDS wants them alike)
   * @param cache the build cache
   * @param progress progress lines
   */
  public static Path create(
      Path javaRuntime,
      BerthDistribution berth,
      ServiceSpec service,
      List<String> jvmOptions,
      Path cache,
      Consumer<String> progress) {
    List<Path> jars = new ArrayList<>(berth.libraries());
    jars.addAll(berth.modules());
    MessageDigest key = sha256();
    key.update(javaRuntime.getFileName().toString().getBytes(StandardCharsets.UTF_8));
    key.update(String.join(" ", jvmOptions).getBytes(StandardCharsets.UTF_8));
    for (Path jar : jars) {
      key.update(jar.getFileName().toString().getBytes(StandardCharsets.UTF_8));
      key.update(ImagePlan.sha256(jar).getBytes(StandardCharsets.UTF_8));
    }
    key.update(ImagePlan.sha256(berth.launcher()).getBytes(StandardCharsets.UTF_8));
    String id = HexFormat.of().formatHex(key.digest()).substring(0, 24);
    Path dir = cache.resolve("cds").resolve(id);
    Path archive = dir.resolve(AOT ? "berth.aot" : "berth.jsa");
    if (Files.isRegularFile(archive)) {
      return archive;
    }
    Path work = cache.resolve("cds").resolve(id + ".work-" + ProcessHandle.current().pid());
    try {
      progress.accept(
          "training the class-data cache: berth serve loads the models once, then stops...");
      long start = System.nanoTime();
      Path home = work.resolve("opt/berth");
      Files.createDirectories(home.resolve("lib"));
      copyAsInImage(berth.launcher(), home.resolve("berth.jar"));
      for (Path jar : jars) {
        copyAsInImage(jar, home.resolve("lib").resolve(jar.getFileName()));
      }
      // the bundled models, staged as the image holds them
      Path repo = Files.createDirectories(work.resolve("models"));
      for (ServiceSpec.ServiceModel model : service.models()) {
        Path m = Files.createDirectories(repo.resolve(model.name()));
        Files.copy(
            ImagePlan.writeModelYaml(model, work.resolve("staging")),
            m.resolve(ModelConfig.FILE_NAME));
        for (ModelRepository.Version v : model.versions()) {
          Files.createSymbolicLink(m.resolve(v.label()), v.dir().toAbsolutePath());
        }
      }
      Path dumped = work.resolve(archive.getFileName());
      // the image's own serve settings, on free loopback ports, logging JSON (read for readiness)
      ServeSettings settings =
          ServeSettings.onFreeLoopbackPorts("json").over(service.serving().containerSettings());
      if (service.remoteModels().isEmpty()) {
        train(javaRuntime, jvmOptions, home, repo, settings, dumped, work);
      } else {
        // serve the image's service file on a model cache in the build cache (kept: the next
        // build fetches nothing): a first run fills it, then the training run starts from it as a
        // restart does, so the archive holds the classes a start from a warm cache uses (the
        // store's, the models' engines'), and not those of a download (the S3 client's
        // thousands), which every start would load from it
        Path file = work.resolve(ServiceSpec.FILE_NAME);
        ServiceSpec.writeYaml(file, service.servedFile());
        ServeSettings fetching =
            settings.with(ServeSettings.MODEL_CACHE, cache.resolve("models").toString());
        try {
          train(javaRuntime, jvmOptions, home, file, fetching, null, work);
          train(javaRuntime, jvmOptions, home, file, fetching, dumped, work);
        } catch (BerthException e) {
          progress.accept(
              "the training run could not fetch the service's models from their sources, so the"
                  + " class-data archive covers the bundled models only (the image starts that"
                  + " much slower): "
                  + lastLine(e.getMessage()));
          Files.deleteIfExists(dumped);
          train(javaRuntime, jvmOptions, home, repo, settings, dumped, work);
        }
      }
      Files.createDirectories(dir);
      Files.move(dumped, archive, StandardCopyOption.ATOMIC_MOVE);
      progress.accept(
          String.format(
              java.util.Locale.ROOT,
              "class-data archive ready (%.1fs, %d MiB)",
              (System.nanoTime() - start) / 1e9,
              Files.size(archive) >> 20));
      return archive;
    } catch (IOException e) {
      throw new BerthException("class-data sharing training failed: " + e.getMessage(), e);
    } finally {
      FileTrees.deleteTree(work);
    }
  }

  private static void train(
      Path javaRuntime,
      List<String> jvmOptions,
      Path home,
      Path target,
      ServeSettings settings,
      Path archive,
      Path work)
      throws IOException {
    List<String> cmd = new ArrayList<>();
    cmd.add(javaRuntime.resolve("bin/java").toString());
    if (archive != null) { // else a run that only fills the model cache
      cmd.add((AOT ? "-XX:AOTCacheOutput=" : "-XX:ArchiveClassesAtExit=") + archive);
    }
    cmd.addAll(jvmOptions);
    cmd.addAll(List.of("-jar", home.resolve("berth.jar").toString(), "serve", target.toString()));
    cmd.addAll(settings.arguments());
    ProcessBuilder pb = new ProcessBuilder(cmd).directory(work.toFile());
    pb.environment().put("ORT_DISABLE_TELEMETRY", "1");
    pb.environment().put("OPT_OUT_TRACKING", "true");
    pb.environment().put("DJL_CACHE_DIR", work.resolve("djl").toString());
    // the service's tracing is for where it is deployed: the build machine sends no spans
    pb.environment().put("OTEL_SDK_DISABLED", "true");
    Path log = work.resolve("training.log");
    pb.redirectErrorStream(true).redirectOutput(log.toFile());
    Process p = pb.start();
    try {
      long deadline = System.nanoTime() + TRAINING_TIMEOUT.toNanos();
      while (!Files.readString(log).contains("\"message\":\"serving\"")) {
        if (!p.isAlive()) {
          throw new BerthException(
              "the class-data training run of 'berth serve' exited (code "
                  + p.exitValue()
                  + ") before serving:\n"
                  + tail(log));
        }
        if (System.nanoTime() > deadline) {
          throw new BerthException(
              "the class-data training run did not serve within "
                  + TRAINING_TIMEOUT.toMinutes()
                  + " minutes:\n"
                  + tail(log));
        }
        p.waitFor(100, TimeUnit.MILLISECONDS); // poll the log while it starts
      }
      p.destroy(); // SIGTERM: the server drains and exits; the JVM writes the archive on exit
      if (!p.waitFor(TRAINING_TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
        throw new BerthException("the class-data training run did not stop:\n" + tail(log));
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new BerthException("interrupted during class-data training", e);
    } finally {
      p.destroyForcibly();
    }
    if (archive != null && !Files.isRegularFile(archive)) {
      throw new BerthException("the class-data training run wrote no archive:\n" + tail(log));
    }
  }

  private static String lastLine(String text) {
    String[] lines = text.strip().split("\n");
    return lines[lines.length - 1];
  }

  /** Where an archive sits in the image. */
  public static String imagePath(Path archive) {
    return ImagePlan.HOME + "/" + archive.getFileName();
  }

  /** The JVM options that use an archive at its place in the image. */
  public static List<String> jvmOptions(Path archive) {
    String path = imagePath(archive);
    if (path.endsWith(".aot")) {
      // JDK 25 warns about a few adapter stubs it cannot reuse; the cache works without them
      return List.of("-XX:AOTCache=" + path, "-Xlog:aot+codecache*=off");
    }
    return List.of("-XX:SharedArchiveFile=" + path);
  }

  /** Gives every file under {@code dir} the time it has in an image layer. */
  static void setImageTimes(Path dir) throws IOException {
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path p : walk.filter(Files::isRegularFile).toList()) {
        Files.setLastModifiedTime(p, FileTime.from(IMAGE_FILE_TIME));
      }
    }
  }

  private static void copyAsInImage(Path from, Path to) throws IOException {
    Files.copy(from, to, StandardCopyOption.REPLACE_EXISTING);
    Files.setLastModifiedTime(to, FileTime.from(IMAGE_FILE_TIME));
  }

  private static String tail(Path log) throws IOException {
    List<String> lines = Files.readAllLines(log);
    return String.join("\n", lines.subList(Math.max(0, lines.size() - 20), lines.size()));
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
