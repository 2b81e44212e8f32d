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
      assertTrue(r.err().contains("--sign signs an image in a registry"), r.err());
      assertTrue(r.err().contains("--to REGISTRY/REPO:TAG"), r.err());
    }
    assertFalse(Files.exists(dir.resolve("m.tar")));
    Run r = run("build", service(), "--dockerfile", dir.resolve("df").toString(), "--sign", key);
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("--dockerfile builds none"), r.err());
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
  void aReferenceWithoutARegistryIsRefused() throws Exception {
    Run r = run("verify", "minilm:1", "--key", key(SigningKeys.ECDSA_P256).toString());
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("'minilm:1' names no registry"), r.err());
  }
}
