package dev.berth.runtime;

import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;

/**
 * Every setting of {@code berth serve}, defined once: its name (the option {@code --NAME}, the
 * berth.yaml key {@code serving.NAME}), type, default, description and environment variable ({@code
 * BERTH_NAME}). The CLI's options, berth.yaml's {@code serving:} section, the command lines of
 * images, of the class-data training run and of benchmarks, the Kubernetes manifests and the docs
 * table are all made from {@link #ALL}.
 *
 * <p>A {@code ServeSettings} holds values for some of them, as text checked against their type;
 * {@link #over(ServeSettings)} layers one set over another (options over the environment over a
 * service file over the defaults).
 *
 * <pre>{@code
 * ServeSettings s = ServeSettings.of(Map.of(ServeSettings.PORT, "9000"));
 * int port = s.integer(ServeSettings.PORT); // 9000
 * }</pre>
 */
public final class ServeSettings {
  /** What a setting's value is. */
  public enum Type {
    /** A host name or address. */
    ADDRESS("HOST"),
    /** A port, 0 to 65535 (0: a free one). */
    PORT("PORT"),
    /** A whole number above 0. */
    COUNT("N"),
    /** A size with an optional unit: 512KiB, 32MiB, 1GiB, or bytes. */
    SIZE("SIZE"),
    /** A duration: 500ms, 30s, 5m. */
    DURATION("DURATION"),
    /** true or false. */
    SWITCH(""),
    /** A file's path. */
    FILE("FILE"),
    /** One of a few words. */
    CHOICE("WORD"),
    /** A fraction from 0 to 1. */
    RATIO("RATIO"),
    /** Free text. */
    TEXT("TEXT");

    /** How --help shows the value. */
    public final String label;

    Type(String label) {
      this.label = label;
    }
  }

  /**
   * One setting.
   *
   * @param name the option's name without dashes, also the berth.yaml key under {@code serving:}
   * @param defaultValue the value when none is given, as text; null for none
   * @param description one or two sentences for --help
   * @param choices a {@link Type#CHOICE}'s words
   * @param repeatable whether it takes several values (options repeated; a list in berth.yaml; a
   *     comma-separated environment variable)
   * @param secret whether its value is a secret: never written into a command line, an image or a
   *     manifest
   */
  public record Setting(
      String name,
      Type type,
      String defaultValue,
      String description,
      List<String> choices,
      boolean repeatable,
      boolean secret) {
    public Setting {
      choices = List.copyOf(choices);
    }

    /** {@code --NAME}. */
    public String option() {
      return "--" + name;
    }

    /** {@code BERTH_NAME}, upper case with underscores. */
    public String environmentVariable() {
      return "BERTH_" + name.toUpperCase(Locale.ROOT).replace('-', '_');
    }

    /** How --help and the docs show the value: {@code SIZE}, {@code cpu|cuda}. */
    public String label() {
      return type == Type.CHOICE ? String.join("|", choices) : type.label;
    }

    /**
     * The value, checked and normalised (choices in lower case).
     *
     * @throws IllegalArgumentException saying what was expected
     */
    public String check(String value) {
      String v = value.trim();
      switch (type) {
        case PORT -> {
          long port = whole(v);
          if (port < 0 || port > 65_535) {
            throw new IllegalArgumentException(
                "must be a port from 0 to 65535 (0 picks a free one), not '" + value + "'");
          }
        }
        case COUNT -> {
          if (whole(v) <= 0) {
            throw new IllegalArgumentException(
                "must be a whole number above 0, not '" + value + "'");
          }
        }
        case SIZE -> parseSize(v);
        case RATIO -> {
          double ratio;
          try {
            ratio = Double.parseDouble(v);
          } catch (NumberFormatException e) {
            ratio = Double.NaN;
          }
          if (!(ratio >= 0 && ratio <= 1)) {
            throw new IllegalArgumentException(
                "must be a fraction from 0 to 1 (e.g. 0.1), not '" + value + "'");
          }
        }
        case DURATION -> {
          Duration d =
              ConfigReader.parseDuration(v)
                  .orElseThrow(
                      () ->
                          new IllegalArgumentException(
                              "must be a duration such as 500ms, 30s or 2m, not '" + value + "'"));
          if (d.isZero()) {
            throw new IllegalArgumentException("must be longer than 0 (e.g. 10s)");
          }
        }
        case SWITCH -> {
          v = v.toLowerCase(Locale.ROOT);
          if (!v.equals("true") && !v.equals("false")) {
            throw new IllegalArgumentException("must be true or false, not '" + value + "'");
          }
        }
        case CHOICE -> {
          v = v.toLowerCase(Locale.ROOT);
          if (!choices.contains(v)) {
            throw new IllegalArgumentException(
                "must be " + String.join(", ", choices) + ", not '" + value + "'");
          }
        }
        case ADDRESS, FILE, TEXT -> {
          if (v.isEmpty()) {
            throw new IllegalArgumentException("must not be empty");
          }
        }
      }
      return v;
    }

    private static long whole(String v) {
      try {
        return Long.parseLong(v);
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("must be a whole number, not '" + v + "'");
      }
    }
  }

