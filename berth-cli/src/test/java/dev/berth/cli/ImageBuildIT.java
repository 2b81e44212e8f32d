package dev.berth.cli;

import static dev.berth.cli.ContainerTestEnv.berth;
import static dev.berth.cli.ContainerTestEnv.docker;
import static dev.berth.cli.ContainerTestEnv.skopeo;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.http.HttpClient;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * {@code berth build} against a real registry and Docker engine: what the image holds, that it
 * serves MiniLM as {@code berth serve} does, that builds are reproducible and that a model change
 * touches one layer; the Dockerfile export builds with {@code docker build} and answers the same.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ImageBuildIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Pattern DIGEST = Pattern.compile("digest (sha256:[0-9a-f]{64})");
  private static final String INFER =
      "{\"inputs\":[{\"name\":\"text\",\"shape\":[1],\"datatype\":\"BYTES\","
          + "\"data\":[\"Containers carry models to production.\"]}]}";

  private Path work;
  private ContainerTestEnv env;
  private Path service;
  private final List<String> containers = new ArrayList<>();
  private final HttpClient http = HttpClient.newHttpClient();
  private double[] servedLocally;

  @BeforeAll
  void setUp() throws Exception {
    env = ContainerTestEnv.require();
    work = Files.createTempDirectory(Path.of("target").toAbsolutePath(), "image-it-");
    service = ContainerTestEnv.examples().resolve("minilm/berth.yaml");
    try (BerthProcess serve =
        BerthProcess.start(
            Files.createDirectories(work.resolve("serve")),
            "serve",
            BerthProcess.examples().toString(),
            "--port",
            "0",
            "--grpc-port",
            "0")) {
      String url = serve.awaitServing();
      servedLocally = embedding(url);
    }
  }

  @AfterAll
  void removeContainers() throws Exception {
    for (String c : containers) {
      docker(work, "rm", "-f", c);
    }
  }

  @Test
  void pushedImageHasUserPortsEntrypointAndModelLabels() throws Exception {
    String ref = env.registry + "/it/minilm:labels";
    String digest = build("--to", ref, "--base", env.baseJava);
    JsonNode inspect = JSON.readTree(skopeoInspect("docker://" + ref, false));
    assertEquals(digest, inspect.path("Digest").asText());
    JsonNode config = JSON.readTree(skopeoInspect("docker://" + ref, true)).path("config");
    assertEquals("65532:65532", config.path("User").asText());
    assertTrue(config.path("ExposedPorts").has("8080/tcp"), config.toString());
    assertTrue(config.path("ExposedPorts").has("8081/tcp"), config.toString());
    assertTrue(config.path("Entrypoint").toString().contains("\"-jar\",\"/opt/berth/berth.jar\""));
    assertEquals("serve", config.path("Cmd").get(0).asText());
    assertEquals("/opt/berth/models", config.path("Cmd").get(1).asText());
    assertTrue(config.path("Env").toString().contains("ORT_DISABLE_TELEMETRY=1"));
    JsonNode labels = config.path("Labels");
    assertEquals("minilm", labels.path("org.opencontainers.image.title").asText());
    assertEquals("minilm:1", labels.path("dev.berth.models").asText());
    Path version = ContainerTestEnv.examples().resolve("models/minilm/1");
    assertEquals(manifestDigest(version), labels.path("dev.berth.model.minilm.1.sha256").asText());
    assertTrue(
        labels
            .path("dev.berth.model.minilm.1.files")
            .asText()
            .contains("model.onnx=sha256:" + sha256(version.resolve("model.onnx"))));
    // its SBOM, read from the same image written into an archive here: of the pushed digest, on
    // the base jib-core pulled
    JsonNode sbom =
        JSON.readTree(
            work.resolve("cache/sbom/" + ref.replaceAll("[^A-Za-z0-9._-]", "_") + ".cdx.json")
                .toFile());
    assertEquals(digest, sbom.path("metadata").path("component").path("version").asText());
    String baseDigest =
        JSON.readTree(skopeoInspect("docker://" + env.baseJava, false)).path("Digest").asText();
    JsonNode baseComponent = null;
    for (JsonNode c : sbom.path("components")) {
      if (c.path("bom-ref").asText().equals("base-image")) {
        baseComponent = c;
      }
    }
    assertEquals(baseDigest, baseComponent == null ? null : baseComponent.path("version").asText());
  }

  @Test
  void sameInputsGiveTheSameDigest() throws Exception {
    String first = build("--to", "tar:" + work.resolve("a.tar"), "--base", env.baseJava);
    String second = build("--to", "tar:" + work.resolve("b.tar"), "--base", env.baseJava);
    assertEquals(first, second);
    JsonNode a = JSON.readTree(skopeoInspect("oci-archive:" + work.resolve("a.tar"), false));
    assertEquals(first, a.path("Digest").asText());
    String pushed = build("--to", env.registry + "/it/minilm:repro", "--base", env.baseJava);
    assertEquals(first, pushed);
  }

  @Test
  void aModelChangeChangesOnlyThatModelsLayer() throws Exception {
    Path copy = work.resolve("changed");
    BerthProcess.copyTree(
        ContainerTestEnv.examples().resolve("models/minilm"), copy.resolve("models/minilm"));
    Files.writeString(
        copy.resolve("berth.yaml"),
        Files.readString(service).replace("../models/minilm", "models/minilm"));
    String before = env.registry + "/it/minilm:before";
    String after = env.registry + "/it/minilm:after";
    build(copy.resolve("berth.yaml"), "--to", before, "--base", env.baseJava);
    Files.writeString(
        copy.resolve("models/minilm/1/NOTICE"), "retrained; same graph, new file in the version");
    build(copy.resolve("berth.yaml"), "--to", after, "--base", env.baseJava);
    List<String> a = layers(before);
    List<String> b = layers(after);
    assertEquals(a.size(), b.size());
    int changed = 0;
    int index = -1;
    for (int i = 0; i < a.size(); i++) {
      if (!a.get(i).equals(b.get(i))) {
        changed++;
        index = i;
      }
    }
    assertEquals(1, changed, before + " vs " + after + ": " + a + " / " + b);
    // the model layer is the one below config, the last
    assertEquals(a.size() - 2, index);
  }

  @Test
  void dockerRunServesTheSameEmbeddingAsBerthServe() throws Exception {
    String ref = env.registry + "/it/minilm:run";
    build("--to", ref, "--base", env.baseJava);
    assertEmbeddingFromContainer(ref);
  }

  @Test
  void aJlinkRuntimeRunsOnABaseWithoutJava() throws Exception {
    Path tar = work.resolve("jlink.tar");
    String digest = build("--to", "tar:" + tar, "--base", env.base, "--runtime", "jlink");
    JsonNode config = JSON.readTree(skopeoInspect("oci-archive:" + tar, true)).path("config");
    assertTrue(
        config.path("Entrypoint").toString().contains("-XX:AOTCache=/opt/berth/berth.aot"),
        "a jlink image starts from its class-data cache: " + config.path("Entrypoint"));
    assertTrue(digest.startsWith("sha256:"));
    String loaded = docker(work, "load", "-i", tar.toString()).ok().out();
    assertTrue(loaded.contains("berth/minilm:1"), loaded);
    String tagged = "it/minilm-jlink:1";
    docker(work, "tag", "berth/minilm:1", tagged).ok();
    assertEmbeddingFromContainer(tagged);
    // a gated canary's evaluation Job runs berth eval from the image: its command and the HTTP
    // client it calls the pods with are there
    String help = docker(work, "run", "--rm", tagged, "eval", "--help").ok().out();
    assertTrue(help.contains("--gate"), help);
    String modules =
        docker(
                work,
                "run",
                "--rm",
                "--entrypoint",
                "/opt/berth/java/bin/java",
                tagged,
                "--list-modules")
            .ok()
            .out();
    assertTrue(modules.contains("java.net.http"), modules);
  }

  @Test
  void theDockerfileExportBuildsWithDockerBuildAndAnswersTheSame() throws Exception {
    Path dir = work.resolve("dockerfile");
    berth(work, "build", service.toString(), "--dockerfile", dir.toString(), "--base", env.baseJava)
        .ok();
    String dockerfile = Files.readString(dir.resolve("Dockerfile"));
    assertTrue(dockerfile.startsWith("# The image"), dockerfile);
    assertTrue(dockerfile.contains("USER 65532:65532"), dockerfile);
    docker(work, "build", "-q", "-t", "it/minilm-dockerfile:1", dir.toString()).ok();
    assertEmbeddingFromContainer("it/minilm-dockerfile:1");
  }

  @Test
  void aDockerBaseAndADockerTargetWork() throws Exception {
    docker(work, "pull", env.baseJava).ok();
    String digest =
        build("--to", "docker://it/minilm-daemon:1", "--base", "docker://" + env.baseJava);
    JsonNode image =
        JSON.readTree(docker(work, "image", "inspect", "it/minilm-daemon:1").ok().out());
    assertEquals(
        "minilm", image.get(0).path("Config").path("Labels").path("dev.berth.service").asText());
    assertTrue(digest.startsWith("sha256:"));
  }

  @Test
  void anOciArchiveIsABase() throws Exception {
    // skopeo writes an OCI layout without Docker's manifest.json; Berth adds one for jib-core
    Path base = work.resolve("base-oci.tar");
    skopeo(
            work,
            "copy",
            "--src-tls-verify=false",
            "docker://" + env.baseJava,
            "oci-archive:" + base)
        .ok();
    Path tar = work.resolve("from-oci-base.tar");
    build("--to", "tar:" + tar, "--base", "tar:" + base);
    JsonNode config = JSON.readTree(skopeoInspect("oci-archive:" + tar, true)).path("config");
    assertEquals(
        "tar:" + base, config.path("Labels").path("org.opencontainers.image.base.name").asText());
    assertTrue(
        config.path("Env").toString().contains("JAVA_HOME=/opt/java/openjdk"), config.toString());
  }

  /** Starts the image, checks its embedding and that docker stop drains and exits 0. */
  private void assertEmbeddingFromContainer(String image) throws Exception {
    String name = "berth-it-" + Long.toHexString(System.nanoTime());
    containers.add(name);
    docker(work, "run", "-d", "--name", name, "-p", "127.0.0.1:0:8080", image).ok();
    String port = docker(work, "port", name, "8080/tcp").ok().out().trim();
    String url = "http://" + port.substring(port.lastIndexOf('\n') + 1).trim();
    await()
        .atMost(Duration.ofSeconds(120))
        .pollInterval(Duration.ofMillis(100))
        .ignoreExceptions()
        .until(() -> BerthProcess.get(http, url + "/v2/health/ready").statusCode() == 200);
    double[] fromImage = embedding(url);
    assertEquals(servedLocally.length, fromImage.length);
    for (int i = 0; i < fromImage.length; i++) {
      assertEquals(servedLocally[i], fromImage[i], 1e-5, "element " + i);
    }
    docker(work, "stop", "-t", "30", name).ok();
    String state = docker(work, "inspect", "-f", "{{.State.ExitCode}}", name).ok().out().trim();
    assertEquals("0", state, docker(work, "logs", name).err());
    ContainerTestEnv.Result logs = docker(work, "logs", name);
    assertTrue(logs.err().contains("every in-flight request was answered"), logs.err());
    // nothing but Berth's own JSON lines: no JVM warnings (class data, native access) on start
    for (String line : (logs.out() + logs.err()).split("\n")) {
      assertTrue(line.isBlank() || line.startsWith("{\""), "not a log line of Berth's: " + line);
    }
  }

  private double[] embedding(String url) throws IOException, InterruptedException {
    HttpResponse<String> r = BerthProcess.post(http, url + "/v2/models/minilm/infer", INFER);
    assertEquals(200, r.statusCode(), r.body());
    JsonNode data = JSON.readTree(r.body()).path("outputs").get(0).path("data");
    double[] out = new double[data.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = data.get(i).asDouble();
    }
    assertEquals(384, out.length);
    return out;
  }

  private String build(String... args) throws Exception {
    return build(service, args);
  }

  private String build(Path serviceFile, String... args) throws Exception {
    List<String> all = new ArrayList<>(List.of("build", serviceFile.toString()));
    all.addAll(List.of(args));
    all.add("--cache-dir");
    all.add(work.resolve("cache").toString());
    ContainerTestEnv.Result r = berth(work, all.toArray(String[]::new)).ok();
    assertTrue(r.err().contains("layer 1/"), r.err());
    Matcher m = DIGEST.matcher(r.out());
    assertTrue(m.find(), r.out());
    return m.group(1);
  }

  private String skopeoInspect(String ref, boolean config) throws Exception {
    List<String> args = new ArrayList<>(List.of("inspect"));
    if (ref.startsWith("docker://")) {
      args.add("--tls-verify=false");
    }
    if (config) {
      args.add("--config");
    }
    args.add(ref);
    return skopeo(work, args.toArray(String[]::new)).ok().out();
  }

  private List<String> layers(String ref) throws Exception {
    List<String> out = new ArrayList<>();
    for (JsonNode l : JSON.readTree(skopeoInspect("docker://" + ref, false)).path("Layers")) {
      out.add(l.asText());
    }
    return out;
  }

  private static String manifestDigest(Path dir) throws Exception {
    StringBuilder manifest = new StringBuilder();
    try (Stream<Path> files = Files.walk(dir)) {
      for (Path f : files.filter(Files::isRegularFile).sorted().toList()) {
        manifest.append(sha256(f)).append("  ").append(dir.relativize(f)).append('\n');
      }
    }
    return "sha256:"
        + HexFormat.of()
            .formatHex(
                MessageDigest.getInstance("SHA-256")
                    .digest(manifest.toString().getBytes(java.nio.charset.StandardCharsets.UTF_8)));
  }

  private static String sha256(Path file) throws Exception {
    return HexFormat.of()
        .formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
  }
}
