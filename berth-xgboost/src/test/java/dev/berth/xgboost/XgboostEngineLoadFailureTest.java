package dev.berth.xgboost;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.ModelLoadException;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelContext;
import dev.berth.xgboost.testing.XgboostModelWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** A model file XGBoost cannot read is a {@link ModelLoadException} naming the file. */
class XgboostEngineLoadFailureTest {
  private static byte[] json;
  private static byte[] ubj;

  @TempDir Path repo;

  @BeforeAll
  static void saveAModel(@TempDir Path dir) throws IOException {
    XgboostModelWriter.Trained m =
        XgboostModelWriter.objective("multi:softprob").classes(3).train();
    json = Files.readAllBytes(m.save(dir.resolve("model.json")));
    ubj = Files.readAllBytes(m.save(dir.resolve("model.ubj")));
  }

  @ParameterizedTest
  @ValueSource(strings = {"model.json", "model.ubj"})
  void anEmptyFileIsRefused(String name) {
    assertFailsNaming(name, new byte[0]);
  }

  @ParameterizedTest
  @ValueSource(strings = {"model.json", "model.ubj"})
  void randomBytesAreRefused(String name) {
    byte[] garbage = new byte[4096];
    new Random(7).nextBytes(garbage);
    assertFailsNaming(name, garbage);
  }

  @Test
  void aTruncatedJsonModelIsRefused() {
    assertFailsNaming("model.json", Arrays.copyOf(json, json.length / 2));
  }

  @Test
  void aTruncatedUbjModelIsRefused() {
    assertFailsNaming("model.ubj", Arrays.copyOf(ubj, ubj.length / 2));
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "{\"name\": \"not a model\"}",
        "{\"learner\": {}, \"version\": [3, 4, 0]}",
        "[1, 2, 3]",
        "{}"
      })
  void otherJsonNamedModelJsonIsRefused(String content) {
    assertFailsNaming("model.json", content.getBytes(java.nio.charset.StandardCharsets.UTF_8));
  }

  @Test
  void aJsonModelNamedModelUbjIsRefused() {
    assertFailsNaming("model.ubj", json);
  }

  @Test
  void bothFormatsAtOnceAreRefusedRatherThanGuessed() throws IOException {
    Files.createDirectories(repo.resolve("m/1"));
    Files.write(repo.resolve("m/1/model.json"), json);
    Files.write(repo.resolve("m/1/model.ubj"), ubj);
    ModelLoadException e =
        assertThrows(
            ModelLoadException.class, () -> new XgboostEngineProvider().load(context()).close());
    assertTrue(e.getMessage().contains("both model.json and model.ubj"), e.getMessage());
  }

  private void assertFailsNaming(String name, byte[] content) {
    Path file = repo.resolve("m/1").resolve(name);
    try {
      Files.createDirectories(file.getParent());
      Files.write(file, content);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    XgboostEngineProvider provider = new XgboostEngineProvider();
    assertTrue(provider.canLoad(context()), "a model file is there, whatever it holds");
    ModelLoadException e =
        assertThrows(ModelLoadException.class, () -> provider.load(context()).close());
    assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
    assertTrue(!e.getMessage().contains("Stack trace"), e.getMessage());
  }

  private ModelContext context() {
    Path modelDir = repo.resolve("m");
    return new ModelContext("m", "1", modelDir.resolve("1"), ModelConfig.load(modelDir));
  }
}
