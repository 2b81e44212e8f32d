package dev.berth.cli;

import static dev.berth.cli.ContainerTestEnv.berth;
import static dev.berth.cli.ContainerTestEnv.skopeo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * {@code berth build --sign}: the image pushed to the real registry is signed at the digest the
 * build printed, and {@code berth verify} accepts it with the public key.
 */
class BuildSignIT {
  private static final Pattern DIGEST = Pattern.compile("digest (sha256:[0-9a-f]{64})");

  @Test
  void buildSignsThePushedDigest() throws Exception {
    ContainerTestEnv env = ContainerTestEnv.require();
    Path work = Files.createTempDirectory(Path.of("target").toAbsolutePath(), "build-sign-it-");
    berth(work, "keygen", "release.pem", "--algorithm", "ECDSA-P256").ok();
    String repository = env.registry + "/it/signed-build-" + Long.toString(System.nanoTime(), 36);
    ContainerTestEnv.Result built =
        berth(
                work,
                "build",
                ContainerTestEnv.examples().resolve("minilm/berth.yaml").toString(),
                "--to",
                repository + ":1",
                "--base",
                env.baseJava,
                "--cache-dir",
                work.resolve("cache").toString(),
                "--sign",
                work.resolve("release.pem").toString())
            .ok();
    Matcher m = DIGEST.matcher(built.out());
    assertTrue(m.find(), built.out());
    String digest = m.group(1);
    assertTrue(built.out().contains("signed    " + repository + "@" + digest), built.out());

    String tag = "sha256-" + digest.substring("sha256:".length()) + ".sig";
    JsonNode signatures =
        new ObjectMapper()
            .readTree(
                skopeo(
                        work,
                        "inspect",
                        "--raw",
                        "--tls-verify=false",
                        "docker://" + repository + ":" + tag)
                    .ok()
                    .out());
    assertEquals(1, signatures.path("layers").size());

    String verified =
        berth(work, "verify", repository + ":1", "--key", work.resolve("release.pub").toString())
            .ok()
            .out();
    assertTrue(verified.contains("verified " + repository + "@" + digest), verified);
  }
}
