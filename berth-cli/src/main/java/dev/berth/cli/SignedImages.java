package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.runtime.ServiceSpec;
import dev.berth.store.DockerCredentials;
import dev.berth.store.ImageSignatures;
import dev.berth.store.OciReference;
import java.io.PrintStream;
import java.nio.file.Path;
import java.security.PublicKey;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * {@code --require-signed}: before {@code berth run} starts or {@code berth deploy} applies
 * anything, the image is resolved to its manifest digest in its registry and a cosign signature by
 * one of the trusted keys must verify for that digest; what then runs is the image by that digest,
 * so a tag moved afterwards changes nothing.
 */
final class SignedImages {
  private SignedImages() {}

  /** The image did not verify: the command refuses it (exit code 1). */
  static final class Refused extends BerthException {
    Refused(String message) {
      super(message);
    }
  }

  /**
   * Whether the command must verify: {@code --require-signed}, or berth.yaml's {@code
   * image.require-signed}.
   */
  static boolean required(boolean flag, ServiceSpec service) {
    return flag || service.image().requireSigned();
  }

  /** The keys to trust: those given with {@code --trust}, else berth.yaml's {@code image.trust}. */
  static List<Path> trusted(List<Path> flags, ServiceSpec service) {
    return flags.isEmpty() ? service.image().trust() : flags;
  }

  /**
   * Resolves {@code image} to its digest and verifies it with the trusted keys.
   *
   * @param action what is about to happen, for messages ("run", "deploy")
   * @return the image by digest, {@code REGISTRY/REPOSITORY@sha256:HEX}
   * @throws Refused naming the image, its digest and why no signature verified
   * @throws BerthException when no key is given, a key is unusable or the image is not in a
   *     registry
   */
  static String require(String image, List<Path> trust, String action, PrintStream log) {
    if (trust.isEmpty()) {
      throw new BerthException(
          "--require-signed needs the public keys to trust: --trust KEY.pub (repeatable), or"
              + " image.trust in berth.yaml");
    }
    Map<Path, PublicKey> keys = new LinkedHashMap<>();
    for (Path file : trust) {
      keys.put(file, ImageSignatures.verifyingKey(file));
    }
    String bare = image.replaceFirst("^docker://", "");
    if (!bare.equals(image)) {
      throw new BerthException(
          "--require-signed "
              + action
              + "s an image from a registry, where its signature is stored, not "
              + image
              + " from the container engine; build and sign it with 'berth build SERVICE --to"
              + " REGISTRY/REPO:TAG --sign KEY.pem' and give that reference");
    }
    OciReference ref = ImageSignatures.reference(bare);
    DockerCredentials credentials = DockerCredentials.fromEnvironment();
    String digest = ImageSignatures.at(ref, credentials).resolve();
    OciReference pinned = new OciReference(ref.registry(), ref.repository(), null, digest);
    ImageSignatures signatures = ImageSignatures.at(pinned, credentials);
    List<String> failures = new ArrayList<>();
    for (Map.Entry<Path, PublicKey> key : keys.entrySet()) {
      ImageSignatures.Verification verification = signatures.verify(key.getValue());
      if (verification.ok()) {
        log.println("verified " + bare + " (" + digest + "): signed by the key in " + key.getKey());
        return ref.registry() + "/" + ref.repository() + "@" + digest;
      }
      failures.add(
          "key "
              + key.getKey()
              + ": "
              + (verification.problems().isEmpty()
                  ? "no signature verified"
                  : String.join("; ", verification.problems())));
    }
    throw new Refused(
        "refusing to "
            + action
            + " "
            + bare
            + " ("
            + digest
            + "): no signature by a trusted key verifies it ("
            + String.join(" | ", failures)
            + "); sign it with 'berth sign-image "
            + ref.registry()
            + "/"
            + ref.repository()
            + "@"
            + digest
            + " --key KEY.pem'");
  }
}
