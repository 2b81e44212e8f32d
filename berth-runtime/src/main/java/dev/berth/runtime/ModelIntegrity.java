package dev.berth.runtime;

import dev.berth.api.BerthException;
import dev.berth.api.ModelIntegrityException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PublicKey;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * Checks a model version's files before its engine loads them: the sha256 pins of its model.yaml
 * ({@code files.sha256}) always, and its {@code berth.sig} against trusted public keys when keys
 * are given.
 *
 * <p>A version sees the files of its model directory outside every version folder (model.yaml, a
 * shared vocabulary) and the files of its own version folder; other versions' folders are not its
 * business, so a version added after signing is refused while the signed ones load.
 */
public final class ModelIntegrity {
  private final List<PublicKey> trusted;
  private final boolean requireSigned;

  private ModelIntegrity(List<PublicKey> trusted, boolean requireSigned) {
    this.trusted = List.copyOf(trusted);
    this.requireSigned = requireSigned;
  }

  /** Pins checked; signatures not looked at. */
  public static ModelIntegrity pinsOnly() {
    return new ModelIntegrity(List.of(), false);
  }

  /**
   * Pins checked, and a model's {@code berth.sig} verified with these keys when it has one.
   *
   * @param requireSigned whether a model without {@code berth.sig} is refused
   * @throws IllegalArgumentException when signatures are required but no key is trusted
   */
  public static ModelIntegrity trusting(List<PublicKey> trusted, boolean requireSigned) {
    if (requireSigned && trusted.isEmpty()) {
      throw new IllegalArgumentException("requiring signed models needs a trusted key");
    }
    trusted.forEach(SigningKeys::algorithm);
    return new ModelIntegrity(trusted, requireSigned);
  }

  public boolean requireSigned() {
    return requireSigned;
  }

  public int trustedKeys() {
    return trusted.size();
  }

  /**
   * Refuses a version whose files differ from what its model.yaml pins or its signature lists.
   *
   * @throws ModelIntegrityException naming the file, the expected and the actual digest
   */
  public void verify(Path modelDir, ModelConfig config, String version) {
    Map<String, String> digests = new HashMap<>();
    verifySignature(modelDir, version, digests);
    verifyPins(modelDir, config, version, digests);
  }

  private void verifyPins(
      Path modelDir, ModelConfig config, String version, Map<String, String> digests) {
    for (Map.Entry<String, String> pin : config.pins().entrySet()) {
      String path = pin.getKey();
      if (!seenBy(path, version)) {
        continue;
      }
      Path file = modelDir.resolve(path);
      if (!Files.isRegularFile(file)) {
        throw new ModelIntegrityException(
            path,
            "model.yaml pins "
                + path
                + " (files.sha256) but "
                + file
                + " does not exist; put the file back or remove its pin");
      }
      String actual = digests.computeIfAbsent(path, p -> ModelManifest.sha256(file));
      if (!actual.equals(pin.getValue())) {
        throw new ModelIntegrityException(
            path,
            path
                + " does not match its pin in model.yaml: expected sha256 "
                + pin.getValue()
                + ", found "
                + actual
                + "; restore the file, or pin the new digest if the change is wanted");
      }
    }
  }

