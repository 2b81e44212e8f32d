package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.image.ContainerSpec;
import dev.berth.runtime.ServiceSpec;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What berth run gives a container that fetches its service's models from stores. */
class RunCommandTest {
  @TempDir Path dir;

  private ServiceSpec service(String models) throws Exception {
    Path file = dir.resolve("berth.yaml");
    Files.writeString(
        file,
        "apiVersion: berth.dev/v1\nkind: ModelService\nname: r\nmodels:\n"
            + models
            + "serving: {s3-endpoint: \"http://127.0.0.1:9000\"}\n");
    return ServiceSpec.load(file);
  }

  @Test
  void aContainerGetsTheCallersStoreCredentialsAndAWarningForLoopbackSources() throws Exception {
    Path docker = Files.createDirectories(dir.resolve("docker"));
    Path config = docker.resolve("config.json");
    Files.writeString(config, "{\"auths\":{}}");
    Files.setPosixFilePermissions(config, PosixFilePermissions.fromString("rw-------"));
    ContainerSpec.Builder container = ContainerSpec.builder("berth/r:1");
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    RunCommand.passModelCredentials(
        service(
            "  - source: oci://127.0.0.1:5000/models/a:1\n"
                + "  - source: s3://models/b\n"
                + "  - source: oci://registry.example.com/models/c:1\n"),
        container,
        Map.of(
            "AWS_ACCESS_KEY_ID", "id",
            "AWS_SECRET_ACCESS_KEY", "secret",
            "AWS_PROFILE", "not-passed",
            "DOCKER_CONFIG", docker.toString()),
        new PrintStream(err, true, StandardCharsets.UTF_8));
    ContainerSpec spec = container.build();
    assertEquals("id", spec.env().get("AWS_ACCESS_KEY_ID"));
    assertEquals("secret", spec.env().get("AWS_SECRET_ACCESS_KEY"));
    assertFalse(spec.env().containsKey("AWS_PROFILE"));
    assertEquals(RunCommand.REGISTRY_CONFIG_DIR, spec.env().get("DOCKER_CONFIG"));
    assertEquals(
        List.of(new ContainerSpec.Mount(config, RunCommand.REGISTRY_CONFIG_DIR + "/config.json")),
        spec.mounts());
    String warnings = err.toString(StandardCharsets.UTF_8);
    assertTrue(warnings.contains("model 'a' comes from 127.0.0.1"), warnings);
    assertTrue(warnings.contains("model 'b' comes from 127.0.0.1"), warnings);
    assertFalse(warnings.contains("model 'c'"), warnings);
    assertTrue(warnings.contains("not readable by the container's user"), warnings);
  }

  @Test
  void aServiceOfDirectoriesGetsNothing() throws Exception {
    Path model = Files.createDirectories(dir.resolve("m/1"));
    Files.writeString(model.resolve("model.onnx"), "x");
    ContainerSpec.Builder container = ContainerSpec.builder("berth/r:1");
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    RunCommand.passModelCredentials(
        service("  - path: m\n"),
        container,
        Map.of("AWS_ACCESS_KEY_ID", "id"),
        new PrintStream(err, true, StandardCharsets.UTF_8));
    assertEquals(Map.of(), container.build().env());
    assertEquals(0, err.size());
  }
}
