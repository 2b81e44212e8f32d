package dev.berth.cli;

import static dev.berth.cli.ContainerTestEnv.berth;
import static dev.berth.cli.ContainerTestEnv.exec;
import static dev.berth.cli.ContainerTestEnv.skopeo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Base64;
import java.util.HexFormat;
import java.util.List;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * {@code berth sign-image} and {@code berth verify} against the real registry, one small image
 * pushed with skopeo, and what Berth stored read back with tools Berth did not write: skopeo reads
 * the signature manifest and copies its blobs, OpenSSL checks the signature over the payload; and
 * the other way round, a signature OpenSSL made and skopeo pushed verifies with {@code berth
 * verify}. The tests run in order: unsigned, signed, signed twice, the tag moved to another
 * manifest, that manifest signed without Berth, then with cosign's own key file.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class ImageSignatureIT {
  private static final ObjectMapper JSON = new ObjectMapper();

  private Path work;
  private String repository; // REGISTRY/REPO
  private String image; // REGISTRY/REPO:1
  private String digest;
  private Path releaseKey;
  private Path otherKey;

  @BeforeAll
  void setUp() throws Exception {
    ContainerTestEnv env = ContainerTestEnv.require();
    work = Files.createTempDirectory(Path.of("target").toAbsolutePath(), "image-signature-it-");
    // a repository of its own each run: the test registry keeps what earlier runs pushed
    repository = env.registry + "/it/signed-" + Long.toString(System.nanoTime(), 36);
    image = repository + ":1";
    digest = push("one");
    berth(work, "keygen", "release.pem", "--algorithm", "ECDSA-P256").ok();
    berth(work, "keygen", "other.pem", "--algorithm", "ECDSA-P256").ok();
    releaseKey = work.resolve("release.pem");
    otherKey = work.resolve("other.pem");
  }

  @Test
  @Order(1)
  void anUnsignedImageDoesNotVerify() throws Exception {
    ContainerTestEnv.Result r = berth(work, "verify", image, "--key", pub(releaseKey));
    assertEquals(1, r.code(), r.out() + r.err());
    assertTrue(r.err().contains(image + " (" + digest + ")"), r.err());
    assertTrue(r.err().contains("no signature is stored"), r.err());
  }

  @Test
  @Order(2)
  void signImageStoresCosignsFormatThatOpenSslVerifies() throws Exception {
    String out = berth(work, "sign-image", image, "--key", releaseKey.toString()).ok().out();
    String tag = "sha256-" + digest.substring("sha256:".length()) + ".sig";
    assertTrue(out.contains(repository + "@" + digest), out);
    assertTrue(out.contains(repository + ":" + tag), out);

    JsonNode manifest = signatureManifest();
    assertEquals("application/vnd.oci.image.manifest.v1+json", manifest.path("mediaType").asText());
    assertEquals(
        "application/vnd.oci.image.config.v1+json",
        manifest.path("config").path("mediaType").asText());
    assertEquals(1, manifest.path("layers").size());
    JsonNode layer = manifest.path("layers").get(0);
    assertEquals(
        "application/vnd.dev.cosign.simplesigning.v1+json", layer.path("mediaType").asText());
    String signature =
        layer.path("annotations").path("dev.cosignproject.cosign/signature").asText();
    assertTrue(!signature.isEmpty(), layer.toString());

    // the blobs as skopeo copies them, named by their digests' hex
    Path copied = work.resolve("signature-copy");
    skopeo(
            work,
            "copy",
            "--src-tls-verify=false",
            "docker://" + repository + ":" + tag,
            "dir:" + copied)
        .ok();
    Path payload = copied.resolve(layer.path("digest").asText().substring("sha256:".length()));
    JsonNode p = JSON.readTree(Files.readAllBytes(payload));
    assertEquals("cosign container image signature", p.at("/critical/type").asText());
    assertEquals(digest, p.at("/critical/image/docker-manifest-digest").asText());
    assertEquals(repository, p.at("/critical/identity/docker-reference").asText());
    JsonNode config =
        JSON.readTree(
            Files.readAllBytes(
                copied.resolve(
                    manifest
                        .path("config")
                        .path("digest")
                        .asText()
                        .substring("sha256:".length()))));
    assertEquals(layer.path("digest").asText(), config.at("/rootfs/diff_ids/0").asText());

    Path der = Files.write(work.resolve("signature.der"), Base64.getDecoder().decode(signature));
    assertEquals(
        "Verified OK",
        openssl(pub(releaseKey), der, payload).ok().out().strip(),
        "OpenSSL verifies the signature over the payload with the public key berth keygen wrote");
    // and the check can fail: another key's public key does not verify it
    assertEquals(1, openssl(pub(otherKey), der, payload).code());
  }

  @Test
  @Order(3)
  void verifyPassesWithTheKeyAndFailsWithAnother() throws Exception {
    String out = berth(work, "verify", image, "--key", pub(releaseKey)).ok().out();
    assertTrue(out.contains("verified " + repository + "@" + digest), out);

    ContainerTestEnv.Result other = berth(work, "verify", image, "--key", pub(otherKey));
    assertEquals(1, other.code(), other.out() + other.err());
    assertTrue(other.err().contains(digest), other.err());
    assertTrue(other.err().contains("signed by another key"), other.err());
  }

  @Test
  @Order(4)
  void aSecondKeyAppendsASignatureAndBothVerify() throws Exception {
    JsonNode first = signatureManifest().path("layers").get(0);
    berth(work, "sign-image", image, "--key", otherKey.toString()).ok();
    JsonNode layers = signatureManifest().path("layers");
    assertEquals(2, layers.size());
    assertEquals(first, layers.get(0));
    berth(work, "verify", image, "--key", pub(releaseKey)).ok();
    berth(work, "verify", repository + "@" + digest, "--key", pub(otherKey)).ok();

    String again = berth(work, "sign-image", image, "--key", releaseKey.toString()).ok().out();
    assertTrue(again.contains("signed it already"), again);
    assertEquals(2, signatureManifest().path("layers").size());
  }

  @Test
  @Order(5)
  void aTagMovedToAnotherManifestIsNotCoveredByTheOldSignature() throws Exception {
    String changed = push("two");
    assertNotEquals(digest, changed);
    ContainerTestEnv.Result r = berth(work, "verify", image, "--key", pub(releaseKey));
    assertEquals(1, r.code(), r.out() + r.err());
    assertTrue(r.err().contains(image + " (" + changed + ")"), r.err());
    assertTrue(r.err().contains("no signature is stored"), r.err());
    // the signed manifest, by its digest, still verifies
    berth(work, "verify", repository + "@" + digest, "--key", pub(releaseKey)).ok();
  }

  @Test
  @Order(6)
  void aSignatureMadeWithOpenSslAndPushedWithSkopeoVerifies() throws Exception {
    // as containers/image writes them: the tag in docker-reference, its own fields in optional
    String changed =
        skopeo(
                work,
                "inspect",
                "--tls-verify=false",
                "--format",
                "{{.Digest}}",
                "docker://" + image)
            .ok()
            .out()
            .strip();
    byte[] payload =
        ("{\"critical\":{\"identity\":{\"docker-reference\":\""
                + image
                + "\"},\"image\":{\"docker-manifest-digest\":\""
                + changed
                + "\"},\"type\":\"cosign container image signature\"},"
                + "\"optional\":{\"creator\":\"openssl\",\"timestamp\":1765000000}}")
            .getBytes(StandardCharsets.UTF_8);
    Path dir = Files.createDirectories(work.resolve("openssl-signature"));
    String payloadDigest = sha256(payload);
    Path payloadFile = dir.resolve(payloadDigest.substring("sha256:".length()));
    Files.write(payloadFile, payload);
    Path der = work.resolve("openssl-signature.der");
    exec(
            work,
            List.of(
                "openssl",
                "dgst",
                "-sha256",
                "-sign",
                releaseKey.toString(),
                "-out",
                der.toString(),
                payloadFile.toString()))
        .ok();
    ObjectNode config = JSON.createObjectNode();
    config.put("architecture", "").put("os", "");
    config.putObject("rootfs").put("type", "layers").putArray("diff_ids").add(payloadDigest);
    config.putObject("config");
    byte[] configBytes = JSON.writeValueAsBytes(config);
    String configDigest = sha256(configBytes);
    Files.write(dir.resolve(configDigest.substring("sha256:".length())), configBytes);
    ObjectNode manifest = JSON.createObjectNode();
    manifest.put("schemaVersion", 2).put("mediaType", "application/vnd.oci.image.manifest.v1+json");
    manifest
        .putObject("config")
        .put("mediaType", "application/vnd.oci.image.config.v1+json")
        .put("size", configBytes.length)
        .put("digest", configDigest);
    manifest
        .putArray("layers")
        .addObject()
        .put("mediaType", "application/vnd.dev.cosign.simplesigning.v1+json")
        .put("size", payload.length)
        .put("digest", payloadDigest)
        .putObject("annotations")
        .put(
            "dev.cosignproject.cosign/signature",
            Base64.getEncoder().encodeToString(Files.readAllBytes(der)));
    Files.write(dir.resolve("manifest.json"), JSON.writeValueAsBytes(manifest));
    Files.writeString(dir.resolve("version"), "Directory Transport Version: 1.1\n");
    String tag = "sha256-" + changed.substring("sha256:".length()) + ".sig";
    skopeo(
            work,
            "copy",
            "--dest-tls-verify=false",
            "dir:" + dir,
            "docker://" + repository + ":" + tag)
        .ok();

    String out = berth(work, "verify", image, "--key", pub(releaseKey)).ok().out();
    assertTrue(out.contains("verified " + repository + "@" + changed), out);
    ContainerTestEnv.Result other = berth(work, "verify", image, "--key", pub(otherKey));
    assertEquals(1, other.code(), other.out() + other.err());
  }

  @Test
  @Order(7)
  void cosignsOwnKeyFileSignsWithItsPassword() throws Exception {
    Path cosign = Path.of("src/test/resources/cosign").toAbsolutePath();
    berth(
            work,
            java.util.Map.of("COSIGN_PASSWORD", "berth-test"),
            "sign-image",
            image,
            "--key",
            cosign.resolve("cosign.key").toString())
        .ok();
    String out =
        berth(work, "verify", image, "--key", cosign.resolve("cosign.pub").toString()).ok().out();
    assertTrue(out.contains("(1 of 2 signatures by "), out);
  }

  private JsonNode signatureManifest() throws Exception {
    String tag = "sha256-" + digest.substring("sha256:".length()) + ".sig";
    return JSON.readTree(
        skopeo(work, "inspect", "--raw", "--tls-verify=false", "docker://" + repository + ":" + tag)
            .ok()
            .out());
  }

  private String pub(Path privateKey) {
    return privateKey
        .resolveSibling(privateKey.getFileName().toString().replace(".pem", ".pub"))
        .toString();
  }

  private ContainerTestEnv.Result openssl(String publicKey, Path signature, Path payload)
      throws Exception {
    return exec(
        work,
        List.of(
            "openssl",
            "dgst",
            "-sha256",
            "-verify",
            publicKey,
            "-signature",
            signature.toString(),
            payload.toString()));
  }

  /**
   * Pushes a one-layer image (a file holding {@code content}) as {@link #image} with skopeo, from
   * an OCI layout written here; returns its manifest digest.
   */
  private String push(String content) throws Exception {
    Path layout = Files.createDirectories(work.resolve("layout-" + content));
    Path blobs = Files.createDirectories(layout.resolve("blobs/sha256"));
    ByteArrayOutputStream tar = new ByteArrayOutputStream();
    byte[] file = (content + "\n").getBytes(StandardCharsets.UTF_8);
    try (TarArchiveOutputStream out = new TarArchiveOutputStream(tar)) {
      TarArchiveEntry e = new TarArchiveEntry("hello.txt");
      e.setSize(file.length);
      out.putArchiveEntry(e);
      out.write(file);
      out.closeArchiveEntry();
    }
    String layer = blob(blobs, tar.toByteArray());
    ObjectNode config = JSON.createObjectNode();
    config.put("architecture", "amd64").put("os", "linux");
    config.putObject("config");
    ObjectNode rootfs = config.putObject("rootfs").put("type", "layers");
    rootfs.putArray("diff_ids").add(layer);
    byte[] configBytes = JSON.writeValueAsBytes(config);
    ObjectNode manifest = JSON.createObjectNode();
    manifest.put("schemaVersion", 2).put("mediaType", "application/vnd.oci.image.manifest.v1+json");
    manifest
        .putObject("config")
        .put("mediaType", "application/vnd.oci.image.config.v1+json")
        .put("size", configBytes.length)
        .put("digest", blob(blobs, configBytes));
    manifest
        .putArray("layers")
        .addObject()
        .put("mediaType", "application/vnd.oci.image.layer.v1.tar")
        .put("size", tar.size())
        .put("digest", layer);
    byte[] manifestBytes = JSON.writeValueAsBytes(manifest);
    ObjectNode index = JSON.createObjectNode().put("schemaVersion", 2);
    index
        .putArray("manifests")
        .addObject()
        .put("mediaType", "application/vnd.oci.image.manifest.v1+json")
        .put("size", manifestBytes.length)
        .put("digest", blob(blobs, manifestBytes))
        .putObject("annotations")
        .put("org.opencontainers.image.ref.name", "1");
    Files.write(layout.resolve("index.json"), JSON.writeValueAsBytes(index));
    Files.writeString(layout.resolve("oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
    skopeo(work, "copy", "--dest-tls-verify=false", "oci:" + layout + ":1", "docker://" + image)
        .ok();
    return skopeo(
            work, "inspect", "--tls-verify=false", "--format", "{{.Digest}}", "docker://" + image)
        .ok()
        .out()
        .strip();
  }

  private static String blob(Path blobs, byte[] bytes) throws Exception {
    String digest = sha256(bytes);
    Files.write(blobs.resolve(digest.substring("sha256:".length())), bytes);
    return digest;
  }

  private static String sha256(byte[] bytes) throws Exception {
    return "sha256:" + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
  }
}
