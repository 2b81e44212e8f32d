package dev.berth.server;

import dev.berth.api.DataType;
import dev.berth.api.InferenceRequest;
import dev.berth.api.PayloadTooLargeException;
import dev.berth.api.Tensor;
import dev.berth.runtime.ServeSettings;
import java.time.Duration;
import java.util.Arrays;
import java.util.Objects;

/**
 * Server-wide limits on what one client may ask of the server, the same over REST and gRPC. The
 * request body size stays a setting of its own ({@link BerthServer.Builder#maxBodyBytes}); these
 * bound what a body that fits may still ask for, and how long and how many.
 *
 * <pre>{@code
 * ServerLimits limits = ServerLimits.builder().maxTensorElements(1 << 20).build();
 * }</pre>
 */
public final class ServerLimits {
  /** The settings' defaults, where every default below comes from ({@link ServeSettings}). */
  private static final ServeSettings DEFAULTS_GIVEN = ServeSettings.none();

  /** Default most tensor elements in one request, all inputs together: 16Mi. */
  public static final long DEFAULT_MAX_TENSOR_ELEMENTS =
      DEFAULTS_GIVEN.count(ServeSettings.MAX_TENSOR_ELEMENTS);

  /** Default most rows (first-dimension entries) in one request. */
  public static final long DEFAULT_MAX_REQUEST_ROWS =
      DEFAULTS_GIVEN.count(ServeSettings.MAX_REQUEST_ROWS);

  /** Default longest BYTES element (e.g. one sentence or one image file): 8 MiB. */
  public static final long DEFAULT_MAX_STRING_BYTES =
      DEFAULTS_GIVEN.size(ServeSettings.MAX_STRING_SIZE);

  /** Default cap on any request's deadline, whatever a model.yaml or gRPC client asks. */
  public static final Duration DEFAULT_MAX_REQUEST_TIMEOUT =
      DEFAULTS_GIVEN.duration(ServeSettings.MAX_REQUEST_TIMEOUT);

  /** Default most requests handled at once on the REST port; beyond it, 503 with Retry-After. */
  public static final int DEFAULT_MAX_CONCURRENT_REQUESTS =
      DEFAULTS_GIVEN.integer(ServeSettings.MAX_CONCURRENT_REQUESTS);

  /** Default most gRPC calls at once on one HTTP/2 connection. */
  public static final int DEFAULT_MAX_CONCURRENT_CALLS_PER_CONNECTION =
      DEFAULTS_GIVEN.integer(ServeSettings.MAX_GRPC_CALLS_PER_CONNECTION);

  /** Default largest request head (REST headers, gRPC metadata): 16 KiB. */
  public static final int DEFAULT_MAX_HEADER_BYTES =
      (int) DEFAULTS_GIVEN.size(ServeSettings.MAX_HEADER_SIZE);

  /** Default longest time a client may take to send one request body. */
  public static final Duration DEFAULT_BODY_TIMEOUT =
      DEFAULTS_GIVEN.duration(ServeSettings.BODY_TIMEOUT);

  /** Defaults everywhere. */
  public static final ServerLimits DEFAULTS = builder().build();

  private final long maxTensorElements;
  private final long maxRequestRows;
  private final long maxStringBytes;
  private final Duration maxRequestTimeout;
  private final int maxConcurrentRequests;
  private final int maxConcurrentCallsPerConnection;
  private final int maxHeaderBytes;
  private final Duration bodyTimeout;

  private ServerLimits(Builder b) {
    this.maxTensorElements = b.maxTensorElements;
    this.maxRequestRows = b.maxRequestRows;
    this.maxStringBytes = b.maxStringBytes;
    this.maxRequestTimeout = b.maxRequestTimeout;
    this.maxConcurrentRequests = b.maxConcurrentRequests;
    this.maxConcurrentCallsPerConnection = b.maxConcurrentCallsPerConnection;
    this.maxHeaderBytes = b.maxHeaderBytes;
    this.bodyTimeout = b.bodyTimeout;
  }

  public static Builder builder() {
    return new Builder();
  }

  /**
   * The limits {@code berth serve}'s settings give.
   *
   * @throws IllegalArgumentException naming the setting whose value is out of range
   */
  public static ServerLimits from(ServeSettings settings) {
    long header = settings.size(ServeSettings.MAX_HEADER_SIZE);
    if (header > Integer.MAX_VALUE) {
      throw new IllegalArgumentException(
          ServeSettings.MAX_HEADER_SIZE.option() + " must be below 2GiB, not " + header);
    }
    return builder()
        .maxTensorElements(settings.count(ServeSettings.MAX_TENSOR_ELEMENTS))
        .maxRequestRows(settings.count(ServeSettings.MAX_REQUEST_ROWS))
        .maxStringBytes(settings.size(ServeSettings.MAX_STRING_SIZE))
        .maxRequestTimeout(settings.duration(ServeSettings.MAX_REQUEST_TIMEOUT))
        .bodyTimeout(settings.duration(ServeSettings.BODY_TIMEOUT))
        .maxConcurrentRequests(settings.integer(ServeSettings.MAX_CONCURRENT_REQUESTS))
        .maxConcurrentCallsPerConnection(
            settings.integer(ServeSettings.MAX_GRPC_CALLS_PER_CONNECTION))
        .maxHeaderBytes((int) header)
        .build();
  }

  public long maxTensorElements() {
    return maxTensorElements;
  }

