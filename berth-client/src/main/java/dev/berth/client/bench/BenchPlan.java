package dev.berth.client.bench;

import dev.berth.api.BerthException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;

/**
 * What one {@code berth bench} run does: the server and model, how requests are made, and the steps
 * of load. Built with {@link #builder(URI, String)}; {@link Bench#run} carries it out.
 */
public final class BenchPlan {
  public static final Duration DEFAULT_DURATION = Duration.ofSeconds(20);
  public static final Duration DEFAULT_WARMUP = Duration.ofSeconds(2);
  public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(30);
  public static final List<Integer> DEFAULT_CONCURRENCY = List.of(1, 4, 16, 64);
  public static final int DEFAULT_MAX_CONNECTIONS = 256;
  public static final long DEFAULT_SEED = 1;

  /** With {@link Protocol#OPENAI}: tokens each generated request asks for. */
  public static final int DEFAULT_MAX_TOKENS = 64;

  /** With {@link Protocol#OPENAI}: words of each generated prompt. */
  public static final int DEFAULT_PROMPT_WORDS = 48;

  /** Berth's gRPC port unless told otherwise. */
  public static final int DEFAULT_GRPC_PORT = 8081;

  private final URI url;
  private final String host;
  private final int port;
  private final String model;
  private final Protocol protocol;
  private final List<LoadStep> steps;
  private final Duration duration;
  private final Duration warmup;
  private final Duration timeout;
  private final int batchSize;
  private final int maxConnections;
  private final Path data;
  private final List<String> inputs;
  private final long seed;
  private final int grpcPort;
  private final int maxTokens;
  private final int promptWords;

  private BenchPlan(Builder b) {
    this.url = b.url;
    this.host = b.url.getHost();
    this.port = b.url.getPort() < 0 ? 80 : b.url.getPort();
    this.model = b.model;
    this.protocol = b.protocol;
    this.steps = List.copyOf(b.steps);
    this.duration = b.duration;
    this.warmup = b.warmup;
    this.timeout = b.timeout;
    this.batchSize = b.batchSize;
    this.maxConnections = b.maxConnections;
    this.data = b.data;
    this.inputs = List.copyOf(b.inputs);
    this.seed = b.seed;
    this.grpcPort = b.grpcPort;
    this.maxTokens = b.maxTokens;
    this.promptWords = b.promptWords;
  }

  /**
   * A plan against the server at {@code url} (e.g. {@code http://127.0.0.1:8080}) for {@code
   * model}: by default closed-loop steps at concurrency 1, 4, 16 and 64 over OIP v2 JSON.
   */
  public static Builder builder(URI url, String model) {
    return new Builder(url, model);
  }

  /** The server's base URL, without a trailing slash. */
  public URI url() {
    return url;
  }

  String host() {
    return host;
  }

  int port() {
    return port;
  }

  /** {@code host:port} as the Host header carries it. */
  String authority() {
    return url.getRawAuthority();
  }

  public String model() {
    return model;
  }

  public Protocol protocol() {
    return protocol;
  }

  public List<LoadStep> steps() {
    return steps;
  }

  /** Measured time of each step. */
  public Duration duration() {
    return duration;
  }

  /** Load before each step's measured time, not counted. */
  public Duration warmup() {
    return warmup;
  }

  /** Longest wait for one answer (and for a connection); past it the request is a timeout error. */
  public Duration timeout() {
    return timeout;
  }

  /** Rows per generated request (the size of each input's -1 first dimension). */
  public int batchSize() {
    return batchSize;
  }

  /** Most connections an open-loop step opens. */
  public int maxConnections() {
    return maxConnections;
  }

  /** A file of request bodies to send instead of generated ones. */
  public Optional<Path> data() {
    return Optional.ofNullable(data);
  }

  /** The inputs generated requests carry; empty: chosen from the model's metadata. */
  public List<String> inputs() {
    return inputs;
  }

  /** Seed of the generator of random input values. */
  public long seed() {
    return seed;
  }

  /** With {@link Protocol#GRPC}: the port of the server's gRPC service, on the URL's host. */
  public int grpcPort() {
    return grpcPort;
  }

  /** With {@link Protocol#OPENAI}: {@code max_tokens} of each generated request. */
  public int maxTokens() {
    return maxTokens;
  }

  /** With {@link Protocol#OPENAI}: words of each generated prompt. */
  public int promptWords() {
    return promptWords;
  }

