package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.onnx.OnnxEngineProvider;
import dev.berth.runtime.ConfigReader;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.LoadedModel;
import dev.berth.runtime.ModelStatus;
import dev.berth.runtime.ServingMetrics;
import dev.berth.server.BerthServer;
import dev.berth.server.GrpcServer;
import dev.berth.server.TlsCredentials;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import picocli.CommandLine.Command;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code berth serve [REPO]}: serves every model of a model repository over HTTP. */
@Command(
    name = "serve",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
      "Serve every model in a model repository (REPO/<model>/<version>/model.onnx) over the Open"
          + " Inference Protocol v2 and TensorFlow Serving REST, with dynamic batching, health"
          + " endpoints and Prometheus metrics.",
      ""
    })
final class ServeCommand implements java.util.concurrent.Callable<Integer> {
  private static final Logger LOG = Logger.getLogger("berth.serve");

  @Parameters(
      index = "0",
      arity = "0..1",
      paramLabel = "REPO",
      description = "Model repository to serve (default: the bundled examples, ${DEFAULT-VALUE}).",
      defaultValue = "${env:BERTH_HOME:-.}/examples/models")
  Path repository;

  @Option(
      names = "--host",
      description =
          "Address to listen on; 0.0.0.0 for every interface (default: ${DEFAULT-VALUE}).",
      defaultValue = "127.0.0.1")
  String host;

  @Option(
      names = {"-p", "--port"},
      description = "HTTP port; 0 picks a free one (default: ${DEFAULT-VALUE}).",
      defaultValue = "8080")
  int port;

  @Option(
      names = "--grpc-port",
      description =
          "gRPC port (inference.GRPCInferenceService); 0 picks a free one (default: ${DEFAULT-VALUE}).",
      defaultValue = "8081")
  int grpcPort;

  @Option(
      names = "--max-body-size",
      paramLabel = "SIZE",
      description =
          "Largest request body; larger ones get 413 (e.g. 512KiB, 32MiB; default: ${DEFAULT-VALUE}).",
      defaultValue = "32MiB",
      converter = SizeConverter.class)
  long maxBodyBytes;

  @Option(
      names = "--drain-timeout",
      paramLabel = "DURATION",
      description =
          "On SIGTERM, how long in-flight requests may take to finish (default: ${DEFAULT-VALUE}).",
      defaultValue = "30s",
      converter = DurationConverter.class)
  Duration drainTimeout;

  @Option(
      names = "--tls-cert",
      paramLabel = "FILE",
      description =
          "Serve HTTPS (HTTP/2 or HTTP/1.1) and gRPC over TLS with this PEM certificate chain, the"
              + " server's certificate first; needs --tls-key.")
  Path tlsCert;

  @Option(
      names = "--tls-key",
      paramLabel = "FILE",
      description =
          "PEM private key of --tls-cert, unencrypted: PKCS#8 (PRIVATE KEY), PKCS#1 (RSA PRIVATE"
              + " KEY) or SEC1 (EC PRIVATE KEY).")
  Path tlsKey;

  @Option(
      names = "--tls-client-ca",
      paramLabel = "FILE",
      description =
          "Require a client certificate signed by one of these PEM CA certificates on both ports"
              + " (mutual TLS); needs --tls-cert. Without it clients are not asked for one.")
  Path tlsClientCa;

  @Option(
      names = "--execution-provider",
      paramLabel = "PROVIDER",
      description =
          "ONNX Runtime execution provider of every model whose model.yaml names none: cpu or"
              + " cuda (default: ${DEFAULT-VALUE}).",
      defaultValue = "cpu")
  String executionProvider;

  @Option(
      names = "--log-format",
      paramLabel = "FORMAT",
      description =
          "auto (text on a terminal, JSON otherwise), json or text (default: ${DEFAULT-VALUE}).",
      defaultValue = "auto")
  LogSetup.Format logFormat;

  @Option(
      names = "--log-level",
      paramLabel = "LEVEL",
      description = "debug, info, warn or error (default: ${DEFAULT-VALUE}).",
      defaultValue = "info")
  String logLevel;

