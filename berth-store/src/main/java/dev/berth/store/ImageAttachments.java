package dev.berth.store;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.berth.api.BerthException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Documents attached to an image in its registry as OCI 1.1 artifacts that refer to it: an image
 * manifest whose {@code artifactType} says what it holds, whose one layer is the document, and
 * whose {@code subject} is the image's manifest. A registry with the referrers API lists them for
 * the image's digest; for one without it (the CNCF distribution registry 2.x), the referrers tag
 * schema is kept as the distribution spec says a client must: an image index under the tag {@code
 * sha256-HEX} that lists every referrer of that digest. This is how {@code berth build} attaches
 * the image's SBOM, and where {@code berth sbom} and scanners (Trivy's {@code --sbom-sources oci})
 * find it.
 */
public final class ImageAttachments {
  /** A CycloneDX JSON document. */
  public static final String CYCLONEDX_JSON = "application/vnd.cyclonedx+json";

  /** The empty config of an artifact manifest, and its bytes. */
  static final String EMPTY = "application/vnd.oci.empty.v1+json";

  private static final byte[] EMPTY_BYTES = "{}".getBytes(StandardCharsets.US_ASCII);
  private static final java.util.regex.Pattern DIGEST =
      java.util.regex.Pattern.compile("sha256:[0-9a-f]{64}");
  // the largest document read back: an SBOM of a large image is a few MB
  private static final long MAX_DOCUMENT_BYTES = 256L << 20;
  private static final ObjectMapper JSON = new ObjectMapper();

  /** What a registry must do for attachments; an interface so tests can stand one in. */
  interface Registry {
    /** The manifest at a tag or digest, or empty when there is none. */
    Optional<RegistryClient.Manifest> manifest(String reference);

    /** Stores a manifest under a tag or its digest. */
    void putManifest(String reference, byte[] bytes, String mediaType);

    /** Stores a manifest with a subject; whether the registry indexed it for referrers. */
    boolean putReferrer(String reference, byte[] bytes, String mediaType);

    /** The referrers API's index for a digest, or empty without the API. */
    Optional<byte[]> referrers(String digest);

    /** Stores a blob unless the repository has it. */
    void putBlob(String digest, byte[] bytes);

    /** A blob's bytes, checked against its digest and size. */
    byte[] blob(String digest, long size);
  }

  /**
   * An artifact that refers to an image.
   *
   * @param digest the artifact manifest's digest
   * @param size its size in bytes
   * @param artifactType what it holds
   */
  public record Referrer(String digest, long size, String artifactType) {}

  private final OciReference image;
  private final Registry registry;

  ImageAttachments(OciReference image, Registry registry) {
    this.image = image;
    this.registry = registry;
  }

  /** The attachments of an image's repository, with the Docker credential files' credentials. */
  public static ImageAttachments at(OciReference image, DockerCredentials credentials) {
    return new ImageAttachments(image, new RemoteRepository(image, credentials));
  }

  /**
   * Attaches a document to the image at {@code imageDigest}; attaching the same bytes again changes
   * nothing.
   *
   * @return the artifact manifest's digest
   */
  public String attach(String imageDigest, String artifactType, byte[] document) {
    RegistryClient.Manifest subject =
        registry
            .manifest(imageDigest)
            .orElseThrow(
                () ->
                    new BerthException(
                        "there is no image "
                            + ImageSignatures.identity(image)
                            + "@"
                            + imageDigest
                            + " to attach to"));
    String documentDigest = RegistryClient.sha256(document);
    registry.putBlob(RegistryClient.sha256(EMPTY_BYTES), EMPTY_BYTES);
    registry.putBlob(documentDigest, document);

    ObjectNode manifest = JSON.createObjectNode();
    manifest.put("schemaVersion", 2);
    manifest.put("mediaType", RegistryClient.OCI_MANIFEST);
    manifest.put("artifactType", artifactType);
    manifest
        .putObject("config")
        .put("mediaType", EMPTY)
        .put("digest", RegistryClient.sha256(EMPTY_BYTES))
        .put("size", EMPTY_BYTES.length);
    manifest
        .putArray("layers")
        .addObject()
        .put("mediaType", artifactType)
        .put("digest", documentDigest)
        .put("size", document.length);
    manifest
        .putObject("subject")
        .put(
            "mediaType",
            tree(subject.bytes(), imageDigest).path("mediaType").asText(subject.mediaType()))
        .put("digest", subject.digest())
        .put("size", subject.bytes().length);
    byte[] bytes = bytes(manifest);
    String digest = RegistryClient.sha256(bytes);
    boolean indexed = registry.putReferrer(digest, bytes, RegistryClient.OCI_MANIFEST);
    if (!indexed) {
      addToFallbackTag(subject.digest(), new Referrer(digest, bytes.length, artifactType));
    }
    return digest;
  }

