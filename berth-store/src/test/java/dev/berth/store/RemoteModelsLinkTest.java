package dev.berth.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.runtime.ModelRepository;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A mounted model linked into a repository: as it is, with overrides, or one bare model file. */
class RemoteModelsLinkTest {
  @TempDir Path dir;

  @Test
  void aModelDirectoryIsLinkedAsItIsAndWithOverridesGetsAModelYamlOfItsOwn() throws Exception {
    Path model = Files.createDirectories(dir.resolve("mounted/1"));
    Files.writeString(model.resolve("model.onnx"), "graph");
    Files.writeString(
        dir.resolve("mounted/model.yaml"), "apiVersion: berth.dev/v1\nkind: Model\ninstances: 2\n");
    Path repo = Files.createDirectories(dir.resolve("repo"));

    RemoteModels.link(repo, "plain", dir.resolve("mounted"), Map.of());
    assertEquals(dir.resolve("mounted"), Files.readSymbolicLink(repo.resolve("plain")));

    RemoteModels.link(repo, "tuned", dir.resolve("mounted"), Map.of("instances", 3));
    Path tuned = repo.resolve("tuned").toRealPath();
    assertTrue(Files.readString(tuned.resolve("model.yaml")).contains("instances: 3"));
    assertEquals("graph", Files.readString(repo.resolve("tuned/1/model.onnx")));
    // a second link replaces the first overlay, which goes
    RemoteModels.link(repo, "tuned", dir.resolve("mounted"), Map.of("instances", 4));
    assertFalse(Files.exists(tuned), "the previous overlay is removed");
    assertEquals(
        List.of("plain", "tuned"),
        new ModelRepository(repo).scan().stream().map(ModelRepository.ModelSource::name).toList());
  }

  @Test
  void oneBareModelFileIsServedAsVersionOne() throws Exception {
    Path mounted = Files.createDirectories(dir.resolve("mnt"));
    Files.writeString(mounted.resolve("Intent.ONNX"), "graph");
    Path repo = Files.createDirectories(dir.resolve("repo"));
    RemoteModels.link(repo, "intent", mounted, Map.of("instances", 2));
    assertEquals("graph", Files.readString(repo.resolve("intent/1/model.onnx")));
    assertTrue(Files.readString(repo.resolve("intent/model.yaml")).contains("instances: 2"));
    assertEquals(
        List.of(1L),
        new ModelRepository(repo)
            .scan().get(0).versions().stream().map(ModelRepository.Version::number).toList());

    // anything else beside the file: not a bare model file
    Files.writeString(mounted.resolve("README.md"), "notes");
    assertEquals(null, RemoteModels.singleModelFile(mounted));
  }
}
