package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.store.DockerCredentials;
import dev.berth.store.ImageAttachments;
import dev.berth.store.ImageSignatures;
import dev.berth.store.OciReference;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code berth sbom REF}: the SBOM attached to an image in its registry, as {@code berth build}
 * attached it (an OCI artifact whose subject is the image; found through the referrers API or its
 * fallback tag).
 */
@Command(
    name = "sbom",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
      "Print the CycloneDX SBOM attached to an image in its registry (berth build attaches one to"
          + " every image it pushes). Exit 0 with the SBOM, 1 when none is attached, 2 on other"
          + " errors.",
      ""
    })
final class SbomCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      paramLabel = "REF",
      description = "The image: REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:DIGEST.")
  String image;

  @Option(
      names = {"-o", "--output"},
      paramLabel = "FILE",
      description = "Write the SBOM to FILE instead of standard output.")
  Path output;

  @Override
  public Integer call() throws IOException {
    OciReference ref = ImageSignatures.reference(image);
    DockerCredentials credentials = DockerCredentials.fromEnvironment();
    String digest = ImageSignatures.at(ref, credentials).resolve();
    ImageAttachments attachments = ImageAttachments.at(ref, credentials);
    List<ImageAttachments.Referrer> sboms =
        attachments.referrers(digest, ImageAttachments.CYCLONEDX_JSON);
    if (sboms.isEmpty()) {
      System.err.println(
          "berth: no SBOM is attached to "
              + image
              + " ("
              + digest
              + "); 'berth build --to REGISTRY/REPO:TAG' attaches one to the image it pushes");
      return 1;
    }
    byte[] sbom = attachments.document(sboms.get(sboms.size() - 1));
    if (output != null) {
      Files.write(output, sbom);
      System.err.println("wrote " + output);
    } else {
      System.out.write(sbom);
      System.out.flush();
    }
    return 0;
  }

  /**
   * Attaches a built image's SBOM to it in its registry and, with a key, signs the attachment as
   * the image is signed, so that {@code berth verify} can check it came from the same hands.
   */
  static void attach(
      OciReference image, String digest, Path sbomFile, PrivateKey key, PrintStream out) {
    byte[] sbom;
    try {
      sbom = Files.readAllBytes(sbomFile);
    } catch (IOException e) {
      throw new BerthException("cannot read the SBOM " + sbomFile + ": " + e.getMessage(), e);
    }
    String artifact =
        ImageAttachments.at(image, DockerCredentials.fromEnvironment())
            .attach(digest, ImageAttachments.CYCLONEDX_JSON, sbom);
    String repository = image.registry() + "/" + image.repository();
    out.println("sbom      " + repository + "@" + artifact + " (refers to " + digest + ")");
    if (key != null) {
      SignImageCommand.sign(image.withDigest(artifact), key, out);
    }
  }

  /**
   * What {@code berth verify} found of an image's SBOMs.
   *
   * @param attached how many are attached
   * @param problem why they do not pass, or null when they do
   */
  record Check(int attached, String problem) {}

  /**
   * Checks the SBOMs attached to an image: each must be signed by {@code key}; with {@code
   * required}, one must be attached.
   */
  static Check check(OciReference image, String digest, PublicKey key, boolean required) {
    DockerCredentials credentials = DockerCredentials.fromEnvironment();
    List<ImageAttachments.Referrer> sboms =
        ImageAttachments.at(image, credentials).referrers(digest, ImageAttachments.CYCLONEDX_JSON);
    if (sboms.isEmpty()) {
      return new Check(0, required ? "no SBOM is attached to " + digest : null);
    }
    for (ImageAttachments.Referrer sbom : sboms) {
      ImageSignatures.Verification v =
          ImageSignatures.at(image.withDigest(sbom.digest()), credentials).verify(key);
      if (!v.ok()) {
        return new Check(
            sboms.size(),
            "the SBOM attached to "
                + digest
                + " ("
                + sbom.digest()
                + ") is not signed by the key: "
                + String.join("; ", v.problems()));
      }
    }
    return new Check(sboms.size(), null);
  }
}
