package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.runtime.ConfigReader;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.LoadedModel;
import dev.berth.runtime.ModelIntegrity;
import dev.berth.runtime.ModelStatus;
import dev.berth.runtime.ServeSettings;
import dev.berth.runtime.ServiceSpec;
import dev.berth.runtime.ServingMetrics;
import dev.berth.runtime.SigningKeys;
import dev.berth.server.Access;
import dev.berth.server.BerthServer;
import dev.berth.server.GrpcServer;
import dev.berth.server.ServerLimits;
import dev.berth.server.TlsCredentials;
import dev.berth.server.Tracing;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicReference;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParseResult;
import picocli.CommandLine.Spec;

/**
 * {@code berth serve [REPO | berth.yaml]}: serves every model of a model repository, or a service
 * file's models with its serving settings, over HTTP and gRPC. Its options are made from {@link
 * ServeSettings}, each also read from its {@code BERTH_...} environment variable: an option given
 * wins over the variable, which wins over the service file, which wins over the default.
 */
@Command(
    name = "serve",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    modelTransformer = ServeCommand.SettingOptions.class,
    description = {
      "Serve every model in a model repository (REPO/<model>/<version>/model.onnx), or the models"
          + " of a service file (berth.yaml) with its serving settings, over the Open Inference"
          + " Protocol v2 (REST and gRPC), TensorFlow Serving REST and the OpenAI-compatible API,"
          + " with dynamic batching, health endpoints and Prometheus metrics.",
      "Every option can also be set by its environment variable, shown as [env: ...].",
      ""
    })
final class ServeCommand implements java.util.concurrent.Callable<Integer> {
  private static final Logger LOG = Logger.getLogger("berth.serve");

  @Parameters(
      index = "0",
      arity = "0..1",
      paramLabel = "REPO|berth.yaml",
      description =
          "Model repository to serve, or a service file whose models and serving settings to"
              + " serve as its image does, or oci://REGISTRY/REPOSITORY[:TAG] (a model berth push"
              + " stored), or s3://BUCKET/PREFIX (a model directory or a repository of them), or"
              + " https://.../NAME.onnx (one model file, served as model NAME)"
              + " (default: the bundled examples, ${DEFAULT-VALUE}).",
      defaultValue = "${env:BERTH_HOME:-.}/examples/models")
  String repository;

  @Spec CommandSpec spec;

  /** The serve settings as options: one per {@link ServeSettings#ALL} entry. */
  static final class SettingOptions implements CommandLine.IModelTransformer {
    @Override
    public CommandSpec transform(CommandSpec command) {
      for (ServeSettings.Setting s : ServeSettings.ALL) {
        List<String> names = new ArrayList<>();
        if (s == ServeSettings.PORT) {
          names.add("-p");
        }
        names.add(s.option());
        String description =
            s.description()
                + (s.defaultValue() == null || s.type() == ServeSettings.Type.SWITCH
                    ? ""
                    : " Default: " + s.defaultValue() + ".")
                + " [env: "
                + s.environmentVariable()
                + "]";
        OptionSpec.Builder b =
            OptionSpec.builder(names.toArray(String[]::new))
                .description(description.replace("%", "%%"));
        switch (s.type()) {
          case SWITCH -> {
            b.type(boolean.class).arity("0..1").fallbackValue("true");
            if ("true".equals(s.defaultValue())) {
              b.negatable(true);
            }
          }
          default -> {
            b.paramLabel(s.label());
            if (s.repeatable()) {
              b.type(List.class).auxiliaryTypes(String.class);
            } else {
              b.type(String.class);
            }
          }
        }
        command.addOption(b.build());
      }
      return command;
    }
  }

  /** The settings given as options, checked. */
  private ServeSettings options() {
    Map<ServeSettings.Setting, String> given = new LinkedHashMap<>();
    ParseResult parsed = spec.commandLine().getParseResult();
    for (ServeSettings.Setting s : ServeSettings.ALL) {
      OptionSpec option = spec.findOption(s.option());
      if (parsed == null || !parsed.hasMatchedOption(option)) {
        continue;
      }
      Object value = option.getValue();
      String text =
          value instanceof List<?> list
              ? String.join(",", list.stream().map(String::valueOf).toList())
              : String.valueOf(value);
      given.put(s, text);
    }
    try {
      return ServeSettings.of(given);
    } catch (ServeSettings.InvalidValue e) {
      throw new BerthException(e.setting().option() + " " + e.problem());
    }
  }