  public long maxRequestRows() {
    return maxRequestRows;
  }

  public long maxStringBytes() {
    return maxStringBytes;
  }

  public Duration maxRequestTimeout() {
    return maxRequestTimeout;
  }

  public int maxConcurrentRequests() {
    return maxConcurrentRequests;
  }

  public int maxConcurrentCallsPerConnection() {
    return maxConcurrentCallsPerConnection;
  }

  public int maxHeaderBytes() {
    return maxHeaderBytes;
  }

  public Duration bodyTimeout() {
    return bodyTimeout;
  }

  /** Settings of {@link ServerLimits}; every one must be positive. */
  public static final class Builder {
    private long maxTensorElements = DEFAULT_MAX_TENSOR_ELEMENTS;
    private long maxRequestRows = DEFAULT_MAX_REQUEST_ROWS;
    private long maxStringBytes = DEFAULT_MAX_STRING_BYTES;
    private Duration maxRequestTimeout = DEFAULT_MAX_REQUEST_TIMEOUT;
    private int maxConcurrentRequests = DEFAULT_MAX_CONCURRENT_REQUESTS;
    private int maxConcurrentCallsPerConnection = DEFAULT_MAX_CONCURRENT_CALLS_PER_CONNECTION;
    private int maxHeaderBytes = DEFAULT_MAX_HEADER_BYTES;
    private Duration bodyTimeout = DEFAULT_BODY_TIMEOUT;

    private Builder() {}

    /** Most tensor elements in one request, all inputs together; more get 413. */
    public Builder maxTensorElements(long elements) {
      this.maxTensorElements = positive(elements, "maxTensorElements");
      return this;
    }

    /** Most rows (first-dimension entries) of any input of one request; more get 413. */
    public Builder maxRequestRows(long rows) {
      this.maxRequestRows = positive(rows, "maxRequestRows");
      return this;
    }

    /** Longest BYTES element, in bytes; longer ones get 413. */
    public Builder maxStringBytes(long bytes) {
      this.maxStringBytes = positive(bytes, "maxStringBytes");
      return this;
    }

    /** Cap on every request's deadline (model.yaml's request-timeout, a gRPC deadline). */
    public Builder maxRequestTimeout(Duration timeout) {
      this.maxRequestTimeout = positive(timeout, "maxRequestTimeout");
      return this;
    }

    /** Most REST requests handled at once; beyond it, 503 with Retry-After. */
    public Builder maxConcurrentRequests(int requests) {
      this.maxConcurrentRequests = (int) positive(requests, "maxConcurrentRequests");
      return this;
    }

    /** Most gRPC calls at once on one connection; beyond it, the stream is refused. */
    public Builder maxConcurrentCallsPerConnection(int calls) {
      this.maxConcurrentCallsPerConnection =
          (int) positive(calls, "maxConcurrentCallsPerConnection");
      return this;
    }

    /** Largest request head: REST headers, gRPC metadata. */
    public Builder maxHeaderBytes(int bytes) {
      this.maxHeaderBytes = (int) positive(bytes, "maxHeaderBytes");
      return this;
    }

    /**
     * Longest time a REST client may take to send one request body; a slower one (a stalled or
     * trickling client) has its connection closed, so it holds no handler for longer.
     */
    public Builder bodyTimeout(Duration timeout) {
      this.bodyTimeout = positive(timeout, "bodyTimeout");
      return this;
    }

    public ServerLimits build() {
      return new ServerLimits(this);
    }

    private static long positive(long value, String name) {
      if (value <= 0) {
        throw new IllegalArgumentException(name + " must be positive, got " + value);
      }
      return value;
    }

    private static Duration positive(Duration value, String name) {
      Objects.requireNonNull(value, name);
      if (value.isZero() || value.isNegative()) {
        throw new IllegalArgumentException(name + " must be positive, got " + value);
      }
      return value;
    }
  }

  /**
   * Checks a decoded request against the size limits, before it is queued.
   *
   * @throws PayloadTooLargeException naming the input, the limit and the option that raises it
   */
  void check(InferenceRequest request) {
    long elements = 0;
    for (Tensor t : request.inputs()) {
      if (t.rank() > 0 && t.dim(0) > maxRequestRows) {
        throw new PayloadTooLargeException(
            "input '"
                + t.name()
                + "' has "
                + t.dim(0)
                + " rows (shape "
                + Arrays.toString(t.shape())
                + "), more than the limit of "
                + maxRequestRows
                + " rows a request; split it into smaller requests or raise --max-request-rows");
      }
      elements += t.elementCount();
      if (elements > maxTensorElements) {
        throw new PayloadTooLargeException(
            "the request's inputs hold "
                + elements
                + " elements"
                + (request.inputs().size() > 1 ? " up to input '" + t.name() + "'" : "")
                + ", more than the limit of "
                + maxTensorElements
                + "; send fewer rows per request or raise --max-tensor-elements");
      }
      if (t.datatype() == DataType.BYTES) {
        java.util.List<byte[]> values = t.elements();
        for (int i = 0; i < values.size(); i++) {
          if (values.get(i).length > maxStringBytes) {
            throw new PayloadTooLargeException(
                "input '"
                    + t.name()
                    + "': BYTES element "
                    + i
                    + " has "
                    + values.get(i).length
                    + " bytes, more than the limit of "
                    + maxStringBytes
                    + "; shorten it or raise --max-string-size");
          }
        }
      }
    }
  }
}
