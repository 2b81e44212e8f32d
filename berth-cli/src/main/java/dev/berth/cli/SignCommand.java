package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelManifest;
import dev.berth.runtime.ModelRepository;
import dev.berth.runtime.SignedManifest;
import dev.berth.runtime.SigningKeys;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code berth sign MODEL_DIR --key KEY.pem}: signs the manifest of a model's files. */
@Command(
    name = "sign",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
      "Sign a model: record the sha256 of model.yaml and of every file of every version folder in"
          + " a manifest, sign it with an Ed25519 or ECDSA P-256 private key, and write"
          + " MODEL_DIR/berth.sig. 'berth serve --trust KEY.pub' then refuses the model if a file"
          + " changes, appears or disappears.",
      ""
    })
final class SignCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "MODEL_DIR", description = "The model directory to sign.")
  Path modelDir;

  @Option(
      names = "--key",
      required = true,
      paramLabel = "KEY.pem",
      description = "Private key, PKCS#8 PEM (Ed25519 or ECDSA P-256; berth keygen makes one).")
  Path key;

  @Option(
      names = "--out",
      paramLabel = "FILE",
      description = "Where to write the signature (default: MODEL_DIR/berth.sig).")
  Path out;

  @Override
  public Integer call() {
    Path dir = modelDir.toAbsolutePath().normalize();
    if (!Files.isDirectory(dir)) {
      throw new BerthException(
          dir + " is not a directory; give a model directory (model.yaml and version folders)");
    }
    ModelConfig.load(dir); // a model.yaml that cannot be served is not worth signing
    boolean hasVersion;
    try (Stream<Path> s = Files.list(dir)) {
      hasVersion =
          s.anyMatch(
              p ->
                  Files.isDirectory(p)
                      && ModelRepository.isValidVersion(p.getFileName().toString()));
    } catch (java.io.IOException e) {
      throw new BerthException("cannot list " + dir + ": " + e.getMessage(), e);
    }
    if (!hasVersion) {
      throw new BerthException(
          dir + " has no version folders; put the model file in " + dir.resolve("1") + "/");
    }
    Path target =
        out == null ? dir.resolve(ModelManifest.SIGNATURE_FILE) : out.toAbsolutePath().normalize();
    if (target.startsWith(dir) && !target.equals(dir.resolve(ModelManifest.SIGNATURE_FILE))) {
      throw new BerthException(
          "--out "
              + target
              + " is inside the model directory, where it would count as a model file; write it"
              + " to "
              + dir.resolve(ModelManifest.SIGNATURE_FILE)
              + " or outside the model");
    }
    var privateKey = SigningKeys.readPrivate(key);
    ModelManifest manifest = ModelManifest.of(dir);
    SignedManifest signed = SignedManifest.sign(manifest, privateKey);
    signed.write(target);
    System.out.println(
        "signed "
            + manifest.files().size()
            + " files of "
            + dir
            + " ("
            + signed.algorithm()
            + ", manifest "
            + manifest.digest()
            + ")");
    System.out.println("wrote " + target);
    return 0;
  }
}
