package dev.berth.store;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.berth.api.BerthException;
import dev.berth.api.InvalidInputException;
import dev.berth.runtime.SigningKeys;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.Key;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.security.SignatureException;
import java.security.interfaces.ECPrivateKey;
import java.security.spec.ECFieldFp;
import java.security.spec.ECParameterSpec;
import java.security.spec.ECPoint;
import java.security.spec.ECPublicKeySpec;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Optional;
import javax.crypto.KeyAgreement;

/**
 * Signatures of images in a registry, in Sigstore cosign's key-based format, so that {@code cosign
 * verify --key} and the {@code sigstoreSigned} policy of skopeo and podman accept what Berth signs,
 * and Berth accepts what they sign.
 *
 * <p>The signature of {@code REPO@sha256:HEX} is stored in the same repository under the tag {@code
 * sha256-HEX.sig}: an OCI image manifest with one layer per signature. Each layer is a
 * simple-signing payload ({@code application/vnd.dev.cosign.simplesigning.v1+json}) that names the
 * repository and the manifest digest, and its annotation {@code dev.cosignproject.cosign/signature}
 * holds the base64 of an ECDSA P-256 signature (ASN.1 DER) over SHA-256 of the payload's bytes.
 * Signing again adds a layer and keeps the others; a key that already signed the digest adds none.
 *
 * <pre>{@code
 * ImageSignatures image = ImageSignatures.at(ImageSignatures.reference("127.0.0.1:5000/ml/minilm:1"),
 *     DockerCredentials.fromEnvironment());
 * image.sign(ImageSignatures.signingKey(Path.of("release.pem")));
 * ImageSignatures.Verification v = image.verify(ImageSignatures.verifyingKey(Path.of("release.pub")));
 * }</pre>
 */
public final class ImageSignatures {
  /** The media type of a signature layer: a simple-signing payload. */
  public static final String SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json";

  /** The layer annotation that holds the base64 of the signature. */
  public static final String SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature";

  /** The {@code critical.type} of a payload. */
  public static final String PAYLOAD_TYPE = "cosign container image signature";

  static final String OCI_CONFIG = "application/vnd.oci.image.config.v1+json";

  // a payload is a few hundred bytes; one far larger is not a signature Berth reads into memory
  private static final long MAX_PAYLOAD_BYTES = 64 * 1024;
  private static final ObjectMapper JSON = new ObjectMapper();

  /** The registry operations signing and verifying use. */
  interface Registry {
    /** The manifest at a tag or digest, or empty when there is none. */
    Optional<RegistryClient.Manifest> manifest(String reference);

    /** Stores a manifest under a tag. */
    void putManifest(String tag, byte[] bytes, String mediaType);

    /** Stores a blob unless the repository has it. */
    void putBlob(String digest, byte[] bytes);

    /** A blob's bytes, checked against its digest and size. */
    byte[] blob(String digest, long size);
  }

  private final OciReference image;
  private final Registry registry;

  ImageSignatures(OciReference image, Registry registry) {
    this.image = image;
    this.registry = registry;
  }

  /**
   * The signatures of an image in its registry, with the credentials of the Docker credential
   * files.
   *
   * @param image the image, by tag or digest ({@link #reference(String)} reads one)
   */
  public static ImageSignatures at(OciReference image, DockerCredentials credentials) {
    return new ImageSignatures(image, new RemoteRepository(image, credentials));
  }

  /**
   * Reads an image reference as {@code berth build --to} takes one: {@code
   * REGISTRY[:PORT]/REPOSITORY[:TAG][@sha256:HEX]} ({@code oci://} in front is allowed too).
   *
   * @throws InvalidInputException when it is not one, or names no registry host
   */
  public static OciReference reference(String text) {
    String t = text.strip();
    String bare = OciReference.isOci(t) ? t.substring(OciReference.SCHEME.length()) : t;
    int slash = bare.indexOf('/');
    String host = slash < 0 ? "" : bare.substring(0, slash);
    if (!(host.contains(".") || host.contains(":") || host.equals("localhost"))) {
      throw new InvalidInputException(
          "'"
              + text
              + "' names no registry; signatures are stored in a registry Berth reaches by its"
              + " host: write REGISTRY/REPOSITORY:TAG, such as 127.0.0.1:5000/ml/minilm:1 or"
              + " registry.example.com/team/minilm:1");
    }
    return OciReference.parse(OciReference.SCHEME + bare);
  }

