package dev.berth.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.ConfigException;
import dev.berth.api.ModelIntegrityException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** model.yaml's files.sha256 pins: read, validated, and checked before a version loads. */
class ModelIntegrityPinsTest {
  @TempDir Path repo;
  private Path model;
  private String v1;
  private String v2;

  @BeforeEach
  void files() throws IOException {
    model = repo.resolve("m");
    Files.createDirectories(model.resolve("1"));
    Files.createDirectories(model.resolve("2"));
    Files.writeString(model.resolve("1/fake"), "weights one");
    Files.writeString(model.resolve("2/fake"), "weights two");
    v1 = ModelManifest.sha256(model.resolve("1/fake"));
    v2 = ModelManifest.sha256(model.resolve("2/fake"));
  }

  private ModelConfig yaml(String pins) throws IOException {
    Files.writeString(
        model.resolve("model.yaml"),
        "apiVersion: berth.dev/v1\nkind: Model\nfiles:\n  sha256:\n" + pins);
    return ModelConfig.load(model);
  }

  @Test
  void pinsDifferPerVersionAndBothCasesAreAccepted() throws IOException {
    ModelConfig config =
        yaml(
            "    1/fake: \""
                + v1.toUpperCase(java.util.Locale.ROOT)
                + "\"\n    2/fake: sha256:"
                + v2
                + "\n");
    assertEquals(Map.of("1/fake", v1, "2/fake", v2), config.pins());
    ModelIntegrity.pinsOnly().verify(model, config, "1");
    ModelIntegrity.pinsOnly().verify(model, config, "2");
  }

  @Test
  void mismatchNamesTheFileAndBothDigests() throws IOException {
    ModelConfig config = yaml("    1/fake: " + v1 + "\n    2/fake: " + v1 + "\n");
    ModelIntegrity.pinsOnly().verify(model, config, "1");
    ModelIntegrityException e =
        assertThrows(
            ModelIntegrityException.class,
            () -> ModelIntegrity.pinsOnly().verify(model, config, "2"));
    assertEquals("2/fake", e.file());
    assertTrue(e.getMessage().contains("expected sha256 " + v1), e.getMessage());
    assertTrue(e.getMessage().contains("found " + v2), e.getMessage());
  }

  @Test
  void aPinnedFileThatIsMissingIsRefused() throws IOException {
    ModelConfig config = yaml("    1/tokenizer.json: " + v1 + "\n");
    ModelIntegrityException e =
        assertThrows(
            ModelIntegrityException.class,
            () -> ModelIntegrity.pinsOnly().verify(model, config, "1"));
    assertEquals("1/tokenizer.json", e.file());
    assertTrue(e.getMessage().contains("does not exist"), e.getMessage());
    ModelIntegrity.pinsOnly().verify(model, config, "2"); // another version's pin
  }

  @Test
  void aSharedFileOutsideVersionFoldersIsCheckedForEveryVersion() throws IOException {
    Files.writeString(model.resolve("vocab.txt"), "a b c");
    ModelConfig config = yaml("    vocab.txt: " + v1 + "\n");
    for (String v : List.of("1", "2")) {
      assertThrows(
          ModelIntegrityException.class, () -> ModelIntegrity.pinsOnly().verify(model, config, v));
    }
  }

  @Test
  void badPinsAreConfigErrorsNamingTheKey() throws IOException {
    Map<String, String> cases =
        Map.of(
            "    1/fake: abc\n",
            "64 hex digits",
            "    1/fake: " + "g".repeat(64) + "\n",
            "64 hex digits",
            "    1/fake: " + "1".repeat(64) + "\n",
            "in quotes",
            "    ../x/1/fake: " + v1 + "\n",
            "inside the model directory",
            "    /etc/passwd: " + v1 + "\n",
            "relative to the model directory",
            "    model.yaml: " + v1 + "\n",
            "cannot pin itself",
            "    1/fake:\n",
            "found nothing");
    for (Map.Entry<String, String> c : cases.entrySet()) {
      ConfigException e = assertThrows(ConfigException.class, () -> yaml(c.getKey()), c.getKey());
      assertTrue(e.getMessage().contains(c.getValue()), e.getMessage());
      assertTrue(e.getMessage().contains("files.sha256."), e.getMessage());
    }
    Files.writeString(
        model.resolve("model.yaml"),
        "apiVersion: berth.dev/v1\nkind: Model\nfiles:\n  md5:\n    1/fake: abc\n");
    ConfigException e = assertThrows(ConfigException.class, () -> ModelConfig.load(model));
    assertEquals("files.md5", e.key());
  }

  @Test
  void aMismatchedVersionIsUnavailableWithItsReasonAndTheOthersServe() throws IOException {
    Files.createDirectories(repo.resolve("other/1"));
    Files.writeString(repo.resolve("other/1/fake"), "");
    yaml("    1/fake: " + v1 + "\n    2/fake: " + "0".repeat(63) + "a\n");
    try (ModelRegistry registry =
        new ModelRegistry(
            new ModelRepository(repo),
            List.of(new InferenceServiceTest.FakeEngines()),
            new ServingMetrics())) {
      registry.loadAll();
      Map<String, ModelStatus> index = new java.util.HashMap<>();
      registry.index().forEach(s -> index.put(s.name() + "/" + s.version(), s));
      assertEquals(ServingMetrics.ModelState.READY, index.get("m/1").state());
      assertEquals(ServingMetrics.ModelState.READY, index.get("other/1").state());
      ModelStatus refused = index.get("m/2");
      assertEquals(ServingMetrics.ModelState.UNAVAILABLE, refused.state());
      assertTrue(refused.reason().contains("2/fake does not match its pin"), refused.reason());
      assertTrue(refused.reason().contains("found " + v2), refused.reason());
      assertEquals("1", registry.resolve("m", null).version());
    }
  }
}
