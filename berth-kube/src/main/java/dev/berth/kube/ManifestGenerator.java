package dev.berth.kube;

import static java.nio.charset.StandardCharsets.UTF_8;

import dev.berth.runtime.ServeSettings;
import dev.berth.runtime.ServiceSpec;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.ConfigMapEnvSource;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerBuilder;
import io.fabric8.kubernetes.api.model.EnvFromSourceBuilder;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.IntOrString;
import io.fabric8.kubernetes.api.model.LabelSelector;
import io.fabric8.kubernetes.api.model.LabelSelectorBuilder;
import io.fabric8.kubernetes.api.model.ObjectMeta;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.Probe;
import io.fabric8.kubernetes.api.model.ProbeBuilder;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.ServiceAccount;
import io.fabric8.kubernetes.api.model.ServiceAccountBuilder;
import io.fabric8.kubernetes.api.model.ServiceBuilder;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.DeploymentBuilder;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscalerBuilder;
import io.fabric8.kubernetes.api.model.autoscaling.v2.MetricSpec;
import io.fabric8.kubernetes.api.model.autoscaling.v2.MetricSpecBuilder;
import io.fabric8.kubernetes.api.model.gatewayapi.v1.HTTPBackendRef;
import io.fabric8.kubernetes.api.model.gatewayapi.v1.HTTPBackendRefBuilder;
import io.fabric8.kubernetes.api.model.gatewayapi.v1.HTTPRoute;
import io.fabric8.kubernetes.api.model.gatewayapi.v1.HTTPRouteBuilder;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicyBuilder;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicyPeer;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicyPeerBuilder;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudget;
import io.fabric8.kubernetes.api.model.policy.v1.PodDisruptionBudgetBuilder;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

/**
 * The Kubernetes objects of a model service: ServiceAccount, ConfigMap, Deployment, Service,
 * HorizontalPodAutoscaler, PodDisruptionBudget and NetworkPolicy, in the order they are applied.
 * Pods meet the restricted Pod Security Standard (non-root, read-only root file system with an
 * emptyDir for /tmp, no capabilities, no privilege escalation, seccomp RuntimeDefault), probe the
 * OIP health endpoints and get a grace period that covers the server's drain. Pods of a service
 * with remote models (from a registry or object store) serve the image's service file and fetch
 * them into a model cache volume, with the registry and S3 credentials the file names; with {@code
 * oci-models: image-volume} the kubelet mounts the {@code oci://} ones instead.
 */
public final class ManifestGenerator {
  /** Seconds the pod keeps serving after it is told to stop, while endpoints stop sending to it. */
  static final int PRE_STOP_SECONDS = 5;

  static final String TMP_VOLUME = "tmp";

  /** Requests of a container whose berth.yaml names none: one CPU, 1 GiB. */
  static final Map<String, String> DEFAULT_REQUESTS = Map.of("cpu", "1", "memory", "1Gi");

  /** Suffix of a canary's Deployment, ConfigMap and (behind a gateway) Service names. */
  public static final String CANARY_SUFFIX = "-canary";

  /** Suffix of the Service a gateway's route sends the stable version's share to. */
  public static final String STABLE_SUFFIX = "-stable";

  /** Deployment annotation: the models and versions the image serves ({@code m:1,2 n:3}). */
  public static final String MODELS_ANNOTATION = "dev.berth/models";

  /** Pod template annotation: digest of the serving config, so a config change rolls the pods. */
  public static final String CONFIG_ANNOTATION = "dev.berth/serving-config";

  public static final String NAME_LABEL = "app.kubernetes.io/name";
  public static final String INSTANCE_LABEL = "app.kubernetes.io/instance";
  public static final String MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
  public static final String PART_OF_LABEL = "app.kubernetes.io/part-of";

  private final ServiceSpec service;
  private final String image;
  private final String namespace;
  private final int canaryReplicas;
  private final int canaryPercent;
  private final ServiceSpec.Gateway gateway;

  /** Whether {@code oci://} models are image volumes, as {@code deploy.oci-models} says. */
  private final boolean imageVolumes;

  /** Remote models something outside the pod spec puts in place, by name: their directories. */
  private final Map<String, String> providedModels;

  private ManifestGenerator(
      ServiceSpec service,
      String image,
      String namespace,
      int canaryReplicas,
      int canaryPercent,
      ServiceSpec.Gateway gateway,
      boolean imageVolumes,
      Map<String, String> providedModels) {
    checkSecrets(service);
    this.service = service;
    this.image = image;
    this.namespace = namespace;
    this.canaryReplicas = canaryReplicas;
    this.canaryPercent = canaryPercent;
    this.gateway = gateway;
    this.imageVolumes = imageVolumes;
    this.providedModels = Map.copyOf(providedModels);
  }

  /**
   * A generator for a service.
   *
   * @param service the service file
   * @param image the image reference pods run (pinned by digest when it is known)
   * @param namespace the namespace, or null for none in the objects (the client's default)
   */
  public static ManifestGenerator of(ServiceSpec service, String image, String namespace) {
    return new ManifestGenerator(
        service,
        image,
        namespace,
        0,
        0,
        service.deploy().gateway(),
        service.deploy().modelFetch().imageVolumes(),
        Map.of());
  }

  /**
   * The canary of this service: its own ConfigMap and Deployment ({@code NAME-canary}, instance
   * label {@code NAME-canary}) whose pods the stable Service selects too, so they take a share of
   * requests in proportion to their number. Behind a gateway, the route also sends it {@code
   * percent}% of the requests that come through the gateway, whatever the replica counts.
   *
   * @param replicas the canary's pods
   * @param percent its share of requests (1-99)
   */
  public ManifestGenerator canary(int replicas, int percent) {
    if (replicas < 1) {
      throw new IllegalArgumentException("a canary runs at least one replica, not " + replicas);
    }
    if (percent < 1 || percent > 99) {
      throw new IllegalArgumentException("a canary takes 1 to 99 percent, not " + percent);
    }
    return new ManifestGenerator(
        service, image, namespace, replicas, percent, gateway, imageVolumes, providedModels);
  }

