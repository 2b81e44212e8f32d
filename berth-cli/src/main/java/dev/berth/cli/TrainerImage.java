package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.image.BuiltImage;
import dev.berth.image.ImageBuilder;
import dev.berth.image.ImageLocation;
import dev.berth.image.ImagePlan;
import dev.berth.runtime.ServiceSpec;
import dev.berth.runtime.TrainingJob;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;

/**
 * The image of a Java training job: its classes (compiled here from its source when it gives one),
 * directories and jars in one layer on a base image with Java, run as {@code java JVM-OPTIONS -cp
 * ... MAIN-CLASS}, as an unprivileged user, built into the local engine as {@code
 * berth-train/NAME:latest}.
 */
final class TrainerImage {
  /** Where the trainer's files are in the image. */
  static final String HOME = "/opt/berth/trainer";

  private TrainerImage() {}

  /**
   * Builds the job's image into the local engine.
   *
   * @param base the base image, instead of the job's ({@code --base}), or null
   * @return the image's reference
   */
  static String build(TrainingJob job, String base, Path cacheDir, PrintStream err) {
    return build(job, base, cacheDir, err, "docker://" + TrainingJob.Java.imageOf(job.name()));
  }

  /**
   * Builds the job's image to {@code to}: {@code docker://NAME:TAG} (the local engine) or a
   * registry reference, which a cluster pulls.
   *
   * @return the image's reference: the local engine's name, or for a registry the reference pinned
   *     to the digest pushed
   */
  static String build(TrainingJob job, String base, Path cacheDir, PrintStream err, String to) {
    TrainingJob.Java trainer = job.java();
    Path staging;
    try {
      staging = Files.createTempDirectory("berth-trainer-");
    } catch (IOException e) {
      throw new BerthException("cannot create a staging directory: " + e.getMessage(), e);
    }
    try {
      List<ImagePlan.Entry> files = new ArrayList<>();
      List<String> classPath = new ArrayList<>();
      List<Path> compileClassPath = new ArrayList<>();
      int n = 0;
      for (Path entry : trainer.classPath()) {
        if (entry.getFileName().toString().equals("*.jar")) {
          try (Stream<Path> jars = Files.list(entry.getParent())) {
            for (Path jar : jars.filter(p -> p.toString().endsWith(".jar")).sorted().toList()) {
              String target = HOME + "/lib/" + jar.getFileName();
              files.add(entry(jar, target));
              classPath.add(target);
              compileClassPath.add(jar);
            }
          }
        } else if (Files.isDirectory(entry)) {
          String target = HOME + "/cp/" + n++;
          files.addAll(tree(entry, target));
          classPath.add(target);
          compileClassPath.add(entry);
        } else {
          String target = HOME + "/lib/" + entry.getFileName();
          files.add(entry(entry, target));
          classPath.add(target);
          compileClassPath.add(entry);
        }
      }
      if (trainer.source() != null) {
        Path classes = compile(trainer.source(), compileClassPath, staging, err);
        files.addAll(tree(classes, HOME + "/classes"));
        classPath.add(0, HOME + "/classes");
      }
      files.sort(java.util.Comparator.comparing(ImagePlan.Entry::path));
      List<String> entrypoint = new ArrayList<>();
      entrypoint.add("java");
      entrypoint.addAll(trainer.jvmOptions());
      entrypoint.add("-cp");
      entrypoint.add(String.join(":", classPath));
      entrypoint.add(trainer.mainClass());
      boolean local = to.startsWith("docker://");
      String reference = local ? to.substring("docker://".length()) : to;
      String baseImage = base != null ? base : trainer.base();
      ServiceSpec spec = imageOnly(job.file(), job.name(), baseImage, to);
      Map<String, String> env = new LinkedHashMap<>();
      env.put("HOME", "/tmp"); // the unprivileged user has no home directory
      ImagePlan plan =
          new ImagePlan(
              spec,
              List.of(new ImagePlan.Layer("trainer", files)),
              entrypoint,
              List.of(),
              env,
              List.of(),
              ServiceSpec.Image.DEFAULT_USER,
              "/tmp",
              Map.of("dev.berth.training-job", job.name()));
      err.println(
          "packing the trainer "
              + trainer.mainClass()
              + " ("
              + files.size()
              + " files) on "
              + baseImage
              + " into "
              + reference
              + " ...");
      BuiltImage built = build(plan, baseImage, to, cacheDir, err);
      err.println("  image " + reference + " " + built.digest());
      return local ? reference : pinned(reference, built.digest());
    } catch (IOException e) {
      throw new BerthException("cannot pack the trainer: " + e.getMessage(), e);
    } finally {
      ServiceSpec.deleteTree(staging);
    }
  }

