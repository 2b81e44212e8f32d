package dev.berth.runtime;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.berth.api.BerthException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.util.Base64;
import java.util.List;

/**
 * A model's {@code berth.sig}: its {@link ModelManifest} and a signature over the manifest's
 * canonical text (UTF-8), written by {@code berth sign}. The file is JSON:
 *
 * <pre>
 * {"apiVersion": "berth.dev/v1", "kind": "ModelManifestSignature",
 *  "manifest": "&lt;sha256&gt;  1/model.onnx\n...", "algorithm": "Ed25519", "signature": "&lt;base64&gt;"}
 * </pre>
 *
 * @param manifest the signed manifest
 * @param algorithm {@link SigningKeys#ED25519} or {@link SigningKeys#ECDSA_P256}
 * @param signature the signature bytes
 */
public record SignedManifest(ModelManifest manifest, String algorithm, byte[] signature) {
  public static final String KIND = "ModelManifestSignature";
  private static final ObjectMapper JSON = new ObjectMapper();

  public SignedManifest {
    signature = signature.clone();
  }

  @Override
  public byte[] signature() {
    return signature.clone();
  }

  /** Signs a manifest with a private key (Ed25519 or ECDSA P-256). */
  public static SignedManifest sign(ModelManifest manifest, PrivateKey key) {
    String algorithm = SigningKeys.algorithm(key);
    try {
      Signature s = Signature.getInstance(SigningKeys.jcaName(algorithm));
      s.initSign(key);
      s.update(manifest.text().getBytes(StandardCharsets.UTF_8));
      return new SignedManifest(manifest, algorithm, s.sign());
    } catch (GeneralSecurityException e) {
      throw new BerthException("cannot sign with this " + algorithm + " key: " + e.getMessage(), e);
    }
  }

  /**
   * Whether one of these public keys made the signature. A key of another algorithm than the one
   * the file names is not tried; a signature that cannot be decoded verifies with none.
   */
  public boolean verifiedBy(List<PublicKey> trusted) {
    byte[] text = manifest.text().getBytes(StandardCharsets.UTF_8);
    for (PublicKey key : trusted) {
      if (!SigningKeys.algorithm(key).equals(algorithm)) {
        continue;
      }
      try {
        Signature s = Signature.getInstance(SigningKeys.jcaName(algorithm));
        s.initVerify(key);
        s.update(text);
        if (s.verify(signature)) {
          return true;
        }
      } catch (GeneralSecurityException e) {
        // a malformed signature verifies with no key
      }
    }
    return false;
  }

  /** Writes the JSON file. */
  public void write(Path file) {
    ObjectNode root = JSON.createObjectNode();
    root.put("apiVersion", ModelConfig.API_VERSION);
    root.put("kind", KIND);
    root.put("manifest", manifest.text());
    root.put("algorithm", algorithm);
    root.put("signature", Base64.getEncoder().encodeToString(signature));
    try {
      Files.writeString(
          file,
          JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root) + "\n",
          StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new BerthException("cannot write " + file + ": " + e.getMessage(), e);
    }
  }

  /**
   * Reads a {@code berth.sig} file.
   *
   * @throws BerthException naming the file and what is wrong with it
   */
  public static SignedManifest read(Path file) {
    JsonNode root;
    try {
      root = JSON.readTree(Files.readString(file, StandardCharsets.UTF_8));
    } catch (IOException e) {
      throw new BerthException(
          file + " is not a readable signature file (" + e.getMessage() + ")", e);
    }
    if (root == null || !root.isObject()) {
      throw new BerthException(file + " is not a signature file (expected a JSON object)");
    }
    if (!KIND.equals(root.path("kind").asText())
        || !ModelConfig.API_VERSION.equals(root.path("apiVersion").asText())) {
      throw new BerthException(
          file
              + " is not a signature file (expected apiVersion "
              + ModelConfig.API_VERSION
              + " and kind "
              + KIND
              + "); sign the model again with berth sign");
    }
    String algorithm = root.path("algorithm").asText();
    if (!algorithm.equals(SigningKeys.ED25519) && !algorithm.equals(SigningKeys.ECDSA_P256)) {
      throw new BerthException(
          file
              + ": algorithm '"
              + algorithm
              + "' is not supported; expected "
              + SigningKeys.ED25519
              + " or "
              + SigningKeys.ECDSA_P256);
    }
    byte[] signature;
    try {
      signature = Base64.getDecoder().decode(root.path("signature").asText());
    } catch (IllegalArgumentException e) {
      throw new BerthException(file + ": signature is not valid base64", e);
    }
    if (signature.length == 0) {
      throw new BerthException(file + ": signature is missing");
    }
    ModelManifest manifest;
    try {
      manifest = ModelManifest.parse(root.path("manifest").asText());
    } catch (IllegalArgumentException e) {
      throw new BerthException(file + ": " + e.getMessage(), e);
    }
    return new SignedManifest(manifest, algorithm, signature);
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof SignedManifest s
        && manifest.equals(s.manifest)
        && algorithm.equals(s.algorithm)
        && java.util.Arrays.equals(signature, s.signature);
  }

  @Override
  public int hashCode() {
    return manifest.hashCode() * 31 + java.util.Arrays.hashCode(signature);
  }

  @Override
  public String toString() {
    return "SignedManifest[" + algorithm + ", " + manifest.files().size() + " files]";
  }
}
