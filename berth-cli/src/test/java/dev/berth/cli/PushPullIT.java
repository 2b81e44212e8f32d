package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.store.TestRegistry;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** berth push and berth pull as a user runs them, against a real registry. */
class PushPullIT {
  @TempDir Path work;

  @Test
  void theExampleModelMakesTheRoundTripAndErrorsExitWithTwo() throws Exception {
    try (TestRegistry registry = TestRegistry.start(Files.createDirectories(work.resolve("reg")))) {
      Path model = BerthProcess.examples().resolve("minilm");
      String ref = "oci://" + registry.address() + "/examples/minilm:1";
      BerthProcess.Finished push =
          BerthProcess.run(work, Duration.ofMinutes(2), "push", model.toString(), ref);
      assertEquals(0, push.code(), push.err());
      assertTrue(push.out().strip().matches(".*:1@sha256:[0-9a-f]{64}"), push.out());
      assertTrue(push.err().contains("version 1 (22."), push.err());

      Path pulled = work.resolve("pulled/minilm");
      BerthProcess.Finished pull =
          BerthProcess.run(work, Duration.ofMinutes(2), "pull", ref, pulled.toString());
      assertEquals(0, pull.code(), pull.err());
      for (String f : List.of("model.yaml", "1/model.onnx", "1/tokenizer.json")) {
        assertArrayEquals(
            Files.readAllBytes(model.resolve(f)), Files.readAllBytes(pulled.resolve(f)), f);
      }
      try (Stream<Path> walk = Files.walk(pulled)) {
        assertEquals(3, walk.filter(Files::isRegularFile).count());
      }

      BerthProcess.Finished missing =
          BerthProcess.run(
              work,
              Duration.ofMinutes(1),
              "pull",
              "oci://" + registry.address() + "/examples/minilm:nope",
              work.resolve("nope").toString());
      assertEquals(2, missing.code());
      assertTrue(missing.err().contains("has no tag 'nope'"), missing.err());
      assertFalse(Files.exists(work.resolve("nope")));

      // a repository directory goes as one index of its models, and comes back whole
      Path repo = work.resolve("repo");
      for (String m : List.of("first", "second")) {
        Files.createDirectories(repo.resolve(m + "/1"));
        Files.writeString(
            repo.resolve(m + "/model.yaml"), "apiVersion: berth.dev/v1\nkind: Model\n");
        Files.writeString(repo.resolve(m + "/1/model.onnx"), "weights of " + m);
      }
      String repoRef = "oci://" + registry.address() + "/examples/repo:1";
      BerthProcess.Finished pushRepo =
          BerthProcess.run(work, Duration.ofMinutes(2), "push", repo.toString(), repoRef);
      assertEquals(0, pushRepo.code(), pushRepo.err());
      assertTrue(pushRepo.err().contains("2 models (first, second)"), pushRepo.err());
      Path repoBack = work.resolve("repo-back");
      BerthProcess.Finished pullRepo =
          BerthProcess.run(work, Duration.ofMinutes(2), "pull", repoRef, repoBack.toString());
      assertEquals(0, pullRepo.code(), pullRepo.err());
      assertEquals("weights of second", Files.readString(repoBack.resolve("second/1/model.onnx")));

      BerthProcess.Finished bad =
          BerthProcess.run(
              work, Duration.ofMinutes(1), "push", model.toString(), "registry/minilm");
      assertEquals(2, bad.code());
      assertTrue(bad.err().contains("is not an OCI reference"), bad.err());
    }
  }
}