  /**
   * These objects routed by a Gateway API gateway (instead of berth.yaml's {@code deploy.gateway}):
   * an HTTPRoute {@code NAME} on it sends REST requests to the Service {@code NAME-stable} and, for
   * a canary, the canary's weight to {@code NAME-canary}.
   *
   * @param gateway the gateway, or null for none
   */
  public ManifestGenerator gateway(ServiceSpec.Gateway gateway) {
    ServiceSpec.Gateway g =
        gateway == null || service.deploy().gateway() == null || !gateway.hostnames().isEmpty()
            ? gateway
            // the file's host names stay with the file's gateway given again on the command line
            : new ServiceSpec.Gateway(
                gateway.name(), gateway.namespace(), service.deploy().gateway().hostnames());
    return new ManifestGenerator(
        service, image, namespace, canaryReplicas, canaryPercent, g, imageVolumes, providedModels);
  }

  /**
   * These objects for a pod that KServe runs: the remote model {@code model} (none when null) is
   * put at {@code dir} by KServe's storage initializer, so the server serves it from there, and
   * every other remote model is fetched by the server, {@code oci://} ones included whatever {@code
   * deploy.oci-models} says (Knative, which runs KServe's pods, admits no image volumes).
   */
  ManifestGenerator forKserve(String model, String dir) {
    return new ManifestGenerator(
        service,
        image,
        namespace,
        canaryReplicas,
        canaryPercent,
        gateway,
        false,
        model == null ? Map.of() : Map.of(model, dir));
  }

  /** The gateway whose route sends requests to the service, or null. */
  public ServiceSpec.Gateway gateway() {
    return gateway;
  }

  /** The service's name: its Deployment, Service and the rest are called that. */
  public String name() {
    return service.name();
  }

  /** The namespace the objects name, or null when they leave it to the client. */
  public String namespace() {
    return namespace;
  }

  /** The image pods run. */
  public String image() {
    return image;
  }

  /** Whether these are a canary's objects. */
  public boolean isCanary() {
    return canaryReplicas > 0;
  }

  /** Name of the Deployment (and instance label) these objects run: NAME, or NAME-canary. */
  public String deploymentName() {
    return isCanary() ? service.name() + CANARY_SUFFIX : service.name();
  }

  /**
   * Every object, in apply order. A canary's are its ConfigMap and Deployment, plus behind a
   * gateway the Services the route splits between and the route with its weights.
   */
  public List<HasMetadata> objects() {
    List<HasMetadata> out = new ArrayList<>();
    if (isCanary()) {
      out.add(configMap());
      out.add(deployment());
      if (gateway != null) {
        out.add(routeBackend(service.name() + STABLE_SUFFIX, service.name(), routeLabels()));
        out.add(routeBackend(deploymentName(), deploymentName(), labels()));
        out.add(route());
      }
      return out;
    }
    out.add(serviceAccount());
    out.add(configMap());
    out.add(deployment());
    out.add(kubeService());
    if (gateway != null) {
      out.add(routeBackend(service.name() + STABLE_SUFFIX, service.name(), routeLabels()));
    }
    if (service.deploy().autoscaling().enabled()) {
      out.add(autoscaler());
    }
    out.add(disruptionBudget());
    out.add(networkPolicy());
    if (gateway != null) {
      out.add(route());
    }
    return out;
  }

  /** The objects as kubectl-compatible multi-document YAML. */
  public String yaml() {
    return yaml(objects());
  }

  /** Objects as kubectl-compatible multi-document YAML, each document opened by {@code ---}. */
  static String yaml(List<? extends HasMetadata> objects) {
    KubernetesSerialization serialization = new KubernetesSerialization();
    StringBuilder out = new StringBuilder();
    for (HasMetadata o : objects) {
      String doc = serialization.asYaml(o);
      out.append(doc.startsWith("---") ? doc : "---\n" + doc);
      if (!doc.endsWith("\n")) {
        out.append('\n');
      }
    }
    return out.toString();
  }

  /**
   * Writes one file per object into {@code dir}, named {@code NN-kind-name.yaml} in apply order
   * ({@code kubectl apply -f DIR} applies them in that order).
   *
   * @return the files written
   */
  public List<Path> writeFiles(Path dir) throws IOException {
    Files.createDirectories(dir);
    KubernetesSerialization serialization = new KubernetesSerialization();
    List<Path> files = new ArrayList<>();
    int n = 0;
    for (HasMetadata o : objects()) {
      n++;
      Path file = dir.resolve(fileName(n, o));
      Files.writeString(file, serialization.asYaml(o));
      files.add(file);
    }
    return files;
  }

  /** The file name of the object at {@code position} (from 1) in apply order. */
  static String fileName(int position, HasMetadata o) {
    return String.format(
        Locale.ROOT,
        "%02d-%s-%s.yaml",
        position,
        o.getKind().toLowerCase(Locale.ROOT),
        o.getMetadata().getName());
  }

  /** The service file these objects come from. */
  ServiceSpec service() {
    return service;
  }

  /** The labels every object carries ({@code app.kubernetes.io/*}). */
  Map<String, String> labels() {
    Map<String, String> labels = new LinkedHashMap<>(selector());
    labels.put("app.kubernetes.io/component", "model-server");
    labels.put(PART_OF_LABEL, service.name());
    labels.put(MANAGED_BY_LABEL, "berth");
    String tag = tag(image);
    if (tag != null) {
      labels.put("app.kubernetes.io/version", tag);
    }
    return labels;
  }

  /**
   * Labels of the objects stable and canary share behind a gateway (the route and {@code
   * NAME-stable}): those of the stable version, without a version.
   */
  Map<String, String> routeLabels() {
    Map<String, String> labels = new LinkedHashMap<>(servicePods());
    labels.put(INSTANCE_LABEL, service.name());
    labels.put("app.kubernetes.io/component", "model-server");
    labels.put(PART_OF_LABEL, service.name());
    labels.put(MANAGED_BY_LABEL, "berth");
    return labels;
  }

  /** The labels that select this Deployment's pods: stable and canary have their own. */
  Map<String, String> selector() {
    Map<String, String> selector = new LinkedHashMap<>(servicePods());
    selector.put(INSTANCE_LABEL, deploymentName());
    return selector;
  }

  /**
   * The labels of every pod of the service, stable and canary: the Service, the disruption budget
   * and the network policy select by these.
   */
  Map<String, String> servicePods() {
    return Map.of(NAME_LABEL, service.name());
  }

  /**
   * The models the pods serve: those in the image with their versions, then those fetched from a
   * registry or store with their sources, as {@code m:1,2 n:3 r@oci://registry/models/r:4}.
   */
  String models() {
    StringBuilder out = new StringBuilder();
    for (ServiceSpec.ServiceModel m : service.models()) {
      if (!out.isEmpty()) {
        out.append(' ');
      }
      out.append(m.name()).append(':');
      out.append(
          String.join(",", m.versions().stream().map(v -> Long.toString(v.number())).toList()));
    }
    for (ServiceSpec.RemoteModel m : service.remoteModels()) {
      if (!out.isEmpty()) {
        out.append(' ');
      }
      out.append(m.name()).append('@').append(m.shown());
    }
    return out.toString();
  }