  @Override
  public Integer call() {
    LogSetup.Format format = LogSetup.resolve(logFormat);
    Level level;
    try {
      level = LogSetup.parseLevel(logLevel);
    } catch (IllegalArgumentException e) {
      throw new BerthException(
          "--log-level must be debug, info, warn or error, not '" + logLevel + "'");
    }
    LogSetup.configure(format, level, System.err);
    Path repo = repository.toAbsolutePath().normalize();
    if (!Files.isDirectory(repo)) {
      throw new BerthException(
          "model repository "
              + repo
              + " does not exist; give a directory that holds"
              + " <model>/<version>/model.onnx");
    }

    TlsCredentials tls = tlsCredentials();
    String provider = executionProvider.toLowerCase(java.util.Locale.ROOT);
    if (!provider.equals("cpu") && !provider.equals("cuda")) {
      throw new BerthException(
          "--execution-provider must be cpu or cuda, not '" + executionProvider + "'");
    }
    System.setProperty(OnnxEngineProvider.DEFAULT_PROVIDER_PROPERTY, provider);
    ServingMetrics metrics = new ServingMetrics();
    InferenceService service = InferenceService.create(repo, metrics);
    // Models load while the ports open (readiness stays false until they have): a container or
    // pod is ready that much sooner.
    AtomicReference<Throwable> loadFailure = new AtomicReference<>();
    Thread loader =
        Thread.ofPlatform()
            .name("berth-model-loader")
            .start(
                () -> {
                  try {
                    service.loadModels();
                  } catch (RuntimeException | Error e) {
                    loadFailure.set(e);
                  }
                });

    // The handler goes in before any port opens: a SIGTERM that follows the first ready answer
    // must already find it. Fronts not started yet when it comes are simply not there to stop.
    AtomicReference<BerthServer> http = new AtomicReference<>();
    AtomicReference<GrpcServer> grpc = new AtomicReference<>();
    CountDownLatch stopped = new CountDownLatch(1);
    Signals.onTerminate(
        () -> {
          LOG.info("shutting down: readiness off, draining in-flight requests");
          // Both fronts share one data plane: drain it, let gRPC finish writing, then stop HTTP.
          long until = System.nanoTime() + drainTimeout.toNanos();
          boolean drained = service.drain(drainTimeout);
          if (grpc.get() != null) {
            grpc.get().shutdown(Duration.ofNanos(Math.max(0, until - System.nanoTime())));
          }
          if (http.get() != null) {
            drained &=
                http.get().shutdown(Duration.ofNanos(Math.max(0, until - System.nanoTime())));
          } else {
            service.close();
          }
          LOG.info(
              drained
                  ? "stopped; every in-flight request was answered"
                  : "stopped; drain timed out");
          stopped.countDown();
        });

    try {
      http.set(
          BerthServer.builder(service)
              .host(host)
              .port(port)
              .maxBodyBytes(maxBodyBytes)
              .version(Main.Version.get())
              .tls(tls)
              .build()
              .start());
    } catch (RuntimeException e) {
      service.close();
      throw new BerthException(
          "cannot listen on "
              + host
              + ":"
              + port
              + " ("
              + rootMessage(e)
              + "); pick another with --port or stop what uses it",
          e);
    }
    try {
      grpc.set(GrpcServer.start(service, host, grpcPort, maxBodyBytes, Main.Version.get(), tls));
    } catch (RuntimeException e) {
      http.get().shutdown(Duration.ZERO);
      throw e;
    }
    try {
      loader.join();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    if (loadFailure.get() != null) {
      http.get().shutdown(Duration.ZERO);
      grpc.get().shutdown(Duration.ZERO);
      if (loadFailure.get() instanceof RuntimeException re) {
        throw re;
      }
      throw (Error) loadFailure.get();
    }
    if (service.ready()) { // not already stopping
      announce(http.get(), grpc.get(), service, format, System.out);
    }
    try {
      stopped.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    System.out.flush();
    return 0;
  }

  /** The TLS options' credentials, or null to serve plain HTTP and gRPC. */
  private TlsCredentials tlsCredentials() {
    if (tlsCert == null && tlsKey == null) {
      if (tlsClientCa != null) {
        throw new BerthException(
            "--tls-client-ca needs --tls-cert and --tls-key: client certificates are checked over"
                + " TLS only");
      }
      return null;
    }
    if (tlsCert == null || tlsKey == null) {
      throw new BerthException(
          tlsCert == null
              ? "--tls-key needs --tls-cert (the PEM certificate chain the key belongs to)"
              : "--tls-cert needs --tls-key (the PEM private key of the certificate)");
    }
    return TlsCredentials.load(tlsCert, tlsKey, Optional.ofNullable(tlsClientCa));
  }

  private static String rootMessage(Throwable t) {
    while (t.getCause() != null) {
      t = t.getCause();
    }
    return t.getMessage();
  }

  private static void announce(
      BerthServer server,
      GrpcServer grpc,
      InferenceService service,
      LogSetup.Format format,
      PrintStream out) {
    String url = server.scheme() + "://" + hostForUrl(server.host()) + ":" + server.port();
    boolean tls = server.scheme().equals("https");
    List<String> ready = new ArrayList<>();
    List<String> failed = new ArrayList<>();
    for (ModelStatus s : service.index()) {
      String label = s.name() + (s.version().isEmpty() ? "" : " v" + s.version());
      if (s.state() == ServingMetrics.ModelState.READY) {
        ready.add(label);
      } else {
        failed.add(label + ": " + s.reason());
      }
    }
    String curl = curlExample(url, service);
    Map<String, Object> fields = new LinkedHashMap<>();
    fields.put("url", url);
    String grpcAddress = hostForUrl(server.host()) + ":" + grpc.port();
    fields.put("grpc", grpcAddress);
    fields.put("tls", tls);
    fields.put("models", ready);
    fields.put("failed", failed);
    fields.put("try", curl);
    LogRecord record = new LogRecord(Level.INFO, "serving");
    record.setLoggerName("berth.serve");
    record.setParameters(new Object[] {fields});
    if (format == LogSetup.Format.JSON) {
      LOG.log(record);
      return;
    }
    out.println();
    out.println(
        "Berth is serving on "
            + url
            + " (gRPC"
            + (tls ? " over TLS" : "")
            + " on "
            + grpcAddress
            + ")");
    out.println("  models ready: " + (ready.isEmpty() ? "none" : String.join(", ", ready)));
    for (String f : failed) {
      out.println("  NOT loaded:   " + f);
    }
    out.println("  health:       " + url + "/v2/health/ready    metrics: " + url + "/metrics");
    if (curl != null) {
      out.println("  try:");
      out.println("    " + curl);
    }
    out.println("  stop with Ctrl-C (drains in-flight requests)");
    out.println();
    out.flush();
  }

  private static String hostForUrl(String host) {
    String shown = host.equals("0.0.0.0") ? "127.0.0.1" : host;
    return shown.contains(":") ? "[" + shown + "]" : shown;
  }

  private static String curlExample(String url, InferenceService service) {
    List<LoadedModel> models = service.loadedModels();
    if (models.isEmpty()) {
      return null;
    }
    // a model that takes text makes the friendliest first request
    LoadedModel m =
        models.stream()
            .filter(x -> "tokenize".equals(x.config().preprocessing().string("type", "")))
            .findFirst()
            .orElse(models.get(0));
    var in = m.signature().inputs().get(0);
    if ("tokenize".equals(m.config().preprocessing().string("type", ""))) {
      return "curl -s "
          + url
          + "/v2/models/"
          + m.name()
          + "/infer -H 'Content-Type: application/json' -d '"
          + "{\"inputs\":[{\"name\":\""
          + in.name()
          + "\",\"shape\":[2],\"datatype\":\"BYTES\","
          + "\"data\":[\"Berth serves models\",\"A cat sat on the mat\"]}]}'";
    }
    return "curl -s " + url + "/v2/models/" + m.name();
  }

  /** Parses sizes such as {@code 512KiB}, {@code 32MiB}, {@code 1GiB} or plain bytes. */
  static final class SizeConverter implements ITypeConverter<Long> {
    @Override
    public Long convert(String value) {
      String v = value.trim().toLowerCase(Locale.ROOT);
      long unit = 1;
      for (String[] u :
          new String[][] {
            {"kib", "1024"},
            {"mib", "1048576"},
            {"gib", "1073741824"},
            {"kb", "1000"},
            {"mb", "1000000"},
            {"gb", "1000000000"},
            {"b", "1"}
          }) {
        if (v.endsWith(u[0])) {
          unit = Long.parseLong(u[1]);
          v = v.substring(0, v.length() - u[0].length()).trim();
          break;
        }
      }
      try {
        long n = Long.parseLong(v);
        if (n <= 0) {
          throw new IllegalArgumentException();
        }
        return Math.multiplyExact(n, unit);
      } catch (RuntimeException e) {
        throw new picocli.CommandLine.TypeConversionException(
            "'" + value + "' is not a size; write e.g. 512KiB, 32MiB or 1GiB");
      }
    }
  }

  /** Parses durations such as {@code 500ms}, {@code 30s}, {@code 2m}. */
  static final class DurationConverter implements ITypeConverter<Duration> {
    @Override
    public Duration convert(String value) {
      return ConfigReader.parseDuration(value)
          .orElseThrow(
              () ->
                  new picocli.CommandLine.TypeConversionException(
                      "'" + value + "' is not a duration; write e.g. 500ms, 30s or 2m"));
    }
  }
}