  /**
   * Reads a private key that can sign images: ECDSA P-256 in a PKCS#8 PEM file ({@code berth keygen
   * KEY.pem --algorithm ECDSA-P256}).
   *
   * @throws BerthException naming the file and the fix for an unreadable key or an Ed25519 one
   */
  public static PrivateKey signingKey(Path file) {
    PrivateKey key = SigningKeys.readPrivate(file);
    requireP256(file.toString(), key);
    return key;
  }

  /**
   * Reads a public key that can verify images: ECDSA P-256 in an X.509 PEM file ({@code BEGIN
   * PUBLIC KEY}, as {@code berth keygen} and {@code cosign generate-key-pair} write it).
   *
   * @throws BerthException naming the file and the fix for an unreadable key or an Ed25519 one
   */
  public static PublicKey verifyingKey(Path file) {
    PublicKey key = SigningKeys.readPublic(file);
    requireP256(file.toString(), key);
    return key;
  }

  /**
   * Refuses a key that is not ECDSA P-256.
   *
   * @param what the key, for the message (its file)
   */
  static void requireP256(String what, Key key) {
    if (!SigningKeys.algorithm(key).equals(SigningKeys.ECDSA_P256)) {
      throw new BerthException(
          what
              + " is an "
              + SigningKeys.algorithm(key)
              + " key, which signs models but not images: image signatures use cosign's"
              + " key-based format, which is ECDSA P-256; make such a key with 'berth keygen"
              + " KEY.pem --algorithm ECDSA-P256'");
    }
  }

  /** The image this signs and verifies. */
  public OciReference image() {
    return image;
  }

  /**
   * The digest of the image's manifest: the one at its tag now, or the one it names.
   *
   * @throws BerthException when the registry has no such image
   */
  public String resolve() {
    return registry
        .manifest(image.manifestReference())
        .orElseThrow(
            () ->
                new BerthException(
                    "there is no image at "
                        + shown(image)
                        + "; check the reference, or push the image first"))
        .digest();
  }

  private OciReference atDigest(String digest) {
    return new OciReference(image.registry(), image.repository(), null, digest);
  }

  /** The tag a digest's signatures are stored under: {@code sha256-HEX.sig}. */
  public static String signatureTag(String digest) {
    return digest.replace(':', '-') + ".sig";
  }

  /** The repository as signatures name it: {@code REGISTRY/REPOSITORY}, no tag nor digest. */
  static String identity(OciReference ref) {
    return ref.registry() + "/" + ref.repository();
  }

  /**
   * An image signed.
   *
   * @param image the image, at its digest
   * @param digest its manifest digest
   * @param signatureTag the tag of its signatures' manifest
   * @param added false when the key had signed the digest before, so nothing was added
   * @param signatures how many signatures the manifest holds now
   */
  public record Signed(
      OciReference image, String digest, String signatureTag, boolean added, int signatures) {}

