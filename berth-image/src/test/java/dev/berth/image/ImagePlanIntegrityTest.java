package dev.berth.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.BerthException;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelIntegrity;
import dev.berth.runtime.ModelManifest;
import dev.berth.runtime.ServiceSpec;
import dev.berth.runtime.SignedManifest;
import dev.berth.runtime.SigningKeys;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The model digests an image plan puts in its labels and its model.yaml. */
class ImagePlanIntegrityTest {
  @TempDir Path dir;
  private Path model;
  private BerthDistribution berth;

  @BeforeEach
  void files() throws IOException {
    model = dir.resolve("models/embedder");
    Files.createDirectories(model.resolve("1"));
    Files.createDirectories(model.resolve("2"));
    Files.writeString(model.resolve("1/model.onnx"), "one");
    Files.writeString(model.resolve("2/model.onnx"), "two");
    Files.writeString(
        model.resolve("model.yaml"),
        "apiVersion: berth.dev/v1\nkind: Model\nfiles:\n  sha256:\n    1/model.onnx: "
            + ModelManifest.sha256(model.resolve("1/model.onnx"))
            + "\n");
    Path jar = dir.resolve("berth.jar");
    Files.writeString(jar, "jar");
    berth = new BerthDistribution(jar, List.of(), List.of(), "1.2.3");
  }

  private ImagePlan plan(String versions) throws IOException {
    Path file = dir.resolve("berth.yaml");
    Files.writeString(
        file,
        "apiVersion: berth.dev/v1\nkind: ModelService\nname: embed\nmodels: [{path: models/embedder"
            + versions
            + "}]\n");
    return ImagePlan.of(ServiceSpec.load(file), berth, null, null, dir.resolve("staging"));
  }

  @Test
  void theCommandCarriesTheServingSettingsButNeverASecretFile() throws IOException {
    Files.writeString(dir.resolve("keys.yaml"), "keys: []\n");
    Path file = dir.resolve("berth.yaml");
    Files.writeString(
        file,
        "apiVersion: berth.dev/v1\nkind: ModelService\nname: embed\n"
            + "models: [{path: models/embedder}]\n"
            + "serving: {max-request-timeout: 30s, api-keys: keys.yaml, tls: {cert: c.pem, key:"
            + " k.pem}}\n");
    ImagePlan plan =
        ImagePlan.of(ServiceSpec.load(file), berth, null, null, dir.resolve("staging"));
    assertEquals(
        List.of("serve", "/opt/berth/models", "--host=0.0.0.0", "--max-request-timeout=30s"),
        plan.cmd());
    for (ImagePlan.Layer layer : plan.layers()) {
      for (ImagePlan.Entry e : layer.files()) {
        assertFalse(
            e.source() != null && e.source().getFileName().toString().equals("keys.yaml"),
            "the keys file is not in the image: " + e.path());
      }
    }
  }

  @Test
  void versionDigestsAreLabelsAndPinsReachTheImagesModelYaml() throws IOException {
    ImagePlan plan = plan("");
    String digest = ModelManifest.of(model.resolve("2")).digest();
    assertEquals(digest, plan.labels().get("dev.berth.model.embedder.2.sha256"));
    assertFalse(plan.labels().containsKey("dev.berth.model.embedder.signed-manifest"));
    ImagePlan.Entry yaml =
        plan.layers().getLast().files().stream()
            .filter(e -> e.path().endsWith("/embedder/model.yaml"))
            .findFirst()
            .orElseThrow();
    ModelConfig config = ModelConfig.load(yaml.source().getParent());
    assertEquals(
        ModelManifest.sha256(model.resolve("1/model.onnx")), config.pins().get("1/model.onnx"));
  }

  @Test
  void aSignedModelsManifestDigestIsALabel() throws IOException {
    ModelManifest manifest = ModelManifest.of(model);
    SignedManifest.sign(manifest, SigningKeys.generate("Ed25519").getPrivate())
        .write(model.resolve(ModelManifest.SIGNATURE_FILE));
    assertEquals(
        manifest.digest(), plan("").labels().get("dev.berth.model.embedder.signed-manifest"));
    // an image of version 2 alone carries the digest of what it bundles of the signed manifest
    assertEquals(
        manifest.filter(p -> ModelIntegrity.seenBy(p, "2")).digest(),
        plan(", versions: [2]").labels().get("dev.berth.model.embedder.signed-manifest"));
  }

  @Test
  void aSignedModelChangedSinceIsNotBuilt() throws IOException {
    SignedManifest.sign(ModelManifest.of(model), SigningKeys.generate("ECDSA-P256").getPrivate())
        .write(model.resolve(ModelManifest.SIGNATURE_FILE));
    Files.writeString(model.resolve("2/model.onnx"), "changed");
    BerthException e = assertThrows(BerthException.class, () -> plan(""));
    assertTrue(
        e.getMessage().contains("2/model.onnx differs from its signed manifest"), e.getMessage());
    plan(", versions: [1]"); // version 1 alone is still what was signed
  }
}