  private static Setting setting(String name, Type type, String defaultValue, String description) {
    return new Setting(name, type, defaultValue, description, List.of(), false, false);
  }

  private static Setting choice(String name, String defaultValue, String description, String... c) {
    return new Setting(name, Type.CHOICE, defaultValue, description, List.of(c), false, false);
  }

  public static final Setting HOST =
      setting(
          "host",
          Type.ADDRESS,
          "127.0.0.1",
          "Address the HTTP and gRPC ports listen on; 0.0.0.0 for every interface.");
  public static final Setting PORT =
      setting("port", Type.PORT, "8080", "HTTP port; 0 picks a free one.");
  public static final Setting GRPC_PORT =
      setting(
          "grpc-port",
          Type.PORT,
          "8081",
          "gRPC port (inference.GRPCInferenceService); 0 picks a free one.");
  public static final Setting MAX_BODY_SIZE =
      setting(
          "max-body-size",
          Type.SIZE,
          "32MiB",
          "Largest request body (REST) or message (gRPC); larger ones get 413.");
  public static final Setting MAX_TENSOR_ELEMENTS =
      setting(
          "max-tensor-elements",
          Type.COUNT,
          "16777216",
          "Most tensor elements in one request, all inputs together; more get 413.");
  public static final Setting MAX_REQUEST_ROWS =
      setting(
          "max-request-rows",
          Type.COUNT,
          "65536",
          "Most rows (first-dimension entries) of any input in one request; more get 413.");
  public static final Setting MAX_STRING_SIZE =
      setting(
          "max-string-size",
          Type.SIZE,
          "8MiB",
          "Longest BYTES element (one text, one image file); longer ones get 413.");
  public static final Setting MAX_REQUEST_TIMEOUT =
      setting(
          "max-request-timeout",
          Type.DURATION,
          "5m",
          "Cap on every request's deadline, whatever model.yaml's request-timeout or a gRPC"
              + " client's deadline says.");
  public static final Setting BODY_TIMEOUT =
      setting(
          "body-timeout",
          Type.DURATION,
          "60s",
          "Longest a client may take to send one request body; a slower one (stalled or"
              + " trickling) has its connection closed.");
  public static final Setting MAX_CONCURRENT_REQUESTS =
      setting(
          "max-concurrent-requests",
          Type.COUNT,
          "4096",
          "Most REST requests handled at once; beyond it 503 with Retry-After.");
  public static final Setting MAX_GRPC_CALLS_PER_CONNECTION =
      setting(
          "max-grpc-calls-per-connection",
          Type.COUNT,
          "1024",
          "Most gRPC calls at once on one connection; beyond it new streams are refused.");
  public static final Setting MAX_HEADER_SIZE =
      setting(
          "max-header-size",
          Type.SIZE,
          "16KiB",
          "Largest request head: REST headers (larger get 431) and gRPC metadata.");
  public static final Setting DRAIN_TIMEOUT =
      setting(
          "drain-timeout",
          Type.DURATION,
          "30s",
          "On SIGTERM, how long in-flight requests may take to finish.");
  public static final Setting POLL_REPOSITORY =
      setting(
          "poll-repository",
          Type.DURATION,
          null,
          "Rescan the repository this often: load new models and version directories, unload"
              + " removed ones, as each model's version-policy says (e.g. 10s; default: off).");
  public static final Setting MODEL_CACHE =
      setting(
          "model-cache",
          Type.FILE,
          null,
          "Where models served from oci:// and s3:// are kept, by digest, shared safely by servers on one"
              + " machine (default: $BERTH_CACHE/models, else ~/.cache/berth/models).");
  public static final Setting MODEL_CACHE_SIZE =
      setting(
          "model-cache-size",
          Type.SIZE,
          "20GiB",
          "The most the model cache keeps; the least recently used models no server holds go"
              + " first.");
  public static final Setting S3_ENDPOINT =
      setting(
          "s3-endpoint",
          Type.TEXT,
          null,
          "The S3-compatible store (MinIO, Ceph) that s3:// models come from, as"
              + " http(s)://HOST[:PORT], with path-style addressing (default: AWS_ENDPOINT_URL_S3,"
              + " else AWS_ENDPOINT_URL, else AWS S3).");
  public static final Setting STRICT_READINESS =
      setting(
          "strict-readiness",
          Type.SWITCH,
          "true",
          "Ready only while every served model has a ready version, as Triton is; false: ready"
              + " once loading is over.");
  public static final Setting EXECUTION_PROVIDER =
      choice(
          "execution-provider",
          "cpu",
          "ONNX Runtime execution provider of every model whose model.yaml names none; with"
              + " cuda, language models whose llm.gpu-layers is unset run every layer on the GPU.",
          "cpu",
          "cuda");
  public static final Setting LOG_FORMAT =
      choice(
          "log-format",
          "auto",
          "auto (text on a terminal, JSON otherwise), json or text.",
          "auto",
          "json",
          "text");
  public static final Setting LOG_LEVEL =
      choice("log-level", "info", "debug, info, warn or error.", "debug", "info", "warn", "error");
  public static final Setting TLS_CERT =
      setting(
          "tls-cert",
          Type.FILE,
          null,
          "Serve HTTPS and gRPC over TLS with this PEM certificate chain, the server's"
              + " certificate first; needs tls-key.");
  public static final Setting TLS_KEY =
      setting(
          "tls-key",
          Type.FILE,
          null,
          "PEM private key of tls-cert, unencrypted: PKCS#8, PKCS#1 or SEC1.");
  public static final Setting TLS_CLIENT_CA =
      setting(
          "tls-client-ca",
          Type.FILE,
          null,
          "Require a client certificate signed by one of these PEM CA certificates on both ports"
              + " (mutual TLS); needs tls-cert.");
  public static final Setting MANAGEMENT =
      setting(
          "management",
          Type.SWITCH,
          "false",
          "Serve the repository API (/v2/repository: index, load, unload), behind the management"
              + " token.");
  public static final Setting MANAGEMENT_TOKEN =
      new Setting(
          "management-token",
          Type.TEXT,
          null,
          "The repository API's bearer token, at least 16 characters; prefer the environment"
              + " variable or management-token-file (options show in process lists).",
          List.of(),
          false,
          true);
  public static final Setting MANAGEMENT_TOKEN_FILE =
      setting(
          "management-token-file",
          Type.FILE,
          null,
          "A file holding the management token (surrounding whitespace ignored); implies"
              + " management.");
  public static final Setting MODEL_MOUNT =
      new Setting(
          "model-mount",
          Type.TEXT,
          null,
          "NAME=DIR: serve the service file's remote model NAME from DIR, where the pod has it"
              + " mounted (an OCI image volume, KServe's storage initializer), instead of fetching"
              + " it from its source; repeatable.",
          List.of(),
          true,
          false);
  public static final Setting API_KEYS =
      setting(
          "api-keys",
          Type.FILE,
          null,
          "YAML file of API keys (name, key or sha256, roles). With it, inference and metadata"
              + " calls and the status page need 'Authorization: Bearer KEY' (or KEY as the"
              + " password of HTTP Basic, as a browser sends it) of a key with the infer role;"
              + " health, /metrics and /openapi.json stay open.");
  public static final Setting TRUST =
      new Setting(
          "trust",
          Type.FILE,
          null,
          "Public key (PEM, Ed25519 or ECDSA P-256) whose model signatures (berth sign) are"
              + " trusted; repeatable.",
          List.of(),
          true,
          false);
  public static final Setting REQUIRE_SIGNED =
      setting(
          "require-signed",
          Type.SWITCH,
          "false",
          "Refuse models without a berth.sig that verifies with a trust key.");

