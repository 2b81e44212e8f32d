package dev.berth.cli;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.net.http.HttpClient;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code berth deploy --export compose}: Debian's {@code docker-compose} accepts the stack, and
 * runs it on the real engine with a Prometheus image built here from Debian's {@code prometheus}
 * package: the service answers, and Prometheus scrapes it under the service's job with the alert
 * rules loaded. Grafana cannot run here; its provisioning files are checked by their content.
 */
class ComposeStackIT {
  private static final String IMAGE = "berth-test/compose-minilm:1";
  private static final String PROMETHEUS = "berth-test/prometheus:debian";
  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());

  @TempDir Path work;

  @Test
  void theExportedStackRunsAndPrometheusScrapesTheServiceWithItsRules() throws Exception {
    ContainerTestEnv env = ContainerTestEnv.require();
    String service = ContainerTestEnv.examples().resolve("minilm/berth.yaml").toString();
    Path stack = work.resolve("stack");
    ContainerTestEnv.Result export =
        ContainerTestEnv.berth(
                work, "deploy", service, "--export", "compose", stack.toString(), "--image", IMAGE)
            .ok();
    assertTrue(export.out().contains(stack.resolve("compose.yaml").toString()), export.out());

    // what Grafana reads: Prometheus as the default data source, the dashboard provisioned
    JsonNode datasources =
        YAML.readTree(stack.resolve("grafana/provisioning/datasources/prometheus.yaml").toFile());
    assertEquals(
        "http://prometheus:9090", datasources.path("datasources").get(0).path("url").asText());
    JsonNode providers =
        YAML.readTree(stack.resolve("grafana/provisioning/dashboards/berth.yaml").toFile());
    assertEquals(
        "/etc/grafana/dashboards",
        providers.path("providers").get(0).path("options").path("path").asText());
    JsonNode dashboard =
        new ObjectMapper().readTree(stack.resolve("grafana/dashboards/minilm.json").toFile());
    assertEquals("berth-minilm", dashboard.path("uid").asText());

    int http = PrometheusApi.freePort();
    int grpc = PrometheusApi.freePort();
    int prometheusPort = PrometheusApi.freePort();
    Map<String, String> overrides = new HashMap<>();
    overrides.put("PROMETHEUS_IMAGE", PROMETHEUS);
    overrides.put("BERTH_HTTP_PORT", Integer.toString(http));
    overrides.put("BERTH_GRPC_PORT", Integer.toString(grpc));
    overrides.put("PROMETHEUS_PORT", Integer.toString(prometheusPort));
    String project = "berthcompose" + ProcessHandle.current().pid();

    // docker-compose validates the file, with its defaults and with the images overridden
    ContainerTestEnv.Result defaults = compose(stack, Map.of(), project, "config").ok();
    assertTrue(defaults.out().contains("image: " + IMAGE), defaults.out());
    assertTrue(defaults.out().contains(ComposeExport.GRAFANA_IMAGE), defaults.out());
    ContainerTestEnv.Result config = compose(stack, overrides, project, "config").ok();
    assertTrue(config.out().contains("image: " + PROMETHEUS), config.out());
    assertTrue(config.out().contains("127.0.0.1:" + prometheusPort), config.out());

    ContainerTestEnv.berth(
            work,
            "build",
            service,
            "--to",
            "docker://" + IMAGE,
            "--base",
            env.baseJava,
            "--cache-dir",
            work.resolve("cache").toString())
        .ok();
    buildPrometheusImage(env);
    try {
      compose(stack, overrides, project, "up", "-d", "minilm", "prometheus").ok();
      String url = "http://127.0.0.1:" + http;
      HttpClient client = HttpClient.newHttpClient();
      await()
          .atMost(Duration.ofSeconds(120))
          .pollInterval(Duration.ofMillis(250))
          .ignoreExceptions()
          .until(() -> BerthProcess.get(client, url + "/v2/health/ready").statusCode() == 200);
      for (int i = 0; i < 20; i++) {
        HttpResponse<String> r =
            BerthProcess.post(
                client,
                url + "/v2/models/minilm/infer",
                "{\"inputs\":[{\"name\":\"text\",\"shape\":[1],\"datatype\":\"BYTES\","
                    + "\"data\":[\"a local stack\"]}]}");
        assertEquals(200, r.statusCode(), r.body());
      }

      PrometheusApi prometheus = new PrometheusApi("http://127.0.0.1:" + prometheusPort);
      await()
          .atMost(Duration.ofSeconds(120))
          .pollInterval(Duration.ofSeconds(1))
          .ignoreExceptions()
          .untilAsserted(
              () -> {
                JsonNode up = prometheus.query("up{job=\"minilm\"}");
                assertEquals(1, up.size(), up.toString());
                assertEquals("1", up.get(0).path("value").path(1).asText(), up.toString());
                JsonNode answered =
                    prometheus.query("sum(berth_requests_total{job=\"minilm\",code=\"200\"})");
                assertEquals(1, answered.size(), answered.toString());
                assertTrue(
                    Double.parseDouble(answered.get(0).path("value").path(1).asText()) >= 20,
                    answered.toString());
              });
      JsonNode rules = prometheus.rules("berth-minilm");
      List<String> names = new ArrayList<>();
      rules.forEach(r -> names.add(r.path("name").asText()));
      assertEquals(
          dev.berth.kube.Monitoring.alerts("minilm").stream()
              .map(dev.berth.kube.Monitoring.Alert::name)
              .toList(),
          names);
    } catch (AssertionError | RuntimeException e) {
      ContainerTestEnv.Result logs = compose(stack, overrides, project, "logs", "--no-color");
      throw new AssertionError(e.getMessage() + "\ncompose logs:\n" + logs.out() + logs.err(), e);
    } finally {
      compose(stack, overrides, project, "down", "-v", "--timeout", "5");
    }
  }

  private ContainerTestEnv.Result compose(
      Path stack, Map<String, String> env, String project, String... args) throws Exception {
    List<String> cmd = new ArrayList<>();
    cmd.add("docker-compose");
    cmd.add("--project-name");
    cmd.add(project);
    cmd.add("--file");
    cmd.add(stack.resolve("compose.yaml").toString());
    cmd.addAll(List.of(args));
    return ContainerTestEnv.exec(work, env, cmd);
  }

  /**
   * A Prometheus image from Debian's package, laid out like the upstream image: the binary as its
   * entry point, running as nobody with {@code /prometheus} its own.
   */
  private void buildPrometheusImage(ContainerTestEnv env) throws Exception {
    Path context = Files.createDirectories(work.resolve("prometheus-image"));
    Path binary =
        Path.of(
            ContainerTestEnv.exec(work, List.of("dpkg", "-L", "prometheus"))
                .ok()
                .out()
                .lines()
                .filter(l -> l.equals("/usr/bin/prometheus"))
                .findFirst()
                .orElseThrow(() -> new AssertionError("Debian's prometheus package is missing")));
    Files.copy(binary, context.resolve("prometheus"), StandardCopyOption.COPY_ATTRIBUTES);
    Files.createDirectories(context.resolve("data"));
    Files.writeString(
        context.resolve("Dockerfile"),
        """
        FROM %s
        COPY prometheus /bin/prometheus
        COPY --chown=65534:65534 data /prometheus
        USER 65534
        EXPOSE 9090
        ENTRYPOINT ["/bin/prometheus"]
        """
            .formatted(env.base));
    ContainerTestEnv.docker(work, "build", "--quiet", "-t", PROMETHEUS, context.toString()).ok();
  }
}
