package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.runtime.SigningKeys;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.KeyPair;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code berth keygen KEY.pem}: a key pair for {@code berth sign} and {@code serve --trust}, and
 * (ECDSA P-256) for {@code berth sign-image} and {@code berth verify}.
 */
@Command(
    name = "keygen",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
      "Make a key pair for signing models and, with --algorithm ECDSA-P256, images (berth"
          + " sign-image, berth build --sign): the private key (PKCS#8 PEM, readable by you alone)"
          + " at KEY.pem and its public key (X.509 PEM) next to it, KEY.pub.",
      ""
    })
final class KeygenCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "KEY.pem", description = "Where to write the private key.")
  Path privateFile;

  @Option(
      names = "--algorithm",
      paramLabel = "ALG",
      description =
          "Ed25519 or ECDSA-P256 (default: ${DEFAULT-VALUE}); images are signed with ECDSA-P256"
              + " keys only.",
      defaultValue = SigningKeys.ED25519)
  String algorithm;

  @Override
  public Integer call() {
    Path priv = privateFile.toAbsolutePath().normalize();
    String name = priv.getFileName().toString();
    Path pub =
        priv.resolveSibling(
            (name.endsWith(".pem") ? name.substring(0, name.length() - 4) : name) + ".pub");
    for (Path f : new Path[] {priv, pub}) {
      if (Files.exists(f)) {
        throw new BerthException(f + " already exists; keygen does not overwrite keys");
      }
    }
    KeyPair keys = SigningKeys.generate(algorithm);
    write(priv, SigningKeys.pem(keys.getPrivate()), true);
    write(pub, SigningKeys.pem(keys.getPublic()), false);
    System.out.println(
        "wrote "
            + SigningKeys.algorithm(keys.getPrivate())
            + " private key "
            + priv
            + " and public key "
            + pub);
    return 0;
  }

  private static void write(Path file, String pem, boolean secret) {
    try {
      if (secret) {
        Files.createFile(
            file,
            PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
      } else {
        Files.createFile(file);
      }
      Files.writeString(file, pem, StandardCharsets.US_ASCII);
    } catch (FileAlreadyExistsException e) {
      throw new BerthException(file + " already exists; keygen does not overwrite keys", e);
    } catch (UnsupportedOperationException e) {
      throw new BerthException("cannot make " + file + " private to you on this file system", e);
    } catch (IOException e) {
      throw new BerthException("cannot write " + file + ": " + e.getMessage(), e);
    }
  }
}