  /**
   * The longest a server waits, after its drain, to export the spans it still holds: a pod's
   * termination grace period covers it when tracing is on.
   */
  public static final int TRACING_FLUSH_SECONDS = 10;

  public static final Setting TRACING_ENDPOINT =
      setting(
          "tracing-endpoint",
          Type.TEXT,
          null,
          "Export a span per request (and its queue wait, pre-processing, engine call,"
              + " post-processing, generation) over OTLP to this collector, http(s)://HOST:PORT"
              + " (default: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT,"
              + " else no tracing).");
  public static final Setting TRACING_PROTOCOL =
      choice(
          "tracing-protocol",
          null,
          "OTLP protocol of the tracing endpoint (default: OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,"
              + " else OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf).",
          "http/protobuf",
          "grpc");
  public static final Setting TRACING_SAMPLE_RATIO =
      setting(
          "tracing-sample-ratio",
          Type.RATIO,
          null,
          "Share of requests traced, 0 to 1, where the client sent no sampling decision; a"
              + " client's traceparent decides for its own requests (default: OTEL_TRACES_SAMPLER"
              + " and OTEL_TRACES_SAMPLER_ARG, else every request).");
  public static final Setting TRACING_SERVICE_NAME =
      setting(
          "tracing-service-name",
          Type.TEXT,
          null,
          "service.name of the spans (default: OTEL_SERVICE_NAME, else service.name in"
              + " OTEL_RESOURCE_ATTRIBUTES, else the service file's name, else berth).");