  /**
   * The artifacts of a type that refer to the image at {@code imageDigest}: listed by the referrers
   * API, else under the fallback tag, and each checked by its own manifest (fetched by digest) to
   * be of that type and to name that digest as its subject; the rest of a list is not trusted.
   */
  public List<Referrer> referrers(String imageDigest, String artifactType) {
    byte[] index =
        registry
            .referrers(imageDigest)
            .or(
                () ->
                    registry.manifest(fallbackTag(imageDigest)).map(RegistryClient.Manifest::bytes))
            .orElse(null);
    List<Referrer> out = new ArrayList<>();
    if (index == null) {
      return out;
    }
    for (JsonNode d : tree(index, "the referrers of " + imageDigest).path("manifests")) {
      String digest = d.path("digest").asText();
      if (!artifactType.equals(d.path("artifactType").asText())
          || !DIGEST.matcher(digest).matches()) {
        continue;
      }
      Optional<RegistryClient.Manifest> manifest = registry.manifest(digest);
      if (manifest.isEmpty()) {
        continue;
      }
      JsonNode m = tree(manifest.get().bytes(), digest);
      if (artifactType.equals(m.path("artifactType").asText())
          && imageDigest.equals(m.path("subject").path("digest").asText())) {
        out.add(new Referrer(digest, manifest.get().bytes().length, artifactType));
      }
    }
    return out;
  }

  /** The document an artifact holds: its layer of the artifact's type. */
  public byte[] document(Referrer referrer) {
    RegistryClient.Manifest manifest =
        registry
            .manifest(referrer.digest())
            .orElseThrow(
                () ->
                    new BerthException(
                        "the registry lists "
                            + referrer.digest()
                            + " as a referrer of "
                            + ImageSignatures.identity(image)
                            + " but holds no such manifest"));
    for (JsonNode layer : tree(manifest.bytes(), referrer.digest()).path("layers")) {
      if (referrer.artifactType().equals(layer.path("mediaType").asText())) {
        long size = layer.path("size").asLong();
        if (size < 0 || size > MAX_DOCUMENT_BYTES) {
          throw new BerthException(
              "the artifact "
                  + referrer.digest()
                  + " declares a document of "
                  + size
                  + " bytes; Berth reads documents of up to "
                  + MAX_DOCUMENT_BYTES
                  + " bytes");
        }
        return registry.blob(layer.path("digest").asText(), size);
      }
    }
    throw new BerthException(
        "the artifact "
            + referrer.digest()
            + " in "
            + ImageSignatures.identity(image)
            + " holds no "
            + referrer.artifactType()
            + " layer");
  }

  /** The referrers tag schema's tag for a digest: {@code sha256-HEX}. */
  public static String fallbackTag(String digest) {
    return digest.replace(':', '-');
  }

  /** Adds a referrer to the index under the digest's fallback tag, keeping those listed. */
  private void addToFallbackTag(String imageDigest, Referrer referrer) {
    String tag = fallbackTag(imageDigest);
    ObjectNode index;
    Optional<RegistryClient.Manifest> existing = registry.manifest(tag);
    if (existing.isPresent()) {
      JsonNode found = tree(existing.get().bytes(), "the index at " + tag);
      boolean isIndex =
          RegistryClient.OCI_INDEX.equals(found.path("mediaType").asText())
              || RegistryClient.OCI_INDEX.equals(existing.get().mediaType());
      if (!(found instanceof ObjectNode o) || !isIndex) {
        throw new BerthException(
            "the tag "
                + tag
                + " of "
                + ImageSignatures.identity(image)
                + " holds something other than an OCI image index, so it cannot list the"
                + " image's referrers (the OCI referrers tag schema); remove or move that tag");
      }
      index = o;
      for (JsonNode d : index.path("manifests")) {
        if (referrer.digest().equals(d.path("digest").asText())) {
          return;
        }
      }
    } else {
      index = JSON.createObjectNode();
      index.put("schemaVersion", 2);
      index.put("mediaType", RegistryClient.OCI_INDEX);
      index.putArray("manifests");
    }
    ArrayNode manifests =
        index.path("manifests") instanceof ArrayNode a ? a : index.putArray("manifests");
    manifests
        .addObject()
        .put("mediaType", RegistryClient.OCI_MANIFEST)
        .put("digest", referrer.digest())
        .put("size", referrer.size())
        .put("artifactType", referrer.artifactType());
    registry.putManifest(tag, bytes(index), RegistryClient.OCI_INDEX);
  }

  private static JsonNode tree(byte[] bytes, String what) {
    try {
      return JSON.readTree(bytes);
    } catch (IOException e) {
      throw new BerthException(what + " is not JSON: " + e.getMessage(), e);
    }
  }

  private static byte[] bytes(JsonNode node) {
    try {
      return JSON.writeValueAsBytes(node);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }
}
