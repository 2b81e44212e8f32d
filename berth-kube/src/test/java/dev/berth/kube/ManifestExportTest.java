package dev.berth.kube;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.berth.runtime.ServiceSpec;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.EnvVar;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.KubernetesList;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ManifestExportTest {
  private static final String IMAGE = "registry.example/ml/minilm:1@sha256:" + "ab".repeat(32);

  private final KubernetesSerialization serialization = new KubernetesSerialization();

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

  private ManifestGenerator generator(String extra) throws IOException {
    return ManifestGenerator.of(service(extra), IMAGE, "ml");
  }

  private static <T> T find(List<HasMetadata> objects, Class<T> type) {
    return objects.stream().filter(type::isInstance).map(type::cast).findFirst().orElseThrow();
  }

  @SuppressWarnings("unchecked")
  private Map<String, Object> yamlMap(Path file) throws IOException {
    return serialization.unmarshal(Files.readString(file), Map.class);
  }

  // ---- kustomize

  @Test
  void theBaseListsOneFilePerObjectInApplyOrder() throws IOException {
    ManifestGenerator generator = generator("");
    Path out = dir.resolve("k8s");
    List<Path> files = ManifestExport.kustomize(generator, out);
    for (Path f : files) {
      assertTrue(Files.isRegularFile(f), f.toString());
      if (f.toString().endsWith(".json")) {
        continue; // the Grafana dashboard: JSON has no comments
      }
      assertTrue(
          Files.readString(f).startsWith(ManifestExport.GENERATED),
          f + " starts with the generated header");
    }
    Path base = out.resolve("base");
    List<String> expected = new ArrayList<>();
    List<HasMetadata> objects = generator.objects();
    for (int i = 0; i < objects.size(); i++) {
      expected.add(ManifestGenerator.fileName(i + 1, objects.get(i)));
    }
    assertEquals("01-serviceaccount-minilm.yaml", expected.get(0));
    Map<String, Object> kustomization = yamlMap(base.resolve("kustomization.yaml"));
    assertEquals("kustomize.config.k8s.io/v1beta1", kustomization.get("apiVersion"));
    assertEquals("Kustomization", kustomization.get("kind"));
    assertEquals(expected, kustomization.get("resources"));
    assertTrue(files.contains(base.resolve("kustomization.yaml")));
    for (String name : expected) {
      assertTrue(files.contains(base.resolve(name)), name + " is among the files returned");
    }
    String header = Files.readString(base.resolve("kustomization.yaml"));
    assertTrue(header.contains("kubectl kustomize " + out + "/base"), header);
    assertTrue(header.contains("kubectl apply -k " + out + "/overlays/production"), header);
  }

  @Test
  void theBaseFilesParseBackIntoTheDryRunObjects() throws IOException {
    ManifestGenerator generator = generator("");
    Path base = dir.resolve("k8s/base");
    ManifestExport.kustomize(generator, dir.resolve("k8s"));
    List<HasMetadata> parsed = new ArrayList<>();
    for (Object name : (List<?>) yamlMap(base.resolve("kustomization.yaml")).get("resources")) {
      parsed.add(serialization.unmarshal(Files.readString(base.resolve((String) name))));
    }
    assertEquals(generator.objects(), parsed);
  }

  @Test
  void theOverlayPatchesReplicasAndRequestsOfTheBase() throws IOException {
    Path out = dir.resolve("k8s");
    ManifestExport.kustomize(generator(""), out);
    Path overlay = out.resolve("overlays/production");
    Map<String, Object> kustomization = yamlMap(overlay.resolve("kustomization.yaml"));
    assertEquals("kustomize.config.k8s.io/v1beta1", kustomization.get("apiVersion"));
    assertEquals(List.of("../../base"), kustomization.get("bases"));
    assertEquals("ml", kustomization.get("namespace"));
    assertEquals(
        List.of(ManifestExport.DEPLOYMENT_PATCH, ManifestExport.AUTOSCALER_PATCH),
        kustomization.get("patchesStrategicMerge"));

    HorizontalPodAutoscaler hpa =
        serialization.unmarshal(Files.readString(overlay.resolve(ManifestExport.AUTOSCALER_PATCH)));
    assertEquals("minilm", hpa.getMetadata().getName());
    assertEquals("ml", hpa.getMetadata().getNamespace());
    assertEquals(4, hpa.getSpec().getMinReplicas());
    assertEquals(10, hpa.getSpec().getMaxReplicas());

    Deployment deployment =
        serialization.unmarshal(Files.readString(overlay.resolve(ManifestExport.DEPLOYMENT_PATCH)));
    assertEquals("minilm", deployment.getMetadata().getName());
    assertNull(deployment.getSpec().getReplicas(), "the autoscaler owns replicas");
    Container server = deployment.getSpec().getTemplate().getSpec().getContainers().get(0);
    assertEquals("server", server.getName());
    // the base requests 1 CPU and 1Gi (the generator's defaults); the overlay doubles them
    assertEquals(new Quantity("2"), server.getResources().getRequests().get("cpu"));
    assertEquals(new Quantity("2Gi"), server.getResources().getRequests().get("memory"));
  }

  @Test
  void withoutAutoscalingTheOverlayDoublesReplicasRequestsAndLimits() throws IOException {
    Path out = dir.resolve("k8s");
    ManifestExport.kustomize(
        generator(
            "deploy: {replicas: 3, autoscaling: {enabled: false},"
                + " resources: {requests: {cpu: 500m}, limits: {memory: 2Gi}}}\n"),
        out);
    Path overlay = out.resolve("overlays/production");
    assertEquals(
        List.of(ManifestExport.DEPLOYMENT_PATCH),
        yamlMap(overlay.resolve("kustomization.yaml")).get("patchesStrategicMerge"));
    assertFalse(Files.exists(overlay.resolve(ManifestExport.AUTOSCALER_PATCH)));
    Deployment deployment =
        serialization.unmarshal(Files.readString(overlay.resolve(ManifestExport.DEPLOYMENT_PATCH)));
    assertEquals(6, deployment.getSpec().getReplicas());
    var resources =
        deployment.getSpec().getTemplate().getSpec().getContainers().get(0).getResources();
    assertEquals(new Quantity("1000m"), resources.getRequests().get("cpu"));
    // only limited: the base requests the limit, and both double
    assertEquals(new Quantity("4Gi"), resources.getRequests().get("memory"));
    assertEquals(new Quantity("4Gi"), resources.getLimits().get("memory"));
    assertNull(resources.getLimits().get("cpu"));
  }

  @Test
  void aLaterExportKeepsTheOverlayAndDropsStaleBaseFiles() throws IOException {
    Path out = dir.resolve("k8s");
    ManifestExport.kustomize(generator(""), out);
    Path overlayPatch = out.resolve("overlays/production").resolve(ManifestExport.DEPLOYMENT_PATCH);
    Files.writeString(overlayPatch, Files.readString(overlayPatch) + "# edited by the team\n");
    Path mine = Files.writeString(out.resolve("base/notes.yaml"), "# not generated\n");

    ManifestGenerator changed = generator("serving: {log-level: debug}\n");
    List<Path> files = ManifestExport.kustomize(changed, out);

    assertTrue(Files.readString(overlayPatch).endsWith("# edited by the team\n"));
    assertTrue(
        files.stream().noneMatch(f -> f.startsWith(out.resolve("overlays"))), files::toString);
    assertTrue(Files.exists(mine), "a file the export did not write stays");
    try (Stream<Path> base = Files.list(out.resolve("base"))) {
      List<Path> yamlFiles =
          base.filter(f -> !f.equals(mine)).sorted().collect(Collectors.toList());
      assertEquals(
          files.stream().filter(f -> f.startsWith(out.resolve("base"))).sorted().toList(),
          yamlFiles,
          "the old ConfigMap's file is gone");
    }
  }

  // ---- signature policy

  private static String publicKeyPem() throws Exception {
    java.security.KeyPairGenerator g = java.security.KeyPairGenerator.getInstance("EC");
    g.initialize(new java.security.spec.ECGenParameterSpec("secp256r1"));
    return dev.berth.runtime.SigningKeys.pem(g.generateKeyPair().getPublic());
  }

  @Test
  void trustedKeysAddAPolicyThatAdmitsTheImageSignedByAnyOfThem() throws Exception {
    Path kubectl = kubectl();
    String first = publicKeyPem();
    String second = publicKeyPem();
    Path out = dir.resolve("k8s");
    List<Path> files = ManifestExport.kustomize(generator(""), out, List.of(first, second));
    assertTrue(files.contains(out.resolve("policy/clusterimagepolicy.yaml")), files.toString());

    List<HasMetadata> rendered = kustomize(kubectl, out.resolve("policy"));
    assertEquals(1, rendered.size());
    GenericKubernetesResource policy = (GenericKubernetesResource) rendered.get(0);
    assertEquals("policy.sigstore.dev/v1beta1", policy.getApiVersion());
    assertEquals("ClusterImagePolicy", policy.getKind());
    assertEquals("berth-minilm-signed", policy.getMetadata().getName());
    assertNull(policy.getMetadata().getNamespace(), "a cluster-scoped object");
    @SuppressWarnings("unchecked")
    Map<String, Object> spec = (Map<String, Object>) policy.getAdditionalProperties().get("spec");
    assertEquals(List.of(Map.of("glob", "registry.example/ml/minilm*")), spec.get("images"));
    @SuppressWarnings("unchecked")
    List<Map<String, Object>> authorities = (List<Map<String, Object>>) spec.get("authorities");
    assertEquals(2, authorities.size());
    for (int i = 0; i < 2; i++) {
      @SuppressWarnings("unchecked")
      Map<String, Object> key = (Map<String, Object>) authorities.get(i).get("key");
      assertEquals(i == 0 ? first : second, key.get("data"));
      assertEquals("sha256", key.get("hashAlgorithm"));
      assertFalse(authorities.get(i).containsKey("ctlog"), "key authorities skip the tlog");
    }
    // the service's own objects do not change
    assertEquals(
        byKindAndName(generator("").objects()),
        byKindAndName(kustomize(kubectl, out.resolve("base"))));
  }

  @Test
  void anExportWithoutTrustedKeysRemovesAnEarlierPolicy() throws Exception {
    Path out = dir.resolve("k8s");
    ManifestExport.kustomize(generator(""), out, List.of(publicKeyPem()));
    assertTrue(Files.exists(out.resolve("policy/clusterimagepolicy.yaml")));
    ManifestExport.kustomize(generator(""), out);
    assertFalse(Files.exists(out.resolve("policy/clusterimagepolicy.yaml")));
    assertFalse(Files.exists(out.resolve("policy/kustomization.yaml")));
  }

  @Test
  void thePolicyGlobIsTheImagesRepositoryAsPolicyControllerNamesIt() {
    assertEquals("registry.example/ml/minilm*", ImagePolicy.glob(IMAGE));
    assertEquals("127.0.0.1:5000/berth/minilm*", ImagePolicy.glob("127.0.0.1:5000/berth/minilm"));
    assertEquals("localhost/m*", ImagePolicy.glob("localhost/m:v1"));
    assertEquals("index.docker.io/berth/minilm*", ImagePolicy.glob("berth/minilm:latest"));
    assertEquals("index.docker.io/library/minilm*", ImagePolicy.glob("minilm"));
    assertEquals("index.docker.io/me/minilm*", ImagePolicy.glob("docker.io/me/minilm:1"));
    assertEquals(
        "reg.example:8443/a/b*", ImagePolicy.glob("docker://reg.example:8443/a/b@sha256:00"));
  }

  @Test
  void aPolicyRefusesSomethingThatIsNotAPublicKey() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> ImagePolicy.of("m", IMAGE, List.of("-----BEGIN PRIVATE KEY-----\nAAA\n")));
    assertTrue(e.getMessage().contains("not a PEM public key"), e.getMessage());
    assertThrows(IllegalArgumentException.class, () -> ImagePolicy.of("m", IMAGE, List.of()));
  }

  @Test
  void kubectlRendersTheBaseAsTheDryRunObjects() throws Exception {
    Path kubectl = kubectl();
    ManifestGenerator generator = generator("");
    Path out = dir.resolve("k8s");
    ManifestExport.kustomize(generator, out);
    List<HasMetadata> rendered = kustomize(kubectl, out.resolve("base"));
    assertEquals(byKindAndName(generator.objects()), byKindAndName(rendered));
  }

  @Test
  void kubectlRendersTheMonitoringDirectoryWithTheDashboardInAConfigMap() throws Exception {
    Path kubectl = kubectl();
    ManifestGenerator generator = generator("");
    Path out = dir.resolve("k8s");
    ManifestExport.kustomize(generator, out);
    List<HasMetadata> rendered = kustomize(kubectl, out.resolve("monitoring"));
    assertEquals(
        List.of("ConfigMap/minilm-dashboard", "PodMonitor/minilm", "PrometheusRule/minilm"),
        rendered.stream()
            .map(o -> o.getKind() + "/" + o.getMetadata().getName())
            .sorted()
            .toList());
    assertTrue(rendered.stream().allMatch(o -> "ml".equals(o.getMetadata().getNamespace())));
    ConfigMap dashboard = find(rendered, ConfigMap.class);
    assertEquals("1", dashboard.getMetadata().getLabels().get("grafana_dashboard"));
    assertEquals(
        new String(Monitoring.dashboardJson("minilm"), UTF_8),
        dashboard.getData().get("minilm-dashboard.json"));
    GenericKubernetesResource rule =
        rendered.stream()
            .filter(o -> o.getKind().equals("PrometheusRule"))
            .map(GenericKubernetesResource.class::cast)
            .findFirst()
            .orElseThrow();
    assertEquals(Monitoring.rulesFile("minilm"), rule.getAdditionalProperties().get("spec"));
  }

  @Test
  void kubectlRendersTheOverlayWithItsNamespaceAndSizing() throws Exception {
    Path kubectl = kubectl();
    ManifestGenerator generator = generator("");
    Path out = dir.resolve("k8s");
    ManifestExport.kustomize(generator, out);
    assertOverlay(generator, kustomize(kubectl, out.resolve("overlays/production")), "ml");
  }

  @Test
  void kubectlRendersTheOverlayOfObjectsWithoutNamespaceIntoProduction() throws Exception {
    Path kubectl = kubectl();
    ManifestGenerator generator = ManifestGenerator.of(service(""), IMAGE, null);
    Path out = dir.resolve("k8s");
    ManifestExport.kustomize(generator, out);
    List<HasMetadata> base = kustomize(kubectl, out.resolve("base"));
    assertEquals(byKindAndName(generator.objects()), byKindAndName(base));
    assertTrue(base.stream().allMatch(o -> o.getMetadata().getNamespace() == null));
    assertOverlay(generator, kustomize(kubectl, out.resolve("overlays/production")), "production");
    // the PodMonitor watches its own namespace: it goes where the overlay puts the pods
    List<HasMetadata> monitoring = kustomize(kubectl, out.resolve("monitoring"));
    assertEquals(3, monitoring.size(), monitoring.toString());
    assertTrue(
        monitoring.stream().allMatch(o -> "production".equals(o.getMetadata().getNamespace())),
        monitoring.toString());
  }

  @Test
  void kubectlRendersTheOverlayOfFixedReplicas() throws Exception {
    Path kubectl = kubectl();
    ManifestGenerator generator =
        generator(
            "deploy: {replicas: 3, autoscaling: {enabled: false},"
                + " resources: {requests: {cpu: 500m}, limits: {memory: 2Gi}}}\n");
    Path out = dir.resolve("k8s");
    ManifestExport.kustomize(generator, out);
    List<HasMetadata> rendered = kustomize(kubectl, out.resolve("overlays/production"));
    assertEquals(byKindAndName(generator.objects()).keySet(), byKindAndName(rendered).keySet());
    Deployment deployment = find(rendered, Deployment.class);
    assertEquals("ml", deployment.getMetadata().getNamespace());
    assertEquals(6, deployment.getSpec().getReplicas());
    var resources =
        deployment.getSpec().getTemplate().getSpec().getContainers().get(0).getResources();
    assertEquals(new Quantity("1000m"), resources.getRequests().get("cpu"));
    assertEquals(new Quantity("4Gi"), resources.getRequests().get("memory"));
    assertEquals(new Quantity("4Gi"), resources.getLimits().get("memory"));
  }

  private static void assertOverlay(
      ManifestGenerator generator, List<HasMetadata> rendered, String namespace) {
    Map<String, HasMetadata> base = byKindAndName(generator.objects());
    Map<String, HasMetadata> overlay = byKindAndName(rendered);
    assertEquals(base.keySet(), overlay.keySet());
    for (HasMetadata o : rendered) {
      assertEquals(namespace, o.getMetadata().getNamespace(), o.getKind());
    }
    HorizontalPodAutoscaler hpa = find(rendered, HorizontalPodAutoscaler.class);
    assertEquals(4, hpa.getSpec().getMinReplicas());
    assertEquals(10, hpa.getSpec().getMaxReplicas());
    assertEquals(
        find(generator.objects(), HorizontalPodAutoscaler.class).getSpec().getMetrics(),
        hpa.getSpec().getMetrics());

    Deployment deployment = find(rendered, Deployment.class);
    Container server = deployment.getSpec().getTemplate().getSpec().getContainers().get(0);
    // the base requests 1 CPU and 1Gi (the generator's defaults); the overlay doubles them
    assertEquals(new Quantity("2"), server.getResources().getRequests().get("cpu"));
    assertEquals(new Quantity("2Gi"), server.getResources().getRequests().get("memory"));
    // the rest of the Deployment is the base's
    Deployment expected = find(generator.objects(), Deployment.class);
    expected = expected.edit().editMetadata().withNamespace(namespace).endMetadata().build();
    expected
        .getSpec()
        .getTemplate()
        .getSpec()
        .getContainers()
        .get(0)
        .setResources(server.getResources());
    assertEquals(expected, deployment);
  }

  /** kubectl from PATH; outside CI the test is skipped without it, in CI it fails. */
  private static Path kubectl() {
    String path = System.getenv().getOrDefault("PATH", "");
    return Stream.of(path.split(File.pathSeparator))
        .filter(d -> !d.isEmpty())
        .map(d -> Path.of(d, "kubectl"))
        .filter(Files::isExecutable)
        .findFirst()
        .orElseGet(
            () -> {
              if ("true".equalsIgnoreCase(System.getenv("CI"))) {
                return fail(
                    "kubectl is not on PATH of this CI machine; add it to the CI image"
                        + " (apt-get install kubernetes-client)");
              }
              return Assumptions.abort(
                  "kubectl is not on PATH; install it (apt-get install kubernetes-client) to check"
                      + " that kustomize renders the export");
            });
  }

  /** Runs {@code kubectl kustomize DIR} (local files only) and parses what it prints. */
  private List<HasMetadata> kustomize(Path kubectl, Path kustomization) throws Exception {
    Path stderr = dir.resolve("kubectl.err");
    Process process =
        new ProcessBuilder(kubectl.toString(), "kustomize", kustomization.toString())
            .redirectError(stderr.toFile())
            .start();
    process.getOutputStream().close();
    String yaml = new String(process.getInputStream().readAllBytes(), UTF_8);
    assertTrue(process.waitFor(60, TimeUnit.SECONDS), "kubectl kustomize did not finish");
    assertEquals(
        0,
        process.exitValue(),
        () -> "kubectl kustomize " + kustomization + ":\n" + readQuietly(stderr));
    Object parsed = serialization.unmarshal(yaml);
    if (parsed instanceof KubernetesList list) {
      return list.getItems();
    }
    if (parsed instanceof List<?> list) {
      return list.stream().map(HasMetadata.class::cast).toList();
    }
    return List.of((HasMetadata) parsed);
  }

  private static String readQuietly(Path file) {
    try {
      return Files.readString(file);
    } catch (IOException e) {
      return "(" + e + ")";
    }
  }

  private static Map<String, HasMetadata> byKindAndName(List<HasMetadata> objects) {
    Map<String, HasMetadata> out = new TreeMap<>();
    for (HasMetadata o : objects) {
      assertNull(out.put(o.getKind() + "/" + o.getMetadata().getName(), o), "duplicate " + o);
    }
    return out;
  }

  // ---- kserve

  @Test
  void kserveMakesAServingRuntimeAndAnInferenceService() throws IOException {
    List<HasMetadata> objects = ManifestExport.kserve(generator(""));
    assertEquals(2, objects.size());
    HasMetadata runtime = objects.get(0);
    HasMetadata service = objects.get(1);
    assertEquals("serving.kserve.io/v1alpha1", runtime.getApiVersion());
    assertEquals("ServingRuntime", runtime.getKind());
    assertEquals("berth-minilm", runtime.getMetadata().getName());
    assertEquals("serving.kserve.io/v1beta1", service.getApiVersion());
    assertEquals("InferenceService", service.getKind());
    assertEquals("minilm", service.getMetadata().getName());
    for (HasMetadata o : objects) {
      assertEquals("ml", o.getMetadata().getNamespace());
      assertEquals("minilm", o.getMetadata().getLabels().get(ManifestGenerator.NAME_LABEL));
      assertEquals("berth", o.getMetadata().getLabels().get(ManifestGenerator.MANAGED_BY_LABEL));
    }
  }

  @Test
  void theRuntimeRunsTheBerthImageLikeTheDeployment() throws IOException {
    ManifestGenerator generator = generator("deploy: {gpus: 1}\n");
    GenericKubernetesResource runtime =
        (GenericKubernetesResource) ManifestExport.kserve(generator).get(0);
    Container server =
        find(generator.objects(), Deployment.class)
            .getSpec()
            .getTemplate()
            .getSpec()
            .getContainers()
            .get(0);
    assertEquals(
        List.of(Map.of("name", "onnx", "version", "1", "autoSelect", false)),
        runtime.get("spec", "supportedModelFormats"));
    assertEquals(List.of("v2", "grpc-v2"), runtime.get("spec", "protocolVersions"));
    List<?> containers = runtime.get("spec", "containers");
    assertEquals(1, containers.size());
    Container c = serialization.convertValue(containers.get(0), Container.class);
    assertEquals("kserve-container", c.getName());
    assertEquals(generator.image(), c.getImage());
    assertEquals(server.getArgs(), c.getArgs());
    assertEquals(server.getResources(), c.getResources());
    assertEquals(new Quantity("1"), c.getResources().getLimits().get("nvidia.com/gpu"));
    assertEquals(List.of(8080), c.getPorts().stream().map(p -> p.getContainerPort()).toList());
    assertTrue(c.getEnvFrom() == null || c.getEnvFrom().isEmpty(), "no ConfigMap to read");
    Map<String, String> env =
        c.getEnv().stream().collect(Collectors.toMap(EnvVar::getName, EnvVar::getValue));
    assertEquals("8080", env.get("BERTH_PORT"));
    assertEquals("8081", env.get("BERTH_GRPC_PORT"));
    assertEquals("cuda", env.get("BERTH_EXECUTION_PROVIDER"));
    assertEquals("1", env.get("ORT_DISABLE_TELEMETRY"));
    for (String arg : c.getArgs()) {
      if (arg.startsWith("$(")) {
        assertTrue(env.containsKey(arg.substring(2, arg.length() - 1)), arg + " is defined");
      }
    }
    assertEquals("/v2/health/ready", c.getReadinessProbe().getHttpGet().getPath());
    assertEquals(8080, c.getReadinessProbe().getHttpGet().getPort().getIntVal());
    assertEquals("/v2/health/live", c.getLivenessProbe().getHttpGet().getPath());
    assertEquals(8080, c.getStartupProbe().getHttpGet().getPort().getIntVal());
    assertEquals(Boolean.TRUE, c.getSecurityContext().getRunAsNonRoot());
    assertEquals(Boolean.TRUE, c.getSecurityContext().getReadOnlyRootFilesystem());
    assertEquals(65532L, c.getSecurityContext().getRunAsUser());
    assertNull(c.getLifecycle(), "Knative refuses lifecycle hooks");
    assertEquals("/tmp", c.getVolumeMounts().get(0).getMountPath());
    List<?> volumes = runtime.get("spec", "volumes");
    assertEquals(List.of(Map.of("emptyDir", Map.of(), "name", "tmp")), volumes);
  }

  @Test
  void theModelFormatIsTheModelsOwn() throws IOException {
    Files.delete(dir.resolve("models/minilm/1/model.onnx"));
    Files.writeString(dir.resolve("models/minilm/1/model.pt"), "torchscript");
    Files.createDirectories(dir.resolve("models/trees/1"));
    Files.writeString(dir.resolve("models/trees/1/model.ubj"), "trees");
    Path file = dir.resolve("berth.yaml");
    Files.writeString(
        file,
        "apiVersion: berth.dev/v1\nkind: ModelService\nname: minilm\n"
            + "models: [{path: models/minilm}, {path: models/trees}]\n");
    List<HasMetadata> kserve =
        ManifestExport.kserve(ManifestGenerator.of(ServiceSpec.load(file), IMAGE, "ml"));
    GenericKubernetesResource runtime = (GenericKubernetesResource) kserve.get(0);
    List<Map<String, Object>> formats = runtime.get("spec", "supportedModelFormats");
    assertEquals(List.of("pytorch", "xgboost"), formats.stream().map(f -> f.get("name")).toList());
    Map<String, Object> model =
        ((GenericKubernetesResource) kserve.get(1)).get("spec", "predictor", "model");
    assertEquals(Map.of("name", "pytorch"), model.get("modelFormat"));
  }

  @Test
  void theInferenceServiceUsesTheRuntimeWithoutStorage() throws IOException {
    GenericKubernetesResource service =
        (GenericKubernetesResource)
            ManifestExport.kserve(
                    generator("deploy: {autoscaling: {min-replicas: 3, max-replicas: 7}}\n"))
                .get(1);
    Map<String, Object> model = service.get("spec", "predictor", "model");
    assertEquals("berth-minilm", model.get("runtime"));
    assertEquals(Map.of("name", "onnx"), model.get("modelFormat"));
    assertEquals("v2", model.get("protocolVersion"));
    assertFalse(model.containsKey("storageUri"), "the models are in the image");
    assertNull(service.get("spec", "predictor", "storageUri"));
    assertEquals(3, (Integer) service.get("spec", "predictor", "minReplicas"));
    assertEquals(7, (Integer) service.get("spec", "predictor", "maxReplicas"));
  }

  @Test
  void withoutAutoscalingTheInferenceServiceRunsTheFixedReplicas() throws IOException {
    GenericKubernetesResource service =
        (GenericKubernetesResource)
            ManifestExport.kserve(
                    generator("deploy: {replicas: 3, autoscaling: {enabled: false}}\n"))
                .get(1);
    assertEquals(3, (Integer) service.get("spec", "predictor", "minReplicas"));
    assertEquals(3, (Integer) service.get("spec", "predictor", "maxReplicas"));
  }

  @Test
  void withoutNamespaceTheKserveObjectsNameNone() throws IOException {
    for (HasMetadata o : ManifestExport.kserve(ManifestGenerator.of(service(""), IMAGE, null))) {
      assertNull(o.getMetadata().getNamespace(), o.getKind());
    }
  }

  @Test
  void theKserveYamlParsesBackIntoTheSameObjects() throws IOException {
    ManifestGenerator generator = generator("");
    List<HasMetadata> parsed = new ArrayList<>();
    for (String doc : ManifestExport.kserveYaml(generator).split("(?m)^---\\n")) {
      if (!doc.isBlank()) {
        parsed.add(serialization.unmarshal(doc));
      }
    }
    assertEquals(ManifestExport.kserve(generator), parsed);
  }

  @Test
  void aCanaryHasNoExports() throws IOException {
    ManifestGenerator canary = generator("").canary(1, 10);
    assertThrows(IllegalArgumentException.class, () -> ManifestExport.kserve(canary));
    assertThrows(
        IllegalArgumentException.class, () -> ManifestExport.kustomize(canary, dir.resolve("k")));
  }

  // ---- kserve: remote models

  /** The KServe objects of a service of these {@code models:} entries alone, then {@code extra}. */
  private List<HasMetadata> remoteKserve(String entries, String extra) throws IOException {
    Path file = dir.resolve("berth.yaml");
    Files.writeString(
        file,
        "apiVersion: berth.dev/v1\nkind: ModelService\nname: minilm\nmodels:\n" + entries + extra);
    return ManifestExport.kserve(ManifestGenerator.of(ServiceSpec.load(file), IMAGE, "ml"));
  }

  private Container kserveContainer(List<HasMetadata> kserve) {
    List<?> containers = ((GenericKubernetesResource) kserve.get(0)).get("spec", "containers");
    return serialization.convertValue(containers.get(0), Container.class);
  }

  private static Map<String, String> env(Container c) {
    return c.getEnv().stream().collect(Collectors.toMap(EnvVar::getName, EnvVar::getValue));
  }

  @Test
  void anHttpsFileIsTheStorageUriWhenItComesFirst() throws IOException {
    List<HasMetadata> kserve =
        remoteKserve(
            "  - {source: \"https://files.example/m/intent.onnx#sha256=00\"}\n"
                + "  - {source: s3://models/ranker}\n",
            "");
    Map<String, Object> model =
        ((GenericKubernetesResource) kserve.get(1)).get("spec", "predictor", "model");
    assertEquals("https://files.example/m/intent.onnx#sha256=00", model.get("storageUri"));
    assertEquals("intent=/mnt/models", env(kserveContainer(kserve)).get("BERTH_MODEL_MOUNT"));
  }

  @Test
  void anS3ModelIsTheStorageUriAndServedFromWhereKserveCopiesIt() throws IOException {
    List<HasMetadata> kserve =
        remoteKserve(
            "  - {source: oci://registry.example/models/embedder:3}\n"
                + "  - {source: s3://models/ranker, name: ranker}\n"
                + "  - {source: s3://models/tagger}\n",
            "deploy:\n  oci-models: image-volume\n  model-cache: {claim: models-cache}\n"
                + "  model-credentials: {registry: regcred, s3: s3-creds}\n");
    Map<String, Object> model =
        ((GenericKubernetesResource) kserve.get(1)).get("spec", "predictor", "model");
    assertEquals("s3://models/ranker", model.get("storageUri"), "the first s3:// model");
    Container c = kserveContainer(kserve);
    assertEquals(List.of("serve", "/opt/berth/berth.yaml"), c.getArgs());
    Map<String, String> env = env(c);
    // the storage initializer's copy is served; the rest the server fetches itself, oci:// too
    assertEquals("ranker=/mnt/models", env.get("BERTH_MODEL_MOUNT"));
    assertEquals("/var/cache/berth/models", env.get("BERTH_MODEL_CACHE"));
    assertEquals("/var/run/secrets/berth/registry", env.get("DOCKER_CONFIG"));
    assertEquals(1, c.getEnvFrom().size());
    assertEquals("s3-creds", c.getEnvFrom().get(0).getSecretRef().getName());
    assertTrue(
        c.getVolumeMounts().stream()
            .anyMatch(m -> m.getMountPath().equals("/var/cache/berth/models")));
    List<Map<String, Object>> volumes =
        ((GenericKubernetesResource) kserve.get(0)).get("spec", "volumes");
    assertEquals(
        List.of("tmp", "model-cache", "registry-credentials"),
        volumes.stream().map(v -> v.get("name")).toList(),
        "no image volumes: Knative admits none");
    assertEquals(
        Map.of("claimName", "models-cache"),
        volumes.stream()
            .filter(v -> v.get("name").equals("model-cache"))
            .findFirst()
            .orElseThrow()
            .get("persistentVolumeClaim"));
  }

  @Test
  void anOciModelHasNoStorageUriAndTheServerFetchesIt() throws IOException {
    List<HasMetadata> kserve =
        remoteKserve(
            "  - {source: oci://registry.example/models/embedder:3}\n",
            "deploy: {oci-models: image-volume, model-cache: {size: 10Gi}}\n");
    Map<String, Object> model =
        ((GenericKubernetesResource) kserve.get(1)).get("spec", "predictor", "model");
    assertFalse(model.containsKey("storageUri"), "KServe's Modelcar needs a runnable image");
    Map<String, String> env = env(kserveContainer(kserve));
    assertNull(env.get("BERTH_MODEL_MOUNT"));
    assertEquals("/var/cache/berth/models", env.get("BERTH_MODEL_CACHE"));
    assertEquals(String.valueOf(5L << 30), env.get("BERTH_MODEL_CACHE_SIZE")); // half of 10Gi
    List<Map<String, Object>> volumes =
        ((GenericKubernetesResource) kserve.get(0)).get("spec", "volumes");
    assertEquals(
        Map.of("sizeLimit", "10Gi"),
        volumes.stream()
            .filter(v -> v.get("name").equals("model-cache"))
            .findFirst()
            .orElseThrow()
            .get("emptyDir"));
    assertEquals(
        "embedder@oci://registry.example/models/embedder:3",
        kserve.get(0).getMetadata().getAnnotations().get(ManifestGenerator.MODELS_ANNOTATION));
  }

  @Test
  void remoteModelFormatsComeFromTheirEngineElseTheirFileElseOnnx() throws IOException {
    List<HasMetadata> kserve =
        remoteKserve(
            "  - {source: s3://models/ranker, engine: pytorch}\n"
                + "  - {source: https://models.example/files/trees.ubj}\n"
                + "  - {source: \"https://models.example/files/intent.onnx#sha256="
                + "ab".repeat(32)
                + "\"}\n"
                + "  - {source: https://models.example/files/chat.gguf}\n"
                + "  - {source: oci://registry.example/models/llm:1, engine: llama}\n",
            "");
    List<Map<String, Object>> formats =
        ((GenericKubernetesResource) kserve.get(0)).get("spec", "supportedModelFormats");
    assertEquals(
        List.of("pytorch", "xgboost", "onnx"), formats.stream().map(f -> f.get("name")).toList());
    Map<String, Object> model =
        ((GenericKubernetesResource) kserve.get(1)).get("spec", "predictor", "model");
    assertEquals(Map.of("name", "pytorch"), model.get("modelFormat"));
    // language models have no KServe format; with nothing else, the runtime still names one
    assertEquals(
        List.of("onnx"),
        ManifestExport.modelFormats(
            ServiceSpec.load(
                Files.writeString(
                    dir.resolve("llm.yaml"),
                    "apiVersion: berth.dev/v1\nkind: ModelService\nname: chat\n"
                        + "models: [{source: oci://registry.example/models/llm:1, engine: llama}]\n"))));
  }

  @Test
  void kserveSnapshot() throws IOException {
    String yaml = ManifestExport.kserveYaml(generator(""));
    Path snapshot = Path.of("src/test/resources/dev/berth/kube/minilm-kserve.yaml");
    if (Boolean.getBoolean("berth.updateSnapshots")) {
      Files.writeString(snapshot, yaml);
    }
    assertEquals(Files.readString(snapshot, UTF_8), yaml);
  }
}
