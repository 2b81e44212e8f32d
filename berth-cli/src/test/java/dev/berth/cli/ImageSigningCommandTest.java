package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.runtime.SigningKeys;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The usage errors of image signing, found before anything is built or sent: exit 2 and a message
 * that names the fix.
 */
class ImageSigningCommandTest {
  @TempDir Path dir;

  private record Run(int code, String out, String err) {}

  private static Run run(String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    picocli.CommandLine cli = Main.commandLine();
    cli.setOut(new PrintWriter(out, true));
    cli.setErr(new PrintWriter(err, true));
    int code = cli.execute(args);
    return new Run(code, out.toString(), err.toString());
  }

  private Path key(String algorithm) throws Exception {
    Path pem = dir.resolve(algorithm + ".pem");
    Files.writeString(pem, SigningKeys.pem(SigningKeys.generate(algorithm).getPrivate()));
    return pem;
  }

  private static String service() {
    return ContainerTestEnv.examples().resolve("minilm/berth.yaml").toString();
  }

  @Test
  void buildRefusesToSignAnArchiveOrAnEngineImage() throws Exception {
    String key = key(SigningKeys.ECDSA_P256).toString();
    for (String to : new String[] {"tar:" + dir.resolve("m.tar"), "docker://minilm:1"}) {
      Run r = run("build", service(), "--to", to, "--sign", key);
      assertEquals(2, r.code(), r.err());
      assertTrue(r.err().contains("--sign signs an image pushed to a registry"), r.err());
      assertTrue(r.err().contains("--to REGISTRY/REPO:TAG"), r.err());
    }
    assertFalse(Files.exists(dir.resolve("m.tar")));
    Run r = run("build", service(), "--dockerfile", dir.resolve("df").toString(), "--sign", key);
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("--dockerfile builds no image"), r.err());
    assertFalse(Files.exists(dir.resolve("df")));
  }

  @Test
  void anEd25519KeyIsRefusedForImages() throws Exception {
    String key = key(SigningKeys.ED25519).toString();
    Run build = run("build", service(), "--to", "127.0.0.1:9/it/minilm:1", "--sign", key);
    Run sign = run("sign-image", "127.0.0.1:9/it/minilm:1", "--key", key);
    for (Run r : new Run[] {build, sign}) {
      assertEquals(2, r.code(), r.err());
      assertTrue(r.err().contains(key + " is an Ed25519 key"), r.err());
      assertTrue(r.err().contains("berth keygen KEY.pem --algorithm ECDSA-P256"), r.err());
    }
  }

  @Test
  void theServiceFilesKeyIsUsedForRegistriesOnly() throws Exception {
    Path models = ContainerTestEnv.examples().resolve("models/minilm");
    Path key = key(SigningKeys.ECDSA_P256);
    Path file =
        Files.writeString(
            dir.resolve("berth.yaml"),
            "apiVersion: berth.dev/v1\nkind: ModelService\nname: minilm\nmodels: [{path: "
                + models
                + "}]\nimage: {to: 127.0.0.1:9/it/minilm:1, sign-key: "
                + key.getFileName()
                + "}\n");
    dev.berth.runtime.ServiceSpec service = dev.berth.runtime.ServiceSpec.load(file);
    assertEquals(key, service.image().signKey());
    assertEquals(SigningKeys.readPrivate(key), BuildSigning.key(null, service, null, null));
    // a build to an archive or with --dockerfile goes on unsigned; only --sign insists
    assertEquals(null, BuildSigning.key(null, service, null, "tar:" + dir.resolve("m.tar")));
    assertEquals(null, BuildSigning.key(null, service, dir.resolve("df"), null));

    Files.writeString(key, SigningKeys.pem(SigningKeys.generate(SigningKeys.ED25519).getPrivate()));
    Run r = run("build", file.toString());
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("image.sign-key in " + file + ": " + key), r.err());
  }

  @Test
  void aReferenceWithoutARegistryIsRefused() throws Exception {
    Run r = run("verify", "minilm:1", "--key", key(SigningKeys.ECDSA_P256).toString());
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("'minilm:1' names no registry"), r.err());
  }
}
