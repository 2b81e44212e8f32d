package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.image.BuiltImage;
import dev.berth.image.ContainerEngine;
import dev.berth.image.ContainerInfo;
import dev.berth.image.ContainerSpec;
import dev.berth.image.ImageLocation;
import dev.berth.image.ImagePlan;
import dev.berth.image.PortBinding;
import dev.berth.runtime.ServeSettings;
import dev.berth.runtime.ServiceSpec;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.locks.LockSupport;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code berth run}: builds the service's image into the local engine, runs it, waits for ready.
 */
@Command(
    name = "run",
    mixinStandardHelpOptions = true,
    description = {
      "Run a model service (berth.yaml) on the local container engine (Docker, or podman's"
          + " Docker-compatible socket; DOCKER_HOST picks one).",
      "Builds its image into the engine first (only changed layers are rebuilt), starts it with"
          + " its ports on the host, waits until /v2/health/ready answers and prints the URL."
    })
final class RunCommand implements Callable<Integer> {
  static final String STOP_TIMEOUT_LABEL = "dev.berth.stop-timeout-seconds";

  @Parameters(index = "0", paramLabel = "SERVICE", description = "The service file (berth.yaml).")
  Path serviceFile;

  @Option(
      names = {"-p", "--port"},
      paramLabel = "PORT",
      description = "Host port for HTTP (default: serving.port in the service file, 8080).")
  Integer port;

  @Option(
      names = "--grpc-port",
      paramLabel = "PORT",
      description = "Host port for gRPC (default: serving.grpc-port in the service file, 8081).")
  Integer grpcPort;

  @Option(
      names = "--address",
      paramLabel = "IP",
      description =
          "Host address the ports are published on; 0.0.0.0 for every interface (default:"
              + " ${DEFAULT-VALUE}).",
      defaultValue = "127.0.0.1")
  String address;

  @Option(
      names = "--image",
      paramLabel = "REF",
      description = "Run this image as it is instead of building the service's image.")
  String imageRef;

  @Option(
      names = "--require-signed",
      description =
          "Run only an image from a registry whose cosign signature by a --trust key verifies:"
              + " the image (--image, else berth.yaml's image.to) is resolved to its digest,"
              + " verified, pulled and run by that digest; refused with the image, the digest and"
              + " what failed otherwise (exit code 1). berth.yaml: image.require-signed.")
  boolean requireSigned;

  @Option(
      names = "--trust",
      paramLabel = "KEY.pub",
      description =
          "A public key (ECDSA P-256 PEM) whose image signatures are trusted; repeatable"
              + " (default: berth.yaml's image.trust).")
  List<Path> trust = new java.util.ArrayList<>();

  @Option(
      names = "--wait-timeout",
      paramLabel = "DURATION",
      description = "How long to wait for ready (default: ${DEFAULT-VALUE}).",
      defaultValue = "120s",
      converter = ServeCommand.DurationConverter.class)
  Duration waitTimeout;

  @Mixin ImageOptions image;

