package dev.berth.image;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import dev.berth.api.BerthException;
import dev.berth.runtime.GgufHeader;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelIntegrity;
import dev.berth.runtime.ModelManifest;
import dev.berth.runtime.ModelRepository;
import dev.berth.runtime.ServeSettings;
import dev.berth.runtime.ServiceSpec;
import dev.berth.runtime.SignedManifest;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * What goes into a service's image, independent of how it is built (jib-core or a Dockerfile): the
 * layers, least often changed first, and the container configuration. Both builders read the same
 * plan, so the Dockerfile export is the same image.
 *
 * @param service the service file it was made from
 * @param layers layers in order: Java runtime (if brought), libraries, Berth, one per model
 *     version, config
 * @param entrypoint the container's entrypoint (the JVM and Berth's jar)
 * @param cmd the arguments: {@code serve} on the bundled models (or, with remote models, on {@link
 *     #SERVICE_FILE}) with the service's settings
 * @param environment environment variables
 * @param ports exposed TCP ports
 * @param user numeric uid:gid
 * @param workingDirectory the working directory
 * @param labels image labels, OCI's and Berth's
 */
public record ImagePlan(
    ServiceSpec service,
    List<Layer> layers,
    List<String> entrypoint,
    List<String> cmd,
    Map<String, String> environment,
    List<Integer> ports,
    String user,
    String workingDirectory,
    Map<String, String> labels) {

  /** Where Berth lives in the image. */
  public static final String HOME = "/opt/berth";

  public static final String MODELS = HOME + "/models";

  /**
   * The service file an image of a service with remote models serves: its bundled models by path,
   * its remote ones by source, fetched when the container starts.
   */
  public static final String SERVICE_FILE = HOME + "/" + ServiceSpec.FILE_NAME;

  public static final String JAVA = HOME + "/java";

  public ImagePlan {
    layers = List.copyOf(layers);
    entrypoint = List.copyOf(entrypoint);
    cmd = List.copyOf(cmd);
    environment = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(environment));
    ports = List.copyOf(ports);
    labels = java.util.Collections.unmodifiableMap(new TreeMap<>(labels));
  }

  /**
   * One layer: a name for progress and docs, and its files.
   *
   * @param name e.g. {@code libraries} or {@code model minilm/1}
   * @param files files in the layer, sorted by their path in the image
   */
  public record Layer(String name, List<Entry> files) {
    public Layer {
      files = List.copyOf(files);
    }

    /** Bytes of all files in the layer, uncompressed. */
    public long size() {
      return files.stream().mapToLong(Entry::size).sum();
    }
  }

  /**
   * One file of a layer.
   *
   * @param source the file on this machine
   * @param path its absolute path in the image
   * @param executable whether it gets mode 755 (else 644)
   * @param size its size in bytes
   */
  public record Entry(Path source, String path, boolean executable, long size) {}

  /**
   * Plans the image of a service.
   *
   * @param service the service file
   * @param berth Berth's own files
   * @param javaRuntime a jlink runtime to bring, or null to use the base image's Java
   * @param classData a class-data sharing archive made for that runtime ({@link ClassDataArchive}),
   *     or null
   * @param staging a directory for the generated config files
   */
  public static ImagePlan of(
      ServiceSpec service,
      BerthDistribution berth,
      Path javaRuntime,
      Path classData,
      Path staging) {
    ServeSettings given = service.serving().settings();
    if (given.isSet(ServeSettings.TRUST) || given.isSet(ServeSettings.REQUIRE_SIGNED)) {
      throw new dev.berth.api.ConfigException(
          service.file(),
          "serving." + (given.isSet(ServeSettings.TRUST) ? "trust" : "require-signed"),
          "applies to 'berth serve berth.yaml' only: an image does not carry trust keys; check"
              + " the models' signatures with 'berth serve --trust KEY.pub' before building");
    }
    List<Layer> layers = new ArrayList<>();
    if (javaRuntime != null) {
      layers.add(new Layer("java runtime", tree(javaRuntime, JAVA)));
    }
    layers.add(new Layer("libraries", jars(berth.libraries())));
    List<Entry> own = new ArrayList<>(jars(berth.modules()));
    own.add(file(berth.launcher(), HOME + "/berth.jar"));
    layers.add(new Layer("berth", own));
    if (classData != null) {
      layers.add(
          new Layer("class data", List.of(file(classData, ClassDataArchive.imagePath(classData)))));
    }

    Map<String, String> labels = new TreeMap<>();
    List<String> served = new ArrayList<>();
    List<Entry> config = new ArrayList<>();
    for (ServiceSpec.ServiceModel model : service.models()) {
      for (ModelRepository.Version version : model.versions()) {
        String where = MODELS + "/" + model.name() + "/" + version.label();
        List<Entry> files = tree(version.dir(), where);
        // a language model's weights get a layer of their own: the version's small files (and a
        // new model.yaml) change without pushing gigabytes again
        List<Entry> weights =
            files.stream().filter(f -> f.path().endsWith("/" + GgufHeader.MODEL_FILE)).toList();
        List<Entry> rest = files.stream().filter(f -> !weights.contains(f)).toList();
        String layer = "model " + model.name() + "/" + version.label();
        if (!weights.isEmpty()) {
          layers.add(new Layer(layer + " weights", weights));
        }
        if (!rest.isEmpty() || weights.isEmpty()) {
          layers.add(new Layer(layer, rest));
        }
        String prefix = "dev.berth.model." + model.name() + "." + version.label();
        labels.put(prefix + ".sha256", manifestDigest(files, where));
        labels.put(prefix + ".files", fileDigests(files, where));
        served.add(model.name() + ":" + version.label());
      }
      String signed = signedManifestDigest(model);
      if (signed != null) {
        labels.put("dev.berth.model." + model.name() + ".signed-manifest", signed);
      }
      ServiceSpec.ServiceModel carried = carryGateData(model, layers);
      config.add(
          file(
              writeModelYaml(carried, staging),
              MODELS + "/" + model.name() + "/" + ModelConfig.FILE_NAME));
    }
    if (!service.remoteModels().isEmpty()) {
      config.add(file(writeServiceFile(service, staging), SERVICE_FILE));
      List<String> remote = new ArrayList<>();
      for (ServiceSpec.RemoteModel model : service.remoteModels()) {
        // a presigned URL's query (its signature) and user information stay out of the label
        remote.add(model.name() + "=" + model.shown());
      }
      labels.put("dev.berth.remote-models", String.join(",", remote));
    }
    layers.add(new Layer("config", config));

    ServiceSpec.Image image = service.image();
    ServiceSpec.Serving serving = service.serving();
    labels.put("org.opencontainers.image.title", service.name());
    if (!service.description().isBlank()) {
      labels.put("org.opencontainers.image.description", service.description());
    }
    labels.put("org.opencontainers.image.base.name", image.base());
    labels.put("dev.berth.service", service.name());
    labels.put("dev.berth.version", berth.version());
    labels.put("dev.berth.runtime", image.runtime().id());
    labels.put("dev.berth.models", String.join(",", served));
    labels.putAll(image.labels());

    List<String> entrypoint = new ArrayList<>();
    entrypoint.add(javaRuntime != null ? JAVA + "/bin/java" : "java");
    if (classData != null) {
      entrypoint.addAll(ClassDataArchive.jvmOptions(classData));
    }
    entrypoint.addAll(jvmOptions(service));
    entrypoint.add("-jar");
    entrypoint.add(HOME + "/berth.jar");
    // the service's serve settings, on every interface; its secret files are mounted at run time
    List<String> cmd =
        new ArrayList<>(List.of("serve", service.remoteModels().isEmpty() ? MODELS : SERVICE_FILE));
    cmd.addAll(serving.containerSettings().arguments());

    Map<String, String> env = new LinkedHashMap<>();
    // Berth opens no connection its user did not configure: ONNX Runtime's and DJL's telemetry off.
    env.put("ORT_DISABLE_TELEMETRY", "1");
    env.put("OPT_OUT_TRACKING", "true");
    // The non-root user has no home directory; native libraries unpack under /tmp.
    env.put("HOME", "/tmp");
    env.put("DJL_CACHE_DIR", "/tmp/berth/djl");
    // TensorFlow's native library logs every graph optimisation at its default level
    env.put("TF_CPP_MIN_LOG_LEVEL", "1");
    return new ImagePlan(
        service,
        layers,
        entrypoint,
        cmd,
        env,
        List.of(serving.port(), serving.grpcPort()),
        image.user(),
        HOME,
        labels);
  }

  /** The JVM options the server starts with (and a class-data training run too). */
  public static List<String> jvmOptions(ServiceSpec service) {
    // No --enable-native-access: berth.jar's manifest grants it (Enable-Native-Access), and the
    // flag would differ from how the JDK's own class-data archive was dumped.
    List<String> out = new ArrayList<>();
    out.add("-XX:MaxRAMPercentage=75");
    out.add("-XX:+ExitOnOutOfMemoryError");
    out.add("-DOPT_OUT_TRACKING=true");
    out.addAll(service.image().jvmOptions());
    return out;
  }

  private static List<Entry> jars(List<Path> jars) {
    return jars.stream()
        .map(j -> file(j, HOME + "/lib/" + j.getFileName()))
        .sorted(java.util.Comparator.comparing(Entry::path))
        .toList();
  }

  /**
   * A model whose model.yaml has a gate: its data set (and an IDX images file's labels) go into a
   * layer of their own under the model's {@code gate/} directory, and the model the image serves
   * names them there, so that the gate evaluates in the container as it does here.
   *
   * @return the model with its model.yaml naming the image's copies (the model itself without a
   *     gate)
   */
  @SuppressWarnings("unchecked")
  static ServiceSpec.ServiceModel carryGateData(
      ServiceSpec.ServiceModel model, List<Layer> layers) {
    if (!(model.modelYaml().get("gate") instanceof Map<?, ?> gate)
        || !(gate.get("data") instanceof String data)) {
      return model;
    }
    String where = MODELS + "/" + model.name() + "/gate";
    Map<String, Object> rewritten = new LinkedHashMap<>((Map<String, Object>) gate);
    List<Entry> files = new ArrayList<>();
    Path dataPath = Path.of(data);
    if (!Files.exists(dataPath)) {
      throw new BerthException(
          "model '"
              + model.name()
              + "': its gate's data set "
              + dataPath
              + " does not exist; the image carries it for the gate to evaluate on");
    }
    String name = dataPath.getFileName().toString();
    files.addAll(
        Files.isDirectory(dataPath)
            ? tree(dataPath, where + "/" + name)
            : List.of(file(dataPath, where + "/" + name)));
    rewritten.put("data", "gate/" + name);
    Path labels = null;
    if (gate.get("data-labels") instanceof String given) {
      labels = Path.of(given);
      if (!Files.isRegularFile(labels)) {
        throw new BerthException(
            "model '"
                + model.name()
                + "': its gate's data-labels "
                + labels
                + " is not a file; the image carries it for the gate to evaluate on");
      }
    } else if (name.contains("idx3") || "idx".equals(gate.get("format"))) {
      labels = idxLabelsBeside(dataPath);
      if (labels == null) {
        throw new BerthException(
            "model '"
                + model.name()
                + "': no labels file beside its gate's IDX images "
                + dataPath
                + "; name it in the gate's data-labels");
      }
    }
    if (labels != null) {
      // named explicitly in the image, whatever its name
      String labelsName = labels.getFileName().toString();
      files.add(file(labels, where + "/" + labelsName));
      rewritten.put("data-labels", "gate/" + labelsName);
    }
    layers.add(new Layer("model " + model.name() + " gate data", files));
    Map<String, Object> yaml = new LinkedHashMap<>(model.modelYaml());
    yaml.put("gate", rewritten);
    return new ServiceSpec.ServiceModel(model.name(), model.dir(), model.versions(), yaml);
  }

  /**
   * The labels file beside an IDX images file, as {@code berth eval} finds it ({@code images-idx3}
   * or {@code images.idx3} in the name becomes {@code labels-idx1} / {@code labels.idx1}, gzipped
   * or not), or null.
   */
  static Path idxLabelsBeside(Path images) {
    String name = images.getFileName().toString();
    String labels =
        name.replace("images-idx3", "labels-idx1").replace("images.idx3", "labels.idx1");
    if (labels.equals(name)) {
      return null;
    }
    String other =
        labels.endsWith(".gz") ? labels.substring(0, labels.length() - 3) : labels + ".gz";
    for (String candidate : List.of(labels, other)) {
      Path p = images.resolveSibling(candidate);
      if (Files.isRegularFile(p)) {
        return p;
      }
    }
    return null;
  }

  private static Entry file(Path source, String path) {
    try {
      return new Entry(source, path, false, Files.size(source));
    } catch (IOException e) {
      throw new BerthException("cannot read " + source + ": " + e.getMessage(), e);
    }
  }

  /** Every regular file under a directory, at the same relative paths under {@code target}. */
  private static List<Entry> tree(Path dir, String target) {
    try (Stream<Path> walk = Files.walk(dir)) {
      List<Path> files = walk.filter(Files::isRegularFile).sorted().toList();
      List<Entry> out = new ArrayList<>();
      for (Path f : files) {
        String rel = dir.relativize(f).toString().replace('\\', '/');
        out.add(new Entry(f, target + "/" + rel, Files.isExecutable(f), Files.size(f)));
      }
      out.sort(java.util.Comparator.comparing(Entry::path));
      return out;
    } catch (IOException e) {
      throw new BerthException("cannot read " + dir + ": " + e.getMessage(), e);
    }
  }

  /**
   * The digest of a signed model's manifest ({@code berth.sig}), as far as the image bundles it, or
   * null for an unsigned model. A signed model whose bundled files differ from its manifest is
   * refused: the image would carry files nobody signed.
   */
  static String signedManifestDigest(ServiceSpec.ServiceModel model) {
    Path sig = model.dir().resolve(ModelManifest.SIGNATURE_FILE);
    if (!Files.exists(sig)) {
      return null;
    }
    SignedManifest signed = SignedManifest.read(sig);
    java.util.function.Predicate<String> bundled =
        p -> model.versions().stream().anyMatch(v -> ModelIntegrity.seenBy(p, v.label()));
    ModelManifest expected = signed.manifest().filter(bundled);
    ModelManifest actual = ModelManifest.of(model.dir(), bundled);
    if (!expected.equals(actual)) {
      java.util.Set<String> paths = new java.util.TreeSet<>(expected.files().keySet());
      paths.addAll(actual.files().keySet());
      String first =
          paths.stream()
              .filter(
                  p -> !java.util.Objects.equals(expected.files().get(p), actual.files().get(p)))
              .findFirst()
              .orElseThrow();
      throw new BerthException(
          "model '"
              + model.name()
              + "': "
              + model.dir().resolve(first)
              + (actual.files().containsKey(first)
                  ? expected.files().containsKey(first)
                      ? " differs from its signed manifest (" + sig + ")"
                      : " is not in its signed manifest (" + sig + ")"
                  : " is in its signed manifest (" + sig + ") but missing")
              + "; restore the file, or sign the model again with 'berth sign "
              + model.dir()
              + " --key KEY.pem'");
    }
    return expected.digest();
  }

  private static String fileDigests(List<Entry> files, String root) {
    StringBuilder out = new StringBuilder();
    for (Entry e : files) {
      if (!out.isEmpty()) {
        out.append(',');
      }
      out.append(e.path().substring(root.length() + 1))
          .append("=sha256:")
          .append(sha256(e.source()));
    }
    return out.toString();
  }

  /**
   * The sha256 of a model version's manifest: one line {@code <sha256> <relative path>} per file,
   * sorted by path (the format of {@code sha256sum}, so it can be checked by hand).
   */
  static String manifestDigest(List<Entry> files, String root) {
    StringBuilder manifest = new StringBuilder();
    for (Entry e : files) {
      manifest
          .append(sha256(e.source()))
          .append("  ")
          .append(e.path().substring(root.length() + 1))
          .append('\n');
    }
    return "sha256:"
        + HexFormat.of()
            .formatHex(
                digest()
                    .digest(manifest.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8)));
  }

  static String sha256(Path file) {
    MessageDigest md = digest();
    try (InputStream in = new DigestInputStream(Files.newInputStream(file), md)) {
      in.transferTo(java.io.OutputStream.nullOutputStream());
    } catch (IOException e) {
      throw new BerthException("cannot read " + file + ": " + e.getMessage(), e);
    }
    return HexFormat.of().formatHex(md.digest());
  }

  private static MessageDigest digest() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * The service file the image serves ({@link #SERVICE_FILE}): the bundled models by their path in
   * the image (their model.yaml already holds the service's overrides), the remote ones by source
   * with their overrides. Serving settings stay on the command line and in the environment.
   */
  static Path writeServiceFile(ServiceSpec service, Path staging) {
    Map<String, Object> file = service.servedFile();
    try {
      ObjectMapper yaml =
          new ObjectMapper(
              new YAMLFactory()
                  .disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER)
                  .enable(YAMLGenerator.Feature.MINIMIZE_QUOTES));
      byte[] bytes = yaml.writeValueAsBytes(file);
      String name = HexFormat.of().formatHex(digest().digest(bytes)).substring(0, 16);
      Path dir = Files.createDirectories(staging.resolve("service").resolve(name));
      Path out = dir.resolve(ServiceSpec.FILE_NAME);
      if (!Files.exists(out)) {
        Files.write(out, bytes);
      }
      return out;
    } catch (IOException e) {
      throw new BerthException("cannot write the image's service file: " + e.getMessage(), e);
    }
  }

  static Path writeModelYaml(ServiceSpec.ServiceModel model, Path staging) {
    ObjectMapper yaml =
        new ObjectMapper(
            new YAMLFactory()
                .disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER)
                .enable(YAMLGenerator.Feature.MINIMIZE_QUOTES));
    try {
      byte[] bytes = yaml.writeValueAsBytes(model.modelYaml());
      String name = HexFormat.of().formatHex(digest().digest(bytes)).substring(0, 16);
      Path dir = staging.resolve("config").resolve(model.name() + "-" + name);
      Files.createDirectories(dir);
      Path out = dir.resolve(ModelConfig.FILE_NAME);
      if (!Files.exists(out)) {
        Files.write(out, bytes);
      }
      return out;
    } catch (IOException e) {
      throw new BerthException(
          "cannot write the config of " + model.name() + ": " + e.getMessage(), e);
    }
  }
}
