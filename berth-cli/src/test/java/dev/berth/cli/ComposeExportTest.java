package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.berth.api.BerthException;
import dev.berth.runtime.ServiceSpec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What the compose export gives the service: its secret files, its store credentials, TLS. */
class ComposeExportTest {
  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

  @TempDir Path dir;

  @Test
  void secretFilesAreMountedReadOnlyAndStoreCredentialsComeFromTheEnvironment() throws Exception {
    Files.writeString(
        dir.resolve("keys.yaml"),
        "keys:\n  - name: ci\n    key: a-key-of-at-least-16-chars\n    roles: [infer]\n");
    Path file = dir.resolve("berth.yaml");
    Files.writeString(
        file,
        """
        apiVersion: berth.dev/v1
        kind: ModelService
        name: shop
        models:
          - source: s3://models/shop
        serving: {api-keys: {file: keys.yaml}, s3-endpoint: "http://minio:9000"}
        """);
    Path stack = dir.resolve("stack");
    ComposeExport.write(ServiceSpec.load(file), "berth/shop:1", stack);
    JsonNode shop =
        YAML.readTree(stack.resolve("compose.yaml").toFile()).path("services").path("shop");
    String target = RunCommand.SECRETS_DIR + "/api-keys/keys.yaml";
    assertEquals("../keys.yaml:" + target + ":ro", shop.path("volumes").get(0).asText());
    assertEquals(target, shop.path("environment").path("BERTH_API_KEYS").asText());
    assertEquals(
        "${AWS_SECRET_ACCESS_KEY:-}",
        shop.path("environment").path("AWS_SECRET_ACCESS_KEY").asText());
    assertFalse(
        Files.readString(stack.resolve("compose.yaml")).contains("a-key-of-at-least-16-chars"),
        "no secret is written into the stack");
    JsonNode job =
        YAML.readTree(stack.resolve("prometheus/prometheus.yml").toFile())
            .path("scrape_configs")
            .get(0);
    assertEquals("shop", job.path("job_name").asText());
    assertEquals("shop:8080", job.path("static_configs").get(0).path("targets").get(0).asText());
    assertTrue(job.path("scheme").isMissingNode(), job.toString());
    // Prometheus and Grafana read them as users of their own, whatever the umask here
    assertEquals(
        "rw-r--r--",
        java.nio.file.attribute.PosixFilePermissions.toString(
            Files.getPosixFilePermissions(stack.resolve("prometheus/prometheus.yml"))));
    assertEquals(
        "rwxr-xr-x",
        java.nio.file.attribute.PosixFilePermissions.toString(
            Files.getPosixFilePermissions(stack.resolve("grafana/provisioning/datasources"))));
  }

  @Test
  void aServiceThatAsksForClientCertificatesIsRefusedWithTheReason() throws Exception {
    for (String f : List.of("cert.pem", "key.pem", "ca.pem")) {
      Files.writeString(dir.resolve(f), "not read at export\n");
    }
    Path file = dir.resolve("berth.yaml");
    Files.writeString(
        file,
        """
        apiVersion: berth.dev/v1
        kind: ModelService
        name: shop
        models:
          - source: s3://models/shop
        serving: {tls: {cert: cert.pem, key: key.pem, client-ca: ca.pem}}
        """);
    BerthException e =
        assertThrows(
            BerthException.class,
            () -> ComposeExport.write(ServiceSpec.load(file), "berth/shop:1", dir.resolve("s")));
    assertTrue(e.getMessage().contains("tls-client-ca"), e.getMessage());
  }
}