  /** The spec of an image that is no model service: a base, where it goes, the default user. */
  static ServiceSpec imageOnly(Path file, String name, String base, String to) {
    return ServiceSpec.imageOnly(
        file,
        name,
        new ServiceSpec.Image(
            base,
            to,
            List.of(),
            ServiceSpec.Image.DEFAULT_PLATFORM,
            ServiceSpec.Runtime.BASE,
            ServiceSpec.Image.DEFAULT_USER,
            Map.of(),
            List.of(),
            false,
            null,
            false,
            List.of()));
  }

  /** Builds a plan on {@code base} to {@code to}, its progress indented on {@code err}. */
  static BuiltImage build(ImagePlan plan, String base, String to, Path cacheDir, PrintStream err) {
    return ImageBuilder.of(plan)
        .base(ImageLocation.parse(base))
        .to(ImageLocation.parse(to))
        .cacheDirectory(cacheDir)
        .progress(line -> err.println("  " + line))
        .build();
  }

  /** {@code REGISTRY/REPO:TAG} as {@code REGISTRY/REPO:TAG@DIGEST}, what a cluster pulls. */
  static String pinned(String reference, String digest) {
    int at = reference.indexOf('@');
    return (at < 0 ? reference : reference.substring(0, at)) + "@" + digest;
  }

  /** Compiles a trainer's source file (Java 21, the class path given) into a directory. */
  private static Path compile(Path source, List<Path> classPath, Path staging, PrintStream err)
      throws IOException {
    JavaCompiler compiler = ToolProvider.getSystemJavaCompiler();
    if (compiler == null) {
      throw new BerthException(
          "compiling " + source + " needs a JDK; run berth with one (JAVA_HOME)");
    }
    Path classes = Files.createDirectories(staging.resolve("classes"));
    List<String> options = new ArrayList<>(List.of("--release", "21", "-d", classes.toString()));
    if (!classPath.isEmpty()) {
      options.add("-cp");
      options.add(String.join(":", classPath.stream().map(Path::toString).toList()));
    }
    options.add(source.toString());
    java.io.ByteArrayOutputStream messages = new java.io.ByteArrayOutputStream();
    err.println("compiling " + source + " ...");
    int code =
        compiler.run(
            null,
            java.io.OutputStream.nullOutputStream(),
            messages,
            options.toArray(String[]::new));
    if (code != 0) {
      throw new BerthException(
          "the trainer does not compile:\n"
              + messages.toString(java.nio.charset.StandardCharsets.UTF_8));
    }
    return classes;
  }

  private static ImagePlan.Entry entry(Path file, String target) throws IOException {
    return new ImagePlan.Entry(file, target, false, Files.size(file));
  }

  private static List<ImagePlan.Entry> tree(Path dir, String target) throws IOException {
    List<ImagePlan.Entry> out = new ArrayList<>();
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path f : walk.filter(Files::isRegularFile).sorted().toList()) {
        out.add(entry(f, target + "/" + dir.relativize(f).toString().replace('\\', '/')));
      }
    }
    return out;
  }
}
