package dev.berth.runtime;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * A {@code kind: TrainingJob} file: a training run in a container whose result becomes a version of
 * a model. Paths in the file are relative to the file's own directory. Every problem names the
 * file, the key and the fix.
 *
 * @param file where it was read from
 * @param name the job's name (a DNS label: the container's name derives from it)
 * @param model the model the trained files become a version of
 * @param version the version to publish as, or 0 for the one after the highest in the target
 * @param image the training image, run as it is; for a {@code java} job, the image Berth packs
 * @param java the Java trainer Berth packs into an image, or null for a job of an image
 * @param command the command replacing the image's entrypoint, or empty for the image's
 * @param args the arguments replacing the image's command, or empty for the image's
 * @param env environment variables added to the image's
 * @param data data sets mounted read-only
 * @param cpus CPUs the container may use (0: no limit)
 * @param memoryBytes memory the container may use (0: no limit)
 * @param gpus NVIDIA GPUs the container gets (0: none)
 * @param timeLimit how long the job may run before it is stopped
 * @param output where the job writes the version's files inside the container
 * @param to where the version is published: a model repository directory, {@code
 *     oci://REGISTRY/REPOSITORY:TAG} or {@code s3://BUCKET/PREFIX}, or null when the command line
 *     says
 * @param modelYaml the model.yaml a new model starts with (its labels, processing, gate), or null;
 *     a model that exists keeps its own
 */
public record TrainingJob(
    Path file,
    String name,
    String model,
    long version,
    String image,
    Java java,
    List<String> command,
    List<String> args,
    Map<String, String> env,
    List<DataSet> data,
    double cpus,
    long memoryBytes,
    int gpus,
    Duration timeLimit,
    String output,
    String to,
    Path modelYaml) {

  public static final String KIND = "TrainingJob";
  public static final String DEFAULT_OUTPUT = "/output";
  public static final Duration DEFAULT_TIME_LIMIT = Duration.ofHours(2);

  private static final Pattern DNS_LABEL = Pattern.compile("[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?");
  private static final Pattern DNS_SUBDOMAIN =
      Pattern.compile("[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?");
  private static final Pattern MEMORY = Pattern.compile("([1-9]\\d*)(Ki|Mi|Gi|Ti|k|M|G|T)?");

  public TrainingJob {
    command = List.copyOf(command);
    args = List.copyOf(args);
    env = Collections.unmodifiableMap(new LinkedHashMap<>(env));
    data = List.copyOf(data);
  }

  /**
   * A trainer written in Java, which Berth packs into an image of its own: its classes (compiled
   * from {@code source} when given) and class path on a base image with Java, run as {@code java
   * JVM-OPTIONS -cp ... MAIN-CLASS ARGS}.
   *
   * @param source a Java source file Berth compiles (its class path as given), or null
   * @param mainClass the class to run (default: the source file's name)
   * @param classPath directories and jars (a {@code DIR/*.jar} takes every jar in it)
   * @param jvmOptions JVM options
   * @param base the base image, which must have {@code java} on its PATH
   */
  public record Java(
      Path source, String mainClass, List<Path> classPath, List<String> jvmOptions, String base) {
    public static final String DEFAULT_BASE = ServiceSpec.Image.DEFAULT_BASE;

    public Java {
      classPath = List.copyOf(classPath);
      jvmOptions = List.copyOf(jvmOptions);
    }

    /** The image a job of this name is packed into, on the local engine. */
    public static String imageOf(String job) {
      return "berth-train/" + job + ":latest";
    }
  }

  /**
   * A data set the job reads: a directory or file of this machine, or (on Kubernetes) a
   * PersistentVolumeClaim.
   *
   * @param path the directory or file on this machine, or null for a claim
   * @param mount where the container sees it (read-only)
   * @param claim the PersistentVolumeClaim, or null for a path
   * @param subPath the directory of the claim mounted, or null for all of it
   */
  public record DataSet(Path path, String mount, String claim, String subPath) {
    public DataSet(Path path, String mount) {
      this(path, mount, null, null);
    }
  }

  /** Reads and validates a job file. */
  public static TrainingJob load(Path file) {
    return parse(
        ConfigReader.readDocument(file.toAbsolutePath().normalize(), KIND, "a training job file"));
  }

  static TrainingJob parse(ConfigReader root) {
    root.allowOnly(
        Set.of(
            "apiVersion",
            "kind",
            "name",
            "model",
            "version",
            "image",
            "java",
            "command",
            "args",
            "env",
            "data",
            "resources",
            "time-limit",
            "output",
            "to",
            "model-yaml"));
    root.requireHeader(ModelConfig.API_VERSION, KIND, "a training job");
    String name = root.requiredString("name", "name the job, e.g. 'name: fashion-mnist-train'");
    if (!DNS_LABEL.matcher(name).matches()) {
      throw root.error(
          "name",
          "'" + name + "' is not a DNS label; use lower-case letters, digits and '-', at most 63");
    }
    String model =
        root.requiredString("model", "name the model the trained files become a version of");
    if (!ModelRepository.isValidModelName(model)) {
      throw root.error(
          "model", "'" + model + "' is not a valid model name (letters, digits, . _ -)");
    }
    long version = root.has("version") ? root.integer("version", 1, 1, Integer.MAX_VALUE) : 0;
    Path base = root.file().getParent();
    Java java = root.has("java") ? java(root.section("java"), base) : null;
    String image;
    if (java != null) {
      if (root.has("image")) {
        throw root.error(
            "image", "and java both given; a job runs an image, or a Java trainer Berth packs");
      }
      if (root.has("command")) {
        throw root.error(
            "command",
            "does not apply to a java job (Berth runs java); give its arguments in args");
      }
      image = Java.imageOf(name);
    } else {
      image =
          root.requiredString(
              "image",
              "give the training image (image: registry.example.com/team/trainer:1), or a Java"
                  + " trainer for Berth to pack (java: {source: Train.java})");
    }
    List<DataSet> data = new ArrayList<>();
    for (ConfigReader d : root.sections("data")) {
      d.allowOnly(Set.of("path", "pvc", "sub-path", "mount"));
      String mount = d.requiredString("mount", "give where the job reads it, e.g. mount: /data");
      if (!mount.startsWith("/")) {
        throw d.error("mount", "'" + mount + "' is not an absolute path; e.g. mount: /data");
      }
      if (d.has("pvc")) {
        if (d.has("path")) {
          throw d.error("pvc", "and path both given; a data set is a local path or a claim");
        }
        String claim = d.string("pvc", "");
        if (!DNS_SUBDOMAIN.matcher(claim).matches()) {
          throw d.error("pvc", "'" + claim + "' is not a PersistentVolumeClaim name");
        }
        data.add(new DataSet(null, mount, claim, d.string("sub-path", null)));
        continue;
      }
      if (d.has("sub-path")) {
        throw d.error("sub-path", "applies to a claim (pvc: NAME)");
      }
      Path path =
          base.resolve(
                  d.requiredString(
                      "path",
                      "give the data set's directory or file (or pvc: CLAIM on Kubernetes)"))
              .normalize();
      if (!Files.exists(path)) {
        throw d.error("path", path + " does not exist; give a directory or file on this machine");
      }
      data.add(new DataSet(path, mount));
    }
    ConfigReader resources = root.section("resources");
    resources.allowOnly(Set.of("cpu", "memory", "gpus"));
    int gpus = resources.integer("gpus", 0, 0, 64);
    double cpus = 0;
    if (resources.has("cpu")) {
      cpus = resources.number("cpu", 0);
      if (!(cpus > 0) || !Double.isFinite(cpus)) {
        throw resources.error("cpu", "must be above 0, e.g. cpu: 2 or cpu: 0.5");
      }
    }
    long memory = 0;
    String memoryText = resources.string("memory", null);
    if (memoryText != null) {
      memory = memoryBytes(memoryText);
      if (memory < (64L << 20)) {
        throw resources.error(
            "memory",
            "'" + memoryText + "' is not a memory size of at least 64Mi; e.g. memory: 4Gi");
      }
    }
    Duration timeLimit = root.duration("time-limit", DEFAULT_TIME_LIMIT);
    if (timeLimit.isZero() || timeLimit.isNegative()) {
      throw root.error("time-limit", "must be above 0, e.g. time-limit: 30m");
    }
    String output = root.string("output", DEFAULT_OUTPUT);
    if (!output.startsWith("/") || output.equals("/")) {
      throw root.error("output", "'" + output + "' is not an absolute directory; e.g. /output");
    }
    String to = root.string("to", null);
    boolean store = to != null && (to.startsWith("oci://") || to.startsWith("s3://"));
    if (to != null && ServiceSpec.RemoteModel.isRemote(to) && !store) {
      throw root.error(
          "to",
          "'"
              + to
              + "' is not where berth train publishes; give a model repository directory,"
              + " oci://REGISTRY/REPOSITORY:TAG or s3://BUCKET/PREFIX");
    }
    if (to != null && !store) {
      to = base.resolve(to).normalize().toString();
    }
    Path modelYaml = null;
    if (root.has("model-yaml")) {
      modelYaml = base.resolve(root.string("model-yaml", "")).normalize();
      if (!Files.isRegularFile(modelYaml)) {
        throw root.error(
            "model-yaml",
            modelYaml + " is not a file; give the model.yaml a new model starts with");
      }
      try {
        ModelConfig.read(modelYaml);
      } catch (dev.berth.api.ConfigException bad) {
        throw root.error("model-yaml", "is not a valid model.yaml: " + bad.getMessage());
      }
    }
    Map<String, String> env = new LinkedHashMap<>();
    ConfigReader e = root.section("env");
    for (Map.Entry<String, Object> v : e.values().entrySet()) {
      plain(e, v.getKey(), v.getValue());
      env.put(v.getKey(), String.valueOf(v.getValue()));
    }
    for (String key : List.of("command", "args")) {
      if (root.values().get(key) instanceof List<?> items) {
        for (Object item : items) {
          plain(root, key, item);
        }
      }
    }
    return new TrainingJob(
        root.file(),
        name,
        model,
        version,
        image,
        java,
        root.strings("command"),
        root.strings("args"),
        env,
        data,
        cpus,
        memory,
        gpus,
        timeLimit,
        output,
        to,
        modelYaml);
  }

  private static Java java(ConfigReader j, Path base) {
    j.allowOnly(Set.of("source", "main-class", "class-path", "jvm-options", "base"));
    Path source = null;
    if (j.has("source")) {
      source = base.resolve(j.string("source", "")).normalize();
      if (!Files.isRegularFile(source) || !source.toString().endsWith(".java")) {
        throw j.error("source", source + " is not a .java file");
      }
    }
    List<Path> classPath = new ArrayList<>();
    for (String entry : j.strings("class-path")) {
      Path p = base.resolve(entry).normalize();
      Path checked = p.getFileName().toString().equals("*.jar") ? p.getParent() : p;
      if (!Files.exists(checked)) {
        throw j.error("class-path", checked + " does not exist; give directories and jars");
      }
      classPath.add(p);
    }
    String mainClass = j.string("main-class", null);
    if (mainClass == null) {
      if (source == null) {
        throw j.error(
            "main-class", "is missing: name the class to run, or give its source (source: X.java)");
      }
      String file = source.getFileName().toString();
      mainClass = file.substring(0, file.length() - ".java".length());
    }
    if (source == null && classPath.isEmpty()) {
      throw j.error("class-path", "is missing: give the trainer's classes or jars, or its source");
    }
    return new Java(
        source,
        mainClass,
        classPath,
        j.strings("jvm-options"),
        j.string("base", Java.DEFAULT_BASE));
  }

  /**
   * Refuses a value YAML would have turned from the text the user wrote into something else ({@code
   * no} into false, {@code 1.10} into 1.1): strings and whole numbers only.
   */
  private static void plain(ConfigReader section, String key, Object value) {
    if (value instanceof Boolean || value instanceof Double || value instanceof Float) {
      throw section.error(
          key,
          "holds "
              + value
              + ", which YAML read as a "
              + (value instanceof Boolean ? "boolean" : "decimal number")
              + "; quote it (\"...\") to pass the text as written");
    }
    if (value instanceof Map<?, ?> || value instanceof List<?>) {
      throw section.error(key, "must hold plain text, not a list or a mapping");
    }
  }

  /** A Kubernetes-style memory quantity in bytes, or -1 when it is not one (or too big). */
  static long memoryBytes(String text) {
    var m = MEMORY.matcher(text.trim());
    if (!m.matches() || m.group(1).length() > 15) {
      return -1;
    }
    long n = Long.parseLong(m.group(1));
    String unit = m.group(2) == null ? "" : m.group(2);
    long factor =
        switch (unit) {
          case "Ki" -> 1L << 10;
          case "Mi" -> 1L << 20;
          case "Gi" -> 1L << 30;
          case "Ti" -> 1L << 40;
          case "k" -> 1_000L;
          case "M" -> 1_000_000L;
          case "G" -> 1_000_000_000L;
          case "T" -> 1_000_000_000_000L;
          default -> 1L;
        };
    return Math.multiplyExact(n, factor);
  }
}
