package dev.berth.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.BerthException;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ServiceSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A model whose model.yaml has a gate: the image carries the gate's data set (an IDX images file
 * and the labels file beside it) under the model's {@code gate/}, and the image's model.yaml names
 * it there, so that a container evaluates the gate as {@code berth serve} does here.
 */
class ImagePlanGateTest {
  @TempDir Path dir;

  private ImagePlan plan() {
    Path jar = dir.resolve("berth.jar");
    return ImagePlan.of(
        ServiceSpec.load(dir.resolve("berth.yaml")),
        new BerthDistribution(jar, List.of(), List.of(), "1.0"),
        null,
        null,
        dir.resolve("staging"));
  }

  @Test
  void theImageCarriesTheGatesDataAndItsModelYamlNamesTheCopy() throws IOException {
    Path data = Files.createDirectories(dir.resolve("datasets"));
    Files.writeString(data.resolve("t10k-images-idx3-ubyte.gz"), "images");
    Files.writeString(data.resolve("t10k-labels-idx1-ubyte.gz"), "labels");
    Files.createDirectories(dir.resolve("models/fashion/1"));
    Files.writeString(dir.resolve("models/fashion/1/model.onnx"), "graph");
    Files.writeString(
        dir.resolve("models/fashion/model.yaml"),
        "apiVersion: berth.dev/v1\nkind: Model\n"
            + "gate: {data: ../../datasets/t10k-images-idx3-ubyte.gz, min: 0.86}\n");
    Files.writeString(dir.resolve("berth.jar"), "jar");
    Files.writeString(
        dir.resolve("berth.yaml"),
        "apiVersion: berth.dev/v1\nkind: ModelService\nname: fashion\n"
            + "models: [{path: models/fashion}]\n");

    ImagePlan plan = plan();
    ImagePlan.Layer gate =
        plan.layers().stream()
            .filter(l -> l.name().equals("model fashion gate data"))
            .findFirst()
            .orElseThrow();
    assertEquals(
        List.of(
            ImagePlan.MODELS + "/fashion/gate/t10k-images-idx3-ubyte.gz",
            ImagePlan.MODELS + "/fashion/gate/t10k-labels-idx1-ubyte.gz"),
        gate.files().stream().map(ImagePlan.Entry::path).toList());

    // the model.yaml in the image reads, from the image's model directory, the copy
    ImagePlan.Entry yaml =
        plan.layers().stream()
            .flatMap(l -> l.files().stream())
            .filter(e -> e.path().equals(ImagePlan.MODELS + "/fashion/model.yaml"))
            .findFirst()
            .orElseThrow();
    Path image = Files.createDirectories(dir.resolve("image/fashion"));
    Files.copy(yaml.source(), image.resolve("model.yaml"));
    assertEquals(
        image.resolve("gate/t10k-images-idx3-ubyte.gz").toAbsolutePath(),
        ModelConfig.load(image).gate().data());

    // and a staged repository here reads the original
    Path staged = ServiceSpec.load(dir.resolve("berth.yaml")).writeRepository(dir.resolve("r"));
    assertEquals(
        data.resolve("t10k-images-idx3-ubyte.gz").toAbsolutePath(),
        ModelConfig.load(staged.resolve("fashion")).gate().data());

    // the labels, found beside the images, are named in the image whatever their name
    assertTrue(
        Files.readString(yaml.source()).contains("data-labels: gate/t10k-labels-idx1-ubyte.gz"),
        Files.readString(yaml.source()));

    // IDX images without their labels, and a gate whose data are gone, stop the build
    Files.delete(data.resolve("t10k-labels-idx1-ubyte.gz"));
    BerthException noLabels = assertThrows(BerthException.class, this::plan);
    assertTrue(noLabels.getMessage().contains("data-labels"), noLabels.getMessage());
    Files.delete(data.resolve("t10k-images-idx3-ubyte.gz"));
    BerthException e = assertThrows(BerthException.class, this::plan);
    assertTrue(e.getMessage().contains("does not exist"), e.getMessage());
  }
}