  /**
   * Signs the image's manifest digest with an ECDSA P-256 key and stores the signature, next to
   * those already stored.
   */
  public Signed sign(PrivateKey key) {
    requireP256("the signing key", key);
    String digest = resolve();
    String tag = signatureTag(digest);
    String identity = identity(image);
    Optional<RegistryClient.Manifest> existing = registry.manifest(tag);
    List<JsonNode> layers = new ArrayList<>();
    ObjectNode manifest = JSON.createObjectNode();
    if (existing.isPresent()) {
      JsonNode old = readJson(existing.get().bytes(), "the signature manifest " + tag);
      old.path("layers").forEach(layers::add);
      if (old.has("annotations")) {
        manifest.set("annotations", old.get("annotations"));
      }
      PublicKey mine = publicKeyOf((ECPrivateKey) key);
      for (JsonNode layer : layers) {
        if (check(layer, mine, identity, digest) == null) {
          return new Signed(atDigest(digest), digest, tag, false, layers.size());
        }
      }
    }
    byte[] payload = payload(identity, digest);
    String payloadDigest = RegistryClient.sha256(payload);
    registry.putBlob(payloadDigest, payload);
    ObjectNode layer = JSON.createObjectNode();
    layer.put("mediaType", SIMPLE_SIGNING);
    layer.put("size", payload.length);
    layer.put("digest", payloadDigest);
    layer.putObject("annotations").put(SIGNATURE_ANNOTATION, signPayload(key, payload));
    layers.add(layer);
    byte[] config = config(layers);
    registry.putBlob(RegistryClient.sha256(config), config);
    registry.putManifest(tag, manifest(manifest, config, layers), RegistryClient.OCI_MANIFEST);
    return new Signed(atDigest(digest), digest, tag, true, layers.size());
  }

  /**
   * What verifying an image found.
   *
   * @param image the image as it was asked for
   * @param digest the manifest digest it resolved to
   * @param signatureTag where its signatures are looked for
   * @param signatures the signatures stored there (0: none)
   * @param verified how many of them the key verified for this digest and repository
   * @param problems why each one that did not verify failed, or why there are none
   */
  public record Verification(
      OciReference image,
      String digest,
      String signatureTag,
      int signatures,
      int verified,
      List<String> problems) {
    public Verification {
      problems = List.copyOf(problems);
    }

    /** Whether at least one signature verified. */
    public boolean ok() {
      return verified > 0;
    }

    /** One line on the outcome, naming the image, its digest and what failed. */
    public String message() {
      String what = shown(image) + " (" + digest + ")";
      if (ok()) {
        return what + ": " + verified + " of " + signatures + " signature(s) verified";
      }
      return what + " is not verified: " + String.join("; ", problems);
    }
  }

  /**
   * Verifies the image's signatures with a public key: at least one must be a valid signature by
   * the key over a payload that names the image's repository and its manifest digest now.
   */
  public Verification verify(PublicKey key) {
    requireP256("the verifying key", key);
    String digest = resolve();
    String tag = signatureTag(digest);
    Optional<RegistryClient.Manifest> stored = registry.manifest(tag);
    if (stored.isEmpty()) {
      return new Verification(
          image,
          digest,
          tag,
          0,
          0,
          List.of(
              "no signature is stored for this digest (no tag "
                  + tag
                  + " in "
                  + identity(image)
                  + "); sign it with berth sign-image, or, if the tag was signed before, it now"
                  + " names another manifest"));
    }
    JsonNode layers =
        readJson(stored.get().bytes(), "the signature manifest " + tag).path("layers");
    List<String> problems = new ArrayList<>();
    int verified = 0;
    int signatures = 0;
    String identity = identity(image);
    for (JsonNode layer : layers) {
      if (!SIMPLE_SIGNING.equals(layer.path("mediaType").asText())) {
        continue; // not a signature (cosign keeps other attachments elsewhere, but be lenient)
      }
      signatures++;
      String problem = check(layer, key, identity, digest);
      if (problem == null) {
        verified++;
      } else {
        problems.add("signature " + signatures + " " + problem);
      }
    }
    if (signatures == 0) {
      problems.add(tag + " holds no simple-signing signature layer");
    }
    return new Verification(image, digest, tag, signatures, verified, problems);
  }

