package dev.berth.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.api.BerthException;
import dev.berth.runtime.ModelManifest;
import dev.berth.runtime.SignedManifest;
import dev.berth.runtime.SigningKeys;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Models pushed to and pulled from a real registry, byte for byte, and every way that fails. */
class OciModelStoreIT {
  @TempDir static Path shared;
  private static TestRegistry registry;
  private static Path model;

  @TempDir Path work;
  private final List<String> progress = new ArrayList<>();

  @BeforeAll
  static void start() throws Exception {
    registry = TestRegistry.start(Files.createDirectories(shared.resolve("registry")));
    model = writeModel(shared.resolve("minilm"));
  }

  @AfterAll
  static void stop() {
    if (registry != null) {
      registry.close();
    }
  }

  /** A signed model of two versions, one with a subfolder, with files of random bytes. */
  public static Path writeModel(Path dir) throws Exception {
    return writeModel(dir, 42);
  }

  /** The same, with content of its own for each seed (blobs are shared across repositories). */
  public static Path writeModel(Path dir, long seed) throws Exception {
    Files.createDirectories(dir.resolve("1"));
    Files.createDirectories(dir.resolve("2/tokenizer"));
    Files.writeString(dir.resolve("model.yaml"), "apiVersion: berth.dev/v1\nkind: Model\n");
    Random random = new Random(seed);
    for (String f : List.of("1/model.onnx", "2/model.onnx", "2/tokenizer/tokenizer.json")) {
      byte[] b = new byte[200_000 + random.nextInt(100_000)];
      random.nextBytes(b);
      Files.write(dir.resolve(f), b);
    }
    var keys = SigningKeys.generate(SigningKeys.ED25519);
    SignedManifest.sign(ModelManifest.of(dir), keys.getPrivate())
        .write(dir.resolve(ModelManifest.SIGNATURE_FILE));
    return dir;
  }

  static void deleteTree(Path dir) {
    OciModelStore.deleteTree(dir);
  }

  private OciModelStore store() {
    return new OciModelStore(new DockerCredentials(List.of(), Map.of()), progress::add);
  }

  private OciReference ref(String repoAndTag) {
    return OciReference.parse("oci://" + registry.address() + "/" + repoAndTag);
  }

