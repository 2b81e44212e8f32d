package dev.berth.runtime;

import dev.berth.api.ConfigException;
import dev.berth.api.DataType;
import dev.berth.api.InvalidInputException;
import dev.berth.api.TensorSpec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * A model's {@code model.yaml}: how it is batched, how many engine instances run it, its request
 * deadline, optional tensor declarations, and the engine's own sections (pre- and post-processing,
 * engine options) that the engine validates itself.
 *
 * @param file where it was read from (or the model directory when there is none)
 * @param engine engine name, or null to pick by the model file
 * @param instances engine workers running batches side by side
 * @param batching batching settings
 * @param requestTimeout deadline of one request, queue wait included
 * @param inputs declared inputs, empty to read them from the model file
 * @param outputs declared outputs, empty to read them from the model file
 * @param preprocessing engine-specific pre-processing section
 * @param postprocessing engine-specific post-processing section
 * @param options engine-specific options section
 * @param labels class names of a classifier's output, in index order (empty for none)
 * @param pins sha256 digests (lowercase hex) that files must have, by path relative to the model
 *     directory ({@code files.sha256}); see {@link ModelIntegrity}
 * @param versionPolicy which version directories are served
 * @param llm a language model's settings ({@code llm}; defaults when absent)
 * @param gate the evaluation a new version must pass before it takes traffic, or null for none
 */