  @Override
  public Integer call() {
    ServiceSpec service = ServiceSpec.load(serviceFile);
    ContainerEngine engine = ContainerEngine.fromEnvironment();
    engine.ping();
    String name = ManagedContainers.containerName(service.name());
    for (ContainerInfo old : ManagedContainers.list(engine, true)) {
      if (old.name().equals(name)) {
        if (old.running()) {
          throw new BerthException(
              "'"
                  + name
                  + "' is already running; stop it first with 'berth stop "
                  + service.name()
                  + "'");
        }
        engine.remove(old.id(), false);
      }
    }

    String reference = imageRef;
    if (SignedImages.required(requireSigned, service)) {
      String asked = reference != null ? reference : service.image().to();
      if (reference == null && !(ImageLocation.parse(asked) instanceof ImageLocation.Registry)) {
        throw new BerthException(
            "--require-signed runs a signed image from a registry, and berth.yaml's image.to is "
                + asked
                + "; build, push and sign it with 'berth build "
                + serviceFile
                + " --to REGISTRY/REPO:TAG --sign KEY.pem', then run it with --image"
                + " REGISTRY/REPO:TAG");
      }
      reference =
          SignedImages.require(asked, SignedImages.trusted(trust, service), "run", System.err);
      engine.pullImage(reference, line -> System.err.println("  " + line));
    } else if (reference == null) {
      reference = localReference(service);
      ImagePlan plan = image.plan(service, System.err);
      BuiltImage built =
          image.build(plan, new ImageLocation.Daemon(reference), List.of(), System.err);
      System.err.println("  image   " + reference + " " + built.digest());
    }

    ServiceSpec.Serving serving = service.serving();
    ContainerSpec.Builder container = ContainerSpec.builder(reference);
    mountSecrets(service, container);
    passModelCredentials(service, container, System.getenv(), System.err);
    int httpHost = port != null ? port : serving.port();
    int grpcHost = grpcPort != null ? grpcPort : serving.grpcPort();
    long stopSeconds = serving.settings().duration(ServeSettings.DRAIN_TIMEOUT).toSeconds() + 5;
    String id =
        engine.createContainer(
            container
                .name(name)
                .label(ManagedContainers.MANAGED, "true")
                .label(ManagedContainers.SERVICE, service.name())
                .label(STOP_TIMEOUT_LABEL, Long.toString(stopSeconds))
                .publish(PortBinding.tcp(serving.port(), address, httpHost))
                .publish(PortBinding.tcp(serving.grpcPort(), address, grpcHost))
                .stopTimeout(Duration.ofSeconds(stopSeconds))
                .build());
    long started = System.nanoTime();
    engine.start(id);
    ContainerInfo info = engine.inspectContainer(id);
    int http = info.hostPort(serving.port()).orElse(httpHost);
    int grpc = info.hostPort(serving.grpcPort()).orElse(grpcHost);
    String host = address.equals("0.0.0.0") ? "127.0.0.1" : address;
    boolean tls = serving.settings().isSet(ServeSettings.TLS_CERT);
    String url =
        (tls ? "https://" : "http://")
            + (host.contains(":") ? "[" + host + "]" : host)
            + ":"
            + http;
    System.err.println(
        "started "
            + name
            + "; waiting for "
            + (tls ? "its log to say it is serving" : url + "/v2/health/ready")
            + " ...");
    waitUntilReady(engine, id, url, tls);
    double seconds = (System.nanoTime() - started) / 1e9;
    System.out.printf(
        Locale.ROOT,
        "%s is ready at %s (gRPC %s:%d) after %.1fs%n",
        name,
        url,
        host,
        grpc,
        seconds);
    System.out.println("  logs: berth logs " + service.name() + " -f");
    System.out.println("  stop: berth stop " + service.name());
    return 0;
  }

  /** The environment an S3 client reads its credentials, region and endpoint from. */
  static final List<String> AWS_VARIABLES =
      List.of(
          "AWS_ACCESS_KEY_ID",
          "AWS_SECRET_ACCESS_KEY",
          "AWS_SESSION_TOKEN",
          "AWS_REGION",
          "AWS_DEFAULT_REGION",
          "AWS_ENDPOINT_URL",
          "AWS_ENDPOINT_URL_S3");

  /** Where the caller's registry credentials are mounted for a container that pulls models. */
  static final String REGISTRY_CONFIG_DIR = "/etc/berth/registry";

  /**
   * Gives a container that fetches the service's remote models the caller's credentials, as {@code
   * berth serve berth.yaml} on this machine would use them: the AWS variables set here for {@code
   * s3://} models, and the Docker config file ({@code $DOCKER_CONFIG/config.json} or {@code
   * ~/.docker/config.json}, mounted read-only) for {@code oci://} ones. Sources on this machine's
   * loopback, which a container cannot reach, are named in a warning.
   */
  static void passModelCredentials(
      ServiceSpec service,
      ContainerSpec.Builder container,
      Map<String, String> env,
      PrintStream err) {
    boolean s3 = false;
    boolean oci = false;
    String endpoint = service.serving().settings().text(ServeSettings.S3_ENDPOINT);
    for (ServiceSpec.RemoteModel m : service.remoteModels()) {
      s3 |= m.source().startsWith("s3://");
      oci |= m.source().startsWith("oci://");
      String where =
          m.source().startsWith("s3://")
              ? endpoint
              : m.source().replaceFirst("^oci://", "http://").replaceFirst("[?#].*$", "");
      String host = null;
      try {
        host = where == null ? null : URI.create(where).getHost();
      } catch (IllegalArgumentException e) {
        // berth serve names a malformed source in the container's log
      }
      if (host != null
          && (host.equals("localhost") || host.startsWith("127.") || host.equals("[::1]"))) {
        err.println(
            "warning: model '"
                + m.name()
                + "' comes from "
                + host
                + ", this machine's loopback, which the container cannot reach; use an address"
                + " the container can (the host's own), or berth serve berth.yaml");
      }
    }
    if (s3) {
      for (String name : AWS_VARIABLES) {
        String value = env.get(name);
        if (value != null && !value.isEmpty()) {
          container.env(name, value);
        }
      }
    }
    if (oci) {
      String dir = env.get("DOCKER_CONFIG");
      Path config =
          (dir != null && !dir.isEmpty()
                  ? Path.of(dir)
                  : Path.of(System.getProperty("user.home"), ".docker"))
              .resolve("config.json");
      if (Files.isRegularFile(config)) {
        container.mountReadOnly(config.toAbsolutePath(), REGISTRY_CONFIG_DIR + "/config.json");
        container.env("DOCKER_CONFIG", REGISTRY_CONFIG_DIR);
        try {
          if (!Files.getPosixFilePermissions(config)
              .contains(java.nio.file.attribute.PosixFilePermission.OTHERS_READ)) {
            err.println(
                "warning: "
                    + config
                    + " is not readable by the container's user (image.user), so registries that"
                    + " need a login will refuse the models: point DOCKER_CONFIG at a directory"
                    + " of its own whose config.json holds only that registry's login, readable"
                    + " by that user");
          }
        } catch (IOException | UnsupportedOperationException e) {
          // not a POSIX file system: the container finds out
        }
      }
    }
  }

