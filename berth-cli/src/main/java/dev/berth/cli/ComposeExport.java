package dev.berth.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import com.fasterxml.jackson.dataformat.yaml.YAMLGenerator;
import dev.berth.api.BerthException;
import dev.berth.kube.Monitoring;
import dev.berth.runtime.ServeSettings;
import dev.berth.runtime.ServiceSpec;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A local stack for a model service ({@code berth deploy --export compose DIR}): a compose file
 * running the service's image, Prometheus scraping it with the service's alert rules loaded, and
 * Grafana with Prometheus as its data source and the service's dashboard provisioned. Every image
 * and published port can be overridden from the environment ({@code BERTH_IMAGE}, {@code
 * PROMETHEUS_IMAGE}, {@code GRAFANA_IMAGE}; {@code BERTH_HTTP_PORT}, {@code BERTH_GRPC_PORT},
 * {@code PROMETHEUS_PORT}, {@code GRAFANA_PORT}); ports are published on 127.0.0.1 only.
 */
final class ComposeExport {
  /** Prometheus' image unless {@code PROMETHEUS_IMAGE} names another. */
  static final String PROMETHEUS_IMAGE = "quay.io/prometheus/prometheus:v2.53.4";

  /** Grafana's image unless {@code GRAFANA_IMAGE} names another. */
  static final String GRAFANA_IMAGE = "docker.io/grafana/grafana:11.6.0";

  /** Where the Grafana container reads the provisioned dashboards from. */
  private static final String DASHBOARDS = "/etc/grafana/dashboards";

  private ComposeExport() {}