  private void verifySignature(Path modelDir, String version, Map<String, String> digests) {
    Path sigFile = modelDir.resolve(ModelManifest.SIGNATURE_FILE);
    if (!Files.exists(sigFile)) {
      if (requireSigned) {
        throw new ModelIntegrityException(
            null,
            "the model is not signed (no "
                + sigFile
                + ") and signed models are required; sign it with 'berth sign "
                + modelDir
                + " --key KEY.pem'");
      }
      return;
    }
    if (trusted.isEmpty()) {
      return;
    }
    SignedManifest signed;
    try {
      signed = SignedManifest.read(sigFile);
    } catch (BerthException e) {
      throw new ModelIntegrityException(ModelManifest.SIGNATURE_FILE, e.getMessage());
    }
    if (!signed.verifiedBy(trusted)) {
      throw new ModelIntegrityException(
          ModelManifest.SIGNATURE_FILE,
          sigFile
              + ": the "
              + signed.algorithm()
              + " signature does not verify with any trusted key ("
              + trusted.size()
              + " given with --trust); the model was signed with another key or the file was"
              + " altered");
    }
    ModelManifest expected = signed.manifest().filter(p -> seenBy(p, version));
    ModelManifest onDisk = ModelManifest.of(modelDir, p -> seenBy(p, version));
    digests.putAll(onDisk.files());
    TreeSet<String> paths = new TreeSet<>(expected.files().keySet());
    paths.addAll(onDisk.files().keySet());
    for (String path : paths) {
      String want = expected.files().get(path);
      String have = onDisk.files().get(path);
      if (want == null) {
        throw new ModelIntegrityException(
            path,
            path
                + " is not in the signed manifest (added after signing); remove it or sign the"
                + " model again");
      }
      if (have == null) {
        throw new ModelIntegrityException(
            path,
            path
                + " is in the signed manifest but missing from "
                + modelDir
                + "; restore it or sign the model again");
      }
      if (!want.equals(have)) {
        throw new ModelIntegrityException(
            path,
            path
                + " differs from the signed manifest: expected sha256 "
                + want
                + ", found "
                + have
                + "; restore the file or sign the model again");
      }
    }
  }

  /**
   * Whether a path relative to the model directory belongs to a version: it is in that version's
   * folder, or outside every version folder.
   */
  public static boolean seenBy(String path, String version) {
    int slash = path.indexOf('/');
    if (slash < 0) {
      return true;
    }
    String first = path.substring(0, slash);
    return !ModelRepository.isValidVersion(first) || first.equals(version);
  }

  /**
   * Reads the {@code files} section of a model.yaml: {@code sha256} maps paths relative to the
   * model directory ({@code 1/model.onnx}) to their sha256, 64 hex digits, optionally prefixed
   * {@code sha256:}.
   */
  static Map<String, String> pins(ConfigReader files) {
    files.allowOnly(java.util.Set.of("sha256"));
    ConfigReader section = files.section("sha256");
    Map<String, String> out = new TreeMap<>();
    for (Map.Entry<String, Object> pin : section.values().entrySet()) {
      String path = pin.getKey();
      String problem = badPath(path);
      if (problem != null) {
        throw section.error(path, problem);
      }
      if (!(pin.getValue() instanceof String digest)) {
        throw section.error(
            path,
            "expected a sha256 of 64 hex digits in quotes (e.g. \"3f2a...\"), found "
                + (pin.getValue() == null ? "nothing" : "'" + pin.getValue() + "'"));
      }
      String hex = digest.trim();
      if (hex.regionMatches(true, 0, "sha256:", 0, 7)) {
        hex = hex.substring(7);
      }
      if (!ModelManifest.isHexDigest(hex)) {
        throw section.error(
            path,
            "expected a sha256 of 64 hex digits, found '"
                + digest
                + "' ("
                + hex.length()
                + " characters); compute it with 'sha256sum "
                + path
                + "'");
      }
      out.put(path, hex.toLowerCase(Locale.ROOT));
    }
    return out;
  }

  private static String badPath(String path) {
    if (path.isEmpty()
        || path.startsWith("/")
        || path.contains("\\")
        || path.contains("//")
        || path.endsWith("/")) {
      return "expected a path relative to the model directory with '/' between folders, such as"
          + " 1/model.onnx";
    }
    for (String part : path.split("/")) {
      if (part.equals(".") || part.equals("..")) {
        return "a pinned path must stay inside the model directory (no '.' or '..')";
      }
    }
    if (path.equals(ModelConfig.FILE_NAME) || path.equals(ModelManifest.SIGNATURE_FILE)) {
      return path + " cannot pin itself; pin the model files (e.g. 1/model.onnx)";
    }
    if (path.chars().anyMatch(c -> c < 0x20 || c == 0x7f)) {
      return "a pinned path must not hold control characters";
    }
    return null;
  }
}
