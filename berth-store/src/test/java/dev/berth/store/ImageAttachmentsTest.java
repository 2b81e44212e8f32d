package dev.berth.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;

class ImageAttachmentsTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final OciReference IMAGE = OciReference.parse("oci://127.0.0.1:5000/ml/minilm:1");
  private static final byte[] IMAGE_MANIFEST =
      "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\"}"
          .getBytes(StandardCharsets.UTF_8);
  private static final String IMAGE_DIGEST = RegistryClient.sha256(IMAGE_MANIFEST);

  /** A registry in memory, with or without the referrers API. */
  private static final class MemoryRegistry implements ImageAttachments.Registry {
    final boolean referrersApi;
    final Map<String, RegistryClient.Manifest> manifests = new HashMap<>();
    final Map<String, byte[]> blobs = new HashMap<>();
    final Map<String, List<String>> subjects = new HashMap<>(); // subject digest -> referrers

    MemoryRegistry(boolean referrersApi) {
      this.referrersApi = referrersApi;
      putManifest("1", IMAGE_MANIFEST, RegistryClient.OCI_MANIFEST);
    }

    @Override
    public Optional<RegistryClient.Manifest> manifest(String reference) {
      return Optional.ofNullable(manifests.get(reference));
    }

    @Override
    public void putManifest(String reference, byte[] bytes, String mediaType) {
      RegistryClient.Manifest m =
          new RegistryClient.Manifest(bytes, mediaType, RegistryClient.sha256(bytes));
      manifests.put(reference, m);
      manifests.put(m.digest(), m);
    }

    @Override
    public boolean putReferrer(String reference, byte[] bytes, String mediaType) {
      putManifest(reference, bytes, mediaType);
      if (!referrersApi) {
        return false;
      }
      String subject = tree(bytes).path("subject").path("digest").asText();
      subjects
          .computeIfAbsent(subject, k -> new java.util.ArrayList<>())
          .add(RegistryClient.sha256(bytes));
      return true;
    }

    @Override
    public Optional<byte[]> referrers(String digest) {
      if (!referrersApi) {
        return Optional.empty();
      }
      ObjectNode index = JSON.createObjectNode().put("schemaVersion", 2);
      ArrayNode list = index.putArray("manifests");
      for (String d : subjects.getOrDefault(digest, List.of())) {
        JsonNode m = tree(manifests.get(d).bytes());
        list.addObject()
            .put("mediaType", RegistryClient.OCI_MANIFEST)
            .put("digest", d)
            .put("size", manifests.get(d).bytes().length)
            .put("artifactType", m.path("artifactType").asText());
      }
      return Optional.of(index.toString().getBytes(StandardCharsets.UTF_8));
    }

    @Override
    public void putBlob(String digest, byte[] bytes) {
      assertEquals(digest, RegistryClient.sha256(bytes));
      blobs.put(digest, bytes);
    }

    @Override
    public byte[] blob(String digest, long size) {
      byte[] b = blobs.get(digest);
      assertEquals(size, b.length);
      return b;
    }
  }

  private static JsonNode tree(byte[] bytes) {
    try {
      return JSON.readTree(bytes);
    } catch (java.io.IOException e) {
      throw new AssertionError(e);
    }
  }

  private static final byte[] SBOM =
      "{\"bomFormat\":\"CycloneDX\",\"specVersion\":\"1.6\"}".getBytes(StandardCharsets.UTF_8);

  @Test
  void anAttachedDocumentIsAnArtifactWhoseSubjectIsTheImage() {
    MemoryRegistry registry = new MemoryRegistry(true);
    ImageAttachments attachments = new ImageAttachments(IMAGE, registry);
    String digest = attachments.attach(IMAGE_DIGEST, ImageAttachments.CYCLONEDX_JSON, SBOM);

    JsonNode m = tree(registry.manifests.get(digest).bytes());
    assertEquals(2, m.path("schemaVersion").asInt());
    assertEquals(RegistryClient.OCI_MANIFEST, m.path("mediaType").asText());
    assertEquals(ImageAttachments.CYCLONEDX_JSON, m.path("artifactType").asText());
    assertEquals(ImageAttachments.EMPTY, m.path("config").path("mediaType").asText());
    assertEquals(2, m.path("config").path("size").asInt());
    assertEquals(
        ImageAttachments.CYCLONEDX_JSON, m.path("layers").get(0).path("mediaType").asText());
    assertEquals(RegistryClient.sha256(SBOM), m.path("layers").get(0).path("digest").asText());
    assertEquals(IMAGE_DIGEST, m.path("subject").path("digest").asText());
    assertEquals(IMAGE_MANIFEST.length, m.path("subject").path("size").asInt());
    assertEquals(RegistryClient.OCI_MANIFEST, m.path("subject").path("mediaType").asText());
    assertFalse(
        registry.manifests.containsKey(ImageAttachments.fallbackTag(IMAGE_DIGEST)),
        "a registry with the referrers API keeps its own index");

    List<ImageAttachments.Referrer> found =
        attachments.referrers(IMAGE_DIGEST, ImageAttachments.CYCLONEDX_JSON);
    assertEquals(1, found.size());
    assertArrayEquals(SBOM, attachments.document(found.get(0)));
  }

  @Test
  void aListedArtifactOfAnotherImageOrTypeIsNotTaken() {
    MemoryRegistry registry = new MemoryRegistry(false);
    byte[] otherImage =
        "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"x\":1}"
            .getBytes(StandardCharsets.UTF_8);
    registry.putManifest("2", otherImage, RegistryClient.OCI_MANIFEST);
    String otherDigest = RegistryClient.sha256(otherImage);
    ImageAttachments attachments = new ImageAttachments(IMAGE, registry);
    String othersSbom = attachments.attach(otherDigest, ImageAttachments.CYCLONEDX_JSON, SBOM);
    // someone lists the other image's SBOM, and a tag, under this image's fallback tag
    ObjectNode index = JSON.createObjectNode().put("schemaVersion", 2);
    index.put("mediaType", RegistryClient.OCI_INDEX);
    ArrayNode listed = index.putArray("manifests");
    listed
        .addObject()
        .put("digest", othersSbom)
        .put("size", 1)
        .put("artifactType", ImageAttachments.CYCLONEDX_JSON);
    listed
        .addObject()
        .put("digest", "1")
        .put("size", 1)
        .put("artifactType", ImageAttachments.CYCLONEDX_JSON);
    registry.putManifest(
        ImageAttachments.fallbackTag(IMAGE_DIGEST),
        index.toString().getBytes(StandardCharsets.UTF_8),
        RegistryClient.OCI_INDEX);
    assertTrue(
        attachments.referrers(IMAGE_DIGEST, ImageAttachments.CYCLONEDX_JSON).isEmpty(),
        "an artifact counts only when its own manifest names this image as its subject");
    assertEquals(1, attachments.referrers(otherDigest, ImageAttachments.CYCLONEDX_JSON).size());
  }

  @Test
  void aFallbackTagHoldingSomethingElseIsNotOverwritten() {
    MemoryRegistry registry = new MemoryRegistry(false);
    registry.putManifest(
        ImageAttachments.fallbackTag(IMAGE_DIGEST), IMAGE_MANIFEST, RegistryClient.OCI_MANIFEST);
    ImageAttachments attachments = new ImageAttachments(IMAGE, registry);
    dev.berth.api.BerthException e =
        org.junit.jupiter.api.Assertions.assertThrows(
            dev.berth.api.BerthException.class,
            () -> attachments.attach(IMAGE_DIGEST, ImageAttachments.CYCLONEDX_JSON, SBOM));
    assertTrue(e.getMessage().contains("other than an OCI image index"), e.getMessage());
  }

  @Test
  void withoutTheReferrersApiTheFallbackTagListsEveryReferrerOnce() {
    MemoryRegistry registry = new MemoryRegistry(false);
    ImageAttachments attachments = new ImageAttachments(IMAGE, registry);
    String sbom = attachments.attach(IMAGE_DIGEST, ImageAttachments.CYCLONEDX_JSON, SBOM);
    String again = attachments.attach(IMAGE_DIGEST, ImageAttachments.CYCLONEDX_JSON, SBOM);
    assertEquals(sbom, again, "the same document, the same artifact");
    byte[] other = "{\"other\":true}".getBytes(StandardCharsets.UTF_8);
    String note = attachments.attach(IMAGE_DIGEST, "application/vnd.example+json", other);

    String tag = "sha256-" + IMAGE_DIGEST.substring("sha256:".length());
    assertEquals(tag, ImageAttachments.fallbackTag(IMAGE_DIGEST));
    RegistryClient.Manifest index = registry.manifests.get(tag);
    assertEquals(RegistryClient.OCI_INDEX, index.mediaType());
    JsonNode listed = tree(index.bytes()).path("manifests");
    assertEquals(2, listed.size(), listed.toString());
    assertEquals(sbom, listed.get(0).path("digest").asText());
    assertEquals(ImageAttachments.CYCLONEDX_JSON, listed.get(0).path("artifactType").asText());
    assertEquals(note, listed.get(1).path("digest").asText());

    List<ImageAttachments.Referrer> found =
        attachments.referrers(IMAGE_DIGEST, ImageAttachments.CYCLONEDX_JSON);
    assertEquals(1, found.size());
    assertArrayEquals(SBOM, attachments.document(found.get(0)));
    assertTrue(
        attachments
            .referrers(RegistryClient.sha256(SBOM), ImageAttachments.CYCLONEDX_JSON)
            .isEmpty(),
        "another digest has none");
  }
}