  /**
   * Checks one signature layer: null when the key signed a payload naming this repository and
   * digest, else what is wrong.
   */
  private String check(JsonNode layer, PublicKey key, String identity, String digest) {
    String signature = layer.path("annotations").path(SIGNATURE_ANNOTATION).asText("");
    if (signature.isEmpty()) {
      return "has no " + SIGNATURE_ANNOTATION + " annotation";
    }
    long size = layer.path("size").asLong(-1);
    String payloadDigest = layer.path("digest").asText("");
    if (size < 0 || size > MAX_PAYLOAD_BYTES || !payloadDigest.startsWith("sha256:")) {
      return "has a payload of " + size + " bytes at '" + payloadDigest + "', not a signature's";
    }
    byte[] payload;
    try {
      payload = registry.blob(payloadDigest, size);
    } catch (BerthException e) {
      return "cannot be read: " + e.getMessage();
    }
    return check(payload, signature, key, identity, digest);
  }

  /**
   * Checks a payload and its base64 signature: null when the key signed these bytes and they name
   * this repository and digest, else what is wrong.
   */
  static String check(
      byte[] payload, String base64Signature, PublicKey key, String identity, String digest) {
    if (!verifySignature(key, payload, base64Signature)) {
      return "was not made by this key (signed by another key, or its payload was changed"
          + " after signing)";
    }
    JsonNode p;
    try {
      p = JSON.readTree(payload);
    } catch (IOException e) {
      return "is over a payload that is not JSON";
    }
    JsonNode critical = p.path("critical");
    if (!PAYLOAD_TYPE.equals(critical.path("type").asText())) {
      return "is over a payload of type '"
          + critical.path("type").asText()
          + "', not '"
          + PAYLOAD_TYPE
          + "'";
    }
    JsonNode optional = p.get("optional");
    if (optional != null && !optional.isNull() && !optional.isObject()) {
      return "is over a payload whose 'optional' is neither an object nor null";
    }
    String signedDigest = critical.path("image").path("docker-manifest-digest").asText("");
    if (!signedDigest.equals(digest)) {
      return "is for another manifest, " + signedDigest + " (the image changed after signing)";
    }
    String signedRepository =
        repositoryOf(critical.path("identity").path("docker-reference").asText(""));
    if (!signedRepository.equals(identity)) {
      return "is for another repository, '" + signedRepository + "', not '" + identity + "'";
    }
    return null;
  }

  /** A docker-reference without its tag or digest (what a matchRepository identity compares). */
  static String repositoryOf(String dockerReference) {
    String r = dockerReference;
    int at = r.indexOf('@');
    if (at >= 0) {
      r = r.substring(0, at);
    }
    int colon = r.lastIndexOf(':');
    if (colon > r.lastIndexOf('/')) {
      r = r.substring(0, colon);
    }
    return r;
  }

  /** The simple-signing payload for a repository and manifest digest, as cosign writes it. */
  static byte[] payload(String identity, String digest) {
    ObjectNode p = JSON.createObjectNode();
    ObjectNode critical = p.putObject("critical");
    critical.putObject("identity").put("docker-reference", identity);
    critical.putObject("image").put("docker-manifest-digest", digest);
    critical.put("type", PAYLOAD_TYPE);
    p.putNull("optional");
    return write(p);
  }

  /** The config blob of a signature manifest: an OCI image config whose diff_ids are the layers. */
  static byte[] config(List<JsonNode> layers) {
    ObjectNode c = JSON.createObjectNode();
    c.put("architecture", "");
    c.put("created", "0001-01-01T00:00:00Z");
    ArrayNode history = c.putArray("history");
    c.put("os", "");
    ObjectNode rootfs = c.putObject("rootfs");
    rootfs.put("type", "layers");
    ArrayNode diffIds = rootfs.putArray("diff_ids");
    for (JsonNode layer : layers) {
      history.addObject().put("created", "0001-01-01T00:00:00Z");
      diffIds.add(layer.path("digest").asText()); // payloads are not compressed
    }
    c.putObject("config");
    return write(c);
  }