  private ObjectMeta meta(String name) {
    return new ObjectMetaBuilder()
        .withName(name)
        .withNamespace(namespace)
        .withLabels(labels())
        .build();
  }

  private ServiceAccount serviceAccount() {
    return new ServiceAccountBuilder()
        .withMetadata(meta(service.name()))
        .withAutomountServiceAccountToken(false)
        .build();
  }

  /** Where the Secrets of {@code serving.api-keys} and {@code serving.management-token} mount. */
  static final String SECRETS_DIR = "/etc/berth/secrets";

  /** Where the TLS Secret ({@code serving.tls.secret}) mounts. */
  static final String TLS_DIR = "/etc/berth/tls";

  private static final String API_KEYS_VOLUME = "api-keys";
  private static final String TOKEN_VOLUME = "management-token";
  private static final String TLS_VOLUME = "tls";

  /**
   * The serving config: the service's serve settings as the {@code BERTH_...} environment {@code
   * berth serve} reads, secret files as the paths their Secrets mount at (never their contents).
   */
  private Map<String, String> servingConfig() {
    ServiceSpec.Serving s = service.serving();
    ServeSettings settings =
        s.containerSettings()
            .with(ServeSettings.PORT, Integer.toString(s.port()))
            .with(ServeSettings.GRPC_PORT, Integer.toString(s.grpcPort()));
    if (!settings.isSet(ServeSettings.EXECUTION_PROVIDER)) {
      // GPUs asked for: ONNX Runtime's CUDA provider for every model that does not name one
      settings =
          settings.with(
              ServeSettings.EXECUTION_PROVIDER, service.deploy().gpus() > 0 ? "cuda" : "cpu");
    }
    if (s.apiKeys() != null) {
      settings =
          settings.with(
              ServeSettings.API_KEYS,
              SECRETS_DIR + "/" + API_KEYS_VOLUME + "/" + s.apiKeys().key());
    }
    if (s.managementToken() != null) {
      settings =
          settings.with(
              ServeSettings.MANAGEMENT_TOKEN_FILE,
              SECRETS_DIR + "/" + TOKEN_VOLUME + "/" + s.managementToken().key());
    }
    if (s.tls() != null) {
      settings =
          settings
              .with(ServeSettings.TLS_CERT, TLS_DIR + "/tls.crt")
              .with(ServeSettings.TLS_KEY, TLS_DIR + "/tls.key");
      if (clientCertificates()) {
        settings = settings.with(ServeSettings.TLS_CLIENT_CA, TLS_DIR + "/ca.crt");
      }
    }
    if (fetchesModels()) {
      // the cache is the pod's volume, named by the container's own BERTH_MODEL_CACHE: a path the
      // file gives is one of the deploying machine's
      settings = settings.without(List.of(ServeSettings.MODEL_CACHE));
      String size = service.deploy().modelFetch().cacheSize();
      if (size != null
          && service.deploy().modelFetch().cacheClaim() == null
          && !settings.isSet(ServeSettings.MODEL_CACHE_SIZE)) {
        // the server evicts before the kubelet would evict the pod for filling its emptyDir
        settings = settings.with(ServeSettings.MODEL_CACHE_SIZE, cacheSize(size));
      }
    }
    // Mounted models reach berth serve as BERTH_MODEL_MOUNT in this ConfigMap, like every other
    // setting, rather than as --model-mount arguments: an option would replace the file's own
    // serving.model-mount, where the variable carries both, and the arguments stay the serve
    // target. A model the file mounts itself stays where the file says.
    List<String> mounts = new ArrayList<>();
    String given = settings.text(ServeSettings.MODEL_MOUNT);
    if (given != null && !given.isEmpty()) {
      mounts.addAll(List.of(given.split(",")));
    }
    modelMounts().forEach((model, dir) -> mounts.add(model + "=" + dir));
    if (!mounts.isEmpty()) {
      settings = settings.with(ServeSettings.MODEL_MOUNT, String.join(",", mounts));
    }
    Map<String, String> data = new LinkedHashMap<>();
    settings.given().forEach((setting, value) -> data.put(setting.environmentVariable(), value));
    return data;
  }

  /**
   * The model cache's bound for an emptyDir of this size limit, as a {@code berth serve} size in
   * bytes: half the limit. The cache evicts after a download and never what a server holds, so a
   * model that moves to a new version of its size has both on disk for a moment; at half the limit
   * that stays within it.
   */
  static String cacheSize(String quantity) {
    return Quantity.getAmountInBytes(new Quantity(quantity))
        .toBigInteger()
        .shiftRight(1)
        .toString();
  }

  /** Whether the pods require client certificates (mutual TLS: ca.crt of the TLS Secret). */
  private boolean clientCertificates() {
    return service.serving().settings().isSet(ServeSettings.TLS_CLIENT_CA);
  }

  /**
   * Refuses a secret the service gives only as a local file: pods cannot read the deploying
   * machine's files, and serving without it would leave the service open.
   */
  private static void checkSecrets(ServiceSpec service) {
    ServiceSpec.Serving s = service.serving();
    ServeSettings given = s.settings();
    if (given.isSet(ServeSettings.API_KEYS) && s.apiKeys() == null) {
      throw secretMissing(
          service,
          "api-keys",
          "{name: NAME, key: keys.yaml}",
          "generic NAME --from-file=keys.yaml");
    }
    if (given.isSet(ServeSettings.MANAGEMENT_TOKEN_FILE) && s.managementToken() == null) {
      throw secretMissing(
          service,
          "management-token",
          "{name: NAME, key: token}",
          "generic NAME --from-file=token=token.txt");
    }
    if (given.isSet(ServeSettings.TLS_CERT) && s.tls() == null) {
      throw secretMissing(service, "tls", "{name: NAME}", "tls NAME --cert=tls.crt --key=tls.key");
    }
  }

  private static dev.berth.api.ConfigException secretMissing(
      ServiceSpec service, String key, String shape, String create) {
    return new dev.berth.api.ConfigException(
        service.file(),
        "serving." + key + ".secret",
        "is needed for berth deploy: pods read the file from a Kubernetes Secret, never from this"
            + " machine; add 'secret: "
            + shape
            + "' (create it with 'kubectl create secret "
            + create
            + "')");
  }

