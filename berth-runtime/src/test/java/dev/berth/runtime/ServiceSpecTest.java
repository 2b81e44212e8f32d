package dev.berth.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.ConfigException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class ServiceSpecTest {
  private static final String HEADER = "apiVersion: berth.dev/v1\nkind: ModelService\n";

  @TempDir Path dir;

  @BeforeEach
  void models() throws IOException {
    Path model = dir.resolve("models/embedder");
    Files.createDirectories(model.resolve("1"));
    Files.createDirectories(model.resolve("2"));
    Files.writeString(model.resolve("1/model.onnx"), "one");
    Files.writeString(model.resolve("2/model.onnx"), "two");
    Files.writeString(
        model.resolve("model.yaml"),
        "apiVersion: berth.dev/v1\nkind: Model\ninstances: 2\n"
            + "batching: {max-batch-size: 16, max-queue-size: 100}\n");
  }

  private ServiceSpec load(String yaml) throws IOException {
    Path file = dir.resolve("berth.yaml");
    Files.writeString(file, yaml);
    return ServiceSpec.load(file);
  }

  @Test
  void servingTakesEveryServeSettingAndTheSecretsAsFilesAndSecrets() throws IOException {
    ServiceSpec s =
        load(
            HEADER
                + "name: embed\nmodels: [{path: models/embedder}]\n"
                + "serving:\n"
                + "  max-request-timeout: 30s\n"
                + "  strict-readiness: false\n"
                + "  max-concurrent-requests: 64\n"
                + "  api-keys: {file: keys.yaml, secret: {name: embed-keys, key: keys.yaml}}\n"
                + "  management-token: {file: secrets/token.txt, secret: {name: mgmt, key: t}}\n"
                + "  tls: {cert: tls.crt, key: tls.key, client-ca: ca.pem, secret: {name: tls}}\n");
    ServeSettings settings = s.serving().settings();
    assertEquals(Duration.ofSeconds(30), settings.duration(ServeSettings.MAX_REQUEST_TIMEOUT));
    assertEquals(false, settings.flag(ServeSettings.STRICT_READINESS));
    assertEquals(64, settings.integer(ServeSettings.MAX_CONCURRENT_REQUESTS));
    assertEquals(dir.resolve("keys.yaml"), settings.path(ServeSettings.API_KEYS));
    assertEquals(
        dir.resolve("secrets/token.txt"), settings.path(ServeSettings.MANAGEMENT_TOKEN_FILE));
    assertEquals(dir.resolve("ca.pem"), settings.path(ServeSettings.TLS_CLIENT_CA));
    assertEquals(new ServiceSpec.SecretRef("embed-keys", "keys.yaml"), s.serving().apiKeys());
    assertEquals(new ServiceSpec.SecretRef("mgmt", "t"), s.serving().managementToken());
    assertEquals(new ServiceSpec.SecretRef("tls", null), s.serving().tls());
    // a container gets the settings, on every interface, without the files (those are mounted)
    ServeSettings container = s.serving().containerSettings();
    assertEquals("0.0.0.0", container.text(ServeSettings.HOST));
    for (ServeSettings.Setting secret : ServeSettings.SECRET_FILES) {
      assertTrue(!container.isSet(secret), secret.name());
    }
    assertTrue(container.arguments().contains("--max-request-timeout=30s"));
  }

  @Test
  void defaultsForAMinimalFile() throws IOException {
    ServiceSpec s = load(HEADER + "name: embed\nmodels: [{path: models/embedder}]\n");
    assertEquals("embed", s.name());
    assertEquals(1, s.models().size());
    assertEquals("embedder", s.models().get(0).name());
    assertEquals(
        List.of(1L, 2L), s.models().get(0).versions().stream().map(v -> v.number()).toList());
    assertEquals(8080, s.serving().port());
    assertEquals(8081, s.serving().grpcPort());
    assertEquals(
        Duration.ofSeconds(30), s.serving().settings().duration(ServeSettings.DRAIN_TIMEOUT));
    assertEquals(ServiceSpec.Image.DEFAULT_BASE, s.image().base());
    assertEquals("berth/embed:latest", s.image().to());
    assertNull(s.image().signKey());
    assertFalse(s.image().requireSigned());
    assertEquals(List.of(), s.image().trust());
    assertEquals(ServiceSpec.Runtime.BASE, s.image().runtime());
    assertEquals("65532:65532", s.image().user());
    assertEquals(2, s.deploy().replicas());
    assertNull(s.deploy().gateway());
  }

  @Test
  void readsEverySection() throws IOException {
    ServiceSpec s =
        load(
            HEADER
                + """
                name: embed
                description: sentence embeddings
                models:
                  - path: models/embedder
                    name: minilm
                    versions: [2]
                    instances: 3
                    batching: {max-batch-size: 8}
                serving: {port: 9000, grpc-port: 9001, log-format: text, drain-timeout: 5s}
                image:
                  base: 127.0.0.1:5000/base/java:21
                  to: tar:out.tar
                  tags: [v2, stable]
                  runtime: jlink
                  user: "1000:1000"
                  labels: {team: search}
                  jvm-options: [-Xss512k]
                  sign-key: keys/release.pem
                  require-signed: true
                  trust: [keys/release.pub, /etc/berth/ops.pub]
                deploy:
                  namespace: ml
                  replicas: 3
                  resources: {requests: {cpu: 500m, memory: 1Gi}, limits: {memory: 2Gi}}
                  gpus: 1
                  autoscaling: {min-replicas: 2, max-replicas: 6, target-cpu-utilization: 60}
                  service-type: LoadBalancer
                  allow-from-namespaces: [web]
                  gateway: {name: public, namespace: infra, hostnames: [models.example.com]}
                """);
    ServiceSpec.ServiceModel m = s.models().get(0);
    assertEquals("minilm", m.name());
    assertEquals(List.of(2L), m.versions().stream().map(v -> v.number()).toList());
    assertEquals(3, m.modelYaml().get("instances"));
    // the service's batching keys override the model's; the others stay
    assertEquals(Map.of("max-batch-size", 8, "max-queue-size", 100), m.modelYaml().get("batching"));
    assertEquals(9000, s.serving().port());
    assertEquals("text", s.serving().settings().text(ServeSettings.LOG_FORMAT));
    assertEquals(
        Duration.ofSeconds(5), s.serving().settings().duration(ServeSettings.DRAIN_TIMEOUT));
    assertEquals(List.of("v2", "stable"), s.image().tags());
    assertEquals(ServiceSpec.Runtime.JLINK, s.image().runtime());
    assertEquals(Map.of("team", "search"), s.image().labels());
    assertEquals(List.of("-Xss512k"), s.image().jvmOptions());
    assertEquals(s.file().resolveSibling("keys/release.pem"), s.image().signKey());
    assertTrue(s.image().requireSigned());
    assertEquals(
        List.of(s.file().resolveSibling("keys/release.pub"), Path.of("/etc/berth/ops.pub")),
        s.image().trust());
    assertEquals("ml", s.deploy().namespace());
    assertEquals(Map.of("cpu", "500m", "memory", "1Gi"), s.deploy().requests());
    assertEquals(1, s.deploy().gpus());
    assertEquals(6, s.deploy().autoscaling().maxReplicas());
    assertEquals("LoadBalancer", s.deploy().serviceType());
    assertEquals(
        new ServiceSpec.Gateway("public", "infra", List.of("models.example.com")),
        s.deploy().gateway());
  }

  @Test
  void aGatewayOnTheCommandLineIsNameOrNameSlashNamespace() {
    assertEquals(new ServiceSpec.Gateway("gw", null, List.of()), ServiceSpec.Gateway.parse("gw"));
    assertEquals(
        new ServiceSpec.Gateway("gw", "infra", List.of()), ServiceSpec.Gateway.parse("gw/infra"));
    for (String wrong : List.of("gw/infra/x", "GW", "gw/", "/infra")) {
      assertThrows(IllegalArgumentException.class, () -> ServiceSpec.Gateway.parse(wrong), wrong);
    }
  }

  @Test
  void aRepositoryBringsEveryModel() throws IOException {
    ServiceSpec s = load(HEADER + "name: all\nrepository: models\n");
    assertEquals(List.of("embedder"), s.models().stream().map(m -> m.name()).toList());
    assertEquals(2, s.models().get(0).modelYaml().get("instances"));
  }

  static Stream<Arguments> wrongFiles() {
    return Stream.of(
        Arguments.of("apiVersion: v0\nkind: ModelService\nname: a\n", "apiVersion", "berth.dev/v1"),
        Arguments.of("apiVersion: berth.dev/v1\nkind: Model\nname: a\n", "kind", "ModelService"),
        Arguments.of(HEADER + "models: [{path: models/embedder}]\n", "name", "is missing"),
        Arguments.of(HEADER + "name: Not_A_Label\n", "name", "DNS label"),
        Arguments.of(HEADER + "name: a\n", "models", "no models"),
        Arguments.of(
            HEADER + "name: a\nmodels: [{path: nowhere}]\n", "models[0].path", "not a directory"),
        Arguments.of(
            HEADER + "name: a\nmodels: [{path: models/embedder, versions: [7]}]\n",
            "models[0].versions",
            "version 7"),
        Arguments.of(
            HEADER + "name: a\nmodels: [{path: models/embedder, instances: 0}]\n",
            "models[0].instances",
            "between 1 and 64"),
        Arguments.of(
            HEADER + "name: a\nmodels: [{path: models/embedder, batching: {size: 3}}]\n",
            "models[0].batching.size",
            "unknown key"),
        Arguments.of(
            HEADER + "name: a\nmodels: [{path: models/embedder}]\nimage: {runtime: graal}\n",
            "image.runtime",
            "jlink"),
        Arguments.of(
            HEADER + "name: a\nmodels: [{path: models/embedder}]\nimage: {user: \"0\"}\n",
            "image.user",
            "non-root"),
        Arguments.of(
            HEADER + "name: a\nmodels: [{path: models/embedder}]\nimage: {platform: windows/x86}\n",
            "image.platform",
            "linux/amd64"),
        Arguments.of(
            HEADER + "name: a\nmodels: [{path: models/embedder}]\nserving: {port: 8081}\n",
            "serving.grpc-port",
            "must differ"),
        Arguments.of(
            HEADER + "name: a\nmodels: [{path: models/embedder}]\nserving: {max-body-size: big}\n",
            "serving.max-body-size",
            "32MiB"),
        Arguments.of(
            HEADER + "name: a\nmodels: [{path: models/embedder}]\nserving: {port: 0}\n",
            "serving.port",
            "from 1 to 65535"),
        Arguments.of(
            HEADER + "name: a\nmodels: [{path: models/embedder}]\nserving: {max-batch: 4}\n",
            "serving.max-batch",
            "unknown key"),
        Arguments.of(
            HEADER
                + "name: a\nmodels: [{path: models/embedder}]\n"
                + "serving: {management-token: a-token-in-the-file-itself}\n",
            "serving.management-token",
            "must not hold the secret itself"),
        Arguments.of(
            HEADER
                + "name: a\nmodels: [{path: models/embedder}]\n"
                + "serving: {api-keys: {secret: {name: keys}}}\n",
            "serving.api-keys.secret.key",
            "name the Secret's key"),
        Arguments.of(
            HEADER + "name: a\nmodels: [{path: models/embedder}]\nserving: {tls: {cert: c.pem}}\n",
            "serving.tls.key",
            "give both cert and key"),
        Arguments.of(
            HEADER
                + "name: a\nmodels: [{path: models/embedder}]\n"
                + "deploy: {resources: {requests: {cpu: lots}}}\n",
            "deploy.resources.requests.cpu",
            "quantity"),
        Arguments.of(
            HEADER
                + "name: a\nmodels: [{path: models/embedder}]\n"
                + "deploy: {autoscaling: {min-replicas: 5, max-replicas: 2}}\n",
            "deploy.autoscaling.max-replicas",
            "at least min-replicas"),
        Arguments.of(
            HEADER
                + "name: a\nmodels: [{path: models/embedder}]\n"
                + "deploy: {gateway: {namespace: infra}}\n",
            "deploy.gateway.name",
            "is missing"),
        Arguments.of(
            HEADER
                + "name: a\nmodels: [{path: models/embedder}]\n"
                + "deploy: {gateway: {name: gw, hostnames: [\"http://x\"]}}\n",
            "deploy.gateway.hostnames",
            "host name"),
        Arguments.of(
            HEADER + "name: a\nmodels: [{path: models/embedder}]\nimgae: {}\n",
            "imgae",
            "unknown key"),
        Arguments.of(
            HEADER + "name: a\nmodels: [{source: /models/embedder}]\n",
            "models[0].source",
            "not a model store"),
        Arguments.of(
            HEADER + "name: a\nmodels: [{source: \"oci://r/m:1\", path: models/embedder}]\n",
            "models[0].source",
            "both given"),
        Arguments.of(
            HEADER + "name: a\nmodels: [{source: \"oci://r/m:1\", versions: [1]}]\n",
            "models[0].versions",
            "berth push"),
        Arguments.of(
            HEADER + "name: a\nmodels: [{source: \"https://example.com\"}]\n",
            "models[0].name",
            "names no model"),
        Arguments.of(
            HEADER + "name: a\nmodels: [{source: \"oci://r/m:1\", instances: 99}]\n",
            "models[0].instances",
            "between 1 and 64"),
        Arguments.of(
            HEADER + "name: a\nmodels: [{path: models/embedder}, {source: \"s3://b/embedder\"}]\n",
            "models",
            "appears twice"),
        Arguments.of(
            HEADER
                + "name: a\nmodels: [{source: \"oci://r/m:1\"}]\n"
                + "deploy: {oci-models: mount}\n",
            "deploy.oci-models",
            "image-volume"),
        Arguments.of(
            HEADER
                + "name: a\nmodels: [{source: \"oci://r/m:1\"}]\n"
                + "deploy: {model-cache: {claim: shared, size: 5Gi}}\n",
            "deploy.model-cache.size",
            "claim's size"),
        Arguments.of(
            HEADER
                + "name: a\nmodels: [{source: \"oci://r/m:1\","
                + " batching: {max-queue-delay: soon}}]\n",
            "models[0].batching.max-queue-delay",
            "duration"),
        Arguments.of(
            HEADER + "name: a\nmodels: [{source: \"oci://r/m:1\", engine: lama}]\n",
            "models[0].engine",
            "not an engine"),
        Arguments.of(
            HEADER + "name: a\nmodels: [{source: \"https://h/files/model.bin?sig=s\"}]\n",
            "models[0].source",
            "does not name a model file"),
        Arguments.of(
            HEADER
                + "name: a\nmodels: [{source: \"oci://r/m:1\"}]\n"
                + "deploy: {model-cache: {size: 500m}}\n",
            "deploy.model-cache.size",
            "whole number with a unit"),
        Arguments.of(
            HEADER
                + "name: a\nmodels: [{source: \"oci://r/m:1\"}]\n"
                + "deploy: {model-credentials: {registry: Bad_Name}}\n",
            "deploy.model-credentials.registry",
            "not a valid Kubernetes object name"));
  }

  @Test
  void remoteModelsComeWithTheirSourceNameAndOverrides() throws IOException {
    ServiceSpec s =
        load(
            HEADER
                + "name: mixed\nmodels:\n"
                + "  - path: models/embedder\n"
                + "  - source: oci://registry.example.com/team/minilm:3\n"
                + "    batching: {max-batch-size: 4}\n"
                + "  - source: s3://models/team/reranker/\n"
                + "    name: ranker\n"
                + "    engine: onnx\n"
                + "  - source: https://example.com/files/classifier.onnx?sig=x#sha256=ab\n"
                + "deploy:\n"
                + "  model-cache: {claim: shared-models}\n"
                + "  model-credentials: {registry: regcred, s3: s3-creds}\n"
                + "  oci-models: image-volume\n");
    assertEquals(List.of("embedder"), s.models().stream().map(m -> m.name()).toList());
    assertEquals(List.of("embedder", "minilm", "ranker", "classifier"), s.modelNames());
    ServiceSpec.RemoteModel minilm = s.remoteModels().get(0);
    assertEquals("oci://registry.example.com/team/minilm:3", minilm.source());
    assertNull(minilm.engine());
    assertEquals(Map.of("batching", Map.of("max-batch-size", 4)), minilm.overrides());
    assertEquals("onnx", s.remoteModels().get(1).engine());
    assertEquals(
        new ServiceSpec.ModelFetch("shared-models", null, "regcred", "s3-creds", true),
        s.deploy().modelFetch());
    assertEquals(
        ServiceSpec.ModelFetch.defaults(),
        load(HEADER + "name: a\nmodels: [{path: models/embedder}]\n").deploy().modelFetch());
  }

  @Test
  void aModelsEntryMaySetALanguageModelsLlmKeysAndAWrongOneIsNamed() throws IOException {
    ServiceSpec s =
        load(
            HEADER
                + "name: chat\nmodels:\n"
                + "  - path: models/embedder\n"
                + "    llm: {parallel: 8, max-waiting: 10}\n");
    assertEquals(
        Map.of("parallel", 8, "max-waiting", 10), s.models().get(0).modelYaml().get("llm"));
    ConfigException e =
        assertThrows(
            ConfigException.class,
            () ->
                load(
                    HEADER
                        + "name: chat\nmodels:\n"
                        + "  - path: models/embedder\n"
                        + "    llm: {paralel: 8}\n"));
    assertTrue(e.getMessage().contains("paralel"), e.getMessage());
  }

  @Test
  void aCpuTargetOfZeroNeedsAnInflightTarget() throws IOException {
    ServiceSpec s =
        load(
            HEADER
                + "name: chat\nmodels: [{path: models/embedder}]\n"
                + "deploy: {autoscaling: {target-cpu-utilization: 0, target-inflight-per-pod: 4}}\n");
    assertEquals(0, s.deploy().autoscaling().targetCpuUtilization());
    ConfigException e =
        assertThrows(
            ConfigException.class,
            () ->
                load(
                    HEADER
                        + "name: chat\nmodels: [{path: models/embedder}]\n"
                        + "deploy: {autoscaling: {target-cpu-utilization: 0}}\n"));
    assertTrue(e.getMessage().contains("set target-inflight-per-pod too"), e.getMessage());
  }

  @Test
  void aSourceIsNamedByItsLastPathSegment() {
    assertEquals("minilm", ServiceSpec.RemoteModel.defaultName("oci://r:5000/a/minilm:3"));
    assertEquals("minilm", ServiceSpec.RemoteModel.defaultName("oci://r/minilm@sha256:ab"));
    assertEquals("minilm", ServiceSpec.RemoteModel.defaultName("oci://r:5000/minilm"));
    assertEquals("m", ServiceSpec.RemoteModel.defaultName("s3://bucket/team/m/"));
    assertEquals("bucket", ServiceSpec.RemoteModel.defaultName("s3://bucket"));
    assertEquals("c", ServiceSpec.RemoteModel.defaultName("https://h/x/c.onnx?a=b#sha256=0"));
    assertEquals("minilm", ServiceSpec.RemoteModel.defaultName("https://h/MiniLM.v2.onnx"));
    assertEquals(
        "https://h/x/c.onnx#sha256=0",
        ServiceSpec.RemoteModel.shownOf(
            "https://user:token@h/x/c.onnx?X-Amz-Signature=s#sha256=0"));
    assertNull(ServiceSpec.RemoteModel.defaultName("https://h"));
  }

  @ParameterizedTest
  @MethodSource("wrongFiles")
  void aWrongFileNamesTheFileTheKeyAndTheFix(String yaml, String key, String hint) {
    ConfigException e = assertThrows(ConfigException.class, () -> load(yaml));
    assertEquals(key, e.key(), e.getMessage());
    assertTrue(e.getMessage().contains(hint), e.getMessage());
    assertTrue(e.getMessage().startsWith(dir.resolve("berth.yaml").toString()), e.getMessage());
  }

  @Test
  void theBundledExampleIsValid() {
    Path example = Path.of(System.getProperty("user.dir")).resolve("../examples/minilm/berth.yaml");
    assertTrue(
        Files.isDirectory(example.resolveSibling("../models/minilm/1").normalize()),
        "the examples module unpacks MiniLM before this module builds");
    ServiceSpec s = ServiceSpec.load(example);
    assertEquals("minilm", s.name());
    assertEquals("minilm", s.models().get(0).name());
  }
}