  /**
   * Writes the stack into {@code dir}.
   *
   * @param image the service's image as the local engine names it
   * @return the files written
   */
  static List<Path> write(ServiceSpec service, String image, Path dir) throws IOException {
    String name = service.name();
    ServiceSpec.Serving serving = service.serving();
    ServeSettings settings = serving.settings();
    boolean tls = settings.isSet(ServeSettings.TLS_CERT);
    if (settings.isSet(ServeSettings.TLS_CLIENT_CA)) {
      throw new BerthException(
          service.file()
              + ": serving tls-client-ca makes the service ask every client for a certificate,"
              + " Prometheus' scrapes included; the compose stack has no certificate to give it."
              + " Export it without tls-client-ca, or add cert_file and key_file to the scrape job"
              + " of prometheus/prometheus.yml by hand");
    }
    Path root = dir.toAbsolutePath().normalize();

    Map<String, Object> berth = new LinkedHashMap<>();
    berth.put("image", "${BERTH_IMAGE:-" + image + "}");
    berth.put(
        "ports",
        List.of(
            "127.0.0.1:${BERTH_HTTP_PORT:-" + serving.port() + "}:" + serving.port(),
            "127.0.0.1:${BERTH_GRPC_PORT:-" + serving.grpcPort() + "}:" + serving.grpcPort()));
    Map<String, String> environment = new LinkedHashMap<>();
    List<String> volumes = new ArrayList<>();
    // the secret files are mounted read-only, as berth run does: they never enter the image
    service.requireSecretFiles(settings, "berth deploy --export compose");
    for (ServeSettings.Setting s : ServeSettings.SECRET_FILES) {
      Path file = settings.path(s);
      if (file == null) {
        continue;
      }
      if (!Files.isRegularFile(file)) {
        throw new BerthException(
            service.file() + ": serving " + s.name() + " file " + file + " does not exist");
      }
      String target = RunCommand.SECRETS_DIR + "/" + s.name() + "/" + file.getFileName();
      volumes.add(relative(root, file) + ":" + target + ":ro");
      environment.put(s.environmentVariable(), target);
    }
    boolean s3 = service.remoteModels().stream().anyMatch(m -> m.source().startsWith("s3://"));
    if (s3) {
      // passed from the environment docker compose runs in, never written here
      for (String variable : RunCommand.AWS_VARIABLES) {
        environment.put(variable, "${" + variable + ":-}");
      }
    }
    if (!environment.isEmpty()) {
      berth.put("environment", environment);
    }
    if (!volumes.isEmpty()) {
      berth.put("volumes", volumes);
    }
    long stopSeconds = settings.duration(ServeSettings.DRAIN_TIMEOUT).toSeconds() + 5;
    berth.put("stop_grace_period", stopSeconds + "s");
    berth.put("restart", "unless-stopped");

    Map<String, Object> prometheus = new LinkedHashMap<>();
    prometheus.put("image", "${PROMETHEUS_IMAGE:-" + PROMETHEUS_IMAGE + "}");
    prometheus.put(
        "command",
        List.of(
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            "--web.listen-address=:9090"));
    prometheus.put(
        "volumes", List.of("./prometheus:/etc/prometheus:ro", "prometheus-data:/prometheus"));
    prometheus.put("ports", List.of("127.0.0.1:${PROMETHEUS_PORT:-9090}:9090"));
    prometheus.put("depends_on", List.of(name));
    prometheus.put("restart", "unless-stopped");

    Map<String, Object> grafana = new LinkedHashMap<>();
    grafana.put("image", "${GRAFANA_IMAGE:-" + GRAFANA_IMAGE + "}");
    Map<String, String> grafanaEnv = new LinkedHashMap<>();
    // Grafana reports usage and checks for updates unless told not to
    grafanaEnv.put("GF_ANALYTICS_REPORTING_ENABLED", "false");
    grafanaEnv.put("GF_ANALYTICS_CHECK_FOR_UPDATES", "false");
    grafanaEnv.put("GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES", "false");
    grafanaEnv.put("GF_NEWS_NEWS_FEED_ENABLED", "false");
    grafanaEnv.put("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH", DASHBOARDS + "/" + name + ".json");
    grafana.put("environment", grafanaEnv);
    grafana.put(
        "volumes",
        List.of(
            "./grafana/provisioning:/etc/grafana/provisioning:ro",
            "./grafana/dashboards:" + DASHBOARDS + ":ro",
            "grafana-data:/var/lib/grafana"));
    grafana.put("ports", List.of("127.0.0.1:${GRAFANA_PORT:-3000}:3000"));
    grafana.put("depends_on", List.of("prometheus"));
    grafana.put("restart", "unless-stopped");

    Map<String, Object> services = new LinkedHashMap<>();
    services.put(name, berth);
    services.put("prometheus", prometheus);
    services.put("grafana", grafana);
    Map<String, Object> compose = new LinkedHashMap<>();
    compose.put("services", services);
    compose.put("volumes", Map.of("prometheus-data", Map.of(), "grafana-data", Map.of()));

    Map<String, Object> job = new LinkedHashMap<>();
    job.put("job_name", name);
    if (tls) {
      // the service answers over TLS with a certificate for its public host names, not for the
      // compose service's name: set tls_config's ca_file and server_name to verify it
      job.put("scheme", "https");
      job.put("tls_config", Map.of("insecure_skip_verify", true));
    }
    job.put("static_configs", List.of(Map.of("targets", List.of(name + ":" + serving.port()))));
    Map<String, Object> prometheusConfig = new LinkedHashMap<>();
    prometheusConfig.put("global", Map.of("scrape_interval", "15s", "evaluation_interval", "15s"));
    prometheusConfig.put("rule_files", List.of("/etc/prometheus/" + name + "-rules.yaml"));
    prometheusConfig.put("scrape_configs", List.of(job));

    Map<String, Object> datasource = new LinkedHashMap<>();
    datasource.put("name", "Prometheus");
    datasource.put("uid", "prometheus");
    datasource.put("type", "prometheus");
    datasource.put("access", "proxy");
    datasource.put("url", "http://prometheus:9090");
    datasource.put("isDefault", true);
    Map<String, Object> provider = new LinkedHashMap<>();
    provider.put("name", "berth");
    provider.put("folder", "Berth");
    provider.put("type", "file");
    provider.put("allowUiUpdates", false);
    provider.put("options", Map.of("path", DASHBOARDS));

    String header =
        """
        # Generated by `berth deploy --export compose` for the model service %s.
        # Start:  docker compose -f %s up -d   (or docker-compose, 1.29 and later)
        # Then:   the service on %s://127.0.0.1:%d, Prometheus on http://127.0.0.1:9090,
        #         Grafana on http://127.0.0.1:3000 (admin/admin) with the service's dashboard.
        # Override images with BERTH_IMAGE, PROMETHEUS_IMAGE and GRAFANA_IMAGE, and published
        # ports with BERTH_HTTP_PORT, BERTH_GRPC_PORT, PROMETHEUS_PORT and GRAFANA_PORT.
        """
            .formatted(name, root.resolve("compose.yaml"), tls ? "https" : "http", serving.port());
    ObjectMapper yaml =
        new ObjectMapper(
            new YAMLFactory()
                .disable(YAMLGenerator.Feature.WRITE_DOC_START_MARKER)
                .enable(YAMLGenerator.Feature.MINIMIZE_QUOTES)
                .enable(YAMLGenerator.Feature.ALWAYS_QUOTE_NUMBERS_AS_STRINGS));
    List<Path> written = new ArrayList<>();
    written.add(
        write(root, root.resolve("compose.yaml"), header + yaml.writeValueAsString(compose)));
    written.add(
        write(
            root,
            root.resolve("prometheus/prometheus.yml"),
            yaml.writeValueAsString(prometheusConfig)));
    written.add(
        write(
            root,
            root.resolve("prometheus/" + name + "-rules.yaml"),
            yaml.writeValueAsString(Monitoring.rulesFile(name))));
    written.add(
        write(
            root,
            root.resolve("grafana/provisioning/datasources/prometheus.yaml"),
            yaml.writeValueAsString(Map.of("apiVersion", 1, "datasources", List.of(datasource)))));
    written.add(
        write(
            root,
            root.resolve("grafana/provisioning/dashboards/berth.yaml"),
            yaml.writeValueAsString(Map.of("apiVersion", 1, "providers", List.of(provider)))));
    written.add(
        write(
            root,
            root.resolve("grafana/dashboards/" + name + ".json"),
            new String(Monitoring.dashboardJson(name), StandardCharsets.UTF_8)));
    return written;
  }

  /** {@code file} as the compose file names it: relative to its directory, as compose resolves. */
  private static String relative(Path root, Path file) {
    Path rel = root.relativize(file.toAbsolutePath().normalize());
    String s = rel.toString().replace('\\', '/');
    return s.startsWith("../") ? s : "./" + s;
  }

  /**
   * Writes a file readable by all, in directories all may enter: Prometheus and Grafana read them
   * through bind mounts as users of their own (65534, 472), whatever the umask here.
   */
  private static Path write(Path root, Path file, String text) throws IOException {
    Files.createDirectories(file.getParent());
    // the directories the containers mount (DIR itself is only the host's way to them)
    for (Path dir = file.getParent(); !dir.equals(root); dir = dir.getParent()) {
      Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
    }
    Files.writeString(file, text);
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rw-r--r--"));
    return file;
  }
}
