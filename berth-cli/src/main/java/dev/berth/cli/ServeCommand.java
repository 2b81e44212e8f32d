package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.onnx.OnnxEngineProvider;
import dev.berth.runtime.ConfigReader;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.LoadedModel;
import dev.berth.runtime.ModelIntegrity;
import dev.berth.runtime.ModelStatus;
import dev.berth.runtime.ServingMetrics;
import dev.berth.runtime.SigningKeys;
import dev.berth.server.Access;
import dev.berth.server.BerthServer;
import dev.berth.server.GrpcServer;
import dev.berth.server.ServerLimits;
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
      names = "--max-tensor-elements",
      paramLabel = "N",
      description =
          "Most tensor elements in one request, all inputs together; more get 413"
              + " (default: ${DEFAULT-VALUE}).",
      defaultValue = "16777216")
  long maxTensorElements;

  @Option(
      names = "--max-request-rows",
      paramLabel = "N",
      description =
          "Most rows (first-dimension entries) of any input in one request; more get 413"
              + " (default: ${DEFAULT-VALUE}).",
      defaultValue = "65536")
  long maxRequestRows;

  @Option(
      names = "--max-string-size",
      paramLabel = "SIZE",
      description =
          "Longest BYTES element (one text, one image file); longer ones get 413"
              + " (default: ${DEFAULT-VALUE}).",
      defaultValue = "8MiB",
      converter = SizeConverter.class)
  long maxStringBytes;

  @Option(
      names = "--max-request-timeout",
      paramLabel = "DURATION",
      description =
          "Cap on every request's deadline, whatever model.yaml's request-timeout or a gRPC"
              + " client's deadline says (default: ${DEFAULT-VALUE}).",
      defaultValue = "5m",
      converter = DurationConverter.class)
  Duration maxRequestTimeout;

  @Option(
      names = "--body-timeout",
      paramLabel = "DURATION",
      description =
          "Longest a client may take to send one request body; a slower one (stalled or"
              + " trickling) has its connection closed (default: ${DEFAULT-VALUE}).",
      defaultValue = "60s",
      converter = DurationConverter.class)
  Duration bodyTimeout;

  @Option(
      names = "--max-concurrent-requests",
      paramLabel = "N",
      description =
          "Most REST requests handled at once; beyond it 503 with Retry-After"
              + " (default: ${DEFAULT-VALUE}).",
      defaultValue = "4096")
  int maxConcurrentRequests;

  @Option(
      names = "--max-grpc-calls-per-connection",
      paramLabel = "N",
      description =
          "Most gRPC calls at once on one connection; beyond it new streams are refused"
              + " (default: ${DEFAULT-VALUE}).",
      defaultValue = "1024")
  int maxGrpcCallsPerConnection;

  @Option(
      names = "--max-header-size",
      paramLabel = "SIZE",
      description =
          "Largest request head: REST headers (larger get 431) and gRPC metadata"
              + " (default: ${DEFAULT-VALUE}).",
      defaultValue = "16KiB",
      converter = SizeConverter.class)
  long maxHeaderBytes;

  @Option(
      names = "--drain-timeout",
      paramLabel = "DURATION",
      description =
          "On SIGTERM, how long in-flight requests may take to finish (default: ${DEFAULT-VALUE}).",
      defaultValue = "30s",
      converter = DurationConverter.class)
  Duration drainTimeout;

  @Option(
      names = "--poll-repository",
      paramLabel = "DURATION",
      description =
          "Rescan the repository this often: load new models and version directories, unload"
              + " removed ones, as each model's version-policy says (e.g. 10s; default: off).",
      converter = DurationConverter.class)
  Duration pollRepository;

  @Option(
      names = "--strict-readiness",
      negatable = true,
      defaultValue = "true",
      fallbackValue = "true",
      description =
          "/v2/health/ready and gRPC ServerReady answer ready only while every served model has a"
              + " ready version, as Triton's do, so Kubernetes sends no traffic to a replica whose"
              + " model failed to load. --no-strict-readiness: ready once loading is over (default:"
              + " on).")
  boolean strictReadiness;

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
              + " cuda (default: ${DEFAULT-VALUE}). With cuda, language models whose"
              + " llm.gpu-layers is unset run every layer on the GPU.",
      defaultValue = "cpu")
  String executionProvider;

  @Option(
      names = "--management",
      description =
          "Serve the repository API (/v2/repository: index, load, unload). It needs a bearer"
              + " token: --management-token, or "
              + Access.TOKEN_ENV
              + ", or one generated and"
              + " printed at start (loopback only).")
  boolean management;

  @Option(
      names = "--management-token",
      paramLabel = "TOKEN",
      description =
          "The repository API's bearer token, at least 16 characters (default: "
              + Access.TOKEN_ENV
              + "; prefer the variable: options show in process lists).")
  String managementToken;

  @Option(
      names = "--api-keys",
      paramLabel = "FILE",
      description =
          "YAML file of API keys (name, key or sha256, roles: infer, manage). With it, inference"
              + " and metadata calls need 'Authorization: Bearer KEY' of a key with the infer"
              + " role; health and /metrics stay open.")
  Path apiKeysFile;

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

  @Option(
      names = "--trust",
      paramLabel = "KEY.pub",
      description =
          "Public key (PEM, Ed25519 or ECDSA P-256) whose signatures (berth sign) are trusted;"
              + " repeatable. A model's berth.sig must verify with one of them and match its files.")
  List<Path> trust = new ArrayList<>();

  @Option(
      names = "--require-signed",
      description = "Refuse models without a berth.sig that verifies with a --trust key.")
  boolean requireSigned;

  @Override
  public Integer call() {
    ModelIntegrity integrity = integrity();
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

    Access access = access();

    TlsCredentials tls = tlsCredentials();
    String provider = executionProvider.toLowerCase(java.util.Locale.ROOT);
    if (!provider.equals("cpu") && !provider.equals("cuda")) {
      throw new BerthException(
          "--execution-provider must be cpu or cuda, not '" + executionProvider + "'");
    }
    if (pollRepository != null && (pollRepository.isZero() || pollRepository.isNegative())) {
      throw new BerthException("--poll-repository must be longer than 0 (e.g. 10s)");
    }
    System.setProperty(OnnxEngineProvider.DEFAULT_PROVIDER_PROPERTY, provider);
    System.setProperty(dev.berth.llm.LlamaEngineProvider.DEFAULT_PROVIDER_PROPERTY, provider);
    ServerLimits limits = limits();
    ServingMetrics metrics = new ServingMetrics().withJvmMetrics();
    InferenceService service = InferenceService.create(repo, metrics, integrity);
    service.strictReadiness(strictReadiness);
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
              .limits(limits)
              .version(Main.Version.get())
              .access(access)
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
      grpc.set(
          GrpcServer.start(
              service, host, grpcPort, maxBodyBytes, limits, Main.Version.get(), access, tls));
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
    if (pollRepository != null && service.serving()) {
      service.pollRepositoryEvery(pollRepository);
      LOG.info(
          "polling "
              + repo
              + " every "
              + pollRepository.toMillis()
              + " ms for new and removed models and versions");
    }
    if (service.serving()) { // not already stopping
      announce(http.get(), grpc.get(), service, access, format, System.out);
    }
    try {
      stopped.await();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    System.out.flush();
    return 0;
  }

  /**
   * The management token and API keys. A token comes from --management-token, else {@value
   * Access#TOKEN_ENV}; with neither, one is generated and printed once, on loopback only: a server
   * reachable from elsewhere must not start with a token nobody chose or stored.
   */
  private Access access() {
    Access.ApiKeys keys = null;
    if (apiKeysFile != null) {
      if (!Files.isRegularFile(apiKeysFile)) {
        throw new BerthException(
            "--api-keys " + apiKeysFile + " is not a file; give a YAML file with a 'keys' list");
      }
      keys = Access.ApiKeys.load(apiKeysFile);
    }
    String token = null;
    if (management) {
      token = managementToken != null ? managementToken : System.getenv(Access.TOKEN_ENV);
      if (token != null && token.isEmpty()) {
        token = null;
      }
      if (token == null) {
        if (!isLoopback(host)) {
          throw new BerthException(
              "refusing to serve the repository API on "
                  + host
                  + " without a chosen token: set "
                  + Access.TOKEN_ENV
                  + " or --management-token (a generated token is only for loopback)");
        }
        token = Access.generateToken();
        System.out.println(
            "management token (generated; send it as 'Authorization: Bearer TOKEN', or set "
                + Access.TOKEN_ENV
                + " for berth models): "
                + token);
        System.out.flush();
      }
    } else if (managementToken != null) {
      throw new BerthException(
          "--management-token without --management: add --management to serve the repository"
              + " API");
    }
    try {
      return Access.of(token, keys);
    } catch (IllegalArgumentException e) {
      throw new BerthException(
          (managementToken != null ? "--management-token: " : Access.TOKEN_ENV + ": ")
              + e.getMessage());
    }
  }

  /** Whether an address to listen on is reachable from this machine only. */
  static boolean isLoopback(String host) {
    try {
      for (java.net.InetAddress a : java.net.InetAddress.getAllByName(host)) {
        if (!a.isLoopbackAddress()) {
          return false;
        }
      }
      return true;
    } catch (java.net.UnknownHostException e) {
      return false;
    }
  }

  /** The integrity checks --trust and --require-signed ask for; key files are read here, once. */
  private ModelIntegrity integrity() {
    if (requireSigned && trust.isEmpty()) {
      throw new BerthException(
          "--require-signed needs at least one --trust KEY.pub (the public key of whoever signs"
              + " the models)");
    }
    if (trust.isEmpty()) {
      return ModelIntegrity.pinsOnly();
    }
    List<java.security.PublicKey> keys = new ArrayList<>();
    for (Path file : trust) {
      try {
        keys.add(SigningKeys.readPublic(file));
      } catch (BerthException e) {
        throw new BerthException("--trust " + e.getMessage(), e);
      }
    }
    return ModelIntegrity.trusting(keys, requireSigned);
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

  /** The server-wide limits from the options; a value out of range stops with its option. */
  private ServerLimits limits() {
    ServerLimits.Builder b = ServerLimits.builder();
    positive("--max-tensor-elements", maxTensorElements, b::maxTensorElements);
    positive("--max-request-rows", maxRequestRows, b::maxRequestRows);
    positive("--max-string-size", maxStringBytes, b::maxStringBytes);
    positive(
        "--max-concurrent-requests", maxConcurrentRequests, n -> b.maxConcurrentRequests((int) n));
    positive(
        "--max-grpc-calls-per-connection",
        maxGrpcCallsPerConnection,
        n -> b.maxConcurrentCallsPerConnection((int) n));
    if (maxHeaderBytes > Integer.MAX_VALUE) {
      throw new BerthException("--max-header-size must be below 2GiB, not " + maxHeaderBytes);
    }
    b.maxHeaderBytes((int) maxHeaderBytes);
    if (maxRequestTimeout.isZero() || maxRequestTimeout.isNegative()) {
      throw new BerthException("--max-request-timeout must be longer than 0 (e.g. 5m)");
    }
    if (bodyTimeout.isZero() || bodyTimeout.isNegative()) {
      throw new BerthException("--body-timeout must be longer than 0 (e.g. 60s)");
    }
    return b.maxRequestTimeout(maxRequestTimeout).bodyTimeout(bodyTimeout).build();
  }

  private static void positive(String option, long value, java.util.function.LongConsumer setting) {
    if (value <= 0) {
      throw new BerthException(option + " must be a whole number above 0, not " + value);
    }
    setting.accept(value);
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
      Access access,
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
    String curl = curlExample(url, service, access.inferenceProtected());
    Map<String, Object> fields = new LinkedHashMap<>();
    fields.put("url", url);
    String grpcAddress = hostForUrl(server.host()) + ":" + grpc.port();
    fields.put("grpc", grpcAddress);
    fields.put("tls", tls);
    fields.put("models", ready);
    fields.put("failed", failed);
    fields.put("repository_api", access.managementEnabled());
    fields.put("api_keys", access.inferenceProtected());
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
    if (access.managementEnabled()) {
      out.println(
          "  repository:   "
              + url
              + "/v2/repository/index (POST; 'Authorization: Bearer' the management token)");
    }
    if (access.inferenceProtected()) {
      out.println("  API keys:     inference needs 'Authorization: Bearer KEY' (role infer)");
    }
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

  private static String curlExample(String url, InferenceService service, boolean keys) {
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
          + (keys ? "-H \"Authorization: Bearer $KEY\" " : "")
          + url
          + "/v2/models/"
          + m.name()
          + "/infer -H 'Content-Type: application/json' -d '"
          + "{\"inputs\":[{\"name\":\""
          + in.name()
          + "\",\"shape\":[2],\"datatype\":\"BYTES\","
          + "\"data\":[\"Berth serves models\",\"A cat sat on the mat\"]}]}'";
    }
    return "curl -s "
        + (keys ? "-H \"Authorization: Bearer $KEY\" " : "")
        + url
        + "/v2/models/"
        + m.name();
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
