package dev.berth.cli;

import dev.berth.store.DockerCredentials;
import dev.berth.store.ImageSignatures;
import dev.berth.store.OciReference;
import java.nio.file.Path;
import java.security.PublicKey;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code berth verify REF --key KEY.pub}: checks an image's signature in its registry, and the
 * signature of the SBOM attached to it.
 */
@Command(
    name = "verify",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
      "Verify an image in a registry: resolve REF to its manifest digest and check that a"
          + " signature stored for that digest (cosign's key-based format, tag sha256-<hex>.sig)"
          + " was made by KEY and names this repository and digest. Exit 0 when one does, 1 when"
          + " none does (the message names the image, the digest and what failed), 2 on other"
          + " errors. An SBOM attached to the image (berth build attaches one) must be signed by"
          + " KEY too; with --require-sbom, one must be attached.",
      ""
    })
final class VerifyCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      paramLabel = "REF",
      description = "The image: REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:DIGEST.")
  String image;

  @Option(
      names = "--key",
      required = true,
      paramLabel = "KEY.pub",
      description =
          "ECDSA P-256 public key, X.509 PEM (what berth keygen and cosign generate-key-pair"
              + " write).")
  Path key;

  @Option(
      names = "--require-sbom",
      description = "Fail when no SBOM is attached to the image (default: only check one that is).")
  boolean requireSbom;

  @Override
  public Integer call() {
    OciReference ref = ImageSignatures.reference(image);
    PublicKey publicKey = ImageSignatures.verifyingKey(key);
    ImageSignatures.Verification signature =
        ImageSignatures.at(ref, DockerCredentials.fromEnvironment()).verify(publicKey);
    if (!signature.ok()) {
      System.err.println("berth: " + signature.message() + " (key " + key + ")");
      return 1;
    }
    SbomCommand.Check sbom =
        SbomCommand.check(
            ref.withDigest(signature.digest()), signature.digest(), publicKey, requireSbom);
    if (sbom.problem() != null) {
      System.err.println(
          "berth: "
              + ref.registry()
              + "/"
              + ref.repository()
              + ": "
              + sbom.problem()
              + " (key "
              + key
              + ")");
      return 1;
    }
    System.out.println(
        "verified "
            + ref.registry()
            + "/"
            + ref.repository()
            + "@"
            + signature.digest()
            + " ("
            + signature.verified()
            + " of "
            + signature.signatures()
            + " signatures by "
            + key
            + "; "
            + (sbom.attached() == 0 ? "no SBOM attached" : "its SBOM signed by the same key")
            + ")");
    return 0;
  }
}
