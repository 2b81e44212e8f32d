package dev.berth.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.runtime.ModelManifest;
import dev.berth.runtime.ServiceSpec;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.jar.Attributes;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An image of a service with a GGUF language model: the weights in a layer of their own, and
 * llama.cpp's engine among Berth's files only when a service has such a model.
 */
class ImagePlanLanguageModelTest {
  @TempDir Path dir;

  private static void jar(Path file, String classPath, String servingRoots, String llmRoots)
      throws IOException {
    Manifest manifest = new Manifest();
    Attributes a = manifest.getMainAttributes();
    a.put(Attributes.Name.MANIFEST_VERSION, "1.0");
    if (classPath != null) {
      a.put(Attributes.Name.CLASS_PATH, classPath);
    }
    if (servingRoots != null) {
      a.putValue(BerthDistribution.SERVING_ROOTS, servingRoots);
    }
    if (llmRoots != null) {
      a.putValue(BerthDistribution.ENGINE_ROOTS, llmRoots);
    }
    Files.createDirectories(file.getParent());
    try (OutputStream out = Files.newOutputStream(file);
        JarOutputStream jar = new JarOutputStream(out, manifest)) {
      jar.flush();
    }
  }

  @Test
  void theLanguageModelEngineTravelsOnlyWithLanguageModels() throws IOException {
    Path lib = dir.resolve("lib");
    jar(lib.resolve("berth-server-1.0.jar"), "onnxruntime-1.29.0.jar", null, null);
    jar(lib.resolve("onnxruntime-1.29.0.jar"), null, null, null);
    jar(lib.resolve("berth-llm-1.0.jar"), "llama-4.2.0.jar", null, null);
    jar(lib.resolve("llama-4.2.0.jar"), null, null, null);
    jar(lib.resolve("berth-image-1.0.jar"), null, null, null);
    Path launcher = dir.resolve("berth.jar");
    jar(
        launcher,
        "lib/berth-server-1.0.jar lib/onnxruntime-1.29.0.jar lib/berth-llm-1.0.jar"
            + " lib/llama-4.2.0.jar lib/berth-image-1.0.jar",
        "berth-server",
        "llama=berth-llm pytorch=berth-pytorch");

    BerthDistribution tensors = BerthDistribution.ofLauncher(launcher, "1.0", java.util.Set.of());
    assertEquals(List.of("berth-server-1.0.jar"), names(tensors.modules()));
    assertEquals(List.of("onnxruntime-1.29.0.jar"), names(tensors.libraries()));

    BerthDistribution llm =
        BerthDistribution.ofLauncher(launcher, "1.0", java.util.Set.of("llama"));
    assertEquals(List.of("berth-server-1.0.jar", "berth-llm-1.0.jar"), names(llm.modules()));
    assertEquals(List.of("onnxruntime-1.29.0.jar", "llama-4.2.0.jar"), names(llm.libraries()));
  }

  private static List<String> names(List<Path> jars) {
    return jars.stream().map(p -> p.getFileName().toString()).toList();
  }

  @Test
  void aGgufIsALayerOfItsOwn() throws IOException {
    Path model = Files.createDirectories(dir.resolve("models/chat/1"));
    Files.writeString(model.resolve("model.gguf"), "weights");
    Files.writeString(model.resolve("README.md"), "a note");
    Files.createDirectories(dir.resolve("models/minilm/1"));
    Files.writeString(dir.resolve("models/minilm/1/model.onnx"), "graph");
    Path file = dir.resolve("berth.yaml");
    Files.writeString(
        file,
        "apiVersion: berth.dev/v1\nkind: ModelService\nname: chat\n"
            + "models: [{path: models/chat}, {path: models/minilm}]\n");
    Path jar = Files.writeString(dir.resolve("berth.jar"), "jar");
    ImagePlan plan =
        ImagePlan.of(
            ServiceSpec.load(file),
            new BerthDistribution(jar, List.of(), List.of(), "1.0"),
            null,
            null,
            dir.resolve("staging"));

    List<String> layers = plan.layers().stream().map(ImagePlan.Layer::name).toList();
    assertTrue(layers.contains("model chat/1 weights"), layers.toString());
    assertTrue(layers.contains("model chat/1"), layers.toString());
    assertTrue(layers.contains("model minilm/1"), layers.toString());
    assertFalse(layers.contains("model minilm/1 weights"), "an ONNX model keeps one layer");
    ImagePlan.Layer weights =
        plan.layers().stream()
            .filter(l -> l.name().equals("model chat/1 weights"))
            .findFirst()
            .orElseThrow();
    assertEquals(1, weights.files().size());
    assertTrue(weights.files().get(0).path().endsWith("/chat/1/model.gguf"));
    // the version's digest still covers all of its files
    assertEquals(
        ModelManifest.of(model).digest(), plan.labels().get("dev.berth.model.chat.1.sha256"));
  }
}
