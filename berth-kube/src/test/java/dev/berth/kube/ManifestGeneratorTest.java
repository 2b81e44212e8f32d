package dev.berth.kube;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.runtime.ServeSettings;
import dev.berth.runtime.ServiceSpec;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.KubernetesResource;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.gatewayapi.v1.HTTPRoute;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import java.io.IOException;
import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ManifestGeneratorTest {
  private static final String IMAGE = "registry.example/ml/minilm:1@sha256:" + "ab".repeat(32);

  @TempDir Path dir;

  @BeforeEach
  void model() throws IOException {
    Files.createDirectories(dir.resolve("models/minilm/1"));
    Files.writeString(dir.resolve("models/minilm/1/model.onnx"), "graph");
  }

  private ServiceSpec service(String extra) throws IOException {
    Path file = dir.resolve("berth.yaml");
    Files.writeString(
        file,
        "apiVersion: berth.dev/v1\nkind: ModelService\nname: minilm\n"
            + "models: [{path: models/minilm}]\n"
            + extra);
    return ServiceSpec.load(file);
  }

  private List<HasMetadata> objects(String extra) throws IOException {
    return ManifestGenerator.of(service(extra), IMAGE, "ml").objects();
  }

  private static io.fabric8.kubernetes.api.model.ResourceRequirements resources(
      List<HasMetadata> objects) {
    return find(objects, Deployment.class)
        .getSpec()
        .getTemplate()
        .getSpec()
        .getContainers()
        .get(0)
        .getResources();
  }

  private static <T> T find(List<HasMetadata> objects, Class<T> type) {
    return objects.stream().filter(type::isInstance).map(type::cast).findFirst().orElseThrow();
  }

  @Test
  void everyObjectOfTheServiceWithItsLabels() throws IOException {
    List<HasMetadata> objects = objects("");
    assertEquals(
        List.of(
            "ServiceAccount",
            "ConfigMap",
            "Deployment",
            "Service",
            "HorizontalPodAutoscaler",
            "PodDisruptionBudget",
            "NetworkPolicy"),
        objects.stream().map(HasMetadata::getKind).toList());
    for (HasMetadata o : objects) {
      Map<String, String> labels = o.getMetadata().getLabels();
      assertEquals("minilm", labels.get("app.kubernetes.io/name"), o.getKind());
      assertEquals("minilm", labels.get("app.kubernetes.io/instance"), o.getKind());
      assertEquals("berth", labels.get("app.kubernetes.io/managed-by"), o.getKind());
      assertEquals("1", labels.get("app.kubernetes.io/version"), o.getKind());
      assertEquals("ml", o.getMetadata().getNamespace());
    }
  }

  @Test
  void podsMeetTheRestrictedPodSecurityStandard() throws IOException {
    assertRestricted(find(objects(""), Deployment.class).getSpec().getTemplate().getSpec());
    assertRestricted(
        find(objects("deploy: {gpus: 2}\n"), Deployment.class).getSpec().getTemplate().getSpec());
    assertRestricted(
        find(
                ManifestGenerator.of(service(""), IMAGE, "ml").canary(1, 10).objects(),
                Deployment.class)
            .getSpec()
            .getTemplate()
            .getSpec());
  }

  private static void assertRestricted(PodSpec pod) {
    assertEquals(Boolean.TRUE, pod.getSecurityContext().getRunAsNonRoot());
    assertEquals(65532L, pod.getSecurityContext().getRunAsUser());
    assertEquals("RuntimeDefault", pod.getSecurityContext().getSeccompProfile().getType());
    assertEquals(Boolean.FALSE, pod.getAutomountServiceAccountToken());
    assertFalse(Boolean.TRUE.equals(pod.getHostNetwork()));
    assertTrue(pod.getVolumes().stream().allMatch(v -> v.getHostPath() == null));
    Container c = pod.getContainers().get(0);
    assertEquals(Boolean.FALSE, c.getSecurityContext().getAllowPrivilegeEscalation());
    assertEquals(Boolean.TRUE, c.getSecurityContext().getReadOnlyRootFilesystem());
    assertEquals(List.of("ALL"), c.getSecurityContext().getCapabilities().getDrop());
    List<String> added = c.getSecurityContext().getCapabilities().getAdd();
    assertTrue(added == null || added.isEmpty(), "no capabilities added: " + added);
    assertFalse(Boolean.TRUE.equals(c.getSecurityContext().getPrivileged()));
    // the read-only root needs a writable /tmp for the native libraries and temp files
    assertTrue(
        c.getVolumeMounts().stream().anyMatch(m -> m.getMountPath().equals("/tmp")),
        "an emptyDir at /tmp");
  }

  @Test
  void probesGraceAndDrainMatchTheServer() throws IOException {
    Deployment d = find(objects("serving: {drain-timeout: 20s}\n"), Deployment.class);
    PodSpec pod = d.getSpec().getTemplate().getSpec();
    Container c = pod.getContainers().get(0);
    assertEquals("/v2/health/ready", c.getReadinessProbe().getHttpGet().getPath());
    assertEquals("/v2/health/live", c.getLivenessProbe().getHttpGet().getPath());
    assertEquals("/v2/health/ready", c.getStartupProbe().getHttpGet().getPath());
    assertEquals(
        ManifestGenerator.PRE_STOP_SECONDS, c.getLifecycle().getPreStop().getSleep().getSeconds());
    assertTrue(
        pod.getTerminationGracePeriodSeconds() >= 20 + ManifestGenerator.PRE_STOP_SECONDS,
        "grace " + pod.getTerminationGracePeriodSeconds());
    // with tracing on, the grace also covers the export of the spans held after the drain
    PodSpec traced =
        find(
                objects(
                    "serving: {drain-timeout: 20s, tracing-endpoint: \"http://collector:4318\"}\n"),
                Deployment.class)
            .getSpec()
            .getTemplate()
            .getSpec();
    assertEquals(
        pod.getTerminationGracePeriodSeconds() + ServeSettings.TRACING_FLUSH_SECONDS,
        traced.getTerminationGracePeriodSeconds());
    assertEquals(IMAGE, c.getImage());
    // every setting reaches berth serve through the ConfigMap's variables, none as an argument
    assertEquals(List.of("serve", "/opt/berth/models"), c.getArgs());
    assertEquals(
        "20s",
        find(objects("serving: {drain-timeout: 20s}\n"), ConfigMap.class)
            .getData()
            .get("BERTH_DRAIN_TIMEOUT"));
    assertEquals(
        "true",
        d.getSpec().getTemplate().getMetadata().getAnnotations().get("prometheus.io/scrape"));
    assertTrue(
        c.getEnv().stream()
            .anyMatch(
                e -> e.getName().equals("ORT_DISABLE_TELEMETRY") && e.getValue().equals("1")));
  }

  @Test
  void secretsAreMountedFromTheirSecretsAndTheConfigHoldsOnlyTheirPaths() throws IOException {
    List<HasMetadata> objects =
        objects(
            "serving:\n"
                + "  api-keys: {file: keys.yaml, secret: {name: minilm-keys, key: keys.yaml}}\n"
                + "  management-token: {secret: {name: minilm-mgmt, key: token}}\n"
                + "  tls: {secret: {name: minilm-tls}}\n");
    Map<String, String> config = find(objects, ConfigMap.class).getData();
    assertEquals("/etc/berth/secrets/api-keys/keys.yaml", config.get("BERTH_API_KEYS"));
    assertEquals(
        "/etc/berth/secrets/management-token/token", config.get("BERTH_MANAGEMENT_TOKEN_FILE"));
    assertEquals("/etc/berth/tls/tls.crt", config.get("BERTH_TLS_CERT"));
    assertEquals("/etc/berth/tls/tls.key", config.get("BERTH_TLS_KEY"));
    assertNull(config.get("BERTH_TLS_CLIENT_CA"));
    assertNull(config.get("BERTH_MANAGEMENT_TOKEN"), "never a secret value");
    PodSpec pod = find(objects, Deployment.class).getSpec().getTemplate().getSpec();
    Map<String, io.fabric8.kubernetes.api.model.SecretVolumeSource> secrets =
        pod.getVolumes().stream()
            .filter(v -> v.getSecret() != null)
            .collect(Collectors.toMap(v -> v.getName(), v -> v.getSecret()));
    assertEquals("minilm-keys", secrets.get("api-keys").getSecretName());
    assertEquals("keys.yaml", secrets.get("api-keys").getItems().get(0).getKey());
    assertEquals(0440, secrets.get("api-keys").getDefaultMode());
    assertEquals("minilm-mgmt", secrets.get("management-token").getSecretName());
    assertEquals(
        List.of("tls.crt", "tls.key"),
        secrets.get("tls").getItems().stream().map(i -> i.getKey()).toList());
    Container c = pod.getContainers().get(0);
    for (String path : List.of("/etc/berth/secrets/api-keys", "/etc/berth/tls")) {
      assertTrue(
          c.getVolumeMounts().stream()
              .anyMatch(m -> m.getMountPath().equals(path) && Boolean.TRUE.equals(m.getReadOnly())),
          path + " mounted read-only");
    }
    // TLS: the probes speak HTTPS; health needs no API key
    assertEquals("HTTPS", c.getReadinessProbe().getHttpGet().getScheme());
    assertEquals("HTTPS", c.getLivenessProbe().getHttpGet().getScheme());
    assertEquals("HTTPS", c.getStartupProbe().getHttpGet().getScheme());
    assertEquals(
        "HTTP",
        find(objects(""), Deployment.class)
            .getSpec()
            .getTemplate()
            .getSpec()
            .getContainers()
            .get(0)
            .getReadinessProbe()
            .getHttpGet()
            .getScheme());
    String yaml =
        ManifestGenerator.of(service("serving: {tls: {secret: {name: t}}}\n"), IMAGE, "ml").yaml();
    assertFalse(yaml.contains("BEGIN"), "no key material in the manifests");
  }

  @Test
  void mutualTlsProbesConnectSinceTheKubeletHasNoClientCertificate() throws IOException {
    Container c =
        find(
                objects("serving: {tls: {client-ca: ca.pem, secret: {name: minilm-tls}}}\n"),
                Deployment.class)
            .getSpec()
            .getTemplate()
            .getSpec()
            .getContainers()
            .get(0);
    assertNotNull(c.getReadinessProbe().getTcpSocket());
    assertNull(c.getReadinessProbe().getHttpGet());
  }

  @Test
  void deployRefusesASecretGivenOnlyAsALocalFile() {
    dev.berth.api.ConfigException e =
        assertThrows(
            dev.berth.api.ConfigException.class, () -> objects("serving: {api-keys: keys.yaml}\n"));
    assertTrue(e.getMessage().contains("serving.api-keys.secret"), e.getMessage());
    assertTrue(e.getMessage().contains("kubectl create secret generic"), e.getMessage());
  }

  @Test
  void resourcesGpusAndReplicas() throws IOException {
    List<HasMetadata> objects =
        objects(
            "deploy: {replicas: 3, gpus: 1, autoscaling: {enabled: false},"
                + " resources: {requests: {cpu: 500m, memory: 1Gi}, limits: {memory: 2Gi}}}\n");
    Deployment d = find(objects, Deployment.class);
    assertEquals(3, d.getSpec().getReplicas());
    assertTrue(objects.stream().noneMatch(HorizontalPodAutoscaler.class::isInstance));
    var resources = d.getSpec().getTemplate().getSpec().getContainers().get(0).getResources();
    assertEquals(new Quantity("500m"), resources.getRequests().get("cpu"));
    assertEquals(new Quantity("2Gi"), resources.getLimits().get("memory"));
    assertEquals(new Quantity("1"), resources.getLimits().get("nvidia.com/gpu"));
    var defaults = resources(objects(""));
    assertEquals(new Quantity("1"), defaults.getRequests().get("cpu"));
    assertEquals(new Quantity("1Gi"), defaults.getRequests().get("memory"));
    var limitOnly = resources(objects("deploy: {resources: {limits: {cpu: 500m}}}\n"));
    assertEquals(new Quantity("500m"), limitOnly.getRequests().get("cpu"), "request = limit");
  }

  /** A GGUF header (no tensors) with a 1.1B llama's shape, padded to {@code size} bytes. */
  private static void gguf(Path file, long size) throws IOException {
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    java.nio.ByteBuffer head =
        java.nio.ByteBuffer.allocate(24).order(java.nio.ByteOrder.LITTLE_ENDIAN);
    head.putInt(0x46554747).putInt(3).putLong(0).putLong(4);
    out.writeBytes(head.array());
    for (Object[] kv :
        new Object[][] {
          {"llama.block_count", 22},
          {"llama.embedding_length", 2048},
          {"llama.attention.head_count", 32},
          {"llama.attention.head_count_kv", 4}
        }) {
      byte[] key = ((String) kv[0]).getBytes(StandardCharsets.UTF_8);
      java.nio.ByteBuffer b =
          java.nio.ByteBuffer.allocate(8 + key.length + 8).order(java.nio.ByteOrder.LITTLE_ENDIAN);
      b.putLong(key.length).put(key).putInt(4).putInt((Integer) kv[1]);
      out.writeBytes(b.array());
    }
    Files.write(file, out.toByteArray());
    try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(file.toFile(), "rw")) {
      f.setLength(size); // sparse: only the size counts
    }
  }

  @Test
  void aLanguageModelsMemoryRequestIsSizedFromItsGguf() throws IOException {
    Files.createDirectories(dir.resolve("models/llm/1"));
    gguf(dir.resolve("models/llm/1/model.gguf"), 1000L << 20);
    Files.writeString(
        dir.resolve("models/llm/model.yaml"),
        "apiVersion: berth.dev/v1\nkind: Model\nllm: {context-size: 2048, parallel: 4}\n");
    Path file = dir.resolve("berth.yaml");
    Files.writeString(
        file,
        "apiVersion: berth.dev/v1\nkind: ModelService\nname: chat\n"
            + "models: [{path: models/llm}, {path: models/minilm}]\n");
    var resources = resources(ManifestGenerator.of(ServiceSpec.load(file), IMAGE, "ml").objects());
    // the file twice (mapped, and repacked for the CPU) + its KV cache for 2048 x 4 tokens
    // (2 x 2 bytes x 22 layers x 256 wide x 8192 = 176 MiB) + 512 MiB
    assertEquals(new Quantity((2000 + 176 + 512) + "Mi"), resources.getRequests().get("memory"));

    // what the service says wins
    Files.writeString(
        file,
        "apiVersion: berth.dev/v1\nkind: ModelService\nname: chat\n"
            + "models: [{path: models/llm}]\ndeploy: {resources: {requests: {memory: 3Gi}}}\n");
    var chosen = resources(ManifestGenerator.of(ServiceSpec.load(file), IMAGE, "ml").objects());
    assertEquals(new Quantity("3Gi"), chosen.getRequests().get("memory"));
  }

  @Test
  void torchScriptAndSavedModelServicesAreSizedFromTheirFilesAndEngines() throws IOException {
    Files.createDirectories(dir.resolve("models/torch/1"));
    try (var f =
        new java.io.RandomAccessFile(dir.resolve("models/torch/1/model.pt").toFile(), "rw")) {
      f.setLength(600L << 20);
    }
    Files.createDirectories(dir.resolve("models/tf/1/model.savedmodel/variables"));
    Files.writeString(dir.resolve("models/tf/1/model.savedmodel/saved_model.pb"), "");
    try (var f =
        new java.io.RandomAccessFile(
            dir.resolve("models/tf/1/model.savedmodel/variables/variables.data-00000-of-00001")
                .toFile(),
            "rw")) {
      f.setLength(100L << 20);
    }
    Path file = dir.resolve("berth.yaml");
    Files.writeString(
        file,
        "apiVersion: berth.dev/v1\nkind: ModelService\nname: mixed\n"
            + "models: [{path: models/torch}, {path: models/tf}]\n");
    var resources = resources(ManifestGenerator.of(ServiceSpec.load(file), IMAGE, "ml").objects());
    // each file twice, and libtorch's and TensorFlow's own memory once each
    assertEquals(
        new Quantity((1200 + 384 + 200 + 576) + "Mi"), resources.getRequests().get("memory"));

    // small models fit the default request
    Files.writeString(
        file,
        "apiVersion: berth.dev/v1\nkind: ModelService\nname: mixed\nmodels: [{path: models/tf}]\n");
    var small = resources(ManifestGenerator.of(ServiceSpec.load(file), IMAGE, "ml").objects());
    assertEquals(new Quantity("1024Mi"), small.getRequests().get("memory"));
  }

  @Test
  void gpusSwitchOnTheCudaProviderThroughTheServingConfig() throws IOException {
    List<HasMetadata> gpu = objects("deploy: {gpus: 1}\n");
    assertEquals("cuda", find(gpu, ConfigMap.class).getData().get("BERTH_EXECUTION_PROVIDER"));
    assertEquals(
        "cpu", find(objects(""), ConfigMap.class).getData().get("BERTH_EXECUTION_PROVIDER"));
    // a provider the service names itself wins over the GPUs' default
    assertEquals(
        "cpu",
        find(objects("deploy: {gpus: 1}\nserving: {execution-provider: cpu}\n"), ConfigMap.class)
            .getData()
            .get("BERTH_EXECUTION_PROVIDER"));
  }

  @Test
  void theServingConfigIsImmutableAndNamedByItsContent() throws IOException {
    ConfigMap info = find(objects("serving: {log-level: info}\n"), ConfigMap.class);
    ConfigMap debug = find(objects("serving: {log-level: debug}\n"), ConfigMap.class);
    assertEquals(Boolean.TRUE, info.getImmutable());
    assertTrue(info.getMetadata().getName().startsWith("minilm-serving-"));
    assertFalse(info.getMetadata().getName().equals(debug.getMetadata().getName()));
    Deployment d = find(objects("serving: {log-level: info}\n"), Deployment.class);
    assertEquals(
        info.getMetadata().getName(),
        d.getSpec()
            .getTemplate()
            .getSpec()
            .getContainers()
            .get(0)
            .getEnvFrom()
            .get(0)
            .getConfigMapRef()
            .getName());
    assertEquals(
        "minilm:1", d.getMetadata().getAnnotations().get(ManifestGenerator.MODELS_ANNOTATION));
  }

  @Test
  void aCanaryIsItsOwnDeploymentWhosePodsTheServiceSelects() throws Exception {
    ManifestGenerator stable = ManifestGenerator.of(service(""), IMAGE, "ml");
    ManifestGenerator canary = stable.canary(2, 20);
    List<HasMetadata> objects = canary.objects();
    assertEquals(
        List.of("ConfigMap", "Deployment"), objects.stream().map(HasMetadata::getKind).toList());
    Deployment d = find(objects, Deployment.class);
    assertEquals("minilm-canary", d.getMetadata().getName());
    assertEquals(2, d.getSpec().getReplicas());
    assertTrue(
        find(objects, ConfigMap.class)
            .getMetadata()
            .getName()
            .startsWith("minilm-canary-serving-"));
    Map<String, String> podLabels = d.getSpec().getTemplate().getMetadata().getLabels();
    assertEquals("minilm-canary", podLabels.get("app.kubernetes.io/instance"));
    assertEquals(
        "minilm-canary",
        d.getSpec().getSelector().getMatchLabels().get("app.kubernetes.io/instance"));
    var kubeService = find(stable.objects(), io.fabric8.kubernetes.api.model.Service.class);
    assertTrue(podLabels.entrySet().containsAll(kubeService.getSpec().getSelector().entrySet()));
    Deployment stableDeployment = find(stable.objects(), Deployment.class);
    assertFalse(
        podLabels
            .entrySet()
            .containsAll(stableDeployment.getSpec().getSelector().getMatchLabels().entrySet()),
        "the stable Deployment does not adopt the canary's pods");
    KubernetesSerialization serialization = new KubernetesSerialization();
    for (String doc : canary.yaml().split("(?m)^---\\n")) {
      if (!doc.isBlank()) {
        HasMetadata o = serialization.unmarshal(doc);
        assertNoUnknownFields(o, o.getKind(), new IdentityHashMap<>());
      }
    }
  }

  @Test
  void behindAGatewayAnHttpRouteSplitsByWeightBetweenStableAndCanaryServices() throws Exception {
    ManifestGenerator stable =
        ManifestGenerator.of(
            service(
                "deploy: {gateway: {name: public, namespace: infra,"
                    + " hostnames: [models.example.com]}}\n"),
            IMAGE,
            "ml");
    List<HasMetadata> objects = stable.objects();
    assertEquals(
        List.of(
            "ServiceAccount/minilm",
            "ConfigMap/" + find(objects, ConfigMap.class).getMetadata().getName(),
            "Deployment/minilm",
            "Service/minilm",
            "Service/minilm-stable",
            "HorizontalPodAutoscaler/minilm",
            "PodDisruptionBudget/minilm",
            "NetworkPolicy/minilm",
            "HTTPRoute/minilm"),
        objects.stream().map(o -> o.getKind() + "/" + o.getMetadata().getName()).toList());
    HTTPRoute route = find(objects, HTTPRoute.class);
    assertEquals("gateway.networking.k8s.io/v1", route.getApiVersion());
    var parent = route.getSpec().getParentRefs().get(0);
    assertEquals(
        List.of("Gateway", "public", "infra"),
        List.of(parent.getKind(), parent.getName(), parent.getNamespace()));
    assertEquals(List.of("models.example.com"), route.getSpec().getHostnames());
    assertEquals(List.of("minilm-stable:8080=100"), backends(route));
    var stableService =
        objects.stream()
            .filter(o -> o.getMetadata().getName().equals("minilm-stable"))
            .map(io.fabric8.kubernetes.api.model.Service.class::cast)
            .findFirst()
            .orElseThrow();
    assertEquals(
        find(objects, Deployment.class).getSpec().getSelector().getMatchLabels(),
        stableService.getSpec().getSelector(),
        "minilm-stable selects the stable pods only");
    NetworkPolicy np = find(objects, NetworkPolicy.class);
    assertTrue(
        np.getSpec().getIngress().get(0).getFrom().stream()
            .anyMatch(
                p ->
                    p.getNamespaceSelector() != null
                        && "infra"
                            .equals(
                                p.getNamespaceSelector()
                                    .getMatchLabels()
                                    .get("kubernetes.io/metadata.name"))),
        "the gateway's namespace may reach the pods");

    ManifestGenerator canary = stable.canary(1, 10);
    List<HasMetadata> canaryObjects = canary.objects();
    assertEquals(
        List.of("ConfigMap", "Deployment", "Service", "Service", "HTTPRoute"),
        canaryObjects.stream().map(HasMetadata::getKind).toList());
    assertEquals(
        List.of("minilm-stable:8080=90", "minilm-canary:8080=10"),
        backends(find(canaryObjects, HTTPRoute.class)));
    assertEquals(
        Map.of("app.kubernetes.io/name", "minilm", "app.kubernetes.io/instance", "minilm-canary"),
        ((io.fabric8.kubernetes.api.model.Service) canaryObjects.get(3)).getSpec().getSelector());
    assertEquals(stableService, canaryObjects.get(2), "both apply the same minilm-stable");
    assertEquals(
        find(objects, HTTPRoute.class).getMetadata(),
        find(canaryObjects, HTTPRoute.class).getMetadata());

    KubernetesSerialization serialization = new KubernetesSerialization();
    for (String doc : (stable.yaml() + canary.yaml()).split("(?m)^---\\n")) {
      if (!doc.isBlank()) {
        HasMetadata o = serialization.unmarshal(doc);
        assertNoUnknownFields(o, o.getKind(), new IdentityHashMap<>());
      }
    }
    assertTrue(serialization.unmarshal(canary.yaml().split("(?m)^---\\n")[5]) instanceof HTTPRoute);
  }

  @Test
  void theCommandLineGatewayReplacesTheFilesAndKeepsItsHostNames() throws IOException {
    ServiceSpec file =
        service("deploy: {gateway: {name: public, hostnames: [models.example.com]}}\n");
    ManifestGenerator g =
        ManifestGenerator.of(file, IMAGE, "ml").gateway(ServiceSpec.Gateway.parse("edge/infra"));
    HTTPRoute route = find(g.objects(), HTTPRoute.class);
    assertEquals("edge", route.getSpec().getParentRefs().get(0).getName());
    assertEquals("infra", route.getSpec().getParentRefs().get(0).getNamespace());
    assertEquals(List.of("models.example.com"), route.getSpec().getHostnames());
    assertTrue(
        ManifestGenerator.of(service(""), IMAGE, "ml").objects().stream()
            .noneMatch(o -> o instanceof HTTPRoute),
        "no gateway, no route");
  }

  private static List<String> backends(HTTPRoute route) {
    return route.getSpec().getRules().stream()
        .flatMap(r -> r.getBackendRefs().stream())
        .map(b -> b.getName() + ":" + b.getPort() + "=" + b.getWeight())
        .toList();
  }

  @Test
  void theAutoscalerOwnsReplicasAndCanTargetInflightRequests() throws IOException {
    List<HasMetadata> objects =
        objects(
            "deploy: {autoscaling: {min-replicas: 2, max-replicas: 8, target-inflight-per-pod: 16}}\n");
    assertNull(find(objects, Deployment.class).getSpec().getReplicas());
    HorizontalPodAutoscaler hpa = find(objects, HorizontalPodAutoscaler.class);
    assertEquals(2, hpa.getSpec().getMinReplicas());
    assertEquals(8, hpa.getSpec().getMaxReplicas());
    assertEquals(2, hpa.getSpec().getMetrics().size());
    assertEquals(
        "berth_inflight_requests",
        hpa.getSpec().getMetrics().get(1).getPods().getMetric().getName());

    // a CPU target of 0: on requests in flight alone (a language model's CPUs are always busy)
    HorizontalPodAutoscaler inflightOnly =
        find(
            objects(
                "deploy: {autoscaling: {target-cpu-utilization: 0, target-inflight-per-pod: 4}}\n"),
            HorizontalPodAutoscaler.class);
    assertEquals(1, inflightOnly.getSpec().getMetrics().size());
    assertEquals("Pods", inflightOnly.getSpec().getMetrics().get(0).getType());
  }

  @Test
  void theNetworkPolicyAdmitsOnlyTheServingPortsFromAllowedNamespaces() throws IOException {
    NetworkPolicy np =
        find(objects("deploy: {allow-from-namespaces: [web, batch]}\n"), NetworkPolicy.class);
    assertEquals(List.of("Ingress"), np.getSpec().getPolicyTypes());
    var ingress = np.getSpec().getIngress().get(0);
    assertEquals(
        List.of("web", "batch"),
        ingress.getFrom().stream()
            .map(p -> p.getNamespaceSelector().getMatchLabels().get("kubernetes.io/metadata.name"))
            .toList());
    assertEquals(
        List.of(8080, 8081),
        ingress.getPorts().stream().map(p -> p.getPort().getIntVal()).toList());
  }

  @Test
  void theYamlParsesBackStrictlyIntoTheSameObjects() throws Exception {
    ManifestGenerator generator = ManifestGenerator.of(service(""), IMAGE, "ml");
    String yaml = generator.yaml();
    KubernetesSerialization serialization = new KubernetesSerialization();
    List<HasMetadata> parsed = new ArrayList<>();
    for (String doc : yaml.split("(?m)^---\\n")) {
      if (!doc.isBlank()) {
        parsed.add(serialization.unmarshal(doc));
      }
    }
    assertEquals(generator.objects(), parsed);
    for (HasMetadata o : parsed) {
      assertNoUnknownFields(o, o.getKind(), new IdentityHashMap<>());
    }
  }

  @Test
  void oneFilePerObjectInApplyOrder() throws IOException {
    ManifestGenerator generator = ManifestGenerator.of(service(""), IMAGE, "ml");
    List<Path> files = generator.writeFiles(dir.resolve("out"));
    assertEquals(generator.objects().size(), files.size());
    assertEquals("01-serviceaccount-minilm.yaml", files.get(0).getFileName().toString());
    assertEquals("03-deployment-minilm.yaml", files.get(2).getFileName().toString());
    KubernetesSerialization serialization = new KubernetesSerialization();
    for (int i = 0; i < files.size(); i++) {
      HasMetadata parsed = serialization.unmarshal(Files.readString(files.get(i)));
      assertEquals(generator.objects().get(i), parsed);
    }
  }

  @Test
  void snapshot() throws IOException {
    String yaml = ManifestGenerator.of(service(""), IMAGE, "ml").yaml();
    Path snapshot = Path.of("src/test/resources/dev/berth/kube/minilm.yaml");
    if (Boolean.getBoolean("berth.updateSnapshots")) {
      Files.writeString(snapshot, yaml);
    }
    assertEquals(Files.readString(snapshot, StandardCharsets.UTF_8), yaml);
  }

  // ---- remote models

  private static final String OCI_MODEL = "oci://registry.example/models/embedder:3";

  /** A service of the local minilm and these {@code models:} entries, then {@code extra}. */
  private ServiceSpec remote(String entries, String extra) throws IOException {
    Path file = dir.resolve("berth.yaml");
    Files.writeString(
        file,
        "apiVersion: berth.dev/v1\nkind: ModelService\nname: minilm\n"
            + "models:\n  - {path: models/minilm}\n"
            + entries
            + extra);
    return ServiceSpec.load(file);
  }

  private List<HasMetadata> remoteObjects(String entries, String extra) throws IOException {
    return ManifestGenerator.of(remote(entries, extra), IMAGE, "ml").objects();
  }

  private static PodSpec pod(List<HasMetadata> objects) {
    return find(objects, Deployment.class).getSpec().getTemplate().getSpec();
  }

  private static io.fabric8.kubernetes.api.model.Volume volume(PodSpec pod, String name) {
    return pod.getVolumes().stream()
        .filter(v -> v.getName().equals(name))
        .findFirst()
        .orElseThrow(() -> new AssertionError("no volume " + name + " in " + pod.getVolumes()));
  }

  private static io.fabric8.kubernetes.api.model.VolumeMount mountAt(Container c, String path) {
    return c.getVolumeMounts().stream()
        .filter(m -> m.getMountPath().equals(path))
        .findFirst()
        .orElseThrow(() -> new AssertionError("nothing mounted at " + path));
  }

  private static Map<String, String> env(Container c) {
    return c.getEnv().stream()
        .collect(
            Collectors.toMap(
                io.fabric8.kubernetes.api.model.EnvVar::getName,
                io.fabric8.kubernetes.api.model.EnvVar::getValue));
  }

  @Test
  void remoteModelsAreServedFromTheServiceFileAndFetchedIntoACacheVolume() throws Exception {
    List<HasMetadata> objects = remoteObjects("  - {source: " + OCI_MODEL + "}\n", "");
    PodSpec pod = pod(objects);
    assertRestricted(pod);
    Container c = pod.getContainers().get(0);
    assertEquals(List.of("serve", "/opt/berth/berth.yaml"), c.getArgs());
    // the root file system is read-only: the cache is a volume of the pod's own
    var cache = volume(pod, "model-cache");
    assertNotNull(cache.getEmptyDir());
    assertNull(cache.getEmptyDir().getSizeLimit());
    var mount = mountAt(c, "/var/cache/berth/models");
    assertEquals("model-cache", mount.getName());
    assertFalse(Boolean.TRUE.equals(mount.getReadOnly()), "the server writes its cache");
    assertEquals("/var/cache/berth/models", env(c).get("BERTH_MODEL_CACHE"));
    assertNull(env(c).get("DOCKER_CONFIG"));
    assertEquals(1, c.getEnvFrom().size(), "the ConfigMap only");
    assertTrue(pod.getImagePullSecrets().isEmpty());
    assertTrue(pod.getVolumes().stream().allMatch(v -> v.getImage() == null), "downloaded");
    Map<String, String> config = find(objects, ConfigMap.class).getData();
    assertNull(config.get("BERTH_MODEL_MOUNT"));
    assertNull(config.get("BERTH_MODEL_CACHE"), "the container's own variable names the cache");
    // a first start downloads before it is ready
    assertEquals(
        ManifestGenerator.FETCHING_STARTUP_FAILURES, c.getStartupProbe().getFailureThreshold());
    assertEquals(
        "minilm:1 embedder@" + OCI_MODEL,
        find(objects, Deployment.class)
            .getMetadata()
            .getAnnotations()
            .get(ManifestGenerator.MODELS_ANNOTATION));
  }

  @Test
  void theCacheIsAnEmptyDirOfTheGivenSizeOrTheClaimEveryPodShares() throws IOException {
    String model = "  - {source: s3://models/embedder}\n";
    List<HasMetadata> sized = remoteObjects(model, "deploy: {model-cache: {size: 20Gi}}\n");
    assertEquals(
        new Quantity("20Gi"), volume(pod(sized), "model-cache").getEmptyDir().getSizeLimit());
    // the server evicts before the kubelet evicts the pod for filling its emptyDir
    assertEquals(
        String.valueOf(10L << 30),
        find(sized, ConfigMap.class).getData().get("BERTH_MODEL_CACHE_SIZE"));
    assertEquals(
        "5GiB",
        find(
                remoteObjects(
                    model,
                    "serving: {model-cache-size: 5GiB}\ndeploy: {model-cache: {size: 20Gi}}\n"),
                ConfigMap.class)
            .getData()
            .get("BERTH_MODEL_CACHE_SIZE"),
        "the file's own size wins");
    assertEquals(String.valueOf(750_000_000L), ManifestGenerator.cacheSize("1500M"));

    List<HasMetadata> claimed =
        remoteObjects(
            model, "serving: {model-cache: cache}\ndeploy: {model-cache: {claim: models-cache}}\n");
    var cache = volume(pod(claimed), "model-cache");
    assertNull(cache.getEmptyDir());
    assertEquals("models-cache", cache.getPersistentVolumeClaim().getClaimName());
    Map<String, String> config = find(claimed, ConfigMap.class).getData();
    assertNull(config.get("BERTH_MODEL_CACHE_SIZE"));
    assertNull(config.get("BERTH_MODEL_CACHE"), "a path of this machine never reaches the pods");
  }

  @Test
  void registryAndS3CredentialsComeFromTheirSecrets() throws IOException {
    PodSpec pod =
        pod(
            remoteObjects(
                "  - {source: " + OCI_MODEL + "}\n  - {source: s3://models/ranker}\n",
                "deploy: {model-credentials: {registry: regcred, s3: s3-creds}}\n"));
    var secret = volume(pod, "registry-credentials").getSecret();
    assertEquals("regcred", secret.getSecretName());
    assertEquals(0440, secret.getDefaultMode());
    assertEquals(1, secret.getItems().size());
    assertEquals(".dockerconfigjson", secret.getItems().get(0).getKey());
    assertEquals("config.json", secret.getItems().get(0).getPath());
    Container c = pod.getContainers().get(0);
    var mount = mountAt(c, "/var/run/secrets/berth/registry");
    assertEquals("registry-credentials", mount.getName());
    assertEquals(Boolean.TRUE, mount.getReadOnly());
    assertEquals("/var/run/secrets/berth/registry", env(c).get("DOCKER_CONFIG"));
    assertEquals(2, c.getEnvFrom().size());
    assertNotNull(c.getEnvFrom().get(0).getConfigMapRef());
    assertEquals("s3-creds", c.getEnvFrom().get(1).getSecretRef().getName());
    assertTrue(pod.getImagePullSecrets().isEmpty(), "the server pulls, not the kubelet");
  }

  @Test
  void imageVolumesMountOciModelsAndTheServerServesThemFromThere() throws Exception {
    String digest = "oci://registry.example/models/Ranker.v2@sha256:" + "cd".repeat(32);
    List<HasMetadata> objects =
        remoteObjects(
            "  - {source: "
                + OCI_MODEL
                + "}\n  - {source: \""
                + digest
                + "\"}\n  - {source: s3://models/tagger}\n"
                + "  - {source: https://models.example/files/intent.onnx}\n",
            "deploy:\n  oci-models: image-volume\n  model-cache: {claim: models-cache}\n"
                + "  model-credentials: {registry: regcred}\n");
    PodSpec pod = pod(objects);
    var embedder = volume(pod, "model-image-embedder").getImage();
    assertEquals("registry.example/models/embedder:3", embedder.getReference());
    assertEquals("Always", embedder.getPullPolicy(), "a tag is looked up on every start");
    String rankerVolume = ManifestGenerator.imageVolumeName("Ranker.v2");
    assertTrue(rankerVolume.matches("[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"), rankerVolume);
    assertTrue(rankerVolume.startsWith("model-image-ranker-v2-"), rankerVolume);
    var ranker = volume(pod, rankerVolume).getImage();
    assertEquals(digest.substring("oci://".length()), ranker.getReference());
    assertEquals("IfNotPresent", ranker.getPullPolicy());
    assertEquals(2, pod.getVolumes().stream().filter(v -> v.getImage() != null).count());
    Container c = pod.getContainers().get(0);
    for (String[] m :
        new String[][] {{"embedder", "model-image-embedder"}, {"Ranker.v2", rankerVolume}}) {
      var mount = mountAt(c, "/opt/berth/mounted/" + m[0]);
      assertEquals(m[1], mount.getName());
      assertEquals(Boolean.TRUE, mount.getReadOnly());
    }
    assertEquals(List.of("serve", "/opt/berth/berth.yaml"), c.getArgs());
    // s3:// and https:// models are still downloaded, into the cache on the claim
    assertEquals(
        "embedder=/opt/berth/mounted/embedder,Ranker.v2=/opt/berth/mounted/Ranker.v2",
        find(objects, ConfigMap.class).getData().get("BERTH_MODEL_MOUNT"));
    assertEquals("/var/cache/berth/models", env(c).get("BERTH_MODEL_CACHE"));
    // the kubelet pulls image volumes with the pod's pull secrets
    assertEquals(
        List.of("regcred"), pod.getImagePullSecrets().stream().map(r -> r.getName()).toList());

    KubernetesSerialization serialization = new KubernetesSerialization();
    List<HasMetadata> parsed = new ArrayList<>();
    for (String doc : ManifestGenerator.yaml(objects).split("(?m)^---\\n")) {
      if (!doc.isBlank()) {
        HasMetadata o = serialization.unmarshal(doc);
        assertNoUnknownFields(o, o.getKind(), new IdentityHashMap<>());
        parsed.add(o);
      }
    }
    assertEquals(objects, parsed);
  }

  @Test
  void imageVolumesWithoutOciModelsMountNothing() throws IOException {
    List<HasMetadata> objects =
        remoteObjects(
            "  - {source: s3://models/tagger}\n",
            "deploy: {oci-models: image-volume, model-credentials: {registry: regcred}}\n");
    PodSpec pod = pod(objects);
    assertTrue(pod.getVolumes().stream().allMatch(v -> v.getImage() == null));
    assertTrue(pod.getImagePullSecrets().isEmpty());
    assertNull(find(objects, ConfigMap.class).getData().get("BERTH_MODEL_MOUNT"));
  }

  @Test
  void theFilesOwnModelMountsAreKeptBesideTheImageVolumes() throws IOException {
    List<HasMetadata> objects =
        remoteObjects(
            "  - {source: "
                + OCI_MODEL
                + "}\n  - {source: oci://registry.example/models/tagger:1}\n",
            "serving: {model-mount: [tagger=/data/tagger]}\ndeploy: {oci-models: image-volume}\n");
    assertEquals(
        "tagger=/data/tagger,embedder=/opt/berth/mounted/embedder",
        find(objects, ConfigMap.class).getData().get("BERTH_MODEL_MOUNT"));
    assertEquals(
        List.of("model-image-embedder"),
        pod(objects).getVolumes().stream()
            .filter(v -> v.getImage() != null)
            .map(v -> v.getName())
            .toList(),
        "no image volume for a model the file mounts itself");
  }

  @Test
  void modelFetchSettingsChangeNothingForAServiceWhoseModelsAreAllInItsImage() throws IOException {
    assertEquals(
        objects(""),
        objects(
            "deploy:\n  oci-models: image-volume\n  model-cache: {claim: models-cache}\n"
                + "  model-credentials: {registry: regcred, s3: s3-creds}\n"));
  }

  @Test
  void remoteModelSnapshot() throws IOException {
    String yaml =
        ManifestGenerator.of(
                remote(
                    "  - {source: " + OCI_MODEL + "}\n",
                    "deploy:\n  oci-models: image-volume\n  model-cache: {claim: models-cache}\n"
                        + "  model-credentials: {registry: regcred}\n"),
                IMAGE,
                "ml")
            .yaml();
    Path snapshot = Path.of("src/test/resources/dev/berth/kube/minilm-remote.yaml");
    if (Boolean.getBoolean("berth.updateSnapshots")) {
      Files.writeString(snapshot, yaml);
    }
    assertEquals(Files.readString(snapshot, StandardCharsets.UTF_8), yaml);
  }

  /**
   * Fails on any field the typed model did not know (fabric8 keeps them as additional properties).
   */
  private static void assertNoUnknownFields(Object o, String where, Map<Object, Boolean> seen)
      throws Exception {
    if (o == null || seen.put(o, true) != null) {
      return;
    }
    if (o instanceof List<?> list) {
      for (Object e : list) {
        assertNoUnknownFields(e, where + "[]", seen);
      }
      return;
    }
    if (o instanceof Map<?, ?> map) {
      for (Object e : map.values()) {
        assertNoUnknownFields(e, where + "{}", seen);
      }
      return;
    }
    if (!(o instanceof KubernetesResource)) {
      return;
    }
    for (Method m : o.getClass().getMethods()) {
      if (m.getParameterCount() != 0
          || !m.getName().startsWith("get")
          || m.getName().equals("getClass")) {
        continue;
      }
      Object value = m.invoke(o);
      if (m.getName().equals("getAdditionalProperties")) {
        assertTrue(((Map<?, ?>) value).isEmpty(), where + " has unknown fields " + value);
        continue;
      }
      if (!Set.of(String.class, Integer.class, Long.class, Boolean.class)
          .contains(m.getReturnType())) {
        assertNoUnknownFields(value, where + "." + m.getName().substring(3), seen);
      }
    }
  }
}