  /** Options over environment variables over the service file's settings over the defaults. */
  private static ServeSettings settings(ServeSettings options, ServiceSpec service) {
    ServeSettings environment;
    try {
      environment = ServeSettings.fromEnvironment(System.getenv());
    } catch (IllegalArgumentException e) {
      throw new BerthException(e.getMessage());
    }
    ServeSettings file = service == null ? ServeSettings.none() : service.serving().settings();
    ServeSettings settings = options.over(environment.over(file));
    if (service != null) {
      service.requireSecretFiles(settings, "berth serve");
    }
    return settings;
  }

  @Override
  public Integer call() {
    // RemoteSource (and the model store behind it) loads only for a remote source: an image may
    // not carry the store
    boolean remote =
        repository.startsWith("oci://")
            || repository.startsWith("s3://")
            || repository.startsWith("https://")
            || repository.startsWith("http://");
    Path target = remote ? null : Path.of(repository).toAbsolutePath().normalize();
    // a file is a service file (berth.yaml); a directory, a model repository
    ServiceSpec service =
        target != null && Files.isRegularFile(target) ? ServiceSpec.load(target) : null;
    ServeSettings options = options();
    ServeSettings settings = settings(options, service);
    ModelIntegrity integrity = integrity(settings);
    LogSetup.Format format =
        LogSetup.resolve(
            LogSetup.Format.valueOf(
                settings.text(ServeSettings.LOG_FORMAT).toUpperCase(java.util.Locale.ROOT)));
    Level level = LogSetup.parseLevel(settings.text(ServeSettings.LOG_LEVEL));
    LogSetup.configure(format, level, System.err);
    Map<String, Path> mounts = mounts(settings, service);
    boolean fetches = remote || (service != null && !service.remoteModels().isEmpty());
    if (fetches && !Main.onClassPath("dev.berth.store.RemoteModels")) {
      throw new BerthException(
          "this Berth has no model store, so it cannot serve "
              + (remote ? repository : "the service's models from their sources")
              + "; pull the model with berth pull and serve the directory");
    }
    List<RemoteSource> sources = new ArrayList<>();
    Path repo;
    if (remote) {
      sources.add(RemoteSource.open(repository, settings));
      repo = sources.get(0).repository();
    } else if (service != null) {
      repo = stage(service);
      if (!service.remoteModels().isEmpty()) {
        sources.addAll(RemoteSource.openService(service, settings, repo, mounts));
      }
    } else {
      repo = target;
    }
    if (!Files.isDirectory(repo)) {
      throw new BerthException(
          "model repository "
              + repo
              + " does not exist; give a directory that holds <model>/<version>/model.onnx, or a"
              + " berth.yaml");
    }

    String host = settings.text(ServeSettings.HOST);
    Access access = access(settings, host, options.isSet(ServeSettings.MANAGEMENT_TOKEN));
    TlsCredentials tls = tlsCredentials(settings);
    Duration pollRepository = settings.duration(ServeSettings.POLL_REPOSITORY);
    Duration drainTimeout = settings.duration(ServeSettings.DRAIN_TIMEOUT);
    ServerLimits limits;
    try {
      limits = ServerLimits.from(settings);
    } catch (IllegalArgumentException e) {
      throw new BerthException(e.getMessage());
    }
    // read once, here: no OTEL_* variable is looked at on the request path
    Tracing tracing =
        Tracing.configure(settings, System.getenv(), service == null ? "berth" : service.name());
    if (tracing.enabled()) {
      LOG.info("tracing: " + tracing.description());
    }
    ServingMetrics metrics = new ServingMetrics().withJvmMetrics();
    InferenceService inference;
    try {
      inference =
          InferenceService.create(
              repo, metrics, integrity, settings.text(ServeSettings.EXECUTION_PROVIDER));
    } catch (RuntimeException | Error e) {
      tracing.close(); // its export thread and collector connection are not left behind
      throw e;
    }
    inference.strictReadiness(settings.flag(ServeSettings.STRICT_READINESS));
    // Models load while the ports open (readiness stays false until they have): a container or
    // pod is ready that much sooner.
    AtomicReference<Throwable> loadFailure = new AtomicReference<>();
    Thread loader =
        Thread.ofPlatform()
            .name("berth-model-loader")
            .start(
                () -> {
                  try {
                    inference.loadModels();
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
          boolean drained = inference.drain(drainTimeout);
          if (grpc.get() != null) {
            grpc.get().shutdown(Duration.ofNanos(Math.max(0, until - System.nanoTime())));
          }
          if (http.get() != null) {
            drained &=
                http.get().shutdown(Duration.ofNanos(Math.max(0, until - System.nanoTime())));
          } else {
            inference.close();
          }
          tracing.close(); // the spans of the last requests go out before the process ends
          LOG.info(
              drained
                  ? "stopped; every in-flight request was answered"
                  : "stopped; drain timed out");
          stopped.countDown();
        });

    int port = settings.integer(ServeSettings.PORT);
    long maxBodyBytes = settings.size(ServeSettings.MAX_BODY_SIZE);
    try {
      http.set(
          BerthServer.builder(inference)
              .host(host)
              .port(port)
              .maxBodyBytes(maxBodyBytes)
              .limits(limits)
              .version(Main.Version.get())
              .access(access)
              .tls(tls)
              .tracing(tracing)
              .build()
              .start());
    } catch (RuntimeException e) {
      inference.close();
      tracing.close();
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
              inference,
              host,
              settings.integer(ServeSettings.GRPC_PORT),
              maxBodyBytes,
              limits,
              Main.Version.get(),
              access,
              tls,
              tracing));
    } catch (RuntimeException e) {
      http.get().shutdown(Duration.ZERO);
      tracing.close();
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
      tracing.close();
      if (loadFailure.get() instanceof RuntimeException re) {
        throw re;
      }
      throw (Error) loadFailure.get();
    }
    if (!sources.isEmpty() && inference.serving()) {
      inference.sourceProblems(
          () -> {
            Map<String, String> all = new LinkedHashMap<>();
            sources.forEach(x -> all.putAll(x.problems()));
            return all;
          });
      for (RemoteSource source : sources) {
        source.start(inference, pollRepository);
      }
      if (pollRepository != null) {
        LOG.info(
            "asking "
                + (remote
                    ? (repository.contains("?")
                        ? repository.substring(0, repository.indexOf('?')) + "?..."
                        : repository)
                    : "the service's model sources")
                + " every "
                + pollRepository.toMillis()
                + " ms whether what they hold changed");
      }
    } else if (pollRepository != null && inference.serving()) {
      inference.pollRepositoryEvery(pollRepository);
      LOG.info(
          "polling "
              + repo
              + " every "
              + pollRepository.toMillis()
              + " ms for new and removed models and versions");
    }
    if (inference.serving()) { // not already stopping
      announce(http.get(), grpc.get(), inference, access, format, System.out);
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
   * --model-mount's NAME=DIR pairs: remote models of the service file the pod already has mounted.
   */
  private static Map<String, Path> mounts(ServeSettings settings, ServiceSpec service) {
    Map<String, Path> out = new LinkedHashMap<>();
    String given = settings.text(ServeSettings.MODEL_MOUNT);
    if (given == null || given.isEmpty()) {
      return out;
    }
    for (String pair : given.split(",")) {
      int eq = pair.indexOf('=');
      String name = eq > 0 ? pair.substring(0, eq) : "";
      if (name.isEmpty() || eq == pair.length() - 1) {
        throw new BerthException(
            "--model-mount '" + pair + "' is not NAME=DIR; e.g. --model-mount minilm=/mnt/models");
      }
      List<String> remote =
          service == null
              ? List.of()
              : service.remoteModels().stream().map(ServiceSpec.RemoteModel::name).toList();
      if (!remote.contains(name)) {
        throw new BerthException(
            "--model-mount "
                + pair
                + ": "
                + (service == null
                    ? "applies to a service file's remote models; serve a berth.yaml"
                    : "the service has no remote model '"
                        + name
                        + "'"
                        + (remote.isEmpty() ? "" : " (it has " + remote + ")")));
      }
      Path dir = Path.of(pair.substring(eq + 1)).toAbsolutePath().normalize();
      if (!Files.isDirectory(dir)) {
        throw new BerthException(
            "--model-mount " + pair + ": " + dir + " is not a directory; mount the model there");
      }
      out.put(name, dir);
    }
    return out;
  }

  /** The service's models, written as a model repository the server reads. */
  private static Path stage(ServiceSpec service) {
    try {
      Path dir = Files.createTempDirectory("berth-serve-" + service.name() + "-");
      Runtime.getRuntime().addShutdownHook(new Thread(() -> ServiceSpec.deleteTree(dir)));
      return service.writeRepository(dir.resolve("models"));
    } catch (java.io.IOException e) {
      throw new BerthException("cannot stage the service's models: " + e.getMessage(), e);
    }
  }

  /**
   * The management token and API keys. A token comes from --management-token, else {@value
   * Access#TOKEN_ENV}, else --management-token-file; with none, one is generated and printed once,
   * on loopback only: a server reachable from elsewhere must not start with a token nobody chose or
   * stored.
   */
  private static Access access(ServeSettings settings, String host, boolean tokenOption) {
    Access.ApiKeys keys = null;
    Path apiKeysFile = settings.path(ServeSettings.API_KEYS);
    if (apiKeysFile != null) {
      if (!Files.isRegularFile(apiKeysFile)) {
        throw new BerthException(
            "--api-keys " + apiKeysFile + " is not a file; give a YAML file with a 'keys' list");
      }
      keys = Access.ApiKeys.load(apiKeysFile);
    }
    String token = settings.text(ServeSettings.MANAGEMENT_TOKEN);
    Path tokenFile = settings.path(ServeSettings.MANAGEMENT_TOKEN_FILE);
    if (token == null && tokenFile != null) {
      try {
        token = Files.readString(tokenFile).strip();
      } catch (java.io.IOException e) {
        throw new BerthException(
            "--management-token-file "
                + tokenFile
                + " cannot be read ("
                + e.getMessage()
                + "); give a file that holds the token");
      }
    }
    boolean management = settings.flag(ServeSettings.MANAGEMENT) || tokenFile != null;
    if (management) {
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
                  + ", --management-token-file or --management-token (a generated token is only"
                  + " for loopback)");
        }
        token = Access.generateToken();
        System.out.println(
            "management token (generated; send it as 'Authorization: Bearer TOKEN', or set "
                + Access.TOKEN_ENV
                + " for berth models): "
                + token);
        System.out.flush();
      }
    } else if (tokenOption) {
      throw new BerthException(
          "--management-token without --management: add --management to serve the repository"
              + " API");
    } else {
      token = null; // the variable alone (set for berth models) does not turn the API on
    }
    try {
      return Access.of(token, keys);
    } catch (IllegalArgumentException e) {
      String source =
          tokenOption
              ? "--management-token"
              : settings.isSet(ServeSettings.MANAGEMENT_TOKEN)
                  ? Access.TOKEN_ENV
                  : "--management-token-file " + tokenFile;
      throw new BerthException(source + ": " + e.getMessage());
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
  private static ModelIntegrity integrity(ServeSettings settings) {
    List<Path> trust = settings.paths(ServeSettings.TRUST);
    boolean requireSigned = settings.flag(ServeSettings.REQUIRE_SIGNED);
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

  /** The TLS settings' credentials, or null to serve plain HTTP and gRPC. */
  private static TlsCredentials tlsCredentials(ServeSettings settings) {
    Path tlsCert = settings.path(ServeSettings.TLS_CERT);
    Path tlsKey = settings.path(ServeSettings.TLS_KEY);
    Path tlsClientCa = settings.path(ServeSettings.TLS_CLIENT_CA);
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
    fields.put("status_page", url + "/");
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
    out.println(
        "  status page:  "
            + url
            + "/"
            + (access.inferenceProtected() ? "    (log in with any name and an API key)" : ""));
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