  private static Map<String, byte[]> files(Path dir) throws Exception {
    Map<String, byte[]> out = new java.util.TreeMap<>();
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path p : walk.filter(Files::isRegularFile).toList()) {
        out.put(dir.relativize(p).toString(), Files.readAllBytes(p));
      }
    }
    return out;
  }

  @Test
  void aPulledModelIsThePushedOneByteForByte() throws Exception {
    OciModelStore.Pushed pushed = store().push(model, "minilm", "onnx", ref("team/minilm:1.0"));
    assertEquals(3, pushed.layers(), "the model's own files, then one layer per version");
    Path pulled = work.resolve("pulled");
    OciModelStore.Pulled got = store().pull(ref("team/minilm:1.0"), pulled);
    assertEquals(pushed.digest(), got.digest());
    Map<String, byte[]> want = files(model);
    Map<String, byte[]> have = files(pulled);
    assertEquals(want.keySet(), have.keySet());
    want.forEach((f, bytes) -> assertArrayEquals(bytes, have.get(f), f));
    assertEquals("minilm", got.annotations().get(ModelArtifact.NAME));
    assertEquals("1,2", got.annotations().get(ModelArtifact.VERSIONS));
    assertEquals("onnx", got.annotations().get(ModelArtifact.ENGINE));
    assertEquals("true", got.annotations().get(ModelArtifact.SIGNED));
    assertEquals(
        ModelManifest.of(model).digest(), got.annotations().get(ModelArtifact.FILES_MANIFEST));
    // by digest too
    Path byDigest = work.resolve("by-digest");
    store().pull(ref("team/minilm@" + pushed.digest()), byDigest);
    assertEquals(want.keySet(), files(byDigest).keySet());
    assertTrue(progress.stream().anyMatch(l -> l.startsWith("pulled ")), progress.toString());
  }

  @Test
  void aRepositoryIsPushedAsAnIndexOfItsModelsAndPulledBackWhole() throws Exception {
    Path repo = work.resolve("repo");
    writeModel(repo.resolve("alpha"), 61);
    writeModel(repo.resolve("beta"), 62);
    Files.createDirectories(repo.resolve(".hidden/1")); // not a model
    OciModelStore.Pushed pushed =
        store().pushRepository(repo, ref("team/models:1"), (dir, name) -> "onnx");
    assertEquals(
        List.of("alpha", "beta"),
        store().members(ref("team/models:1")).stream().map(ModelArtifact.Member::name).toList());
    assertTrue(store().isIndex(ref("team/models:1")));
    Path pulled = work.resolve("pulled");
    OciModelStore.Pulled got = store().pull(ref("team/models:1"), pulled);
    assertEquals(pushed.digest(), got.digest());
    for (String model : List.of("alpha", "beta")) {
      Map<String, byte[]> want = files(repo.resolve(model));
      Map<String, byte[]> have = files(pulled.resolve(model));
      assertEquals(want.keySet(), have.keySet(), model);
      want.forEach((f, bytes) -> assertArrayEquals(bytes, have.get(f), model + "/" + f));
    }
    assertFalse(Files.exists(pulled.resolve(".hidden")));
  }

  @Test
  void pushingTheSameModelAgainUploadsNothingAndKeepsItsDigest() {
    OciModelStore.Pushed first = store().push(model, "minilm", "onnx", ref("again/minilm:a"));
    OciModelStore.Pushed second = store().push(model, "minilm", "onnx", ref("again/minilm:b"));
    assertEquals(first.digest(), second.digest());
    assertTrue(first.uploaded() > 0);
    assertEquals(0, second.uploaded(), "every layer was in the repository already");
  }

  @Test
  void skopeoReadsWhatBerthPushes() throws Exception {
    OciModelStore.Pushed pushed = store().push(model, "minilm", "onnx", ref("skopeo/minilm:1"));
    Path skopeo = Path.of("/usr/bin/skopeo");
    if (!Files.isExecutable(skopeo)) {
      String why = "skopeo is missing (apt-get install skopeo; .ci/run installs it)";
      if ("true".equals(System.getenv("CI"))) {
        org.junit.jupiter.api.Assertions.fail(why);
      }
      org.junit.jupiter.api.Assumptions.abort(why);
    }
    Process p =
        new ProcessBuilder(
                skopeo.toString(),
                "inspect",
                "--tls-verify=false",
                "docker://" + registry.address() + "/skopeo/minilm:1")
            .redirectErrorStream(true)
            .start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(60, TimeUnit.SECONDS));
    assertEquals(0, p.exitValue(), out);
    JsonNode inspected = new ObjectMapper().readTree(out);
    assertEquals(pushed.digest(), inspected.path("Digest").asText());
    assertEquals("minilm", inspected.path("Labels").path(ModelArtifact.NAME).asText());
    assertEquals(3, inspected.path("Layers").size());
  }

  @Test
  void aTamperedLayerFailsThePullAndLeavesNothingBehind() throws Exception {
    Path copy = writeModel(work.resolve("tamper"), 7);
    OciModelStore.Pushed pushed = store().push(copy, "tamper", null, ref("tamper/m:1"));
    // the second version's layer, altered in the registry's storage, same size
    String manifest =
        new String(
            new RegistryClient(ref("tamper/m:1"), false, new DockerCredentials(List.of(), Map.of()))
                .manifest(pushed.digest())
                .orElseThrow()
                .bytes(),
            StandardCharsets.UTF_8);
    String layer =
        new ObjectMapper().readTree(manifest).path("layers").get(2).path("digest").asText();
    Path data = registry.blobData(layer);
    byte[] bytes = Files.readAllBytes(data);
    bytes[bytes.length / 2] ^= 1;
    Files.write(data, bytes);
    Path target = work.resolve("out/pulled");
    BerthException e =
        assertThrows(BerthException.class, () -> store().pull(ref("tamper/m:1"), target));
    assertTrue(e.getMessage().contains("does not match its manifest"), e.getMessage());
    assertTrue(e.getMessage().contains(layer), e.getMessage());
    assertFalse(Files.exists(target));
    try (Stream<Path> left = Files.list(work.resolve("out"))) {
      assertEquals(List.of(), left.toList(), "no half-written model or temporary files");
    }
  }

  @Test
  void aMissingTagOrDigestIsNamed() {
    store().push(model, "minilm", null, ref("missing/minilm:1"));
    BerthException tag =
        assertThrows(
            BerthException.class,
            () -> store().pull(ref("missing/minilm:nope"), work.resolve("a")));
    assertTrue(tag.getMessage().contains("has no tag 'nope'"), tag.getMessage());
    String zeros = "sha256:" + "0".repeat(64);
    BerthException digest =
        assertThrows(
            BerthException.class,
            () -> store().pull(ref("missing/minilm@" + zeros), work.resolve("b")));
    assertTrue(digest.getMessage().contains(zeros), digest.getMessage());
    BerthException repo =
        assertThrows(
            BerthException.class, () -> store().pull(ref("nobody/here:1"), work.resolve("c")));
    assertTrue(repo.getMessage().contains("does not exist"), repo.getMessage());
  }

  @Test
  void aPullIntoAFullDirectoryIsRefused() throws Exception {
    store().push(model, "minilm", null, ref("full/minilm:1"));
    Path dir = Files.createDirectories(work.resolve("full"));
    Files.writeString(dir.resolve("keep.txt"), "mine");
    BerthException e =
        assertThrows(BerthException.class, () -> store().pull(ref("full/minilm:1"), dir));
    assertTrue(e.getMessage().contains("not empty"), e.getMessage());
    assertEquals("mine", Files.readString(dir.resolve("keep.txt")));
  }

  @Test
  void anUnreachableRegistryIsNamed() throws Exception {
    int port;
    try (var s = new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      port = s.getLocalPort();
    }
    OciReference nowhere = OciReference.parse("oci://127.0.0.1:" + port + "/m:1");
    BerthException e =
        assertThrows(BerthException.class, () -> store().pull(nowhere, work.resolve("x")));
    assertTrue(e.getMessage().contains("cannot be reached"), e.getMessage());
  }

  @Test
  void credentialsComeFromTheDockerConfigAndWrongOnesAreNamed() throws Exception {
    try (TestRegistry locked =
        TestRegistry.start(Files.createDirectories(work.resolve("locked")), "alice", "s3cret")) {
      OciReference target = OciReference.parse("oci://" + locked.address() + "/secure/m:1");
      BerthException anonymous =
          assertThrows(BerthException.class, () -> store().push(model, "minilm", null, target));
      assertTrue(
          anonymous.getMessage().contains("docker login " + locked.address()),
          anonymous.getMessage());

      Path config = work.resolve("docker/config.json");
      Files.createDirectories(config.getParent());
      Files.writeString(
          config,
          "{\"auths\": {\""
              + locked.address()
              + "\": {\"auth\": \""
              + java.util.Base64.getEncoder()
                  .encodeToString("alice:s3cret".getBytes(StandardCharsets.UTF_8))
              + "\"}}}");
      OciModelStore withLogin =
          new OciModelStore(new DockerCredentials(List.of(config), Map.of()), progress::add);
      withLogin.push(model, "minilm", null, target);
      withLogin.pull(target, work.resolve("pulled"));
      assertEquals(files(model).keySet(), files(work.resolve("pulled")).keySet());

      Files.writeString(
          config,
          "{\"auths\": {\"https://"
              + locked.address()
              + "/v1/\": {\"username\": \"alice\", \"password\": \"wrong\"}}}");
      BerthException wrong =
          assertThrows(
              BerthException.class,
              () ->
                  new OciModelStore(new DockerCredentials(List.of(config), Map.of()), progress::add)
                      .pull(target, work.resolve("again")));
      assertTrue(wrong.getMessage().contains("HTTP 401"), wrong.getMessage());
      assertTrue(wrong.getMessage().contains("docker login"), wrong.getMessage());
    }
  }
}
