package dev.berth.server;

import dev.berth.api.PermissionDeniedException;
import dev.berth.api.UnauthenticatedException;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.InflightTracker;
import io.helidon.common.tls.Tls;
import io.helidon.common.tls.TlsClientAuth;
import io.helidon.http.HeaderName;
import io.helidon.http.HeaderNames;
import io.helidon.http.Method;
import io.helidon.webserver.WebServer;
import io.helidon.webserver.http.ServerRequest;
import io.helidon.webserver.http.ServerResponse;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Berth's HTTP front: Open Inference Protocol v2 REST, TensorFlow Serving REST, health and
 * Prometheus metrics over one {@link InferenceService}. Handlers run on virtual threads, so waiting
 * for a batch to come back holds no platform thread.
 *
 * <pre>{@code
 * BerthServer server = BerthServer.builder(service).host("127.0.0.1").port(8080).build().start();
 * }</pre>
 */
public final class BerthServer implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(BerthServer.class.getName());
  private static final String JSON = "application/json";
  private static final HeaderName REQUEST_ID = HeaderNames.create("X-Request-Id");
  private static final HeaderName SEC_FETCH_SITE = HeaderNames.create("Sec-Fetch-Site");
  private static final HeaderName INFERENCE_HEADER_LENGTH =
      HeaderNames.create("Inference-Header-Content-Length");

  private static final int CLIENT_CLOSED_REQUEST = CallPolicy.CLIENT_CLOSED_REQUEST;

  /** Default largest request body: 32 MiB. */
  public static final long DEFAULT_MAX_BODY_BYTES =
      dev.berth.runtime.ServeSettings.none().size(dev.berth.runtime.ServeSettings.MAX_BODY_SIZE);

  private final InferenceService service;
  private final String host;
  private final int requestedPort;
  private final long maxBodyBytes;
  private final ServerLimits limits;
  private final String version;
  private final Access access;
  private final TlsCredentials tls;
  private final Tracing tracing;
  private final InflightTracker exchanges = new InflightTracker();
  private final CallPolicy policy;
  private final Route.Table routes;
  private WebServer server;
  private volatile int boundPort; // for the calls' spans: written once started, read by handlers

  private BerthServer(Builder b) {
    this.service = b.service;
    this.host = b.host;
    this.requestedPort = b.port;
    this.maxBodyBytes = b.maxBodyBytes;
    this.limits = b.limits;
    this.version = b.version;
    this.access = b.access;
    this.tls = b.tls;
    this.tracing = b.tracing;
    this.policy = new CallPolicy(service, limits, access, tracing);
    this.routes = routes(service, version);
  }

  /**
   * Every REST endpoint, by the adapter that answers it; inference routes first, as the busiest.
   */
  static Route.Table routes(InferenceService service, String version) {
    List<Route> all = new ArrayList<>();
    all.addAll(new OipRest(version).routes());
    all.addAll(new TfServingRest().routes());
    all.addAll(new OpenAiRest(service).routes());
    all.addAll(new HealthRest(service).routes());
    all.addAll(new RepositoryRest().routes());
    all.addAll(new StatusPage(service, version).routes());
    return new Route.Table(all);
  }

  public static Builder builder(InferenceService service) {
    return new Builder(service);
  }

  /** Settings of a {@link BerthServer}. */
  public static final class Builder {
    private final InferenceService service;
    private String host = "127.0.0.1";
    private int port = 8080;
    private long maxBodyBytes = DEFAULT_MAX_BODY_BYTES;
    private ServerLimits limits = ServerLimits.DEFAULTS;
    private String version = "dev";
    private Access access = Access.open();
    private TlsCredentials tls;
    private Tracing tracing = Tracing.off();

    private Builder(InferenceService service) {
      this.service = Objects.requireNonNull(service);
    }

    /** Address to bind; default 127.0.0.1. */
    public Builder host(String host) {
      this.host = host;
      return this;
    }

    /** Port to bind; 0 picks a free one; default 8080. */
    public Builder port(int port) {
      this.port = port;
      return this;
    }

    /** Largest request body accepted; larger ones get 413. Default 32 MiB. */
    public Builder maxBodyBytes(long bytes) {
      this.maxBodyBytes = bytes;
      return this;
    }

    /**
     * Limits on tensor sizes, deadlines, concurrency and headers; default {@link
     * ServerLimits#DEFAULTS}.
     */
    public Builder limits(ServerLimits limits) {
      this.limits = Objects.requireNonNull(limits);
      return this;
    }

    /** Version reported by {@code GET /v2}. */
    public Builder version(String version) {
      this.version = version;
      return this;
    }

    /**
     * Who may call what: the management token (which also turns the repository API on) and API
     * keys. Default {@link Access#open()}: inference open, repository API off.
     */
    public Builder access(Access access) {
      this.access = Objects.requireNonNull(access);
      return this;
    }

    /**
     * Serve HTTPS with these credentials: HTTP/2 (ALPN {@code h2}) or HTTP/1.1, client certificates
     * required when the credentials name client CAs. Default: plain HTTP/1.1.
     */
    public Builder tls(TlsCredentials tls) {
      this.tls = tls;
      return this;
    }

    /**
     * Record a server span per request, and its steps, as {@code tracing} says; default {@link
     * Tracing#off()}. The caller closes it once the server has stopped.
     */
    public Builder tracing(Tracing tracing) {
      this.tracing = Objects.requireNonNull(tracing);
      return this;
    }

    public BerthServer build() {
      return new BerthServer(this);
    }
  }

  /**
   * Binds the socket and starts answering.
   *
   * @throws java.io.UncheckedIOException when the address cannot be bound (e.g. the port is in use)
   */
  public BerthServer start() {
    var config =
        WebServer.builder()
            .host(host)
            .port(requestedPort)
            .shutdownHook(false)
            .maxConcurrentRequests(limits.maxConcurrentRequests())
            .directHandlers(JsonDirectHandler.handlers())
            .routing(r -> r.any(this::handle));
    // HTTP/1.1 gets the header limits on both branches, through a selector whose connections let
    // a waiting handler see its client leave (ClientConnections).
    io.helidon.webserver.http1.Http1Config http1 =
        io.helidon.webserver.http1.Http1Config.builder()
            .maxHeadersSize(limits.maxHeaderBytes())
            .build();
    if (tls != null) {
      config.tls(
          Tls.builder()
              .sslContext(tls.sslContext())
              .clientAuth(
                  tls.requiresClientCertificate() ? TlsClientAuth.REQUIRED : TlsClientAuth.NONE)
              .build());
      config
          .protocolsDiscoverServices(false)
          .addProtocol(io.helidon.webserver.http2.Http2Config.create())
          .addConnectionSelector(ClientConnections.http1(http1));
    } else {
      // HTTP/2 only over TLS: no cleartext h2c (upgrade or prior knowledge) on a plain port
      config.protocolsDiscoverServices(false).addConnectionSelector(ClientConnections.http1(http1));
    }
    WebServer started = config.build().start();
    if (!started.isRunning() || started.port() < 0) {
      // the web server logs a listener it could not start and carries on without it
      started.stop();
      throw new java.io.UncheckedIOException(bindFailure());
    }
    server = started;
    boundPort = started.port();
    return this;
  }

  /** Why the address cannot be bound, as the operating system says it. */
  private java.io.IOException bindFailure() {
    try (java.net.ServerSocket probe = new java.net.ServerSocket()) {
      probe.bind(new java.net.InetSocketAddress(host, requestedPort));
      return new java.net.BindException("the web server could not bind " + host);
    } catch (java.io.IOException e) {
      return e;
    }
  }

  /** The bound port. */
  public int port() {
    return server.port();
  }

  public String host() {
    return host;
  }

  /** {@code https} with TLS, else {@code http}. */
  public String scheme() {
    return tls == null ? "http" : "https";
  }

  public InferenceService service() {
    return service;
  }

  /**
   * Graceful stop: readiness turns false and new requests are refused, requests already accepted
   * finish (up to {@code drainTimeout}), then the socket closes and the engines are freed.
   *
   * @return whether every in-flight request finished in time
   */
  public boolean shutdown(Duration drainTimeout) {
    long until = System.nanoTime() + drainTimeout.toNanos();
    boolean drained = service.drain(drainTimeout);
    // Answers computed are not answers delivered: wait for every handler to finish writing.
    drained &= exchanges.awaitIdle(Duration.ofNanos(Math.max(0, until - System.nanoTime())));
    if (server != null) {
      server.stop();
    }
    service.close();
    return drained;
  }

  @Override
  public void close() {
    shutdown(Duration.ofSeconds(30));
  }

  /** HTTP exchanges being handled now (their handler started and has not returned). */
  int exchangesInFlight() {
    return exchanges.count();
  }

  private void handle(ServerRequest req, ServerResponse res) {
    exchanges.begin();
    try {
      handle(req, res, req.prologue().method(), req.path().rawPath());
    } finally {
      exchanges.end();
    }
  }

  /**
   * Every exchange: open its call, find its declared route, check its credential, run its handler,
   * answer a failure in the route's own error shape, close the call.
   */
  private void handle(ServerRequest req, ServerResponse res, Method method, String path) {
    Call call =
        policy.begin(
            req.headers().first(REQUEST_ID).orElse(null),
            method.text(),
            path,
            false,
            () -> String.valueOf(req.remotePeer().address()),
            policy.tracing() && routes.traced(method, path) ? req.headers() : null,
            HEADERS,
            scheme(),
            boundPort);
    res.header(REQUEST_ID, call.id);
    res.beforeSend(
        () -> {
          int code = res.status().code();
          policy.answering(
              call, Integer.toString(code), code == 401 || code == 403, () -> authorization(req));
        });
    Route route = null;
    int status = 500; // what the call is closed with should even its error answer fail to go out
    try {
      Route.Match match;
      try {
        match = routes.match(method, path);
      } catch (NoSuchEndpointException | MethodNotAllowedException unrouted) {
        // a path under an API's prefix is that API's: its caller is checked (and audited) first
        policy.authorize(call, routes.roleOf(path), authorization(req));
        throw unrouted;
      }
      route = match.route();
      if (call.span != null) {
        call.span.route(method.text(), route.path());
      }
      call.protocol = route.protocol();
      call.target(match.model(), match.version());
      policy.authorize(call, route.role(), authorization(req));
      checkSameOrigin(req, method, route);
      status =
          route.handler().handle(new RestExchange(req, res, call, match, policy, maxBodyBytes));
    } catch (ClientConnections.ClientGoneException gone) {
      status = CLIENT_CLOSED_REQUEST;
      call.error = gone.getMessage();
      try {
        RestExchange.send(
            res,
            status,
            RestExchange.JSON,
            HttpErrors.errorBody(gone.getMessage())); // to no one, most likely
      } catch (RuntimeException unsent) {
        LOG.log(Level.FINE, "request " + call.id + ": the client left", unsent);
      }
    } catch (Throwable t) {
      CallPolicy.Failure failure = policy.fail(call, t);
      HttpErrors.Answer answer = failure.http();
      if (failure.error() instanceof UnauthenticatedException) {
        res.header(
            HeaderNames.WWW_AUTHENTICATE,
            route != null && route.browser()
                ? "Basic realm=\"berth\", charset=\"UTF-8\""
                : "Bearer realm=\"berth\"");
      }
      if (answer.retryAfter() != null) {
        res.header(
            HeaderNames.RETRY_AFTER, Long.toString(Math.max(1, answer.retryAfter().toSeconds())));
      }
      Route.ErrorBody body = route == null ? Route.JSON_ERROR : route.errors();
      status = answer.status();
      RestExchange.send(res, status, RestExchange.JSON, body.write(failure));
    } finally {
      // closed once, however the answer went: its metric, span and log line are never left open
      policy.finish(call, Integer.toString(status));
    }
  }

  /** Reads a REST request's headers for the trace context (only with tracing on). */
  private static final io.opentelemetry.context.propagation.TextMapGetter<io.helidon.http.Headers>
      HEADERS =
          new io.opentelemetry.context.propagation.TextMapGetter<>() {
            @Override
            public String get(io.helidon.http.Headers headers, String key) {
              return headers == null ? null : headers.first(HeaderNames.create(key)).orElse(null);
            }
          };

  private static String authorization(ServerRequest req) {
    return req.headers().first(HeaderNames.AUTHORIZATION).orElse(null);
  }

  /**
   * A browser that has HTTP Basic credentials for this server sends them with every request to it,
   * also with those another site's page makes (a form posted across sites). A call that does
   * something (not a GET) with such credentials must come from this server's own pages: a browser
   * says where a request comes from in {@code Sec-Fetch-Site}, or else in {@code Origin}. Clients
   * other than browsers send neither and are not held to this.
   */
  private static void checkSameOrigin(ServerRequest req, Method method, Route route) {
    if (route.role() == null
        || method.equals(Method.GET)
        || !Access.sentByBrowser(authorization(req))) {
      return;
    }
    String site = req.headers().first(SEC_FETCH_SITE).orElse(null);
    String origin = req.headers().first(HeaderNames.ORIGIN).orElse(null);
    boolean foreign =
        site != null
            ? !site.equals("same-origin")
            : origin != null
                && !origin.equalsIgnoreCase(
                    (req.isSecure() ? "https://" : "http://") + req.authority());
    if (foreign) {
      throw new PermissionDeniedException(
          "HTTP Basic credentials are taken for calls other than GET only from this server's own"
              + " pages (same origin), since a browser sends them with any site's requests; send"
              + " the key as 'Authorization: Bearer <key>'");
    }
  }

  /** The readiness reason while loading is over but a served model has no ready version. */
  public static final String MODELS_NOT_READY =
      "a served model has no ready version (strict readiness); the server log says why";
}