  /** Digest of the serving config: the ConfigMap's name suffix and a pod template annotation. */
  private String configDigest() {
    StringBuilder text = new StringBuilder();
    servingConfig().forEach((k, v) -> text.append(k).append('=').append(v).append('\n'));
    try {
      byte[] sha = MessageDigest.getInstance("SHA-256").digest(text.toString().getBytes(UTF_8));
      return HexFormat.of().formatHex(sha, 0, 5);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * The ConfigMap's name carries its content's digest and the ConfigMap is immutable: a pod
   * template names exactly the config it ran with, so a rollback to it gets that config back.
   */
  private String configMapName() {
    return deploymentName() + "-serving-" + configDigest();
  }

  private ConfigMap configMap() {
    return new ConfigMapBuilder()
        .withMetadata(meta(configMapName()))
        .withImmutable(true)
        .withData(servingConfig())
        .build();
  }

  private Deployment deployment() {
    ServiceSpec.Deploy d = service.deploy();
    ServiceSpec.Serving s = service.serving();
    long uid = Long.parseLong(service.image().user().split(":")[0]);
    String[] user = service.image().user().split(":");
    long gid = user.length > 1 ? Long.parseLong(user[1]) : uid;
    int grace =
        (int) s.settings().duration(ServeSettings.DRAIN_TIMEOUT).toSeconds()
            + PRE_STOP_SECONDS
            + 5
            // after the drain, the spans still held are exported before the server exits
            + (s.settings().isSet(ServeSettings.TRACING_ENDPOINT)
                ? ServeSettings.TRACING_FLUSH_SECONDS
                : 0);
    Map<String, String> annotations = new LinkedHashMap<>();
    annotations.put("prometheus.io/scrape", "true");
    annotations.put("prometheus.io/port", Integer.toString(s.port()));
    annotations.put("prometheus.io/path", "/metrics");
    annotations.put(CONFIG_ANNOTATION, configDigest());
    ObjectMeta meta = meta(deploymentName());
    Map<String, String> deploymentAnnotations = new LinkedHashMap<>();
    deploymentAnnotations.put(MODELS_ANNOTATION, models());
    List<String> gated =
        service.models().stream()
            .filter(m -> m.modelYaml().containsKey(dev.berth.runtime.ModelGate.KEY))
            .map(ServiceSpec.ServiceModel::name)
            .toList();
    if (!gated.isEmpty()) {
      deploymentAnnotations.put(CanaryGate.GATED_ANNOTATION, String.join(" ", gated));
    }
    meta.setAnnotations(deploymentAnnotations);
    DeploymentBuilder b =
        new DeploymentBuilder()
            .withMetadata(meta)
            .withNewSpec()
            .withSelector(new LabelSelectorBuilder().withMatchLabels(selector()).build())
            .withNewStrategy()
            .withType("RollingUpdate")
            .withNewRollingUpdate()
            .withMaxUnavailable(new IntOrString(0))
            .withMaxSurge(new IntOrString(1))
            .endRollingUpdate()
            .endStrategy()
            .withNewTemplate()
            .withNewMetadata()
            .withLabels(labels())
            .withAnnotations(annotations)
            .endMetadata()
            .withNewSpec()
            .withServiceAccountName(service.name())
            .withAutomountServiceAccountToken(false)
            .withTerminationGracePeriodSeconds((long) grace)
            .withNewSecurityContext()
            .withRunAsNonRoot(true)
            .withRunAsUser(uid)
            .withRunAsGroup(gid)
            .withFsGroup(gid)
            .withNewSeccompProfile()
            .withType("RuntimeDefault")
            .endSeccompProfile()
            .endSecurityContext()
            .withContainers(container())
            .addNewVolume()
            .withName(TMP_VOLUME)
            .withNewEmptyDir()
            .endEmptyDir()
            .endVolume()
            .addAllToVolumes(secretVolumes())
            .addAllToVolumes(modelFetchVolumes())
            .addAllToImagePullSecrets(imagePullSecrets())
            .addNewTopologySpreadConstraint()
            .withMaxSkew(1)
            .withTopologyKey("kubernetes.io/hostname")
            .withWhenUnsatisfiable("ScheduleAnyway")
            .withLabelSelector(new LabelSelectorBuilder().withMatchLabels(selector()).build())
            .endTopologySpreadConstraint()
            .endSpec()
            .endTemplate()
            .endSpec();
    if (isCanary()) {
      b.editSpec().withReplicas(canaryReplicas).endSpec();
    } else if (!d.autoscaling().enabled()) {
      // with an autoscaler, replicas belong to it: a re-apply must not reset them
      b.editSpec().withReplicas(d.replicas()).endSpec();
    }
    return b.build();
  }

  /** Read by the server's group (the pod's fsGroup) only. */
  private static final int SECRET_FILE_MODE = 0440;

  /** The Secrets the serving config names, as volumes holding only the keys it reads. */
  private List<io.fabric8.kubernetes.api.model.Volume> secretVolumes() {
    ServiceSpec.Serving s = service.serving();
    List<io.fabric8.kubernetes.api.model.Volume> out = new ArrayList<>();
    if (s.apiKeys() != null) {
      out.add(secretVolume(API_KEYS_VOLUME, s.apiKeys().name(), List.of(s.apiKeys().key())));
    }
    if (s.managementToken() != null) {
      out.add(
          secretVolume(
              TOKEN_VOLUME, s.managementToken().name(), List.of(s.managementToken().key())));
    }
    if (s.tls() != null) {
      List<String> keys = new ArrayList<>(List.of("tls.crt", "tls.key"));
      if (clientCertificates()) {
        keys.add("ca.crt");
      }
      out.add(secretVolume(TLS_VOLUME, s.tls().name(), keys));
    }
    return out;
  }

  private static io.fabric8.kubernetes.api.model.Volume secretVolume(
      String volume, String secret, List<String> keys) {
    io.fabric8.kubernetes.api.model.SecretVolumeSourceBuilder source =
        new io.fabric8.kubernetes.api.model.SecretVolumeSourceBuilder()
            .withSecretName(secret)
            .withDefaultMode(SECRET_FILE_MODE);
    for (String key : keys) {
      source.addNewItem().withKey(key).withPath(key).endItem();
    }
    return new io.fabric8.kubernetes.api.model.VolumeBuilder()
        .withName(volume)
        .withSecret(source.build())
        .build();
  }

  private List<io.fabric8.kubernetes.api.model.VolumeMount> secretMounts() {
    ServiceSpec.Serving s = service.serving();
    List<io.fabric8.kubernetes.api.model.VolumeMount> out = new ArrayList<>();
    if (s.apiKeys() != null) {
      out.add(mount(API_KEYS_VOLUME, SECRETS_DIR + "/" + API_KEYS_VOLUME));
    }
    if (s.managementToken() != null) {
      out.add(mount(TOKEN_VOLUME, SECRETS_DIR + "/" + TOKEN_VOLUME));
    }
    if (s.tls() != null) {
      out.add(mount(TLS_VOLUME, TLS_DIR));
    }
    return out;
  }

  private static io.fabric8.kubernetes.api.model.VolumeMount mount(String volume, String path) {
    return new io.fabric8.kubernetes.api.model.VolumeMountBuilder()
        .withName(volume)
        .withMountPath(path)
        .withReadOnly(true)
        .build();
  }

  // ---- remote models: fetched by the server when it starts, or mounted by the kubelet

  /** What an image of a service with remote models serves: its generated service file. */
  static final String SERVICE_FILE = "/opt/berth/berth.yaml";

  /** What an image of a service whose models are all in it serves: its model repository. */
  static final String MODEL_REPOSITORY = "/opt/berth/models";

  static final String MODEL_CACHE_VOLUME = "model-cache";
  static final String REGISTRY_VOLUME = "registry-credentials";

  /**
   * Where the registry Secret mounts: its {@code .dockerconfigjson} as {@code config.json}, the
   * directory {@code DOCKER_CONFIG} names, which Berth's registry client reads as docker does.
   */
  static final String REGISTRY_CONFIG_DIR = "/var/run/secrets/berth/registry";

  /** The prefix of an image volume's name; the rest is the model's name. */
  static final String IMAGE_VOLUME_PREFIX = "model-image-";

  private static final String OCI = "oci://";

  /**
   * Startup probe failures allowed (2 s apart) while a server fetches its models: 15 minutes for a
   * first download, where models inside the image get 5 minutes to load.
   */
  static final int FETCHING_STARTUP_FAILURES = 450;

  /** Whether the pods get models from registries or stores: the service has remote models. */
  private boolean fetchesModels() {
    return !service.remoteModels().isEmpty();
  }

  /** The models the file's own {@code serving.model-mount} serves from directories it names. */
  private java.util.Set<String> mountedByFile() {
    java.util.Set<String> out = new java.util.HashSet<>();
    String given = service.serving().settings().text(ServeSettings.MODEL_MOUNT);
    if (given != null && !given.isEmpty()) {
      for (String mount : given.split(",")) {
        out.add(mount.substring(0, Math.max(0, mount.indexOf('='))));
      }
    }
    return out;
  }

  /**
   * The {@code oci://} models the kubelet mounts as image volumes, in the file's order: with {@code
   * oci-models: image-volume}, every one the file does not mount itself.
   */
  private List<ServiceSpec.RemoteModel> imageVolumeModels() {
    if (!imageVolumes) {
      return List.of();
    }
    java.util.Set<String> mountedByFile = mountedByFile();
    return service.remoteModels().stream()
        .filter(m -> m.source().startsWith(OCI) && !mountedByFile.contains(m.name()))
        .toList();
  }

  /**
   * The remote models the server serves from a directory this pod spec puts there (an image volume,
   * KServe's copy), instead of fetching them, by name.
   */
  private Map<String, String> modelMounts() {
    Map<String, String> out = new LinkedHashMap<>();
    for (ServiceSpec.RemoteModel m : imageVolumeModels()) {
      out.put(m.name(), ServiceSpec.ModelFetch.MOUNTS + "/" + m.name());
    }
    java.util.Set<String> mountedByFile = mountedByFile();
    new TreeMap<>(providedModels)
        .forEach(
            (model, dir) -> {
              if (!mountedByFile.contains(model)) {
                out.put(model, dir);
              }
            });
    return out;
  }

  /**
   * The name of the image volume of a model: {@code model-image-NAME}, NAME lower-cased with
   * anything else than letters, digits and '-' replaced, then a short digest of the name when that
   * changed it (a volume's name is a DNS label; model names may hold capitals, '.' and '_').
   */
  static String imageVolumeName(String model) {
    String label = model.toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9-]", "-");
    if (label.equals(model) && label.length() <= 40 && !label.endsWith("-")) {
      return IMAGE_VOLUME_PREFIX + label;
    }
    label = label.substring(0, Math.min(label.length(), 40)).replaceAll("-+$", "");
    try {
      byte[] sha = MessageDigest.getInstance("SHA-256").digest(model.getBytes(UTF_8));
      String digest = HexFormat.of().formatHex(sha, 0, 4);
      return IMAGE_VOLUME_PREFIX + (label.isEmpty() ? "" : label + "-") + digest;
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * The environment of a pod that fetches models: where its cache is, and where the registry
   * credentials are.
   */
  private List<EnvVar> modelFetchEnv() {
    List<EnvVar> env = new ArrayList<>();
    if (!fetchesModels()) {
      return env;
    }
    env.add(
        new EnvVar(
            ServeSettings.MODEL_CACHE.environmentVariable(),
            ServiceSpec.ModelFetch.CACHE_PATH,
            null));
    if (service.deploy().modelFetch().registrySecret() != null) {
      env.add(new EnvVar("DOCKER_CONFIG", REGISTRY_CONFIG_DIR, null));
    }
    return env;
  }

  /** The S3 Secret as environment ({@code AWS_ACCESS_KEY_ID}, ...), when the file names one. */
  private List<io.fabric8.kubernetes.api.model.EnvFromSource> modelFetchEnvFrom() {
    String s3 = service.deploy().modelFetch().s3Secret();
    if (!fetchesModels() || s3 == null) {
      return List.of();
    }
    return List.of(
        new EnvFromSourceBuilder()
            .withNewSecretRef()
            .withName(s3)
            .withOptional(false)
            .endSecretRef()
            .build());
  }

  /**
   * The volumes of a pod that fetches models: its model cache (an emptyDir of its own, or the claim
   * every pod shares), the registry Secret, and an image volume per mounted {@code oci://} model
   * (Kubernetes 1.31+, the ImageVolume feature).
   */
  private List<io.fabric8.kubernetes.api.model.Volume> modelFetchVolumes() {
    List<io.fabric8.kubernetes.api.model.Volume> out = new ArrayList<>();
    if (!fetchesModels()) {
      return out;
    }
    ServiceSpec.ModelFetch fetch = service.deploy().modelFetch();
    io.fabric8.kubernetes.api.model.VolumeBuilder cache =
        new io.fabric8.kubernetes.api.model.VolumeBuilder().withName(MODEL_CACHE_VOLUME);
    if (fetch.cacheClaim() != null) {
      cache
          .withNewPersistentVolumeClaim()
          .withClaimName(fetch.cacheClaim())
          .endPersistentVolumeClaim();
    } else {
      cache
          .withNewEmptyDir()
          .withSizeLimit(fetch.cacheSize() == null ? null : new Quantity(fetch.cacheSize()))
          .endEmptyDir();
    }
    out.add(cache.build());
    if (fetch.registrySecret() != null) {
      out.add(
          new io.fabric8.kubernetes.api.model.VolumeBuilder()
              .withName(REGISTRY_VOLUME)
              .withNewSecret()
              .withSecretName(fetch.registrySecret())
              .withDefaultMode(SECRET_FILE_MODE)
              .addNewItem()
              .withKey(".dockerconfigjson")
              .withPath("config.json")
              .endItem()
              .endSecret()
              .build());
    }
    for (ServiceSpec.RemoteModel m : imageVolumeModels()) {
      String reference = m.source().substring(OCI.length());
      out.add(
          new io.fabric8.kubernetes.api.model.VolumeBuilder()
              .withName(imageVolumeName(m.name()))
              .withNewImage()
              .withReference(reference)
              // as the server's image: a tag is looked up again on every pod start, so a push and a
              // restart serve the new model; a digest never changes
              .withPullPolicy(reference.contains("@sha256:") ? "IfNotPresent" : "Always")
              .endImage()
              .build());
    }
    return out;
  }

  private List<io.fabric8.kubernetes.api.model.VolumeMount> modelFetchMounts() {
    List<io.fabric8.kubernetes.api.model.VolumeMount> out = new ArrayList<>();
    if (!fetchesModels()) {
      return out;
    }
    out.add(
        new io.fabric8.kubernetes.api.model.VolumeMountBuilder()
            .withName(MODEL_CACHE_VOLUME)
            .withMountPath(ServiceSpec.ModelFetch.CACHE_PATH)
            .build());
    if (service.deploy().modelFetch().registrySecret() != null) {
      out.add(mount(REGISTRY_VOLUME, REGISTRY_CONFIG_DIR));
    }
    for (ServiceSpec.RemoteModel m : imageVolumeModels()) {
      out.add(mount(imageVolumeName(m.name()), ServiceSpec.ModelFetch.MOUNTS + "/" + m.name()));
    }
    return out;
  }

  /**
   * The registry Secret as the pod's pull secret when the kubelet pulls model images (it pulls
   * image volumes with the pod's pull secrets); none otherwise.
   */
  private List<io.fabric8.kubernetes.api.model.LocalObjectReference> imagePullSecrets() {
    String secret = service.deploy().modelFetch().registrySecret();
    if (secret == null || imageVolumeModels().isEmpty()) {
      return List.of();
    }
    return List.of(new io.fabric8.kubernetes.api.model.LocalObjectReference(secret));
  }

  /** Memory for the JVM, llama.cpp's compute buffers and the rest of the server. */
  static final long LANGUAGE_MODEL_OVERHEAD = 512L << 20;

  /**
   * The memory a service's language models need, read from their GGUF files, or 0 when it has none:
   * per version the file twice (llama.cpp maps it and keeps a copy of its weights repacked for the
   * CPU) and its KV cache ({@code llm.context-size × llm.parallel} tokens), plus {@link
   * #LANGUAGE_MODEL_OVERHEAD}.
   */
  static long languageModelMemory(ServiceSpec service) {
    long bytes = 0;
    for (ServiceSpec.ServiceModel model : service.models()) {
      dev.berth.runtime.LlmConfig llm = null;
      for (dev.berth.runtime.ModelRepository.Version version : model.versions()) {
        java.nio.file.Path gguf = version.dir().resolve(dev.berth.runtime.GgufHeader.MODEL_FILE);
        if (!java.nio.file.Files.isRegularFile(gguf)) {
          continue;
        }
        if (llm == null) {
          llm =
              dev.berth.runtime.LlmConfig.parse(
                  dev.berth.runtime.ConfigReader.root(
                          model.dir().resolve(dev.berth.runtime.ModelConfig.FILE_NAME),
                          model.modelYaml())
                      .section("llm"));
        }
        dev.berth.runtime.GgufHeader header = dev.berth.runtime.GgufHeader.read(gguf);
        bytes +=
            2 * header.bytes() + header.kvCacheBytes((long) llm.contextSize() * llm.parallel());
      }
    }
    return bytes == 0 ? 0 : bytes + LANGUAGE_MODEL_OVERHEAD;
  }

  /**
   * What one process of each engine costs besides its models, measured as the resident memory of
   * {@code berth serve} with one small model of the engine (JVM and server included): libtorch
   * about 285 MiB, TensorFlow about 450 MiB, XGBoost about 160 MiB; rounded up.
   */
  static final Map<String, Long> ENGINE_MEMORY =
      Map.of("pytorch", 384L << 20, "tensorflow", 576L << 20, "xgboost", 256L << 20);

  /**
   * The memory a service's TorchScript, SavedModel and XGBoost models need, or 0 when it has none:
   * per engine it uses, {@link #ENGINE_MEMORY} once, and per version its files twice (the engine's
   * copy of the weights and the buffers of a batch). ONNX models fit the default request.
   */
  static long tensorModelMemory(ServiceSpec service) {
    long bytes = 0;
    java.util.Set<String> engines = new java.util.TreeSet<>();
    for (ServiceSpec.ServiceModel model : service.models()) {
      for (dev.berth.runtime.ModelRepository.Version version : model.versions()) {
        for (Map.Entry<String, String> kind : ManifestExport.MODEL_FORMATS.entrySet()) {
          java.nio.file.Path path = version.dir().resolve(kind.getKey());
          if (ENGINE_MEMORY.containsKey(kind.getValue()) && java.nio.file.Files.exists(path)) {
            engines.add(kind.getValue());
            bytes += 2 * size(path);
          }
        }
      }
    }
    for (String engine : engines) {
      bytes += ENGINE_MEMORY.get(engine);
    }
    return bytes;
  }

  private static long size(java.nio.file.Path path) {
    try (var files = java.nio.file.Files.walk(path)) {
      return files
          .filter(java.nio.file.Files::isRegularFile)
          .mapToLong(
              f -> {
                try {
                  return java.nio.file.Files.size(f);
                } catch (java.io.IOException e) {
                  return 0;
                }
              })
          .sum();
    } catch (java.io.IOException e) {
      return 0;
    }
  }

  private Container container() {
    ServiceSpec.Serving s = service.serving();
    ServiceSpec.Deploy d = service.deploy();
    Map<String, Quantity> requests = new TreeMap<>();
    d.requests().forEach((k, v) -> requests.put(k, new Quantity(v)));
    Map<String, Quantity> limits = new TreeMap<>();
    d.limits().forEach((k, v) -> limits.put(k, new Quantity(v)));
    // Pods are scheduled by their requests and the autoscaler's CPU target is a share of them:
    // never leave them out. An unrequested resource gets its limit (as Kubernetes would), else
    // a default.
    long languageModels = languageModelMemory(service);
    long tensorModels = tensorModelMemory(service);
    long sized = languageModels + tensorModels;
    if (sized > 0 && !requests.containsKey("memory") && !limits.containsKey("memory")) {
      long mebibytes = (sized + (1 << 20) - 1) >> 20;
      requests.put("memory", new Quantity(Math.max(1024, mebibytes) + "Mi"));
    }
    DEFAULT_REQUESTS.forEach(
        (k, v) -> requests.computeIfAbsent(k, x -> limits.getOrDefault(k, new Quantity(v))));
    if (d.gpus() > 0) {
      limits.put("nvidia.com/gpu", new Quantity(Integer.toString(d.gpus())));
      requests.put("nvidia.com/gpu", new Quantity(Integer.toString(d.gpus())));
    }
    List<EnvVar> env = new ArrayList<>();
    env.add(new EnvVar("ORT_DISABLE_TELEMETRY", "1", null));
    env.add(new EnvVar("OPT_OUT_TRACKING", "true", null));
    env.add(new EnvVar("HOME", "/tmp", null));
    env.add(new EnvVar("DJL_CACHE_DIR", "/tmp/berth/djl", null));
    env.addAll(modelFetchEnv());
    List<io.fabric8.kubernetes.api.model.EnvFromSource> envFrom = new ArrayList<>();
    envFrom.add(
        new EnvFromSourceBuilder()
            .withConfigMapRef(new ConfigMapEnvSource(configMapName(), false))
            .build());
    envFrom.addAll(modelFetchEnvFrom());
    return new ContainerBuilder()
        .withName("server")
        .withImage(image)
        .withImagePullPolicy(image.contains("@sha256:") ? "IfNotPresent" : "Always")
        // every setting comes from the ConfigMap's BERTH_... variables, which berth serve reads;
        // an image with remote models serves its service file, which names their sources
        .withArgs("serve", fetchesModels() ? SERVICE_FILE : MODEL_REPOSITORY)
        .withEnvFrom(envFrom)
        .withEnv(env)
        .addNewPort()
        .withName("http")
        .withContainerPort(s.port())
        .withProtocol("TCP")
        .endPort()
        .addNewPort()
        .withName("grpc")
        .withContainerPort(s.grpcPort())
        .withProtocol("TCP")
        .endPort()
        .withNewResources()
        .withRequests(requests)
        .withLimits(limits)
        .endResources()
        // models load before ready: give the first start up to 5 minutes, 15 when it downloads
        .withStartupProbe(
            probe("/v2/health/ready", 2, fetchesModels() ? FETCHING_STARTUP_FAILURES : 150))
        .withReadinessProbe(probe("/v2/health/ready", 5, 2))
        .withLivenessProbe(probe("/v2/health/live", 10, 3))
        .addAllToVolumeMounts(secretMounts())
        .withNewLifecycle()
        .withNewPreStop()
        .withNewSleep()
        .withSeconds((long) PRE_STOP_SECONDS)
        .endSleep()
        .endPreStop()
        .endLifecycle()
        .withSecurityContext(restricted(true))
        .addNewVolumeMount()
        .withName(TMP_VOLUME)
        .withMountPath("/tmp")
        .endVolumeMount()
        .addAllToVolumeMounts(modelFetchMounts())
        .build();
  }

  /**
   * A container's settings under the restricted Pod Security Standard: non-root, no privilege
   * escalation, no capabilities, seccomp {@code RuntimeDefault}.
   *
   * @param readOnlyRoot whether its root file system is read-only too
   */
  static io.fabric8.kubernetes.api.model.SecurityContext restricted(boolean readOnlyRoot) {
    return new io.fabric8.kubernetes.api.model.SecurityContextBuilder()
        .withAllowPrivilegeEscalation(false)
        .withReadOnlyRootFilesystem(readOnlyRoot ? Boolean.TRUE : null)
        .withRunAsNonRoot(true)
        .withNewCapabilities()
        .withDrop("ALL")
        .endCapabilities()
        .withNewSeccompProfile()
        .withType("RuntimeDefault")
        .endSeccompProfile()
        .build();
  }

  /**
   * A probe of a health endpoint: over HTTPS when the service serves TLS (the kubelet does not
   * verify the certificate), and, when it requires client certificates (which the kubelet has none
   * of), a TCP connect to the port instead. Health needs no API key.
   */
  private Probe probe(String path, int periodSeconds, int failureThreshold) {
    ProbeBuilder b = new ProbeBuilder();
    if (service.serving().tlsEnabled() && clientCertificates()) {
      b.withNewTcpSocket().withPort(new IntOrString("http")).endTcpSocket();
    } else {
      b.withNewHttpGet()
          .withPath(path)
          .withPort(new IntOrString("http"))
          .withScheme(service.serving().tlsEnabled() ? "HTTPS" : "HTTP")
          .endHttpGet();
    }
    return b.withPeriodSeconds(periodSeconds)
        .withFailureThreshold(failureThreshold)
        .withTimeoutSeconds(2)
        .build();
  }

  private io.fabric8.kubernetes.api.model.Service kubeService() {
    return kubeService(meta(service.name()), service.deploy().serviceType(), servicePods());
  }

  /** A ClusterIP Service for one version's pods (instance label {@code instance}), for a route. */
  private io.fabric8.kubernetes.api.model.Service routeBackend(
      String name, String instance, Map<String, String> labels) {
    Map<String, String> selector = new LinkedHashMap<>(servicePods());
    selector.put(INSTANCE_LABEL, instance);
    ObjectMeta meta = meta(name);
    meta.setLabels(labels);
    return kubeService(meta, "ClusterIP", selector);
  }

  private io.fabric8.kubernetes.api.model.Service kubeService(
      ObjectMeta meta, String type, Map<String, String> selector) {
    ServiceSpec.Serving s = service.serving();
    return new ServiceBuilder()
        .withMetadata(meta)
        .withNewSpec()
        .withType(type)
        .withSelector(selector)
        .addNewPort()
        .withName("http")
        .withPort(s.port())
        .withTargetPort(new IntOrString("http"))
        .withProtocol("TCP")
        .endPort()
        .addNewPort()
        .withName("grpc")
        .withPort(s.grpcPort())
        .withTargetPort(new IntOrString("grpc"))
        .withProtocol("TCP")
        .withAppProtocol("grpc")
        .endPort()
        .endSpec()
        .build();
  }

  /**
   * The HTTPRoute that attaches the service to the gateway: every path, REST port, split by weight
   * between {@code NAME-stable} and (for a canary) {@code NAME-canary}.
   */
  private HTTPRoute route() {
    List<HTTPBackendRef> backends = new ArrayList<>();
    backends.add(backend(service.name() + STABLE_SUFFIX, 100 - canaryPercent));
    if (isCanary()) {
      backends.add(backend(deploymentName(), canaryPercent));
    }
    ObjectMeta meta = meta(service.name());
    meta.setLabels(routeLabels());
    return new HTTPRouteBuilder()
        .withMetadata(meta)
        .withNewSpec()
        .addNewParentRef()
        .withGroup("gateway.networking.k8s.io")
        .withKind("Gateway")
        .withName(gateway.name())
        .withNamespace(gateway.namespace())
        .endParentRef()
        .withHostnames(gateway.hostnames().isEmpty() ? null : gateway.hostnames())
        .addNewRule()
        .withBackendRefs(backends)
        .endRule()
        .endSpec()
        .build();
  }

  private HTTPBackendRef backend(String serviceName, int weight) {
    return new HTTPBackendRefBuilder()
        .withGroup("")
        .withKind("Service")
        .withName(serviceName)
        .withPort(service.serving().port())
        .withWeight(weight)
        .build();
  }

  private HorizontalPodAutoscaler autoscaler() {
    ServiceSpec.Autoscaling a = service.deploy().autoscaling();
    List<MetricSpec> metrics = new ArrayList<>();
    if (a.targetCpuUtilization() > 0) { // 0: on requests in flight alone
      metrics.add(
          new MetricSpecBuilder()
              .withType("Resource")
              .withNewResource()
              .withName("cpu")
              .withNewTarget()
              .withType("Utilization")
              .withAverageUtilization(a.targetCpuUtilization())
              .endTarget()
              .endResource()
              .build());
    }
    if (a.targetInflightPerPod() > 0) {
      // served by the Prometheus adapter rule in docs/kubernetes.md
      metrics.add(
          new MetricSpecBuilder()
              .withType("Pods")
              .withNewPods()
              .withNewMetric()
              .withName("berth_inflight_requests")
              .endMetric()
              .withNewTarget()
              .withType("AverageValue")
              .withAverageValue(new Quantity(Integer.toString(a.targetInflightPerPod())))
              .endTarget()
              .endPods()
              .build());
    }
    return new HorizontalPodAutoscalerBuilder()
        .withMetadata(meta(service.name()))
        .withNewSpec()
        .withNewScaleTargetRef()
        .withApiVersion("apps/v1")
        .withKind("Deployment")
        .withName(service.name())
        .endScaleTargetRef()
        .withMinReplicas(a.minReplicas())
        .withMaxReplicas(a.maxReplicas())
        .withMetrics(metrics)
        .endSpec()
        .build();
  }

  private PodDisruptionBudget disruptionBudget() {
    return new PodDisruptionBudgetBuilder()
        .withMetadata(meta(service.name()))
        .withNewSpec()
        .withMaxUnavailable(new IntOrString(1))
        .withSelector(new LabelSelectorBuilder().withMatchLabels(servicePods()).build())
        .endSpec()
        .build();
  }

  private NetworkPolicy networkPolicy() {
    ServiceSpec.Deploy d = service.deploy();
    List<NetworkPolicyPeer> from = new ArrayList<>();
    LabelSelector pods = new LabelSelectorBuilder().withMatchLabels(d.allowFromPodLabels()).build();
    if (d.allowFromNamespaces().isEmpty()) {
      // its own namespace: a bare podSelector peer
      from.add(new NetworkPolicyPeerBuilder().withPodSelector(pods).build());
    } else {
      for (String ns : d.allowFromNamespaces()) {
        from.add(
            new NetworkPolicyPeerBuilder()
                .withNamespaceSelector(
                    new LabelSelectorBuilder()
                        .withMatchLabels(Map.of("kubernetes.io/metadata.name", ns))
                        .build())
                .withPodSelector(pods)
                .build());
      }
    }
    if (gateway != null) {
      // the gateway's data plane forwards from its own namespace, whatever its pods' labels
      LabelSelector any = new LabelSelector();
      from.add(
          gateway.namespace() == null
              ? new NetworkPolicyPeerBuilder().withPodSelector(any).build()
              : new NetworkPolicyPeerBuilder()
                  .withNamespaceSelector(
                      new LabelSelectorBuilder()
                          .withMatchLabels(
                              Map.of("kubernetes.io/metadata.name", gateway.namespace()))
                          .build())
                  .withPodSelector(any)
                  .build());
    }
    ServiceSpec.Serving s = service.serving();
    return new NetworkPolicyBuilder()
        .withMetadata(meta(service.name()))
        .withNewSpec()
        .withPodSelector(new LabelSelectorBuilder().withMatchLabels(servicePods()).build())
        .withPolicyTypes("Ingress")
        .addNewIngress()
        .withFrom(from)
        .addNewPort()
        .withProtocol("TCP")
        .withPort(new IntOrString(s.port()))
        .endPort()
        .addNewPort()
        .withProtocol("TCP")
        .withPort(new IntOrString(s.grpcPort()))
        .endPort()
        .endIngress()
        .endSpec()
        .build();
  }

  /** The tag of a reference ({@code repo:tag} or {@code repo:tag@sha256:...}), or null. */
  static String tag(String image) {
    String ref = image.contains("@") ? image.substring(0, image.indexOf('@')) : image;
    int slash = ref.lastIndexOf('/');
    int colon = ref.lastIndexOf(':');
    if (colon <= slash) {
      return null;
    }
    String tag = ref.substring(colon + 1);
    return tag.matches("[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?") ? tag : null;
  }
}