  /** Every setting, in the order --help and the docs list them. */
  public static final List<Setting> ALL =
      List.of(
          HOST,
          PORT,
          GRPC_PORT,
          MAX_BODY_SIZE,
          DRAIN_TIMEOUT,
          POLL_REPOSITORY,
          MODEL_CACHE,
          MODEL_CACHE_SIZE,
          S3_ENDPOINT,
          MODEL_MOUNT,
          STRICT_READINESS,
          MAX_TENSOR_ELEMENTS,
          MAX_REQUEST_ROWS,
          MAX_STRING_SIZE,
          MAX_REQUEST_TIMEOUT,
          BODY_TIMEOUT,
          MAX_CONCURRENT_REQUESTS,
          MAX_GRPC_CALLS_PER_CONNECTION,
          MAX_HEADER_SIZE,
          LOG_FORMAT,
          LOG_LEVEL,
          TRACING_ENDPOINT,
          TRACING_PROTOCOL,
          TRACING_SAMPLE_RATIO,
          TRACING_SERVICE_NAME,
          EXECUTION_PROVIDER,
          MANAGEMENT,
          MANAGEMENT_TOKEN,
          MANAGEMENT_TOKEN_FILE,
          API_KEYS,
          TRUST,
          REQUIRE_SIGNED,
          TLS_CERT,
          TLS_KEY,
          TLS_CLIENT_CA);

  /** The settings whose files hold secrets: mounted into containers, never built into images. */
  public static final List<Setting> SECRET_FILES =
      List.of(MANAGEMENT_TOKEN_FILE, API_KEYS, TLS_CERT, TLS_KEY, TLS_CLIENT_CA);

  /** The setting named {@code name}, or null. */
  public static Setting named(String name) {
    for (Setting s : ALL) {
      if (s.name().equals(name)) {
        return s;
      }
    }
    return null;
  }

  /** A value a setting does not take; the message starts with the setting's name. */
  public static final class InvalidValue extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    private final transient Setting setting;
    private final String problem;

    InvalidValue(Setting setting, String problem) {
      super(setting.name() + " " + problem);
      this.setting = setting;
      this.problem = problem;
    }

    public Setting setting() {
      return setting;
    }

