package dev.berth.tensorflow;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.ModelLoadException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** SavedModels that cannot be served fail to load with a message naming the file at fault. */
class TensorflowEngineLoadFailureTest {
  @TempDir static Path good;
  @TempDir Path repo;

  @BeforeAll
  static void writeModel() {
    TensorflowModels.twoInTwoOut(good);
  }

  /** A copy of the good SavedModel as model {@code name} of the test's repository. */
  private Path copy(String name) throws IOException {
    Path target = TensorflowModels.savedModel(repo, name);
    try (Stream<Path> files = Files.walk(good)) {
      for (Path p : files.sorted(Comparator.naturalOrder()).toList()) {
        Path to = target.resolve(good.relativize(p).toString());
        if (Files.isDirectory(p)) {
          Files.createDirectories(to);
        } else {
          Files.copy(p, to);
        }
      }
    }
    return target;
  }

  private static ModelLoadException loadFails(Path repo, String name) {
    return assertThrows(
        ModelLoadException.class, () -> TensorflowModels.load(repo, name, null).close());
  }

  @Test
  void aCorruptGraphNamesSavedModelPb() throws IOException {
    Path dir = copy("corrupt");
    byte[] garbage = new byte[512];
    new java.util.Random(1).nextBytes(garbage);
    Files.write(dir.resolve("saved_model.pb"), garbage);

    ModelLoadException e = loadFails(repo, "corrupt");
    assertTrue(e.getMessage().contains(dir.resolve("saved_model.pb").toString()), e.getMessage());
  }

  @Test
  void aTruncatedGraphNamesSavedModelPb() throws IOException {
    Path dir = copy("truncated");
    Path pb = dir.resolve("saved_model.pb");
    byte[] bytes = Files.readAllBytes(pb);
    Files.write(pb, Arrays.copyOf(bytes, bytes.length / 2));

    ModelLoadException e = loadFails(repo, "truncated");
    assertTrue(e.getMessage().contains(pb.toString()), e.getMessage());
  }

  @Test
  void missingVariablesNameTheVariablesDirectory() throws IOException {
    Path dir = copy("novars");
    try (Stream<Path> files = Files.list(dir.resolve("variables"))) {
      for (Path p : files.toList()) {
        Files.delete(p);
      }
    }
    Files.delete(dir.resolve("variables"));

    ModelLoadException e = loadFails(repo, "novars");
    assertTrue(e.getMessage().contains(dir.resolve("variables").toString()), e.getMessage());
  }

  @Test
  void aMissingVariablesDataFileNamesTheVariables() throws IOException {
    Path dir = copy("nodata");
    Files.delete(dir.resolve("variables").resolve("variables.data-00000-of-00001"));

    ModelLoadException e = loadFails(repo, "nodata");
    assertTrue(e.getMessage().contains(dir.resolve("variables").toString()), e.getMessage());
  }

  @Test
  void aDirectoryWithoutSavedModelPbSaysWhatBelongsThere() throws IOException {
    Path dir = TensorflowModels.savedModel(repo, "empty");
    Files.createDirectories(dir);

    ModelLoadException e = loadFails(repo, "empty");
    assertTrue(e.getMessage().contains(dir + " has no saved_model.pb"), e.getMessage());
  }
}
