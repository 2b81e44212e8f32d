package dev.berth.cli;

import dev.berth.image.BuiltImage;
import dev.berth.image.DockerfileExport;
import dev.berth.image.ImageLocation;
import dev.berth.image.ImagePlan;
import dev.berth.image.ImageSbom;
import dev.berth.runtime.ServiceSpec;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code berth build}: the service's layered OCI image, without a Docker daemon. */
@Command(
    name = "build",
    mixinStandardHelpOptions = true,
    description = {
      "Build a layered OCI image of a model service (berth.yaml) without a Docker daemon.",
      "Layers, least often changed first: Java runtime (with --runtime jlink), libraries, Berth,"
          + " one per model version, config. The same inputs give the same digest.",
      "Also writes the image's CycloneDX 1.6 SBOM, read from its layers (see --sbom)."
    })
final class BuildCommand implements Callable<Integer> {

  @Parameters(index = "0", paramLabel = "SERVICE", description = "The service file (berth.yaml).")
  Path serviceFile;

  @Option(
      names = "--to",
      paramLabel = "REF",
      description =
          "Where the image goes: REGISTRY/REPO:TAG, docker://NAME:TAG (the local engine) or"
              + " tar:PATH (an OCI archive docker load also reads). Default: image.to in the"
              + " service file.")
  String to;

  @Option(
      names = {"-t", "--tag"},
      paramLabel = "TAG",
      description = "Another tag for the image (repeatable).")
  List<String> tags = new ArrayList<>();

  @Option(
      names = "--dockerfile",
      paramLabel = "DIR",
      description =
          "Instead of building, write an equivalent Dockerfile and build context into DIR.")
  Path dockerfile;

  @Option(
      names = "--sign",
      paramLabel = "KEY.pem",
      description =
          "Sign the pushed image (its manifest digest) with this ECDSA P-256 private key, in"
              + " cosign's key-based format, as berth sign-image does. Registry targets only."
              + " Default: image.sign-key in the service file.")
  Path sign;

  @Option(
      names = "--sbom",
      paramLabel = "FILE",
      description =
          "Where the image's CycloneDX 1.6 SBOM goes. Default: beside a tar: archive"
              + " (IMAGE.tar gives IMAGE.cdx.json); for a registry or docker:// target,"
              + " sbom/REFERENCE.cdx.json in the cache directory (the reference with each"
              + " character other than letters, digits, '.', '_' and '-' as '_'). A pushed"
              + " image also gets it attached in its registry (berth sbom REF prints it).")
  Path sbom;

  @Option(names = "--no-sbom", description = "Write no SBOM.")
  boolean noSbom;

  @Mixin ImageOptions image;

  @Override
  public Integer call() {
    ServiceSpec service = ServiceSpec.load(serviceFile);
    // checked before anything is built: a key that cannot sign, or a target with no registry
    PrivateKey signingKey = BuildSigning.key(sign, service, dockerfile, to);
    ImagePlan plan = image.plan(service, System.err);
    if (dockerfile != null) {
      Path file =
          DockerfileExport.write(
              plan, image.base(service), dockerfile.toAbsolutePath().normalize());
      System.out.println(
          "wrote " + file + " and its build context (" + plan.layers().size() + " layers)");
      System.out.println(
          "build it with: docker build -t " + service.name() + " " + file.getParent());
      return 0;
    }
    ImageLocation target = ImageLocation.parse(to != null ? to : service.image().to());
    List<String> allTags = new ArrayList<>(service.image().tags());
    allTags.addAll(tags);
    Path sbomFile = noSbom ? null : sbomFile(target);
    BuiltImage built = image.build(plan, target, allTags, sbomFile, System.err);
    if (target instanceof ImageLocation.Registry r) {
      // 'berth deploy' pins pods to this digest
      BuildRecords.save(image.cacheDir, r.reference(), built.digest());
    }
    System.out.println("built  " + built.location());
    System.out.println("digest " + built.digest());
    System.out.println(
        "size   "
            + (built.compressedBytes() < 0
                ? "unknown (the registry did not say)"
                : ImageOptions.bytes(built.compressedBytes())
                    + " compressed, "
                    + built.layers()
                    + " layers (base included)"));
    if (sbomFile != null && !java.nio.file.Files.isRegularFile(sbomFile)) {
      sbomFile = null; // the build said why
    }
    if (sbomFile != null) {
      System.out.println("sbom   " + sbomFile);
    }
    if (signingKey != null) {
      BuildSigning.sign(target, built.digest(), signingKey);
    }
    if (sbomFile != null && target instanceof ImageLocation.Registry r) {
      // beside the image in its registry, signed by the image's key when it is signed
      dev.berth.store.OciReference ref;
      try {
        ref = dev.berth.store.ImageSignatures.reference(r.reference());
      } catch (dev.berth.api.InvalidInputException e) {
        ref = null;
        System.err.println(
            "note: the SBOM is not attached to "
                + r.reference()
                + ", which names no registry host; write it out (docker.io/NAME) to attach it");
      }
      if (ref != null) {
        try {
          SbomCommand.attach(ref, built.digest(), sbomFile, signingKey, System.out);
        } catch (dev.berth.api.BerthException e) {
          if (signingKey != null) {
            throw e; // a signed build promises its SBOM signed beside it
          }
          System.err.println(
              "warning: the image is pushed, but its SBOM was not attached ("
                  + e.getMessage()
                  + "); attach it by building again, or publish "
                  + sbomFile
                  + " yourself");
        }
      }
    }
    return 0;
  }

  /** Where the SBOM goes: --sbom, beside a tar: archive, or under the cache directory. */
  private Path sbomFile(ImageLocation target) {
    if (sbom != null) {
      return sbom.toAbsolutePath().normalize();
    }
    if (target instanceof ImageLocation.Archive a) {
      return ImageSbom.besideArchive(a.file());
    }
    // one per target reference, as the digests 'berth deploy' pins are recorded
    String reference = target instanceof ImageLocation.Daemon d ? d.reference() : target.toString();
    return image
        .cacheDir
        .resolve("sbom")
        .resolve(reference.replaceAll("[^A-Za-z0-9._-]", "_") + ImageSbom.FILE_SUFFIX)
        .toAbsolutePath()
        .normalize();
  }
}