  /** Where the service's secret files are mounted in its container. */
  static final String SECRETS_DIR = "/etc/berth/secrets";

  /**
   * Mounts the service's secret files (API keys, management token, TLS) read-only into the
   * container and points their settings at them: they never enter the image.
   */
  static void mountSecrets(ServiceSpec service, ContainerSpec.Builder container) {
    ServeSettings given = service.serving().settings();
    service.requireSecretFiles(given, "berth run");
    for (ServeSettings.Setting s : ServeSettings.SECRET_FILES) {
      Path file = given.path(s);
      if (file == null) {
        continue;
      }
      if (!Files.isRegularFile(file)) {
        throw new BerthException(
            service.file() + ": serving " + s.name() + " file " + file + " does not exist");
      }
      String target = SECRETS_DIR + "/" + s.name() + "/" + file.getFileName();
      container.mountReadOnly(file.toAbsolutePath(), target);
      container.env(s.environmentVariable(), target);
    }
  }

  /** The engine name of the service's image: image.to when it names one, else berth/NAME. */
  static String localReference(ServiceSpec service) {
    return switch (ImageLocation.parse(service.image().to())) {
      case ImageLocation.Registry r -> r.reference();
      case ImageLocation.Daemon d -> d.reference();
      case ImageLocation.Archive a -> "berth/" + service.name() + ":latest";
    };
  }

  /**
   * Waits until the container is ready: its readiness endpoint answers 200, or over TLS (whose
   * certificate this client may not trust, or which may require a client certificate) until its log
   * says it is serving.
   */
  private void waitUntilReady(ContainerEngine engine, String id, String url, boolean tls) {
    HttpClient client = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(1)).build();
    HttpRequest ready =
        HttpRequest.newBuilder(URI.create(url + "/v2/health/ready"))
            .timeout(Duration.ofSeconds(2))
            .build();
    long deadline = System.nanoTime() + waitTimeout.toNanos();
    while (true) {
      if (tls) {
        String log = lastLines(engine, id);
        if (log.contains("\"message\":\"serving\"") || log.contains("Berth is serving on")) {
          return;
        }
      }
      try {
        if (tls) {
          throw new IOException("the log does not say serving yet");
        }
        HttpResponse<String> answer = client.send(ready, HttpResponse.BodyHandlers.ofString());
        if (answer.statusCode() == 200) {
          return;
        }
        if (answer.body().contains(dev.berth.server.BerthServer.MODELS_NOT_READY)) {
          // loading is over and a model failed: waiting longer would not help
          throw new BerthException(
              "the container is running, but a model did not load, so it is not ready (it is"
                  + " still running: 'berth logs' shows more; 'berth stop' stops it); its last log"
                  + " lines:\n"
                  + lastLines(engine, id));
        }
      } catch (IOException e) {
        // not listening yet
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new BerthException("interrupted while waiting for the container to be ready");
      }
      ContainerInfo now = engine.inspectContainer(id);
      if (!now.running()) {
        throw new BerthException(
            "the container exited (code "
                + now.exitCode()
                + ") before it was ready; its last log lines:\n"
                + lastLines(engine, id));
      }
      if (System.nanoTime() > deadline) {
        throw new BerthException(
            "the container is not ready after "
                + waitTimeout.toSeconds()
                + "s (it is still running: 'berth logs' shows why; --wait-timeout waits longer);"
                + " its last log lines:\n"
                + lastLines(engine, id));
      }
      LockSupport.parkNanos(Duration.ofMillis(100).toNanos()); // poll interval
    }
  }

  private static String lastLines(ContainerEngine engine, String id) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    engine.logs(id, false, null, 20, out, out);
    return out.toString(StandardCharsets.UTF_8).strip();
  }
}
