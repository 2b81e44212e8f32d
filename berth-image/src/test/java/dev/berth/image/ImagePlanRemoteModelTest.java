package dev.berth.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.runtime.ServiceSpec;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.jar.Attributes;
import java.util.jar.JarOutputStream;
import java.util.jar.Manifest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * An image of a service whose models are kept in stores: no model layer, the model store among
 * Berth's files, and a service file naming the sources that the container serves.
 */
class ImagePlanRemoteModelTest {
  @TempDir Path dir;

  private static void jar(Path file, String classPath, Attributes.Name key, String value)
      throws IOException {
    Manifest manifest = new Manifest();
    Attributes a = manifest.getMainAttributes();
    a.put(Attributes.Name.MANIFEST_VERSION, "1.0");
    if (classPath != null) {
      a.put(Attributes.Name.CLASS_PATH, classPath);
    }
    if (key != null) {
      a.put(key, value);
    }
    Files.createDirectories(file.getParent());
    try (OutputStream out = Files.newOutputStream(file);
        JarOutputStream jar = new JarOutputStream(out, manifest)) {
      jar.flush();
    }
  }

  @Test
  void theModelStoreTravelsOnlyWithRemoteModels() throws IOException {
    Path lib = dir.resolve("lib");
    jar(lib.resolve("berth-server-1.0.jar"), null, null, null);
    jar(lib.resolve("berth-store-1.0.jar"), "s3-2.59.1.jar", null, null);
    jar(lib.resolve("s3-2.59.1.jar"), null, null, null);
    Path launcher = dir.resolve("berth.jar");
    Manifest manifest = new Manifest();
    Attributes a = manifest.getMainAttributes();
    a.put(Attributes.Name.MANIFEST_VERSION, "1.0");
    a.put(
        Attributes.Name.CLASS_PATH,
        "lib/berth-server-1.0.jar lib/berth-store-1.0.jar lib/s3-2.59.1.jar");
    a.putValue(BerthDistribution.SERVING_ROOTS, "berth-server");
    a.putValue(BerthDistribution.STORE_ROOTS, "berth-store");
    try (OutputStream out = Files.newOutputStream(launcher);
        JarOutputStream j = new JarOutputStream(out, manifest)) {
      j.flush();
    }
    BerthDistribution local = BerthDistribution.ofLauncher(launcher, "1.0", Set.of(), false);
    assertEquals(List.of("berth-server-1.0.jar"), names(local.modules()));
    assertEquals(List.of(), names(local.libraries()));
    BerthDistribution remote = BerthDistribution.ofLauncher(launcher, "1.0", Set.of(), true);
    assertEquals(List.of("berth-server-1.0.jar", "berth-store-1.0.jar"), names(remote.modules()));
    assertEquals(List.of("s3-2.59.1.jar"), names(remote.libraries()));
  }

  private static List<String> names(List<Path> jars) {
    return jars.stream().map(p -> p.getFileName().toString()).toList();
  }

  @Test
  void remoteModelsAreNamedInTheImagesServiceFileNotBuiltIn() throws IOException {
    Files.createDirectories(dir.resolve("models/local/1"));
    Files.writeString(dir.resolve("models/local/1/model.onnx"), "graph");
    Path file = dir.resolve("berth.yaml");
    Files.writeString(
        file,
        "apiVersion: berth.dev/v1\nkind: ModelService\nname: mixed\nmodels:\n"
            + "  - path: models/local\n"
            + "  - source: oci://registry.example.com/team/minilm:3\n"
            + "    batching: {max-batch-size: 4}\n"
            + "  - source: https://files.example.com/m/ranker.onnx?X-Amz-Signature=abc#sha256=00\n");
    Path jar = Files.writeString(dir.resolve("berth.jar"), "jar");
    ImagePlan plan =
        ImagePlan.of(
            ServiceSpec.load(file),
            new BerthDistribution(jar, List.of(), List.of(), "1.0"),
            null,
            null,
            dir.resolve("staging"));

    List<String> layers = plan.layers().stream().map(ImagePlan.Layer::name).toList();
    assertEquals(List.of("libraries", "berth", "model local/1", "config"), layers);
    assertEquals(List.of("serve", ImagePlan.SERVICE_FILE), plan.cmd().subList(0, 2));
    ImagePlan.Entry serviceFile =
        plan.layers().get(3).files().stream()
            .filter(e -> e.path().equals(ImagePlan.SERVICE_FILE))
            .findFirst()
            .orElseThrow();
    assertEquals(
        "apiVersion: berth.dev/v1\n"
            + "kind: ModelService\n"
            + "name: mixed\n"
            + "models:\n"
            + "- path: models/local\n"
            + "- source: oci://registry.example.com/team/minilm:3\n"
            + "  name: minilm\n"
            + "  batching:\n"
            + "    max-batch-size: 4\n"
            + "- source: https://files.example.com/m/ranker.onnx?X-Amz-Signature=abc#sha256=00\n"
            + "  name: ranker\n",
        Files.readString(serviceFile.source()));
    assertEquals(
        "minilm=oci://registry.example.com/team/minilm:3,"
            + "ranker=https://files.example.com/m/ranker.onnx#sha256=00",
        plan.labels().get("dev.berth.remote-models"));
    assertEquals("local:1", plan.labels().get("dev.berth.models"));

    // the image's own service file is one the server reads: bundled models by their image path
    Path image = Files.createDirectories(dir.resolve("image"));
    Files.createDirectories(image.resolve("models/local/1"));
    Files.writeString(image.resolve("models/local/1/model.onnx"), "graph");
    Files.copy(serviceFile.source(), image.resolve("berth.yaml"));
    ServiceSpec inImage = ServiceSpec.load(image.resolve("berth.yaml"));
    assertEquals(List.of("local", "minilm", "ranker"), inImage.modelNames());
    assertTrue(inImage.remoteModels().get(0).overrides().containsKey("batching"));
  }
}