  /** The signature manifest: OCI image manifest, its config, the layers in order. */
  static byte[] manifest(ObjectNode base, byte[] config, List<JsonNode> layers) {
    ObjectNode m = JSON.createObjectNode();
    m.put("schemaVersion", 2);
    m.put("mediaType", RegistryClient.OCI_MANIFEST);
    ObjectNode c = m.putObject("config");
    c.put("mediaType", OCI_CONFIG);
    c.put("size", config.length);
    c.put("digest", RegistryClient.sha256(config));
    ArrayNode ls = m.putArray("layers");
    layers.forEach(ls::add);
    if (base.has("annotations")) {
      m.set("annotations", base.get("annotations"));
    }
    return write(m);
  }

  /** Base64 of the ECDSA P-256 signature (ASN.1 DER) over SHA-256 of the payload. */
  static String signPayload(PrivateKey key, byte[] payload) {
    try {
      Signature s = Signature.getInstance("SHA256withECDSA");
      s.initSign(key);
      s.update(payload);
      return Base64.getEncoder().encodeToString(s.sign());
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("the JDK cannot make ECDSA P-256 signatures", e);
    }
  }

  /**
   * The public key of an ECDSA P-256 private key d: the point d*G, whose x-coordinate the JDK's
   * ECDH gives (agreement with G), and whose y is the square root of x^3 - 3x + b that a signature
   * by d verifies with.
   */
  static PublicKey publicKeyOf(ECPrivateKey key) {
    try {
      ECParameterSpec curve = key.getParams();
      KeyFactory factory = KeyFactory.getInstance("EC");
      PublicKey generator =
          factory.generatePublic(new ECPublicKeySpec(curve.getGenerator(), curve));
      KeyAgreement ecdh = KeyAgreement.getInstance("ECDH");
      ecdh.init(key);
      ecdh.doPhase(generator, true);
      BigInteger x = new BigInteger(1, ecdh.generateSecret());
      BigInteger p = ((ECFieldFp) curve.getCurve().getField()).getP();
      BigInteger a = curve.getCurve().getA();
      BigInteger b = curve.getCurve().getB();
      BigInteger ySquared = x.pow(3).add(a.multiply(x)).add(b).mod(p);
      BigInteger y = ySquared.modPow(p.add(BigInteger.ONE).shiftRight(2), p); // p = 3 (mod 4)
      byte[] probe = "berth: which square root".getBytes(StandardCharsets.US_ASCII);
      String signature = signPayload(key, probe);
      for (BigInteger candidate : new BigInteger[] {y, p.subtract(y)}) {
        PublicKey pub =
            factory.generatePublic(new ECPublicKeySpec(new ECPoint(x, candidate), curve));
        if (verifySignature(pub, probe, signature)) {
          return pub;
        }
      }
      throw new IllegalStateException("no public key verifies this private key's signature");
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("the JDK cannot derive an ECDSA P-256 public key", e);
    }
  }

  static boolean verifySignature(PublicKey key, byte[] payload, String base64Signature) {
    byte[] signature;
    try {
      signature = Base64.getDecoder().decode(base64Signature.strip());
    } catch (IllegalArgumentException e) {
      return false;
    }
    try {
      Signature s = Signature.getInstance("SHA256withECDSA");
      s.initVerify(key);
      s.update(payload);
      return s.verify(signature);
    } catch (SignatureException e) {
      return false; // not a DER signature
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("the JDK cannot verify ECDSA P-256 signatures", e);
    }
  }

  private static JsonNode readJson(byte[] bytes, String what) {
    try {
      JsonNode n = JSON.readTree(bytes);
      if (n == null || !n.isObject()) {
        throw new BerthException(what + " is not a JSON object");
      }
      return n;
    } catch (IOException e) {
      throw new BerthException(what + " is not JSON: " + e.getMessage(), e);
    }
  }

  private static byte[] write(JsonNode n) {
    try {
      return JSON.writeValueAsBytes(n);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /** An image reference as users write it: without {@code oci://}. */
  static String shown(OciReference ref) {
    String s = ref.toString();
    return s.startsWith(OciReference.SCHEME) ? s.substring(OciReference.SCHEME.length()) : s;
  }
}
