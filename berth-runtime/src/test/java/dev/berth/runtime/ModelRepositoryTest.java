package dev.berth.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.BerthException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelRepositoryTest {
  @TempDir Path repo;

  @Test
  void findsModelsAndNumericVersionsInOrder() throws IOException {
    Files.createDirectories(repo.resolve("b/10"));
    Files.createDirectories(repo.resolve("b/2"));
    Files.createDirectories(repo.resolve("b/notes"));
    Files.createDirectories(repo.resolve("a/1"));
    Files.createDirectories(repo.resolve(".hidden/1"));
    Files.writeString(repo.resolve("README.md"), "not a model");
    List<ModelRepository.ModelSource> models = new ModelRepository(repo).scan();
    assertEquals(
        List.of("a", "b"), models.stream().map(ModelRepository.ModelSource::name).toList());
    assertEquals(
        List.of(2L, 10L),
        models.get(1).versions().stream().map(ModelRepository.Version::number).toList());
  }

  @Test
  void brokenModelYamlIsReportedNotFatal() throws IOException {
    Files.createDirectories(repo.resolve("good/1"));
    Files.createDirectories(repo.resolve("bad/1"));
    Files.writeString(repo.resolve("bad/model.yaml"), "apiVersion: nope\nkind: Model\n");
    List<ModelRepository.ModelSource> models = new ModelRepository(repo).scan();
    ModelRepository.ModelSource bad = models.get(0);
    assertEquals("bad", bad.name());
    assertNull(bad.config());
    assertNotNull(bad.configError());
    assertNotNull(models.get(1).config());
  }

  @Test
  void missingRepositoryIsAClearError() {
    BerthException e =
        assertThrows(BerthException.class, () -> new ModelRepository(repo.resolve("nope")).scan());
    assertTrue(e.getMessage().contains("is not a directory"), e.getMessage());
  }

  @Test
  void namesCannotTraversePaths() {
    for (String bad : new String[] {"..", "a/b", "/etc", "a..b", "", ".x", "a b", "%2e%2e"}) {
      assertFalse(ModelRepository.isValidModelName(bad), bad);
    }
    assertTrue(ModelRepository.isValidModelName("minilm-v2_int8.onnx"));
    assertFalse(ModelRepository.isValidVersion("0"));
    assertFalse(ModelRepository.isValidVersion("01"));
    assertTrue(ModelRepository.isValidVersion("12"));
  }
}
