package dev.berth.kube;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.runtime.ServiceSpec;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The commands that need no server-side apply (status, scale, canary drop, undeploy) against
 * fabric8's CRUD mock exactly as it ships, with the objects created as {@code kubectl create -f} on
 * {@code berth deploy -o}'s output would.
 */
@EnableKubernetesMockClient(crud = true)
class PlainCrudMockTest {
  private static final String IMAGE = "registry.example/ml/minilm:1@sha256:" + "d4".repeat(32);

  KubernetesClient client;

  @TempDir Path dir;

  private ServiceSpec service() throws IOException {
    Files.createDirectories(dir.resolve("models/minilm/1"));
    Files.writeString(dir.resolve("models/minilm/1/model.onnx"), "graph");
    Path file = dir.resolve("berth.yaml");
    Files.writeString(
        file,
        "apiVersion: berth.dev/v1\nkind: ModelService\nname: minilm\n"
            + "models: [{path: models/minilm}]\n"
            + "deploy: {replicas: 3, autoscaling: {enabled: false}}\n");
    return ServiceSpec.load(file);
  }

  @Test
  void statusScaleCanaryDropAndUndeploy() throws IOException {
    ServiceSpec service = service();
    ManifestGenerator stable = ManifestGenerator.of(service, IMAGE, "ml");
    for (HasMetadata o : stable.objects()) {
      client.resource(o).create();
    }
    for (HasMetadata o : stable.canary(1, 10).objects()) {
      client.resource(o).create();
    }
    KubeDeployer deployer =
        new KubeDeployer(
            client,
            "ml",
            new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));

    String report = StatusReport.format(deployer.state("minilm"));
    assertTrue(report.contains("stable      deployment/minilm  desired 3"), report);
    assertTrue(report.contains("canary      deployment/minilm-canary  desired 1"), report);

    deployer.scale("minilm", 4);
    assertEquals(
        4,
        client
            .apps()
            .deployments()
            .inNamespace("ml")
            .withName("minilm")
            .get()
            .getSpec()
            .getReplicas());

    assertTrue(deployer.rollback("minilm").contains("dropped the canary"));
    assertNull(client.apps().deployments().inNamespace("ml").withName("minilm-canary").get());

    List<String> deleted = deployer.undeploy("minilm");
    assertEquals(6, deleted.size(), deleted.toString());
    assertTrue(client.apps().deployments().inNamespace("ml").list().getItems().isEmpty());
  }
}