    /** What is wrong and what it takes, without the setting's name. */
    public String problem() {
      return problem;
    }
  }

  private static final ServeSettings NONE = new ServeSettings(Map.of());

  private final Map<Setting, String> values;

  private ServeSettings(Map<Setting, String> values) {
    Map<Setting, String> ordered = new LinkedHashMap<>();
    for (Setting s : ALL) { // in ALL's order whatever order they came in: command lines are stable
      if (values.containsKey(s)) {
        ordered.put(s, values.get(s));
      }
    }
    this.values = Collections.unmodifiableMap(ordered);
  }

  /** No setting given: every one at its default. */
  public static ServeSettings none() {
    return NONE;
  }

  /**
   * Settings with these values (a repeatable setting's values joined with commas).
   *
   * @throws InvalidValue naming the setting and what it expects
   */
  public static ServeSettings of(Map<Setting, String> values) {
    Map<Setting, String> checked = new LinkedHashMap<>();
    for (Setting s : ALL) {
      String v = values.get(s);
      if (v != null) {
        checked.put(s, checkAll(s, v));
      }
    }
    return new ServeSettings(checked);
  }

  /**
   * The settings an environment gives, from their {@code BERTH_...} variables (empty ones ignored).
   *
   * @throws IllegalArgumentException naming the variable and what it expects
   */
  public static ServeSettings fromEnvironment(Map<String, String> environment) {
    Map<Setting, String> found = new LinkedHashMap<>();
    for (Setting s : ALL) {
      String v = environment.get(s.environmentVariable());
      if (v != null && !v.isBlank()) {
        try {
          found.put(s, checkAll(s, v));
        } catch (InvalidValue e) {
          throw new IllegalArgumentException(s.environmentVariable() + " " + e.problem(), e);
        }
      }
    }
    return new ServeSettings(found);
  }

  private static String checkAll(Setting s, String value) {
    try {
      if (!s.repeatable()) {
        return s.check(value);
      }
      List<String> out = new ArrayList<>();
      for (String part : value.split(",")) {
        if (!part.isBlank()) {
          out.add(s.check(part));
        }
      }
      return String.join(",", out);
    } catch (IllegalArgumentException e) {
      throw new InvalidValue(s, e.getMessage());
    }
  }

  /**
   * A server for this machine alone: loopback, free ports picked at start, logs in {@code
   * logFormat}; lay a service's settings under it with {@link #over}.
   */
  public static ServeSettings onFreeLoopbackPorts(String logFormat) {
    return of(Map.of(HOST, "127.0.0.1", PORT, "0", GRPC_PORT, "0", LOG_FORMAT, logFormat));
  }

  /** These settings over {@code bottom}: bottom's values where these have none. */
  public ServeSettings over(ServeSettings bottom) {
    Map<Setting, String> merged = new LinkedHashMap<>(bottom.values);
    merged.putAll(values);
    return new ServeSettings(merged);
  }

  /** These settings with one more value. */
  public ServeSettings with(Setting s, String value) {
    Map<Setting, String> merged = new LinkedHashMap<>(values);
    if (value == null) {
      merged.remove(s);
    } else {
      merged.put(s, checkAll(s, value));
    }
    return new ServeSettings(merged);
  }

  /** These settings without the given ones. */
  public ServeSettings without(List<Setting> settings) {
    Map<Setting, String> kept = new LinkedHashMap<>(values);
    settings.forEach(kept::remove);
    return new ServeSettings(kept);
  }

  /** Whether a value was given (not the default). */
  public boolean isSet(Setting s) {
    return values.containsKey(s);
  }

  /** The values given, in {@link #ALL}'s order. */
  public Map<Setting, String> given() {
    return values;
  }

  /** The value, or the default (null when it has none). */
  public String text(Setting s) {
    return values.getOrDefault(s, s.defaultValue());
  }

  public int integer(Setting s) {
    long v = count(s);
    if (v > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(s.option() + " must be below 2147483648, not " + v);
    }
    return (int) v;
  }

  public long count(Setting s) {
    return Long.parseLong(Objects.requireNonNull(text(s), s.name()));
  }

  /** A size in bytes. */
  public long size(Setting s) {
    return parseSize(text(s));
  }

  /** A duration, or null when unset and without default. */
  public Duration duration(Setting s) {
    String t = text(s);
    return t == null ? null : ConfigReader.parseDuration(t).orElseThrow();
  }

  public boolean flag(Setting s) {
    return Boolean.parseBoolean(text(s));
  }

  /** A file, or null. */
  public Path path(Setting s) {
    String t = text(s);
    return t == null ? null : Path.of(t);
  }

  /** A repeatable file setting's files. */
  public List<Path> paths(Setting s) {
    String t = text(s);
    if (t == null || t.isEmpty()) {
      return List.of();
    }
    return Arrays.stream(t.split(",")).map(Path::of).toList();
  }

  /**
   * The command line that gives these values to {@code berth serve}: {@code --NAME=VALUE} for each
   * value given, repeated for a repeatable one. Secret values are left out.
   */
  public List<String> arguments() {
    List<String> out = new ArrayList<>();
    for (Map.Entry<Setting, String> e : values.entrySet()) {
      Setting s = e.getKey();
      if (s.secret()) {
        continue;
      }
      if (s.repeatable()) {
        for (String part : e.getValue().split(",")) {
          out.add(s.option() + "=" + part);
        }
      } else {
        out.add(s.option() + "=" + e.getValue());
      }
    }
    return out;
  }

  /**
   * Parses sizes such as {@code 512KiB}, {@code 32MiB}, {@code 1GiB}, {@code 16kB} or plain bytes.
   *
   * @throws IllegalArgumentException for anything else, or 0
   */
  public static long parseSize(String value) {
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
        throw new NumberFormatException();
      }
      return Math.multiplyExact(n, unit);
    } catch (RuntimeException e) {
      throw new IllegalArgumentException(
          "must be a size such as 512KiB, 32MiB or 1GiB, not '" + value + "'");
    }
  }
}