public record ModelConfig(
    Path file,
    String engine,
    int instances,
    BatchingConfig batching,
    Duration requestTimeout,
    List<TensorSpec> inputs,
    List<TensorSpec> outputs,
    ConfigReader preprocessing,
    ConfigReader postprocessing,
    ConfigReader options,
    List<String> labels,
    Map<String, String> pins,
    VersionPolicy versionPolicy,
    LlmConfig llm,
    ModelGate gate) {

  public static final String API_VERSION = "berth.dev/v1";
  public static final String KIND = "Model";
  public static final String FILE_NAME = "model.yaml";
  public static final int DEFAULT_INSTANCES = 1;
  public static final Duration DEFAULT_REQUEST_TIMEOUT = Duration.ofSeconds(30);

  private static final Set<String> TOP_KEYS =
      Set.of(
          "apiVersion",
          "kind",
          "engine",
          "instances",
          "batching",
          "request-timeout",
          "inputs",
          "outputs",
          "preprocessing",
          "postprocessing",
          "options",
          "labels",
          "files",
          LlmConfig.KEY,
          VersionPolicy.KEY,
          ModelGate.KEY);

  public ModelConfig {
    inputs = List.copyOf(inputs);
    outputs = List.copyOf(outputs);
    labels = List.copyOf(labels);
    pins = java.util.Collections.unmodifiableMap(new java.util.TreeMap<>(pins));
  }

  /** Settings of a model without a model.yaml. */
  public static ModelConfig defaults(Path modelDir) {
    Path file = modelDir.resolve(FILE_NAME);
    ConfigReader empty = ConfigReader.root(file, Map.of());
    return new ModelConfig(
        file,
        null,
        DEFAULT_INSTANCES,
        BatchingConfig.defaults(),
        DEFAULT_REQUEST_TIMEOUT,
        List.of(),
        List.of(),
        empty.section("preprocessing"),
        empty.section("postprocessing"),
        empty.section("options"),
        List.of(),
        Map.of(),
        VersionPolicy.ALL,
        LlmConfig.parse(empty.section(LlmConfig.KEY)),
        null);
  }

  /** Reads {@code modelDir/model.yaml}, or the defaults when it does not exist. */
  public static ModelConfig load(Path modelDir) {
    Path file = modelDir.resolve(FILE_NAME);
    if (!Files.exists(file)) {
      return defaults(modelDir);
    }
    ConfigReader root =
        ConfigReader.readYaml(file, "starting with 'apiVersion: " + API_VERSION + "'");
    if (root == null) {
      return defaults(modelDir);
    }
    return parse(root);
  }

  /**
   * Reads a model.yaml file that may lie outside a model directory (a training job's {@code
   * model-yaml}); its relative paths are taken from its own directory.
   */
  public static ModelConfig read(Path file) {
    ConfigReader root =
        ConfigReader.readYaml(file, "starting with 'apiVersion: " + API_VERSION + "'");
    if (root == null) {
      throw new ConfigException(file, "apiVersion", "the file is empty");
    }
    return parse(root);
  }

  static ModelConfig parse(ConfigReader root) {
    root.allowOnly(TOP_KEYS);
    String apiVersion = root.string("apiVersion", null);
    if (apiVersion == null) {
      throw root.error("apiVersion", "is missing; add 'apiVersion: " + API_VERSION + "'");
    }
    if (!API_VERSION.equals(apiVersion)) {
      throw root.error(
          "apiVersion", "'" + apiVersion + "' is not supported; use '" + API_VERSION + "'");
    }
    String kind = root.string("kind", null);
    if (!KIND.equals(kind)) {
      throw root.error(
          "kind",
          (kind == null ? "is missing" : "'" + kind + "' is not a model file")
              + "; add 'kind: "
              + KIND
              + "'");
    }
    int instances = root.integer("instances", DEFAULT_INSTANCES, 1, 64);

    ConfigReader b = root.section("batching");
    b.allowOnly(Set.of("enabled", "max-batch-size", "max-queue-delay", "max-queue-size"));
    BatchingConfig batching =
        new BatchingConfig(
            b.integer("max-batch-size", BatchingConfig.DEFAULT_MAX_BATCH_SIZE, 1, 65_536),
            b.duration("max-queue-delay", BatchingConfig.DEFAULT_MAX_QUEUE_DELAY),
            b.integer("max-queue-size", BatchingConfig.DEFAULT_MAX_QUEUE_SIZE, 1, 1_000_000));
    if (batching.maxQueueDelay().compareTo(Duration.ofSeconds(10)) > 0) {
      throw b.error("max-queue-delay", "must be at most 10s (it adds to every request's latency)");
    }
    if (!b.bool("enabled", true)) {
      batching = batching.unbatched();
    }
    Duration timeout = root.duration("request-timeout", DEFAULT_REQUEST_TIMEOUT);
    if (timeout.isZero() || timeout.isNegative()) {
      throw root.error("request-timeout", "must be longer than 0 (e.g. 30s)");
    }
    return new ModelConfig(
        root.file(),
        root.string("engine", null),
        instances,
        batching,
        timeout,
        tensors(root, "inputs"),
        tensors(root, "outputs"),
        root.section("preprocessing"),
        root.section("postprocessing"),
        root.section("options"),
        labels(root),
        ModelIntegrity.pins(root.section("files")),
        VersionPolicy.parse(root),
        LlmConfig.parse(root.section(LlmConfig.KEY)),
        ModelGate.parse(root));
  }

  private static List<String> labels(ConfigReader root) {
    List<String> labels = root.strings("labels");
    Set<String> seen = new java.util.HashSet<>();
    for (String label : labels) {
      if (label.isBlank()) {
        throw root.error("labels", "class names must not be empty");
      }
      if (!seen.add(label)) {
        throw root.error("labels", "'" + label + "' appears twice; each class needs its own name");
      }
    }
    return labels;
  }

  /**
   * Checks the labels against the model's outputs once its engine has read them: some output's last
   * dimension must hold one score per label.
   */
  public void checkLabels(List<TensorSpec> modelOutputs) {
    if (labels.isEmpty()) {
      return;
    }
    List<String> widths = new java.util.ArrayList<>();
    for (TensorSpec t : modelOutputs) {
      long[] shape = t.shape();
      long last = shape.length == 0 ? 1 : shape[shape.length - 1];
      if (last == labels.size() || last == -1 || (labels.size() == 2 && last == 1)) {
        return;
      }
      widths.add(t.name() + " " + java.util.Arrays.toString(shape));
    }
    throw error(
        "labels",
        labels.size()
            + " class names, but no output has "
            + labels.size()
            + " scores in its last dimension ("
            + String.join(", ", widths)
            + "); list one name per score");
  }

  private static List<TensorSpec> tensors(ConfigReader root, String key) {
    return root.sections(key).stream()
        .map(
            t -> {
              t.allowOnly(Set.of("name", "datatype", "shape"));
              String name = t.requiredString("name", "give the tensor's name in the model");
              String type = t.requiredString("datatype", "e.g. datatype: FP32");
              DataType datatype;
              try {
                datatype = DataType.fromName(type);
              } catch (InvalidInputException e) {
                throw t.error("datatype", e.getMessage());
              }
              if (!t.has("shape")) {
                throw t.error("shape", "is missing; e.g. shape: [-1, 784] (-1 for any size)");
              }
              return new TensorSpec(name, datatype, t.longs("shape"));
            })
        .toList();
  }

  /**
   * Threads each engine instance may use by default: the cores divided among the {@code instances}
   * that run side by side, at least one. Every engine's thread options default to this, so that
   * instances share the cores rather than each sizing a pool for all of them.
   */
  public int threadsPerInstance() {
    return Math.max(1, Runtime.getRuntime().availableProcessors() / instances);
  }

  /** Whether this file sets an explicit engine. */
  public boolean hasEngine() {
    return engine != null;
  }

  /** The file itself, for messages. */
  public ConfigException error(String key, String problemAndFix) {
    return new ConfigException(file, key, problemAndFix);
  }
}
