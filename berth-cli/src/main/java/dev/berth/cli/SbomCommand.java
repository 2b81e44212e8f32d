package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.image.ImageSbom;
import dev.berth.image.SpdxDocument;
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
import java.time.Instant;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code berth sbom REF [--format cyclonedx|spdx]}: the SBOM attached to an image in its registry,
 * as {@code berth build} attached it (an OCI artifact whose subject is the image; found through the
 * referrers API or its fallback tag), or the one written beside a {@code tar:} image; as Berth
 * wrote it (CycloneDX 1.6) or said again as SPDX 2.3.
 */
@Command(
    name = "sbom",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
      "Print the SBOM of an image: the one attached to it in its registry (berth build attaches"
          + " one to every image it pushes), or the one beside a tar: image. CycloneDX 1.6 JSON as"
          + " built, or SPDX 2.3 JSON with --format spdx, for the scanners that read either (Trivy,"
          + " Grype; Dependency-Track reads CycloneDX). Exit 0 with the SBOM, 1 when there is none,"
          + " 2 on other errors.",
      ""
    })
final class SbomCommand implements Callable<Integer> {
  /** The formats berth sbom writes. */
  enum Format {
    cyclonedx,
    spdx
  }

  @Parameters(
      index = "0",
      paramLabel = "REF",
      description =
          "The image: REGISTRY/REPO:TAG, REGISTRY/REPO@sha256:DIGEST, or tar:PATH (an archive"
              + " berth build wrote, with its IMAGE.cdx.json beside it).")
  String image;

  @Option(
      names = "--format",
      paramLabel = "FORMAT",
      defaultValue = "cyclonedx",
      description =
          "cyclonedx (CycloneDX 1.6 JSON, as built) or spdx (SPDX 2.3 JSON, said from it; its"
              + " creation time is SOURCE_DATE_EPOCH when set, else now). Default: ${DEFAULT-VALUE}.")
  Format format;

  @Option(
      names = {"-o", "--output"},
      paramLabel = "FILE",
      description = "Write the SBOM to FILE instead of standard output.")
  Path output;

  @Override
  public Integer call() throws IOException {
    byte[] sbom = image.startsWith("tar:") ? besideArchive() : attached();
    if (sbom == null) {
      return 1;
    }
    if (format == Format.spdx) {
      sbom = SpdxDocument.fromCycloneDx(sbom, created());
    }
    if (output != null) {
      Files.write(output, sbom);
      System.err.println("wrote " + output);
    } else {
      System.out.write(sbom);
      System.out.flush();
    }
    return 0;
  }

  /** The SBOM attached to a registry image, or null (said on stderr) when none is. */
  private byte[] attached() {
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
      return null;
    }
    return attachments.document(sboms.get(sboms.size() - 1));
  }

  /**
   * The SBOM berth build wrote beside a tar: image, or null (said on stderr) when there is none.
   */
  private byte[] besideArchive() throws IOException {
    Path archive = Path.of(image.substring("tar:".length()));
    Path sbom = ImageSbom.besideArchive(archive);
    if (!Files.isRegularFile(sbom)) {
      System.err.println(
          "berth: no SBOM beside "
              + archive
              + " (looked for "
              + sbom
              + "); 'berth build --to tar:"
              + archive
              + "' writes one there");
      return null;
    }
    byte[] bytes = Files.readAllBytes(sbom);
    // an SBOM left beside an archive built again (--no-sbom) describes another image
    String described =
        new com.fasterxml.jackson.databind.ObjectMapper()
            .readTree(bytes)
            .path("metadata")
            .path("component")
            .path("version")
            .asText("");
    String digest = ImageSbom.imageDigest(archive);
    if (!described.equals(digest)) {
      throw new BerthException(
          sbom
              + " describes the image "
              + (described.isEmpty() ? "(none named)" : described)
              + ", not the one in "
              + archive
              + " ("
              + digest
              + "); build it again without --no-sbom to write its SBOM");
    }
    return bytes;
  }

  /** SOURCE_DATE_EPOCH (seconds) when set, as reproducible builds agree; else now. */
  private static Instant created() {
    String epoch = System.getenv("SOURCE_DATE_EPOCH");
    if (epoch == null || epoch.isBlank()) {
      return Instant.now();
    }
    try {
      return Instant.ofEpochSecond(Long.parseLong(epoch.strip()));
    } catch (NumberFormatException e) {
      throw new BerthException(
          "SOURCE_DATE_EPOCH must be whole seconds since 1970, not '" + epoch + "'");
    }
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
