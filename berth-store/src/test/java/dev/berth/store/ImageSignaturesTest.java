package dev.berth.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.berth.api.BerthException;
import dev.berth.api.InvalidInputException;
import dev.berth.runtime.SigningKeys;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.interfaces.ECPrivateKey;
import java.util.HashMap;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Cosign-format image signatures against an in-memory registry. */
class ImageSignaturesTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String IMAGE_MANIFEST = "{\"schemaVersion\":2,\"layers\":[]}";

  private final MemoryRegistry registry = new MemoryRegistry();
  private final KeyPair release = SigningKeys.generate(SigningKeys.ECDSA_P256);
  private final KeyPair other = SigningKeys.generate(SigningKeys.ECDSA_P256);

  /** A repository's manifests by tag and digest, and its blobs. */
  static final class MemoryRegistry implements ImageSignatures.Registry {
    final Map<String, RegistryClient.Manifest> manifests = new HashMap<>();
    final Map<String, byte[]> blobs = new HashMap<>();

    String push(String tag, String json) {
      byte[] bytes = json.getBytes(StandardCharsets.UTF_8);
      String digest = RegistryClient.sha256(bytes);
      RegistryClient.Manifest m = new RegistryClient.Manifest(bytes, "x", digest);
      manifests.put(tag, m);
      manifests.put(digest, m);
      return digest;
    }

    @Override
    public Optional<RegistryClient.Manifest> manifest(String reference) {
      return Optional.ofNullable(manifests.get(reference));
    }

    @Override
    public void putManifest(String tag, byte[] bytes, String mediaType) {
      assertEquals(RegistryClient.OCI_MANIFEST, mediaType);
      push(tag, new String(bytes, StandardCharsets.UTF_8));
    }

    @Override
    public void putBlob(String digest, byte[] bytes) {
      assertEquals(RegistryClient.sha256(bytes), digest);
      blobs.put(digest, bytes.clone());
    }

    @Override
    public byte[] blob(String digest, long size) {
      byte[] b = blobs.get(digest);
      if (b == null) {
        throw new BerthException("no blob " + digest);
      }
      assertEquals(size, b.length);
      return b.clone();
    }

    JsonNode json(String reference) throws Exception {
      return JSON.readTree(manifests.get(reference).bytes());
    }
  }

  private ImageSignatures at(String reference) {
    return new ImageSignatures(ImageSignatures.reference(reference), registry);
  }

  @Test
  void payloadIsCosignsSimpleSigningJson() {
    String digest = "sha256:" + "ab".repeat(32);
    assertEquals(
        "{\"critical\":{\"identity\":{\"docker-reference\":\"127.0.0.1:5000/ml/minilm\"},"
            + "\"image\":{\"docker-manifest-digest\":\""
            + digest
            + "\"},\"type\":\"cosign container image signature\"},\"optional\":null}",
        new String(
            ImageSignatures.payload("127.0.0.1:5000/ml/minilm", digest), StandardCharsets.UTF_8));
    assertEquals("sha256-" + "ab".repeat(32) + ".sig", ImageSignatures.signatureTag(digest));
  }

  @Test
  void signatureManifestHasCosignsShape() throws Exception {
    String digest = registry.push("1", IMAGE_MANIFEST);
    ImageSignatures.Signed signed = at("127.0.0.1:5000/ml/minilm:1").sign(release.getPrivate());
    assertEquals(digest, signed.digest());
    assertEquals(ImageSignatures.signatureTag(digest), signed.signatureTag());
    assertTrue(signed.added());
    assertEquals("127.0.0.1:5000/ml/minilm@" + digest, ImageSignatures.shown(signed.image()));

    JsonNode m = registry.json(signed.signatureTag());
    assertEquals(2, m.path("schemaVersion").asInt());
    assertEquals(RegistryClient.OCI_MANIFEST, m.path("mediaType").asText());
    assertEquals(ImageSignatures.OCI_CONFIG, m.path("config").path("mediaType").asText());
    assertEquals(1, m.path("layers").size());
    JsonNode layer = m.path("layers").get(0);
    assertEquals(ImageSignatures.SIMPLE_SIGNING, layer.path("mediaType").asText());
    byte[] payload = registry.blobs.get(layer.path("digest").asText());
    assertEquals(payload.length, layer.path("size").asInt());
    JsonNode p = JSON.readTree(payload);
    assertEquals(digest, p.at("/critical/image/docker-manifest-digest").asText());
    assertEquals("127.0.0.1:5000/ml/minilm", p.at("/critical/identity/docker-reference").asText());
    String signature =
        layer.path("annotations").path(ImageSignatures.SIGNATURE_ANNOTATION).asText();
    assertTrue(ImageSignatures.verifySignature(release.getPublic(), payload, signature));

    byte[] configBytes = registry.blobs.get(m.path("config").path("digest").asText());
    assertEquals(configBytes.length, m.path("config").path("size").asInt());
    JsonNode config = JSON.readTree(configBytes);
    assertEquals(
        "{\"architecture\":\"\",\"created\":\"0001-01-01T00:00:00Z\",\"history\":[{\"created\":"
            + "\"0001-01-01T00:00:00Z\"}],\"os\":\"\",\"rootfs\":{\"type\":\"layers\",\"diff_ids\":"
            + "[\""
            + layer.path("digest").asText()
            + "\"]},\"config\":{}}",
        new String(configBytes, StandardCharsets.UTF_8));
    assertEquals(1, config.at("/rootfs/diff_ids").size());
  }

  @Test
  void signedImageVerifiesWithItsKeyOnly() {
    String digest = registry.push("1", IMAGE_MANIFEST);
    ImageSignatures image = at("127.0.0.1:5000/ml/minilm:1");
    image.sign(release.getPrivate());

    ImageSignatures.Verification ok = image.verify(release.getPublic());
    assertTrue(ok.ok(), ok.message());
    assertEquals(digest, ok.digest());
    assertEquals(1, ok.verified());

    ImageSignatures.Verification wrong = image.verify(other.getPublic());
    assertFalse(wrong.ok());
    assertTrue(wrong.message().contains(digest), wrong.message());
    assertTrue(wrong.message().contains("127.0.0.1:5000/ml/minilm:1"), wrong.message());
    assertTrue(wrong.message().contains("signed by another key"), wrong.message());

    // by digest too
    assertTrue(at("127.0.0.1:5000/ml/minilm@" + digest).verify(release.getPublic()).ok());
  }

  @Test
  void anUnsignedImageFailsNamingTheMissingSignature() {
    String digest = registry.push("1", IMAGE_MANIFEST);
    ImageSignatures.Verification v = at("127.0.0.1:5000/ml/minilm:1").verify(release.getPublic());
    assertFalse(v.ok());
    assertEquals(0, v.signatures());
    assertTrue(v.message().contains(digest), v.message());
    assertTrue(v.message().contains("no signature is stored"), v.message());
  }

  @Test
  void aTagMovedToAnotherManifestIsNotCoveredByTheOldSignature() {
    ImageSignatures image = at("127.0.0.1:5000/ml/minilm:1");
    registry.push("1", IMAGE_MANIFEST);
    image.sign(release.getPrivate());
    String changed = registry.push("1", "{\"schemaVersion\":2,\"layers\":[{}]}");
    ImageSignatures.Verification v = image.verify(release.getPublic());
    assertFalse(v.ok());
    assertEquals(changed, v.digest());
    assertTrue(v.message().contains("no signature is stored"), v.message());
  }

  @Test
  void aPayloadNamingAnotherDigestOrRepositoryIsRejected() {
    String digest = "sha256:" + "ab".repeat(32);
    String identity = "127.0.0.1:5000/ml/minilm";
    byte[] payload = ImageSignatures.payload(identity, digest);
    String signature = ImageSignatures.signPayload(release.getPrivate(), payload);
    assertNull(ImageSignatures.check(payload, signature, release.getPublic(), identity, digest));

    String otherDigest = "sha256:" + "cd".repeat(32);
    String why =
        ImageSignatures.check(payload, signature, release.getPublic(), identity, otherDigest);
    assertTrue(why.contains("another manifest, " + digest), why);

    why =
        ImageSignatures.check(
            payload, signature, release.getPublic(), "127.0.0.1:5000/ml/other", digest);
    assertTrue(why.contains("another repository, '" + identity + "'"), why);
  }

  @Test
  void aTamperedPayloadIsRejected() {
    String digest = "sha256:" + "ab".repeat(32);
    String identity = "127.0.0.1:5000/ml/minilm";
    byte[] payload = ImageSignatures.payload(identity, digest);
    String signature = ImageSignatures.signPayload(release.getPrivate(), payload);
    byte[] tampered =
        new String(payload, StandardCharsets.UTF_8)
            .replace("\"optional\":null", "\"optional\":{}")
            .getBytes(StandardCharsets.UTF_8);
    String why = ImageSignatures.check(tampered, signature, release.getPublic(), identity, digest);
    assertTrue(why.contains("payload was changed"), why);
    assertTrue(
        ImageSignatures.check(payload, "not base64!", release.getPublic(), identity, digest)
            .contains("not made by this key"));
  }

  @Test
  void payloadsOfOtherSignersAreReadAsTheirs() {
    // containers/image writes the tag into docker-reference and its own fields into optional
    String digest = "sha256:" + "ab".repeat(32);
    byte[] payload =
        ("{\"critical\":{\"identity\":{\"docker-reference\":\"127.0.0.1:5000/ml/minilm:1\"},"
                + "\"image\":{\"docker-manifest-digest\":\""
                + digest
                + "\"},\"type\":\"cosign container image signature\"},"
                + "\"optional\":{\"creator\":\"containers/image\",\"timestamp\":1}}")
            .getBytes(StandardCharsets.UTF_8);
    String signature = ImageSignatures.signPayload(release.getPrivate(), payload);
    assertNull(
        ImageSignatures.check(
            payload, signature, release.getPublic(), "127.0.0.1:5000/ml/minilm", digest));
    byte[] noOptional =
        ("{\"critical\":{\"identity\":{\"docker-reference\":\"127.0.0.1:5000/ml/minilm\"},"
                + "\"image\":{\"docker-manifest-digest\":\""
                + digest
                + "\"},\"type\":\"cosign container image signature\"}}")
            .getBytes(StandardCharsets.UTF_8);
    assertNull(
        ImageSignatures.check(
            noOptional,
            ImageSignatures.signPayload(release.getPrivate(), noOptional),
            release.getPublic(),
            "127.0.0.1:5000/ml/minilm",
            digest));
    assertEquals(
        "127.0.0.1:5000/ml/minilm",
        ImageSignatures.repositoryOf("127.0.0.1:5000/ml/minilm@" + digest));
    assertEquals(
        "127.0.0.1:5000/ml/minilm", ImageSignatures.repositoryOf("127.0.0.1:5000/ml/minilm"));
  }

  @Test
  void aSecondKeyAppendsALayerAndTheSameKeyAddsNone() throws Exception {
    registry.push("1", IMAGE_MANIFEST);
    ImageSignatures image = at("127.0.0.1:5000/ml/minilm:1");
    ImageSignatures.Signed first = image.sign(release.getPrivate());
    ImageSignatures.Signed again = image.sign(release.getPrivate());
    assertFalse(again.added());
    assertEquals(1, again.signatures());
    JsonNode before = registry.json(first.signatureTag());

    ImageSignatures.Signed second = image.sign(other.getPrivate());
    assertTrue(second.added());
    assertEquals(2, second.signatures());
    JsonNode after = registry.json(first.signatureTag());
    assertEquals(before.path("layers").get(0), after.path("layers").get(0));
    assertEquals(2, after.path("layers").size());
    JsonNode config =
        JSON.readTree(registry.blobs.get(after.path("config").path("digest").asText()));
    assertEquals(2, config.at("/rootfs/diff_ids").size());
    assertEquals(2, config.path("history").size());

    assertTrue(image.verify(release.getPublic()).ok());
    assertTrue(image.verify(other.getPublic()).ok());
    ImageSignatures.Verification v = image.verify(other.getPublic());
    assertEquals(2, v.signatures());
    assertEquals(1, v.verified());
  }

  @Test
  void layersOfAnotherSignerAreKeptWhenSigning() throws Exception {
    String digest = registry.push("1", IMAGE_MANIFEST);
    String tag = ImageSignatures.signatureTag(digest);
    ObjectNode foreign = JSON.createObjectNode();
    foreign.put("mediaType", ImageSignatures.SIMPLE_SIGNING);
    foreign.put("size", 2);
    foreign.put("digest", RegistryClient.sha256("{}".getBytes(StandardCharsets.UTF_8)));
    foreign
        .putObject("annotations")
        .put(ImageSignatures.SIGNATURE_ANNOTATION, "MEUCIQ==")
        .put("dev.sigstore.cosign/bundle", "{}");
    registry.blobs.put(foreign.path("digest").asText(), "{}".getBytes(StandardCharsets.UTF_8));
    registry.push(tag, "{\"schemaVersion\":2,\"layers\":[" + foreign + "]}");

    ImageSignatures image = at("127.0.0.1:5000/ml/minilm:1");
    assertFalse(image.verify(release.getPublic()).ok());
    image.sign(release.getPrivate());
    JsonNode m = registry.json(tag);
    assertEquals(foreign, m.path("layers").get(0));
    ImageSignatures.Verification v = image.verify(release.getPublic());
    assertTrue(v.ok(), v.message());
    assertEquals(2, v.signatures());
  }

  @Test
  void anImageNotInTheRegistryIsAnError() {
    BerthException e =
        assertThrows(
            BerthException.class,
            () -> at("127.0.0.1:5000/ml/minilm:9").verify(release.getPublic()));
    assertTrue(e.getMessage().contains("no image at 127.0.0.1:5000/ml/minilm:9"), e.getMessage());
  }

  @Test
  void ed25519KeysAreRefusedForImages(@TempDir Path dir) throws Exception {
    KeyPair ed = SigningKeys.generate(SigningKeys.ED25519);
    Path pem = Files.writeString(dir.resolve("model.pem"), SigningKeys.pem(ed.getPrivate()));
    Path pub = Files.writeString(dir.resolve("model.pub"), SigningKeys.pem(ed.getPublic()));
    for (BerthException e :
        new BerthException[] {
          assertThrows(BerthException.class, () -> ImageSignatures.signingKey(pem)),
          assertThrows(BerthException.class, () -> ImageSignatures.verifyingKey(pub))
        }) {
      assertTrue(e.getMessage().contains(dir.toString()), e.getMessage());
      assertTrue(e.getMessage().contains("Ed25519 key"), e.getMessage());
      assertTrue(e.getMessage().contains("ECDSA P-256"), e.getMessage());
      assertTrue(e.getMessage().contains("--algorithm ECDSA-P256"), e.getMessage());
    }
    registry.push("1", IMAGE_MANIFEST);
    assertThrows(
        BerthException.class, () -> at("127.0.0.1:5000/ml/minilm:1").sign(ed.getPrivate()));

    Path ec = Files.writeString(dir.resolve("image.pem"), SigningKeys.pem(release.getPrivate()));
    assertEquals(release.getPrivate(), ImageSignatures.signingKey(ec));
  }

  @Test
  void thePublicKeyIsDerivedFromThePrivateKey() {
    for (int i = 0; i < 8; i++) {
      KeyPair k = SigningKeys.generate(SigningKeys.ECDSA_P256);
      assertEquals(k.getPublic(), ImageSignatures.publicKeyOf((ECPrivateKey) k.getPrivate()));
    }
  }

  @Test
  void referencesNameTheirRegistry() {
    OciReference r = ImageSignatures.reference("127.0.0.1:5000/ml/minilm:1");
    assertEquals("127.0.0.1:5000", r.registry());
    assertEquals("ml/minilm", r.repository());
    assertEquals("1", r.tag());
    assertEquals(r, ImageSignatures.reference("oci://127.0.0.1:5000/ml/minilm:1"));
    assertEquals("latest", ImageSignatures.reference("localhost/minilm").tag());
    InvalidInputException e =
        assertThrows(InvalidInputException.class, () -> ImageSignatures.reference("ml/minilm:1"));
    assertTrue(e.getMessage().contains("names no registry"), e.getMessage());
  }
}