  /** Builds a {@link BenchPlan}; every setter checks its value, {@link #build()} the whole. */
  public static final class Builder {
    private final URI url;
    private final String model;
    private Protocol protocol = Protocol.REST_JSON;
    private final List<LoadStep> steps = new ArrayList<>();
    private Duration duration = DEFAULT_DURATION;
    private Duration warmup = DEFAULT_WARMUP;
    private Duration timeout = DEFAULT_TIMEOUT;
    private int batchSize = 1;
    private int maxConnections = DEFAULT_MAX_CONNECTIONS;
    private Path data;
    private final List<String> inputs = new ArrayList<>();
    private long seed = DEFAULT_SEED;
    private int grpcPort = DEFAULT_GRPC_PORT;
    private int maxTokens = DEFAULT_MAX_TOKENS;
    private int promptWords = DEFAULT_PROMPT_WORDS;

    private Builder(URI url, String model) {
      this.url = baseUrl(url);
      this.model = Objects.requireNonNull(model, "model");
      if (model.isBlank() || model.contains("/")) {
        throw new BerthException("'" + model + "' is not a model name");
      }
    }

    public Builder protocol(Protocol protocol) {
      this.protocol = Objects.requireNonNull(protocol, "protocol");
      return this;
    }

    /** Replaces the steps. */
    public Builder steps(List<LoadStep> steps) {
      this.steps.clear();
      this.steps.addAll(steps);
      return this;
    }

    public Builder duration(Duration duration) {
      if (duration.isNegative() || duration.isZero()) {
        throw new BerthException("--duration must be more than 0, e.g. 20s");
      }
      this.duration = duration;
      return this;
    }

    public Builder warmup(Duration warmup) {
      if (warmup.isNegative()) {
        throw new BerthException("--warmup must be 0 or more, e.g. 2s");
      }
      this.warmup = warmup;
      return this;
    }

    public Builder timeout(Duration timeout) {
      if (timeout.toMillis() < 1) {
        throw new BerthException("--timeout must be at least 1ms, e.g. 30s");
      }
      this.timeout = timeout;
      return this;
    }

    public Builder batchSize(int rows) {
      if (rows < 1) {
        throw new BerthException("--batch-size must be 1 or more, not " + rows);
      }
      this.batchSize = rows;
      return this;
    }

    public Builder maxConnections(int connections) {
      if (connections < 1) {
        throw new BerthException("--max-connections must be 1 or more, not " + connections);
      }
      this.maxConnections = connections;
      return this;
    }

    public Builder data(Path file) {
      if (file != null && !Files.isRegularFile(file)) {
        throw new BerthException(
            "--data "
                + file
                + " is not a file; give a JSON file with one request body, or JSONL with one per"
                + " line");
      }
      this.data = file;
      return this;
    }

    public Builder inputs(List<String> names) {
      this.inputs.clear();
      this.inputs.addAll(names);
      return this;
    }

    public Builder seed(long seed) {
      this.seed = seed;
      return this;
    }

    public Builder grpcPort(int port) {
      if (port < 1 || port > 65_535) {
        throw new BerthException("--grpc-port must be a port from 1 to 65535, not " + port);
      }
      this.grpcPort = port;
      return this;
    }

    public Builder maxTokens(int tokens) {
      if (tokens < 1) {
        throw new BerthException("--max-tokens must be 1 or more, not " + tokens);
      }
      this.maxTokens = tokens;
      return this;
    }

    public Builder promptWords(int words) {
      if (words < 1) {
        throw new BerthException("--prompt-words must be 1 or more, not " + words);
      }
      this.promptWords = words;
      return this;
    }

    public BenchPlan build() {
      if (steps.isEmpty()) {
        DEFAULT_CONCURRENCY.forEach(c -> steps.add(LoadStep.closed(c)));
      }
      if (data != null && !inputs.isEmpty()) {
        throw new BerthException("--input chooses generated inputs; a --data file brings its own");
      }
      return new BenchPlan(this);
    }

    private static URI baseUrl(URI url) {
      String scheme = url.getScheme() == null ? "" : url.getScheme().toLowerCase(Locale.ROOT);
      if (scheme.equals("https")) {
        throw new BerthException(
            "https is not supported by berth bench yet; bench the server over plain http");
      }
      if (!scheme.equals("http") || url.getHost() == null) {
        throw new BerthException(
            "'" + url + "' is not a server URL; give one like http://127.0.0.1:8080");
      }
      String path = url.getRawPath() == null ? "" : url.getRawPath();
      while (path.endsWith("/")) {
        path = path.substring(0, path.length() - 1);
      }
      if (!path.isEmpty()) {
        throw new BerthException(
            "give the server's base URL (e.g. http://"
                + url.getRawAuthority()
                + "), not a path: berth bench finds /v2/models/M itself");
      }
      return URI.create("http://" + url.getRawAuthority());
    }
  }
}
