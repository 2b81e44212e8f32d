package dev.berth.runtime;

import dev.berth.api.BerthException;
import dev.berth.api.ConfigException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.regex.Pattern;

/**
 * A {@code berth.yaml} ({@code kind: ModelService}): one deployable service, its models, how it
 * serves, how its image is built and how it is deployed. Paths in the file are relative to the
 * file's own directory. Every problem names the file, the key and the fix.
 *
 * @param file where it was read from
 * @param name the service's name (a DNS label: image, container and Kubernetes names derive from
 *     it)
 * @param description one line for image labels and docs, may be empty
 * @param models the models it serves from directories, each with the versions it bundles
 * @param remoteModels the models it serves from registries and object stores ({@code source:}),
 *     fetched when the server starts rather than built into its image
 * @param serving how the server runs
 * @param image how the image is built
 * @param deploy how it runs on Kubernetes
 */
public record ServiceSpec(
    Path file,
    String name,
    String description,
    List<ServiceModel> models,
    List<RemoteModel> remoteModels,
    Serving serving,
    Image image,
    Deploy deploy) {

  public static final String KIND = "ModelService";
  public static final String FILE_NAME = "berth.yaml";

  private static final Pattern DNS_LABEL = Pattern.compile("[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?");
  private static final Pattern HOSTNAME =
      Pattern.compile("(\\*\\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*");

  /** A Kubernetes object name: a DNS subdomain. */
  private static final Pattern SECRET_NAME =
      Pattern.compile("[a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?");

  private static final Pattern QUANTITY =
      Pattern.compile("\\d+(\\.\\d+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?");

  /** A cache volume's size: whole, with a unit of at least a kilobyte. */
  private static final Pattern CACHE_SIZE = Pattern.compile("[1-9]\\d*(k|M|G|T|Ki|Mi|Gi|Ti)");

  private static final Pattern PLATFORM = Pattern.compile("linux/(amd64|arm64)");

  public ServiceSpec {
    models = List.copyOf(models);
    remoteModels = List.copyOf(remoteModels);
  }

  /**
   * This service with one of its bundled models run with another model.yaml (checked as the model's
   * own would be), e.g. a setting {@code berth tune} tries.
   *
   * @throws BerthException when the service has no bundled model of that name, or the model.yaml is
   *     not valid
   */
  public ServiceSpec withModelYaml(String model, Map<String, Object> modelYaml) {
    List<ServiceModel> changed = new ArrayList<>();
    boolean found = false;
    for (ServiceModel m : models) {
      if (m.name().equals(model)) {
        ModelConfig.parse(ConfigReader.root(m.dir().resolve(ModelConfig.FILE_NAME), modelYaml));
        changed.add(new ServiceModel(m.name(), m.dir(), m.versions(), modelYaml));
        found = true;
      } else {
        changed.add(m);
      }
    }
    if (!found) {
      throw new BerthException(
          "service " + name + " bundles no model '" + model + "'; its models are " + modelNames());
    }
    return new ServiceSpec(file, name, description, changed, remoteModels, serving, image, deploy);
  }

  /** Every model's name, bundled ones first, as clients call them. */
  public List<String> modelNames() {
    List<String> out = new ArrayList<>();
    models.forEach(m -> out.add(m.name()));
    remoteModels.forEach(m -> out.add(m.name()));
    return out;
  }

  /**
   * A model served from where the team keeps it: an OCI registry ({@code berth push}), an S3 prefix
   * holding a model directory, or one model file over HTTPS. The server fetches it into its model
   * cache when it starts (and on each repository poll), so a new model is a push and a restart, not
   * an image build.
   *
   * @param name the name clients call it by: the entry's {@code name}, else the source's last path
   *     segment ({@code minilm} of {@code oci://registry/models/minilm:3})
   * @param source {@code oci://REGISTRY/REPOSITORY[:TAG|@DIGEST]}, {@code s3://BUCKET/PREFIX} or
   *     {@code https://.../NAME.onnx[#sha256=HEX]}
   * @param engine the engine that serves it as the entry names it, or null: decided from the source
   *     when an image is built
   * @param overrides model.yaml keys the service sets over the model's own ({@code instances},
   *     {@code batching})
   */
  public record RemoteModel(
      String name, String source, String engine, Map<String, Object> overrides) {
    public RemoteModel {
      overrides = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(overrides));
    }

    /** The schemes a {@code source} may have. */
    public static final List<String> SCHEMES = List.of("oci://", "s3://", "https://", "http://");

    /** Whether a text names a remote source rather than a local path. */
    public static boolean isRemote(String location) {
      return SCHEMES.stream().anyMatch(location::startsWith);
    }

    /**
     * The name a source serves under unless told otherwise: its last path segment, without an OCI
     * tag or digest, an S3 prefix's trailing slash or a file's extension; null when it has none.
     */
    public static String defaultName(String source) {
      String rest = source.substring(source.indexOf("://") + 3);
      int cut = rest.length();
      for (char c : new char[] {'?', '#'}) {
        int i = rest.indexOf(c);
        if (i >= 0 && i < cut && !source.startsWith("oci://")) {
          cut = i;
        }
      }
      rest = rest.substring(0, cut);
      if (source.startsWith("oci://")) {
        int at = rest.indexOf('@');
        if (at >= 0) {
          rest = rest.substring(0, at);
        }
        int colon = rest.lastIndexOf(':');
        if (colon > rest.lastIndexOf('/')) {
          rest = rest.substring(0, colon);
        }
      }
      while (rest.endsWith("/")) {
        rest = rest.substring(0, rest.length() - 1);
      }
      int slash = rest.lastIndexOf('/');
      String last = slash < 0 ? rest : rest.substring(slash + 1);
      if (source.startsWith("http")) {
        if (slash < 0) {
          return null; // a host alone names no file
        }
        // as berth serve URL names it: up to the first dot, lower-cased
        int dot = last.indexOf('.');
        if (dot > 0) {
          last = last.substring(0, dot).toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9_.-]", "-");
        }
      }
      return last.isEmpty() ? null : last;
    }

    /** The engines a {@code engine:} may name. */
    public static final List<String> ENGINES =
        List.of("onnx", "llama", "pytorch", "tensorflow", "xgboost");

    /** The model file extensions an {@code https://} source may end in. */
    public static final List<String> FILE_EXTENSIONS = List.of("onnx", "gguf", "pt", "json", "ubj");

    /**
     * The source as logs, labels and annotations show it: without a URL's user information or query
     * (a presigned URL's signature); a {@code #sha256=} pin stays.
     */
    public String shown() {
      return shownOf(source);
    }

    /** A source as {@link #shown} shows it. */
    public static String shownOf(String source) {
      if (!source.startsWith("http")) {
        return source;
      }
      return source.replaceFirst("^(https?://)[^/@]*@", "$1").replaceFirst("\\?[^#]*", "");
    }
  }

  /**
   * One model of the service.
   *
   * @param name the name clients call it by
   * @param dir its directory (model.yaml plus version folders)
   * @param versions the versions it bundles, lowest first
   * @param modelYaml the model.yaml the service runs it with: the model's own file with the
   *     service's overrides ({@code instances}, {@code batching}) applied
   */
  public record ServiceModel(
      String name,
      Path dir,
      List<ModelRepository.Version> versions,
      Map<String, Object> modelYaml) {
    public ServiceModel {
      versions = List.copyOf(versions);
      modelYaml = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(modelYaml));
    }
  }

  /**
   * How the service's server runs: {@code berth serve}'s settings ({@link ServeSettings}, file
   * paths resolved against the berth.yaml's directory), and the Kubernetes Secrets {@code berth
   * deploy} mounts the secret files from.
   *
   * @param settings the values the file gives; the rest keep their defaults
   * @param apiKeys the Secret holding the API keys file, or null
   * @param managementToken the Secret holding the management token, or null
   * @param tls the {@code kubernetes.io/tls} Secret holding the certificate and key (and {@code
   *     ca.crt}, the client CA, when {@code client-ca} is set), or null
   */
  public record Serving(
      ServeSettings settings, SecretRef apiKeys, SecretRef managementToken, SecretRef tls) {
    public static final int DEFAULT_PORT = 8080;
    public static final int DEFAULT_GRPC_PORT = 8081;

    /** Defaults everywhere, no secrets. */
    public static Serving defaults() {
      return new Serving(ServeSettings.none(), null, null, null);
    }

    public int port() {
      return settings.integer(ServeSettings.PORT);
    }

    public int grpcPort() {
      return settings.integer(ServeSettings.GRPC_PORT);
    }

    /** Whether clients reach it over TLS. */
    public boolean tlsEnabled() {
      return settings.isSet(ServeSettings.TLS_CERT) || tls != null;
    }

    /** Whether inference needs an API key. */
    public boolean apiKeysEnabled() {
      return settings.isSet(ServeSettings.API_KEYS) || apiKeys != null;
    }

    /**
     * The settings a container of the service is started with: every value the file gives but the
     * secret files (those are mounted), the model cache's directory (the container has its own) and
     * the address (a container listens on every interface).
     */
    public ServeSettings containerSettings() {
      return settings
          .without(ServeSettings.SECRET_FILES)
          .without(List.of(ServeSettings.MODEL_CACHE)) // a path of this machine's
          .with(ServeSettings.HOST, "0.0.0.0");
    }
  }

  /**
   * A key of a Kubernetes Secret in the service's namespace.
   *
   * @param name the Secret's name
   * @param key the key whose value is the file (for a TLS Secret: null, its keys are {@code
   *     tls.crt}, {@code tls.key} and {@code ca.crt})
   */
  public record SecretRef(String name, String key) {}

  /** How the image carries Java: the base image's own, or a minimal runtime Berth links (jlink). */
  public enum Runtime {
    BASE,
    JLINK;

    public String id() {
      return name().toLowerCase(Locale.ROOT);
    }

    /** Parses {@code base} or {@code jlink}; null when neither. */
    public static Runtime parse(String text) {
      for (Runtime r : values()) {
        if (r.id().equalsIgnoreCase(text.trim())) {
          return r;
        }
      }
      return null;
    }
  }

  /**
   * How the image is built.
   *
   * @param base the base image: a registry reference, {@code docker://name:tag} or {@code tar:PATH}
   * @param to where the image goes: a registry reference, {@code docker://name:tag} or {@code
   *     tar:PATH}
   * @param tags more tags for the same image
   * @param platform os/arch, linux/amd64 or linux/arm64
   * @param runtime the base image's Java, or a jlink runtime Berth brings
   * @param user the numeric uid:gid the server runs as (never root)
   * @param labels extra image labels
   * @param jvmOptions extra JVM options for the server
   * @param classDataSharing with a jlink runtime, whether the image carries a class-data sharing
   *     archive of Berth's classes (faster start)
   * @param signKey the private key {@code berth build} signs a pushed image with (absolute), or
   *     null for none
   * @param requireSigned whether {@code berth run} and {@code berth deploy} start or apply the
   *     image only once a signature by a {@code trust} key verifies
   * @param trust the public keys whose image signatures are trusted (absolute)
   */
  public record Image(
      String base,
      String to,
      List<String> tags,
      String platform,
      Runtime runtime,
      String user,
      Map<String, String> labels,
      List<String> jvmOptions,
      boolean classDataSharing,
      Path signKey,
      boolean requireSigned,
      List<Path> trust) {
    /** A public Java 21 runtime image (Eclipse Temurin's JRE). */
    public static final String DEFAULT_BASE = "eclipse-temurin:21-jre";

    public static final String DEFAULT_USER = "65532:65532";
    public static final String DEFAULT_PLATFORM = "linux/amd64";

    public Image {
      tags = List.copyOf(tags);
      labels = java.util.Collections.unmodifiableMap(new TreeMap<>(labels));
      jvmOptions = List.copyOf(jvmOptions);
      trust = List.copyOf(trust);
    }
  }

  /**
   * How the service runs on Kubernetes.
   *
   * @param namespace the namespace, or null for the kubeconfig context's
   * @param replicas pods when autoscaling is off, and the starting count
   * @param requests resource requests (cpu, memory)
   * @param limits resource limits (cpu, memory)
   * @param gpus NVIDIA GPUs per pod (0 for none)
   * @param autoscaling the HorizontalPodAutoscaler's settings
   * @param serviceType ClusterIP or LoadBalancer
   * @param allowFromNamespaces namespaces whose pods may call the service (empty: its own)
   * @param allowFromPodLabels pod labels allowed to call the service (empty: any pod of the allowed
   *     namespaces)
   * @param gateway the Gateway API gateway that routes to the service, or null for none
   * @param modelFetch how pods get the service's remote models
   */
  public record Deploy(
      String namespace,
      int replicas,
      Map<String, String> requests,
      Map<String, String> limits,
      int gpus,
      Autoscaling autoscaling,
      String serviceType,
      List<String> allowFromNamespaces,
      Map<String, String> allowFromPodLabels,
      Gateway gateway,
      ModelFetch modelFetch) {
    public Deploy {
      requests = java.util.Collections.unmodifiableMap(new TreeMap<>(requests));
      limits = java.util.Collections.unmodifiableMap(new TreeMap<>(limits));
      allowFromNamespaces = List.copyOf(allowFromNamespaces);
      allowFromPodLabels = java.util.Collections.unmodifiableMap(new TreeMap<>(allowFromPodLabels));
    }
  }

  /**
   * How a pod gets the service's remote models ({@code deploy.model-cache}, {@code
   * deploy.model-credentials}, {@code deploy.oci-models}).
   *
   * @param cacheClaim a PersistentVolumeClaim the model cache lives on (ReadWriteMany: every pod
   *     shares one cache), or null for a cache of the pod's own (an emptyDir)
   * @param cacheSize the emptyDir's size limit (a Kubernetes quantity), or null for none
   * @param registrySecret a {@code kubernetes.io/dockerconfigjson} Secret with the credentials of
   *     the registries {@code oci://} models come from, or null
   * @param s3Secret a Secret whose keys become the pod's environment ({@code AWS_ACCESS_KEY_ID},
   *     {@code AWS_SECRET_ACCESS_KEY}, optionally {@code AWS_SESSION_TOKEN}, {@code AWS_REGION}),
   *     or null
   * @param imageVolumes whether {@code oci://} models are mounted as image volumes (Kubernetes'
   *     ImageVolume, as KServe's Modelcar does) rather than downloaded by the server
   */
  public record ModelFetch(
      String cacheClaim,
      String cacheSize,
      String registrySecret,
      String s3Secret,
      boolean imageVolumes) {
    /** Where a container keeps its model cache. */
    public static final String CACHE_PATH = "/var/cache/berth/models";

    /** Where an image volume holding model NAME is mounted. */
    public static final String MOUNTS = "/opt/berth/mounted";

    /** Each pod downloads into a cache of its own, with no credentials. */
    public static ModelFetch defaults() {
      return new ModelFetch(null, null, null, null, false);
    }
  }

  /**
   * A Gateway API gateway (gateway.networking.k8s.io/v1) whose HTTPRoute sends REST requests to the
   * service, and splits them by weight between the stable version and a canary.
   *
   * @param name the Gateway's name
   * @param namespace the Gateway's namespace, or null for the service's
   * @param hostnames host names the route answers (empty: every host of the gateway's listeners)
   */
  public record Gateway(String name, String namespace, List<String> hostnames) {
    public Gateway {
      hostnames = List.copyOf(hostnames);
    }

    /**
     * A gateway named {@code NAME} or {@code NAME/NAMESPACE}, answering every host.
     *
     * @throws IllegalArgumentException naming what is wrong
     */
    public static Gateway parse(String ref) {
      String[] parts = ref.split("/", -1);
      if (parts.length > 2) {
        throw new IllegalArgumentException(
            "a gateway is NAME or NAME/NAMESPACE, not '" + ref + "'");
      }
      for (String part : parts) {
        if (!DNS_LABEL.matcher(part).matches()) {
          throw new IllegalArgumentException(
              "'" + part + "' in gateway '" + ref + "' is not a valid Kubernetes name");
        }
      }
      return new Gateway(parts[0], parts.length > 1 ? parts[1] : null, List.of());
    }
  }

  /**
   * HorizontalPodAutoscaler settings.
   *
   * @param enabled whether an HPA is made
   * @param minReplicas lowest replica count
   * @param maxReplicas highest replica count
   * @param targetCpuUtilization average CPU use (percent of requests) to hold
   * @param targetInflightPerPod in-flight requests per pod to hold (needs the Prometheus adapter),
   *     0 for none
   */
  public record Autoscaling(
      boolean enabled,
      int minReplicas,
      int maxReplicas,
      int targetCpuUtilization,
      int targetInflightPerPod) {}

  /**
   * Writes the service's models into {@code repo} as a model repository, as its image holds them:
   * each model's model.yaml with the service's overrides, and its bundled versions linked (not
   * copied) from their directories.
   *
   * @return {@code repo}
   */
  public Path writeRepository(Path repo) throws java.io.IOException {
    Files.createDirectories(repo);
    for (ServiceModel model : models) {
      Path dir = Files.createDirectories(repo.resolve(model.name()));
      writeYaml(dir.resolve(ModelConfig.FILE_NAME), model.modelYaml());
      for (ModelRepository.Version v : model.versions()) {
        Files.createSymbolicLink(dir.resolve(v.label()), v.dir().toAbsolutePath());
      }
    }
    return repo;
  }

  /**
   * The service file a server of this service reads beside a repository {@link #writeRepository}
   * wrote into its {@code models} folder (and an image's {@code /opt/berth/models}): the bundled
   * models by that path (their model.yaml already holds the service's overrides), the remote ones
   * by source with their overrides, and no serving settings (those go on the command line).
   */
  public Map<String, Object> servedFile() {
    Map<String, Object> file = new LinkedHashMap<>();
    file.put("apiVersion", ModelConfig.API_VERSION);
    file.put("kind", KIND);
    file.put("name", name);
    List<Map<String, Object>> entries = new ArrayList<>();
    for (ServiceModel model : models) {
      entries.add(Map.of("path", "models/" + model.name()));
    }
    for (RemoteModel model : remoteModels) {
      Map<String, Object> entry = new LinkedHashMap<>();
      entry.put("source", model.source());
      entry.put("name", model.name());
      if (model.engine() != null) {
        entry.put("engine", model.engine());
      }
      entry.putAll(model.overrides());
      entries.add(entry);
    }
    file.put("models", entries);
    return file;
  }

  /** Writes a model.yaml (or any settings map) as YAML, without a document marker. */
  public static void writeYaml(Path file, Map<String, ?> values) throws java.io.IOException {
    com.fasterxml.jackson.databind.ObjectMapper yaml =
        new com.fasterxml.jackson.databind.ObjectMapper(
            new com.fasterxml.jackson.dataformat.yaml.YAMLFactory()
                .disable(
                    com.fasterxml.jackson.dataformat.yaml.YAMLGenerator.Feature
                        .WRITE_DOC_START_MARKER)
                .enable(
                    com.fasterxml.jackson.dataformat.yaml.YAMLGenerator.Feature.MINIMIZE_QUOTES));
    Files.write(file, yaml.writeValueAsBytes(values));
  }

  /**
   * Refuses to serve from this machine a secret the file names only as a Kubernetes Secret: serving
   * without it would leave the service open.
   *
   * @param settings the settings it serves with (an option may give the file)
   * @param command what serves, for the message ({@code berth serve}, {@code berth run})
   * @throws ConfigException naming the key and the fix
   */
  public void requireSecretFiles(ServeSettings settings, String command) {
    requireFile(serving.apiKeys(), settings, ServeSettings.API_KEYS, "api-keys", ".file", command);
    requireFile(
        serving.managementToken(),
        settings,
        ServeSettings.MANAGEMENT_TOKEN_FILE,
        "management-token",
        ".file",
        command);
    requireFile(serving.tls(), settings, ServeSettings.TLS_CERT, "tls", ".cert and .key", command);
  }

  private void requireFile(
      SecretRef secret,
      ServeSettings settings,
      ServeSettings.Setting setting,
      String key,
      String fileKeys,
      String command) {
    if (secret != null && !settings.isSet(setting)) {
      throw new ConfigException(
          file,
          "serving." + key,
          "names only the Kubernetes Secret '"
              + secret.name()
              + "', which berth deploy mounts; "
              + command
              + " reads files: give serving."
              + key
              + fileKeys
              + " too (or "
              + setting.option()
              + ")");
    }
  }

  /** Deletes a directory tree written by {@link #writeRepository}, links and all (best effort). */
  public static void deleteTree(Path dir) {
    try (var paths = Files.walk(dir)) {
      paths
          .sorted(java.util.Comparator.reverseOrder())
          .forEach(
              p -> {
                try {
                  Files.deleteIfExists(p);
                } catch (java.io.IOException e) {
                  // best effort: a temporary directory
                }
              });
    } catch (java.io.IOException | java.io.UncheckedIOException e) {
      // best effort
    }
  }

  /**
   * A service of no models, only an image's settings: what the image builder reads to build an
   * image that is not a model service's (a training job's trainer).
   */
  public static ServiceSpec imageOnly(Path file, String name, Image image) {
    return new ServiceSpec(
        file,
        name,
        "",
        List.of(),
        List.of(),
        Serving.defaults(),
        image,
        new Deploy(
            null,
            1,
            Map.of(),
            Map.of(),
            0,
            new Autoscaling(false, 1, 1, 70, 0),
            "ClusterIP",
            List.of(),
            Map.of(),
            null,
            ModelFetch.defaults()));
  }

  /** Reads and validates a berth.yaml. */
  public static ServiceSpec load(Path file) {
    Path abs = file.toAbsolutePath().normalize();
    if (Files.isDirectory(abs)) {
      abs = abs.resolve(FILE_NAME);
    }
    return parse(ConfigReader.readDocument(abs, KIND, "a berth.yaml"));
  }

  static ServiceSpec parse(ConfigReader root) {
    root.allowOnly(
        Set.of(
            "apiVersion",
            "kind",
            "name",
            "description",
            "models",
            "repository",
            "serving",
            "image",
            "deploy"));
    root.requireHeader(ModelConfig.API_VERSION, KIND, "a service file");
    String name = root.requiredString("name", "name the service, e.g. 'name: minilm'");
    if (!DNS_LABEL.matcher(name).matches()) {
      throw root.error(
          "name",
          "'"
              + name
              + "' is not a DNS label; use lower-case letters, digits and '-', at most 63,"
              + " e.g. 'sentence-embedder'");
    }
    Path base = root.file().getParent();
    List<RemoteModel> remote = new ArrayList<>();
    List<ServiceModel> models = models(root, base, remote);
    return new ServiceSpec(
        root.file(),
        name,
        root.string("description", ""),
        models,
        remote,
        serving(root.section("serving"), base),
        image(root.section("image"), name, base),
        deploy(root.section("deploy")));
  }

  private static List<ServiceModel> models(ConfigReader root, Path base, List<RemoteModel> remote) {
    List<ServiceModel> out = new ArrayList<>();
    if (root.has("repository")) {
      Path repo = base.resolve(root.string("repository", "")).normalize();
      if (!Files.isDirectory(repo)) {
        throw root.error(
            "repository",
            repo + " is not a directory; give a model repository (<model>/<version>/...)");
      }
      for (ModelRepository.ModelSource source : new ModelRepository(repo).scan()) {
        if (source.configError() != null) {
          throw source.configError();
        }
        out.add(model(root, "repository", source.name(), source.dir(), null, null, Map.of()));
      }
    }
    List<ConfigReader> entries = root.sections("models");
    for (ConfigReader m : entries) {
      if (m.has("source")) {
        remote.add(remoteModel(m));
        continue;
      }
      m.allowOnly(Set.of("path", "name", "versions", "instances", "batching", "options", "llm"));
      String path =
          m.requiredString(
              "path",
              "give the model's directory (path: models/minilm) or where it is kept (source:"
                  + " oci://REGISTRY/REPOSITORY:TAG, s3://BUCKET/PREFIX or https://.../NAME.onnx)");
      Path dir = base.resolve(path).normalize();
      if (!Files.isDirectory(dir)) {
        throw m.error(
            "path",
            dir
                + " is not a directory; give a model directory holding model.yaml and version"
                + " folders (1/, 2/, ...)");
      }
      String name = m.string("name", dir.getFileName().toString());
      if (!ModelRepository.isValidModelName(name)) {
        throw m.error("name", "'" + name + "' is not a valid model name (letters, digits, . _ -)");
      }
      Map<String, Object> overrides = overrides(m);
      long[] versions = m.has("versions") ? m.longs("versions") : null;
      out.add(model(root, m.keyName("path"), name, dir, versions, m, overrides));
    }
    if (out.isEmpty() && remote.isEmpty()) {
      throw root.error(
          "models",
          "the service has no models; add 'models: [{path: models/minilm}]' or"
              + " 'repository: models'");
    }
    Set<String> names = new LinkedHashSet<>();
    List<String> all = new ArrayList<>();
    out.forEach(m -> all.add(m.name()));
    remote.forEach(m -> all.add(m.name()));
    for (String model : all) {
      if (!names.add(model)) {
        throw root.error(
            "models", "model '" + model + "' appears twice; give each a distinct name");
      }
    }
    return out;
  }

  /** The model.yaml keys a models entry sets over the model's own. */
  private static Map<String, Object> overrides(ConfigReader m) {
    Map<String, Object> overrides = new LinkedHashMap<>();
    if (m.has("instances")) {
      overrides.put("instances", m.integer("instances", 1, 1, 64));
    }
    if (m.has("batching")) {
      ConfigReader b = m.section("batching");
      b.allowOnly(Set.of("enabled", "max-batch-size", "max-queue-delay", "max-queue-size"));
      overrides.put("batching", b.values());
    }
    if (m.has("options")) {
      // the engine's options, checked by the engine when it loads, as model.yaml's are
      overrides.put("options", m.section("options").values());
    }
    if (m.has("llm")) {
      // a language model's keys, checked with the merged model.yaml
      overrides.put("llm", m.section("llm").values());
    }
    return overrides;
  }

  private static RemoteModel remoteModel(ConfigReader m) {
    if (m.has("path")) {
      throw m.error(
          "source",
          "and path both given; a model comes from a directory (path) or a store (source)");
    }
    if (m.has("versions")) {
      throw m.error(
          "versions",
          "applies to a model directory (path); a source serves the versions it holds: push only"
              + " those (berth push MODEL_DIR oci://...), or pin a tag or digest");
    }
    m.allowOnly(Set.of("source", "name", "engine", "instances", "batching", "options", "llm"));
    String source = m.requiredString("source", "give where the model is kept");
    if (!RemoteModel.isRemote(source)) {
      throw m.error(
          "source",
          "'"
              + source
              + "' is not a model store; give oci://REGISTRY/REPOSITORY[:TAG], s3://BUCKET/PREFIX"
              + " or https://.../NAME.onnx (for a directory, write path: instead)");
    }
    String name = m.string("name", RemoteModel.defaultName(source));
    if (name == null || !ModelRepository.isValidModelName(name)) {
      throw m.error(
          "name",
          (name == null
                  ? "is missing: " + source + " names no model"
                  : "'" + name + "' is not a valid model name")
              + "; give one (letters, digits, . _ -), e.g. name: minilm");
    }
    String engine = m.string("engine", null);
    if (engine != null && !RemoteModel.ENGINES.contains(engine)) {
      throw m.error(
          "engine", "'" + engine + "' is not an engine; name one of " + RemoteModel.ENGINES);
    }
    if (source.startsWith("http")) {
      String path = source.replaceFirst("[?#].*$", "");
      String extension = path.substring(path.lastIndexOf('.') + 1).toLowerCase(Locale.ROOT);
      if (path.lastIndexOf('.') < path.lastIndexOf('/')
          || !RemoteModel.FILE_EXTENSIONS.contains(extension)) {
        throw m.error(
            "source",
            "'"
                + RemoteModel.shownOf(source)
                + "' does not name a model file; give the URL of one ending in "
                + RemoteModel.FILE_EXTENSIONS.stream().map(e -> "." + e).toList());
      }
    }
    Map<String, Object> overrides = overrides(m);
    // the overrides must still make a valid model.yaml
    Map<String, Object> check = new LinkedHashMap<>();
    check.put("apiVersion", ModelConfig.API_VERSION);
    check.put("kind", ModelConfig.KIND);
    if (engine != null) {
      check.put("engine", engine);
    }
    check.putAll(overrides);
    // read as the entry's keys, so that a problem names models[i].batching...
    String entry = m.keyName("x");
    ModelConfig.parse(new ConfigReader(m.file(), entry.substring(0, entry.length() - 2), check));
    return new RemoteModel(name, source, engine, overrides);
  }

  /**
   * A remote model's model.yaml with a service's overrides set over it (the model's own file as the
   * source holds it, or the defaults when it has none).
   *
   * @param modelDir the model's directory as fetched
   */
  public static Map<String, Object> modelYamlWith(Path modelDir, Map<String, Object> overrides) {
    return modelYaml(modelDir, overrides);
  }

  private static ServiceModel model(
      ConfigReader root,
      String where,
      String name,
      Path dir,
      long[] wanted,
      ConfigReader entry,
      Map<String, Object> overrides) {
    List<ModelRepository.Version> all =
        new ModelRepository(dir.getParent())
            .scan().stream()
                .filter(s -> s.dir().equals(dir))
                .findFirst()
                .map(ModelRepository.ModelSource::versions)
                .orElse(List.of());
    List<ModelRepository.Version> versions = new ArrayList<>();
    if (wanted == null) {
      versions.addAll(all);
    } else {
      for (long v : wanted) {
        all.stream()
            .filter(x -> x.number() == v)
            .findFirst()
            .ifPresentOrElse(
                versions::add,
                () -> {
                  throw entry.error(
                      "versions",
                      "version "
                          + v
                          + " of "
                          + dir
                          + " does not exist; it has "
                          + (all.isEmpty()
                              ? "no version folders"
                              : all.stream().map(ModelRepository.Version::label).toList()));
                });
      }
    }
    if (versions.isEmpty()) {
      throw root.error(
          where, dir + " has no version folders; put the model file in " + dir.resolve("1") + "/");
    }
    Map<String, Object> modelYaml = modelYaml(dir, overrides);
    // The merged file must still be a valid model.yaml.
    ModelConfig.parse(ConfigReader.root(dir.resolve(ModelConfig.FILE_NAME), modelYaml));
    return new ServiceModel(name, dir, versions, modelYaml);
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Object> modelYaml(Path dir, Map<String, Object> overrides) {
    Path file = dir.resolve(ModelConfig.FILE_NAME);
    Map<String, Object> map = new LinkedHashMap<>();
    if (Files.exists(file)) {
      ModelConfig.load(dir); // validates, with the model file's own messages
      ConfigReader own = ConfigReader.readYaml(file, "of model settings");
      if (own != null) {
        map.putAll(own.values());
      }
    } else {
      map.put("apiVersion", ModelConfig.API_VERSION);
      map.put("kind", ModelConfig.KIND);
    }
    for (Map.Entry<String, Object> o : overrides.entrySet()) {
      if (o.getValue() instanceof Map<?, ?> section
          && map.get(o.getKey()) instanceof Map<?, ?> old) {
        Map<String, Object> merged = new LinkedHashMap<>((Map<String, Object>) old);
        merged.putAll((Map<String, Object>) section);
        map.put(o.getKey(), merged);
      } else {
        map.put(o.getKey(), o.getValue());
      }
    }
    // the gate's files are the model directory's: the merged file, written elsewhere (a staged
    // repository), names them by their absolute paths
    if (map.get(ModelGate.KEY) instanceof Map<?, ?> gate) {
      Map<String, Object> absolute = new LinkedHashMap<>((Map<String, Object>) gate);
      for (String key : List.of("data", "data-labels")) {
        if (absolute.get(key) instanceof String path) {
          absolute.put(key, dir.toAbsolutePath().resolve(path).normalize().toString());
        }
      }
      map.put(ModelGate.KEY, absolute);
    }
    return map;
  }

  /**
   * The {@code serving:} section: every {@code berth serve} setting by its name, and the secret
   * files in their own shapes, each a local file (for {@code berth serve} and {@code berth run})
   * and/or a Kubernetes Secret (for {@code berth deploy}):
   *
   * <pre>{@code
   * api-keys: {file: keys.yaml, secret: {name: minilm-keys, key: keys.yaml}}
   * management-token: {file: token.txt, secret: {name: minilm-mgmt, key: token}}
   * tls: {cert: tls.crt, key: tls.key, client-ca: ca.pem, secret: {name: minilm-tls}}
   * }</pre>
   */
  private static Serving serving(ConfigReader s, Path base) {
    java.util.Set<String> known = new java.util.TreeSet<>();
    for (ServeSettings.Setting setting : ServeSettings.ALL) {
      if (!setting.secret() && !setting.name().startsWith("tls-")) {
        known.add(setting.name());
      }
    }
    known.add("tls");
    known.add("management-token");
    s.allowOnly(known);
    Map<ServeSettings.Setting, String> values = new LinkedHashMap<>();
    for (ServeSettings.Setting setting : ServeSettings.ALL) {
      String key = setting.name();
      if (!known.contains(key)
          || !s.has(key)
          || key.equals("api-keys")
          || key.equals("management-token")) {
        continue;
      }
      String value = setting.repeatable() ? String.join(",", s.strings(key)) : s.string(key, null);
      if (setting.type() == ServeSettings.Type.FILE) {
        value = files(base, value);
      }
      values.put(setting, value);
    }
    SecretRef apiKeys = null;
    if (s.has("api-keys")) {
      ConfigReader keys = fileOrSecret(s, "api-keys", true);
      if (keys == null) {
        values.put(ServeSettings.API_KEYS, files(base, s.string("api-keys", null)));
      } else {
        if (keys.has("file")) {
          values.put(ServeSettings.API_KEYS, files(base, keys.string("file", null)));
        }
        apiKeys = secret(keys, true);
      }
    }
    SecretRef token = null;
    if (s.has("management-token")) {
      ConfigReader t = fileOrSecret(s, "management-token", false);
      if (t.has("file")) {
        values.put(ServeSettings.MANAGEMENT_TOKEN_FILE, files(base, t.string("file", null)));
      }
      token = secret(t, true);
    }
    SecretRef tls = null;
    if (s.has("tls")) {
      ConfigReader t = s.section("tls");
      t.allowOnly(Set.of("cert", "key", "client-ca", "secret"));
      if (t.has("cert") != t.has("key")) {
        throw t.error(
            t.has("cert") ? "key" : "cert",
            "is missing; give both cert and key (PEM files), or only a secret for berth deploy");
      }
      if (t.has("cert")) {
        values.put(ServeSettings.TLS_CERT, files(base, t.string("cert", null)));
        values.put(ServeSettings.TLS_KEY, files(base, t.string("key", null)));
      }
      if (t.has("client-ca")) {
        values.put(ServeSettings.TLS_CLIENT_CA, files(base, t.string("client-ca", null)));
      }
      tls = secret(t, false);
      if (tls == null && !t.has("cert")) {
        throw t.error(
            null,
            "needs cert and key (files, for berth serve and berth run) and/or secret: {name: ...}"
                + " (a kubernetes.io/tls Secret, for berth deploy)");
      }
    }
    ServeSettings settings;
    try {
      settings = ServeSettings.of(values);
    } catch (ServeSettings.InvalidValue e) {
      throw s.error(key(e.setting()), e.problem());
    }
    for (ServeSettings.Setting port : List.of(ServeSettings.PORT, ServeSettings.GRPC_PORT)) {
      if (settings.integer(port) == 0) {
        throw s.error(port.name(), "must be a port from 1 to 65535 (a service's ports are fixed)");
      }
    }
    if (settings.integer(ServeSettings.PORT) == settings.integer(ServeSettings.GRPC_PORT)) {
      throw s.error(
          "grpc-port", "must differ from port (" + settings.text(ServeSettings.PORT) + ")");
    }
    return new Serving(settings, apiKeys, token, tls);
  }

  /** The key under {@code serving:} that gives a setting: {@code tls-cert} is {@code tls.cert}. */
  private static String key(ServeSettings.Setting setting) {
    return switch (setting.name()) {
      case "tls-cert" -> "tls.cert";
      case "tls-key" -> "tls.key";
      case "tls-client-ca" -> "tls.client-ca";
      case "management-token-file" -> "management-token.file";
      default -> setting.name();
    };
  }

  /** Paths (comma-separated for a list) resolved against the berth.yaml's directory. */
  private static String files(Path base, String value) {
    List<String> out = new ArrayList<>();
    for (String part : value.split(",")) {
      if (!part.isBlank()) {
        out.add(base.resolve(part.trim()).normalize().toString());
      }
    }
    return String.join(",", out);
  }

  /**
   * A secret file's section ({@code file} and/or {@code secret}); null for a plain path, where
   * {@code plainAllowed}.
   */
  private static ConfigReader fileOrSecret(ConfigReader s, String key, boolean plainAllowed) {
    if (s.isSection(key)) {
      ConfigReader r = s.section(key);
      r.allowOnly(Set.of("file", "secret"));
      if (!r.has("file") && !r.has("secret")) {
        throw r.error(
            null,
            "needs file: (for berth serve and berth run) and/or secret: {name, key} (for berth"
                + " deploy)");
      }
      return r;
    }
    if (!plainAllowed) {
      throw s.error(
          key,
          "must not hold the secret itself ('"
              + key
              + ": {file: token.txt}' reads it from a file; 'secret: {name, key}' from a Kubernetes"
              + " Secret)");
    }
    return null;
  }

  /** The section's {@code secret: {name, key}}, or null when it has none. */
  private static SecretRef secret(ConfigReader section, boolean needsKey) {
    if (!section.has("secret")) {
      return null;
    }
    ConfigReader secret = section.section("secret");
    secret.allowOnly(needsKey ? Set.of("name", "key") : Set.of("name"));
    String name = secret.requiredString("name", "name the Kubernetes Secret");
    if (!SECRET_NAME.matcher(name).matches()) {
      throw secret.error("name", "'" + name + "' is not a valid Kubernetes Secret name");
    }
    String key = null;
    if (needsKey) {
      key = secret.requiredString("key", "name the Secret's key that holds the file");
      if (!key.matches("[-._a-zA-Z0-9]+")) {
        throw secret.error("key", "'" + key + "' is not a valid Secret key");
      }
    }
    return new SecretRef(name, key);
  }

  private static Image image(ConfigReader i, String name, Path base) {
    i.allowOnly(
        Set.of(
            "base",
            "to",
            "tags",
            "platform",
            "runtime",
            "user",
            "labels",
            "jvm-options",
            "class-data-sharing",
            "sign-key",
            "require-signed",
            "trust"));
    String runtimeText = i.string("runtime", "base");
    Runtime runtime = Runtime.parse(runtimeText);
    if (runtime == null) {
      throw i.error(
          "runtime",
          "must be 'base' (the base image's Java) or 'jlink' (Berth brings its own), found '"
              + runtimeText
              + "'");
    }
    String platform = i.string("platform", Image.DEFAULT_PLATFORM);
    if (!PLATFORM.matcher(platform).matches()) {
      throw i.error("platform", "must be linux/amd64 or linux/arm64, found '" + platform + "'");
    }
    String user = i.string("user", Image.DEFAULT_USER);
    if (!user.matches("\\d+(:\\d+)?") || user.equals("0") || user.startsWith("0:")) {
      throw i.error(
          "user", "must be a numeric non-root uid[:gid] such as 65532:65532, found '" + user + "'");
    }
    return new Image(
        i.string("base", Image.DEFAULT_BASE),
        i.string("to", "berth/" + name + ":latest"),
        strings(i, "tags"),
        platform,
        runtime,
        user,
        stringMap(i.section("labels")),
        strings(i, "jvm-options"),
        i.bool("class-data-sharing", true),
        i.has("sign-key") ? base.resolve(i.string("sign-key", "")).normalize() : null,
        i.bool("require-signed", false),
        strings(i, "trust").stream().map(k -> base.resolve(k).normalize()).toList());
  }

  private static Deploy deploy(ConfigReader d) {
    d.allowOnly(
        Set.of(
            "namespace",
            "replicas",
            "resources",
            "gpus",
            "autoscaling",
            "service-type",
            "allow-from-namespaces",
            "allow-from-pod-labels",
            "gateway",
            "model-cache",
            "model-credentials",
            "oci-models"));
    String namespace = d.string("namespace", null);
    if (namespace != null && !DNS_LABEL.matcher(namespace).matches()) {
      throw d.error("namespace", "'" + namespace + "' is not a valid namespace name (a DNS label)");
    }
    ConfigReader resources = d.section("resources");
    resources.allowOnly(Set.of("requests", "limits"));
    Map<String, String> requests = quantities(resources.section("requests"));
    Map<String, String> limits = quantities(resources.section("limits"));
    ConfigReader a = d.section("autoscaling");
    a.allowOnly(
        Set.of(
            "enabled",
            "min-replicas",
            "max-replicas",
            "target-cpu-utilization",
            "target-inflight-per-pod"));
    int replicas = d.integer("replicas", 2, 0, 1000);
    Autoscaling autoscaling =
        new Autoscaling(
            a.bool("enabled", true),
            a.integer("min-replicas", Math.max(1, replicas), 1, 1000),
            a.integer("max-replicas", Math.max(10, replicas), 1, 1000),
            a.integer("target-cpu-utilization", 70, 0, 100),
            a.integer("target-inflight-per-pod", 0, 0, 100_000));
    if (autoscaling.targetCpuUtilization() == 0 && autoscaling.targetInflightPerPod() == 0) {
      // 0 leaves CPU out (a language model keeps its CPUs busy from the first request)
      throw a.error(
          "target-cpu-utilization",
          "0 scales on requests in flight alone: set target-inflight-per-pod too, or a CPU"
              + " target from 1 to 100");
    }
    if (autoscaling.maxReplicas() < autoscaling.minReplicas()) {
      throw a.error(
          "max-replicas", "must be at least min-replicas (" + autoscaling.minReplicas() + ")");
    }
    String serviceType = d.string("service-type", "ClusterIP");
    if (!serviceType.equals("ClusterIP") && !serviceType.equals("LoadBalancer")) {
      throw d.error(
          "service-type", "must be ClusterIP or LoadBalancer, found '" + serviceType + "'");
    }
    return new Deploy(
        namespace,
        replicas,
        requests,
        limits,
        d.integer("gpus", 0, 0, 16),
        autoscaling,
        serviceType,
        strings(d, "allow-from-namespaces"),
        stringMap(d.section("allow-from-pod-labels")),
        gateway(d.section("gateway")),
        modelFetch(d));
  }

  private static ModelFetch modelFetch(ConfigReader d) {
    ConfigReader cache = d.section("model-cache");
    cache.allowOnly(Set.of("claim", "size"));
    String claim = secretName(cache, "claim");
    String size = cache.string("size", null);
    if (size != null && !CACHE_SIZE.matcher(size).matches()) {
      throw cache.error(
          "size",
          "'"
              + size
              + "' is not a size for a model cache; give a whole number with a unit, e.g. size:"
              + " 20Gi or 500M");
    }
    if (size != null && claim != null) {
      throw cache.error(
          "size", "sizes the pod's own cache (an emptyDir); a claim's size is the claim's own");
    }
    ConfigReader credentials = d.section("model-credentials");
    credentials.allowOnly(Set.of("registry", "s3"));
    String mode = d.string("oci-models", "download");
    if (!mode.equals("download") && !mode.equals("image-volume")) {
      throw d.error(
          "oci-models",
          "must be 'download' (the server pulls them into its cache) or 'image-volume' (the"
              + " kubelet mounts them; Kubernetes 1.31+ with the ImageVolume feature), found '"
              + mode
              + "'");
    }
    return new ModelFetch(
        claim,
        size,
        secretName(credentials, "registry"),
        secretName(credentials, "s3"),
        mode.equals("image-volume"));
  }

  private static String secretName(ConfigReader section, String key) {
    String name = section.string(key, null);
    if (name != null && !SECRET_NAME.matcher(name).matches()) {
      throw section.error(key, "'" + name + "' is not a valid Kubernetes object name");
    }
    return name;
  }

  private static Gateway gateway(ConfigReader g) {
    g.allowOnly(Set.of("name", "namespace", "hostnames"));
    String name = g.string("name", null);
    String namespace = g.string("namespace", null);
    List<String> hostnames = strings(g, "hostnames");
    if (name == null) {
      if (namespace != null || !hostnames.isEmpty()) {
        throw g.error("name", "is missing: name the Gateway whose HTTPRoute sends requests here");
      }
      return null;
    }
    for (String[] field : new String[][] {{"name", name}, {"namespace", namespace}}) {
      if (field[1] != null && !DNS_LABEL.matcher(field[1]).matches()) {
        throw g.error(field[0], "'" + field[1] + "' is not a valid Kubernetes name");
      }
    }
    for (String host : hostnames) {
      if (!HOSTNAME.matcher(host).matches()) {
        throw g.error(
            "hostnames",
            "'" + host + "' is not a host name (like models.example.com or *.example.com)");
      }
    }
    return new Gateway(name, namespace, hostnames);
  }

  private static Map<String, String> quantities(ConfigReader section) {
    section.allowOnly(Set.of("cpu", "memory"));
    Map<String, String> out = new TreeMap<>();
    for (String key : List.of("cpu", "memory")) {
      String value = section.string(key, null);
      if (value == null) {
        continue;
      }
      if (!QUANTITY.matcher(value).matches()) {
        throw section.error(
            key, "'" + value + "' is not a Kubernetes quantity; e.g. cpu: 500m or 2, memory: 1Gi");
      }
      out.put(key, value);
    }
    return out;
  }

  private static List<String> strings(ConfigReader r, String key) {
    return r.strings(key);
  }

  private static Map<String, String> stringMap(ConfigReader section) {
    Map<String, String> out = new TreeMap<>();
    for (String key : section.values().keySet()) {
      out.put(key, section.string(key, ""));
    }
    return out;
  }
}
