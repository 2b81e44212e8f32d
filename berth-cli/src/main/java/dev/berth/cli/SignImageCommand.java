package dev.berth.cli;

import dev.berth.store.DockerCredentials;
import dev.berth.store.ImageSignatures;
import dev.berth.store.OciReference;
import java.io.PrintStream;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code berth sign-image REF --key KEY.pem}: signs an image in a registry, as cosign does. */
@Command(
    name = "sign-image",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
      "Sign an image in a registry in Sigstore cosign's key-based format: the manifest digest REF"
          + " names now, in a simple-signing payload signed with an ECDSA P-256 key, stored in the"
          + " same repository under the tag sha256-<hex>.sig (next to the signatures already"
          + " there). 'berth verify', 'cosign verify --key' and skopeo/podman's sigstoreSigned"
          + " policy check it. Credentials come from the Docker credential files (docker login);"
          + " a registry on a loopback address is spoken to over plain HTTP.",
      ""
    })
final class SignImageCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      paramLabel = "REF",
      description = "The image: REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:DIGEST.")
  String image;

  @Option(
      names = "--key",
      required = true,
      paramLabel = "KEY.pem",
      description =
          "ECDSA P-256 private key: PKCS#8 PEM (berth keygen KEY.pem --algorithm ECDSA-P256), or"
              + " cosign's encrypted key file (cosign generate-key-pair) with its password in"
              + " COSIGN_PASSWORD.")
  Path key;

  @Override
  public Integer call() {
    OciReference ref = ImageSignatures.reference(image);
    sign(ref, ImageSigningKeys.read(key), System.out);
    return 0;
  }

  /** Signs the image at a reference (tag or digest) and says what it stored. */
  static void sign(OciReference ref, PrivateKey key, PrintStream out) {
    ImageSignatures.Signed signed =
        ImageSignatures.at(ref, DockerCredentials.fromEnvironment()).sign(key);
    String repository = ref.registry() + "/" + ref.repository();
    out.println("signed    " + repository + "@" + signed.digest());
    out.println(
        "signature "
            + repository
            + ":"
            + signed.signatureTag()
            + " ("
            + (signed.added() ? "added; " : "this key had signed it already; ")
            + signed.signatures()
            + " signature"
            + (signed.signatures() == 1 ? "" : "s")
            + ")");
  }
}
