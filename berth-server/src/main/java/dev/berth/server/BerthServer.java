package dev.berth.server;

import com.fasterxml.jackson.core.JsonGenerator;
import dev.berth.api.BerthException;
import dev.berth.api.InferenceResponse;
import dev.berth.api.InvalidInputException;
import dev.berth.api.ModelNotFoundException;
import dev.berth.api.PayloadTooLargeException;
import dev.berth.api.UnauthenticatedException;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.InflightTracker;
import dev.berth.runtime.ModelRepository;
import dev.berth.runtime.ModelStatus;
import dev.berth.runtime.ServingMetrics.ModelState;
import io.helidon.common.tls.Tls;
import io.helidon.common.tls.TlsClientAuth;
import io.helidon.http.HeaderName;
import io.helidon.http.HeaderNames;
import io.helidon.http.Method;
import io.helidon.webserver.WebServer;
import io.helidon.webserver.http.ServerRequest;
import io.helidon.webserver.http.ServerResponse;
import io.prometheus.metrics.expositionformats.PrometheusTextFormatWriter;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.OptionalLong;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ThreadLocalRandom;
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
  private static final HeaderName INFERENCE_HEADER_LENGTH =
      HeaderNames.create("Inference-Header-Content-Length");

  /** The status recorded, as by nginx, for a request whose client left before its answer. */
  static final int CLIENT_CLOSED_REQUEST = 499;

  /** Default largest request body: 32 MiB. */
  public static final long DEFAULT_MAX_BODY_BYTES = 32L << 20;

  private final InferenceService service;
  private final String host;
  private final int requestedPort;
  private final long maxBodyBytes;
  private final ServerLimits limits;
  private final String version;
  private final Access access;
  private final TlsCredentials tls;
  private final PrometheusTextFormatWriter metricsWriter = PrometheusTextFormatWriter.create();
  private final InflightTracker exchanges = new InflightTracker();
  private final OpenAiApi openAi;
  private WebServer server;

  private BerthServer(Builder b) {
    this.service = b.service;
    this.host = b.host;
    this.requestedPort = b.port;
    this.maxBodyBytes = b.maxBodyBytes;
    this.limits = b.limits;
    this.version = b.version;
    this.access = b.access;
    this.tls = b.tls;
    this.openAi = new OpenAiApi(service, request -> infer(request, null));
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

  /** What one exchange was about, for the access log and metrics. */
  private static final class Exchange {
    final String id;
    String model;
    String version;
    String protocol; // set for inference calls only
    String caller; // who, once a credential was checked
    boolean audited; // a management call: logged to the audit log whatever its outcome
    boolean openAi; // an OpenAI-compatible call: errors take OpenAI's shape
    String error; // the error message answered, if any

    Exchange(String id) {
      this.id = id;
    }
  }

  private void handle(ServerRequest req, ServerResponse res) {
    long start = System.nanoTime();
    exchanges.begin();
    try {
      handle(req, res, start);
    } finally {
      exchanges.end();
    }
  }

  private void handle(ServerRequest req, ServerResponse res, long start) {
    String requestId = req.headers().first(REQUEST_ID).orElseGet(BerthServer::newRequestId);
    Exchange ex = new Exchange(requestId);
    res.header(REQUEST_ID, requestId);
    // Audit events are written before the answer leaves: a client that has its answer finds the
    // event logged, and one caller's events stay in the order of its calls.
    res.beforeSend(
        () -> {
          int code = res.status().code();
          if (ex.audited || code == 401 || code == 403) {
            audit(req, ex, code);
          }
        });
    int status;
    try {
      status = route(req, res, ex);
    } catch (ClientConnections.ClientGoneException gone) {
      status = CLIENT_CLOSED_REQUEST;
      ex.error = gone.getMessage();
      try {
        send(res, status, HttpErrors.errorBody(gone.getMessage())); // to no one, most likely
      } catch (RuntimeException unsent) {
        LOG.log(Level.FINE, "request " + requestId + ": the client left", unsent);
      }
    } catch (Throwable t) {
      status = fail(res, t, ex);
    }
    long nanos = System.nanoTime() - start;
    if (ex.protocol != null && ex.model != null) {
      service.metrics().request(ex.model, ex.version, ex.protocol, Integer.toString(status), nanos);
    }
    AccessLog.log(
        requestId,
        req.prologue().method().text(),
        req.path().rawPath(),
        ex.model,
        ex.version,
        status,
        nanos);
  }

  private void audit(ServerRequest req, Exchange ex, int status) {
    String who = ex.caller;
    if (who == null) {
      String authorization = req.headers().first(HeaderNames.AUTHORIZATION).orElse(null);
      who = authorization == null ? "anonymous" : access.nameOf(authorization);
      who = who == null ? "unknown-credential" : who;
    }
    Audit.log(
        who,
        String.valueOf(req.remotePeer().address()),
        req.prologue().method().text() + " " + req.path().rawPath(),
        ex.model,
        Integer.toString(status),
        status == 401 || status == 403,
        status >= 400 ? ex.error : null);
  }

  private static String newRequestId() {
    return Long.toHexString(ThreadLocalRandom.current().nextLong() | Long.MIN_VALUE);
  }

  private int fail(ServerResponse res, Throwable t, Exchange ex) {
    Throwable error = t instanceof CompletionException && t.getCause() != null ? t.getCause() : t;
    HttpErrors.Answer answer = HttpErrors.answer(error, ex.id);
    ex.error = answer.message();
    if (error instanceof UnauthenticatedException) {
      res.header(HeaderNames.WWW_AUTHENTICATE, "Bearer realm=\"berth\"");
    }
    if (answer.status() >= 500 && !(error instanceof BerthException)) {
      LOG.log(Level.SEVERE, "request " + ex.id + " failed", error);
    }
    if (error instanceof ModelNotFoundException && ex.model != null) {
      ex.model = "_unknown"; // keep metric labels bounded: names that do not exist share one series
      ex.version = null;
    }
    if (answer.retryAfter() != null) {
      res.header(
          HeaderNames.RETRY_AFTER, Long.toString(Math.max(1, answer.retryAfter().toSeconds())));
    }
    if (ex.openAi) {
      OpenAiJson.ParameterException bad =
          error instanceof OpenAiJson.ParameterException p ? p : null;
      return send(
          res,
          answer.status(),
          OpenAiJson.writeError(
              answer.status(),
              answer.message(),
              bad == null ? null : bad.param,
              bad != null
                  ? bad.code
                  : error instanceof ModelNotFoundException ? "model_not_found" : null));
    }
    return send(res, answer.status(), answer.body());
  }

  private static int send(ServerResponse res, int status, byte[] json) {
    res.status(status);
    res.header(HeaderNames.CONTENT_TYPE, JSON);
    res.send(json);
    return status;
  }

  private int route(ServerRequest req, ServerResponse res, Exchange ex) throws IOException {
    List<String> p = segments(req.path().rawPath());
    Method method = req.prologue().method();
    if (p.isEmpty()) {
      return notFound(res, req);
    }
    switch (p.get(0)) {
      case "v2" -> {
        if (p.size() >= 2 && p.get(1).equals("repository")) {
          if (!access.managementEnabled()) {
            return send(
                res,
                404,
                HttpErrors.errorBody(
                    "the repository API is off; start berth serve with --management to list,"
                        + " load and unload models over HTTP"));
          }
          ex.audited = true;
          ex.caller = access.require(Access.Role.MANAGE, authorization(req)).name();
          return routeRepository(req, res, ex, p, method);
        }
        if (!(p.size() == 3 && p.get(1).equals("health"))) {
          ex.caller = access.require(Access.Role.INFER, authorization(req)).name();
        }
        return routeV2(req, res, ex, p, method);
      }
      case "v1" -> {
        ex.openAi = OPENAI_PATHS.contains(String.join("/", p));
        ex.caller = access.require(Access.Role.INFER, authorization(req)).name();
        return ex.openAi ? routeOpenAi(req, res, ex, p, method) : routeV1(req, res, ex, p, method);
      }
      case "metrics" -> {
        if (p.size() == 1) {
          requireMethod(method, Method.GET);
          ByteArrayOutputStream out = new ByteArrayOutputStream(8192);
          metricsWriter.write(out, service.metrics().registry().scrape());
          res.status(200);
          res.header(HeaderNames.CONTENT_TYPE, metricsWriter.getContentType());
          res.send(out.toByteArray());
          return 200;
        }
        return notFound(res, req);
      }
      default -> {
        return notFound(res, req);
      }
    }
  }

  private int routeV2(
      ServerRequest req, ServerResponse res, Exchange ex, List<String> p, Method method)
      throws IOException {
    int n = p.size();
    if (n == 1) {
      requireMethod(method, Method.GET);
      return send(res, 200, serverMetadata());
    }
    if (n == 3 && p.get(1).equals("health")) {
      requireMethod(method, Method.GET);
      return switch (p.get(2)) {
        case "live" -> send(res, service.live() ? 200 : 503, flag("live", service.live()));
        case "ready" -> {
          boolean ready = service.ready(); // once: the status and the body must agree
          yield send(res, ready ? 200 : 503, readiness(ready));
        }
        default -> notFound(res, req);
      };
    }
    if (n == 3 && p.get(1).equals("models") && p.get(2).equals("stats")) {
      requireMethod(method, Method.GET); // every model's statistics (Triton's extension)
      return send(
          res, 200, TritonModels.json(TritonModels.statistics(service.statistics(null, null))));
    }
    if (n >= 3 && p.get(1).equals("models")) {
      ex.model = modelName(p.get(2));
      int rest = 3;
      if (n >= 5 && p.get(3).equals("versions")) {
        ex.version = versionName(p.get(4));
        rest = 5;
      }
      if (n == rest) {
        requireMethod(method, Method.GET);
        return send(res, 200, OipJson.writeMetadata(service.metadata(ex.model, ex.version)));
      }
      if (n == rest + 1 && p.get(rest).equals("config")) {
        requireMethod(method, Method.GET);
        return send(
            res,
            200,
            TritonModels.json(TritonModels.config(service.configuration(ex.model, ex.version))));
      }
      if (n == rest + 1 && p.get(rest).equals("stats")) {
        requireMethod(method, Method.GET);
        return send(
            res,
            200,
            TritonModels.json(TritonModels.statistics(service.statistics(ex.model, ex.version))));
      }
      if (n == rest + 1 && p.get(rest).equals("ready")) {
        requireMethod(method, Method.GET);
        service.statuses(ex.model); // 404 for an unknown model
        boolean ready = service.modelReady(ex.model, ex.version);
        return send(res, ready ? 200 : 503, modelReady(ex.model, ready));
      }
      if (n == rest + 1 && p.get(rest).equals("infer")) {
        requireMethod(method, Method.POST);
        ex.protocol = "rest";
        byte[] body = readBody(req);
        OipJson.Decoded call = OipJson.decode(body, headerLength(req), ex.model, ex.version);
        InferenceResponse response = infer(call.request(), ex);
        OipJson.Encoded answer = OipJson.writeResponse(response, call);
        if (!answer.binary()) {
          return send(res, 200, answer.body());
        }
        res.status(200);
        res.header(INFERENCE_HEADER_LENGTH, Integer.toString(answer.headerLength()));
        res.header(HeaderNames.CONTENT_TYPE, "application/octet-stream");
        res.send(answer.body());
        return 200;
      }
    }
    return notFound(res, req);
  }

  /**
   * The model-repository extension: {@code POST /v2/repository/index}, {@code POST
   * /v2/repository/models/{m}/load} and {@code .../unload}; access has been checked.
   */
  private int routeRepository(
      ServerRequest req, ServerResponse res, Exchange ex, List<String> p, Method method)
      throws IOException {
    int n = p.size();
    if (n == 3 && p.get(2).equals("index")) {
      requireMethod(method, Method.POST, Method.GET);
      boolean readyOnly = method.equals(Method.POST) && RepositoryJson.readyOnly(readBody(req));
      List<ModelStatus> index = service.index();
      if (readyOnly) {
        index = index.stream().filter(s -> s.state() == ModelState.READY).toList();
      }
      return send(res, 200, RepositoryJson.writeIndex(index));
    }
    if (n == 5
        && p.get(2).equals("models")
        && (p.get(4).equals("load") || p.get(4).equals("unload"))) {
      requireMethod(method, Method.POST);
      ex.model = modelName(p.get(3));
      RepositoryJson.checkNoParameters(readBody(req), p.get(4));
      List<ModelStatus> versions =
          p.get(4).equals("load") ? service.loadModel(ex.model) : service.unloadModel(ex.model);
      return send(res, 200, RepositoryJson.writeModel(ex.model, versions));
    }
    return notFound(res, req);
  }

  private static String authorization(ServerRequest req) {
    return req.headers().first(HeaderNames.AUTHORIZATION).orElse(null);
  }

  /** The OpenAI-compatible API's paths; the other /v1 paths are TF Serving's. */
  private static final java.util.Set<String> OPENAI_PATHS =
      java.util.Set.of("v1/chat/completions", "v1/completions", "v1/embeddings", "v1/models");

  private int routeOpenAi(
      ServerRequest req, ServerResponse res, Exchange ex, List<String> p, Method method)
      throws IOException {
    OpenAiApi.Call call =
        (model, version) -> {
          ex.model = model;
          ex.version = version;
        };
    switch (p.get(p.size() - 1)) {
      case "models" -> {
        requireMethod(method, Method.GET);
        return send(res, 200, openAi.models());
      }
      case "embeddings" -> {
        requireMethod(method, Method.POST);
        ex.protocol = "openai";
        return send(res, 200, openAi.embeddings(readBody(req), call));
      }
      default -> {
        requireMethod(method, Method.POST);
        ex.protocol = "openai";
        return openAi.generate(p.size() == 3, readBody(req), res, call);
      }
    }
  }

  private int routeV1(
      ServerRequest req, ServerResponse res, Exchange ex, List<String> p, Method method)
      throws IOException {
    int n = p.size();
    if (n < 3 || !p.get(1).equals("models")) {
      return notFound(res, req);
    }
    String last = p.get(n - 1);
    boolean predict = last.endsWith(":predict");
    if (predict) {
      p = new ArrayList<>(p);
      p.set(n - 1, last.substring(0, last.length() - ":predict".length()));
    } else if (last.contains(":")) {
      throw new InvalidInputException(
          "'" + last.substring(last.indexOf(':')) + "' is not supported; Berth answers :predict");
    }
    ex.model = modelName(p.get(2));
    if (n == 5 && p.get(3).equals("versions")) {
      ex.version = versionName(p.get(4));
    } else if (n != 3) {
      return notFound(res, req);
    }
    if (!predict) {
      requireMethod(method, Method.GET);
      List<ModelStatus> statuses = service.statuses(ex.model);
      if (ex.version != null) {
        String v = ex.version;
        statuses = statuses.stream().filter(s -> s.version().equals(v)).toList();
        if (statuses.isEmpty()) {
          throw new ModelNotFoundException(ex.model, v);
        }
      }
      return send(res, 200, TfServingJson.writeStatus(statuses));
    }
    requireMethod(method, Method.POST);
    ex.protocol = "tfserving";
    byte[] body = readBody(req);
    TfServingJson.Predict call =
        TfServingJson.readPredict(
            body, ex.model, ex.version, service.signature(ex.model, ex.version));
    InferenceResponse response = infer(call.request(), ex);
    return send(res, 200, TfServingJson.writePredict(response, call.rowFormat()));
  }

  private InferenceResponse infer(dev.berth.api.InferenceRequest request, Exchange ex) {
    limits.check(request);
    // a client that disconnects while its request waits cancels it, which frees its slot; the
    // version that would have answered labels it all the same
    return ClientConnections.await(
        service.infer(
            request,
            limits.maxRequestTimeout(),
            "the server's --max-request-timeout",
            version -> {
              if (ex != null) {
                ex.version = version;
              }
            }));
  }

  /** The binary tensor extension's JSON header length, or -1 when the body is JSON only. */
  private static int headerLength(ServerRequest req) {
    var value = req.headers().first(INFERENCE_HEADER_LENGTH);
    if (value.isEmpty()) {
      return -1;
    }
    try {
      int length = Integer.parseInt(value.get().trim());
      if (length < 0) {
        throw new NumberFormatException();
      }
      return length;
    } catch (NumberFormatException e) {
      throw new InvalidInputException(
          "Inference-Header-Content-Length must be a whole number of bytes >= 0, got '"
              + value.get()
              + "'");
    }
  }

  private static String modelName(String raw) {
    if (!ModelRepository.isValidModelName(raw)) {
      throw new InvalidInputException(
          "'" + raw + "' is not a valid model name (letters, digits, '_', '-', '.'; no paths)");
    }
    return raw;
  }

  private static String versionName(String raw) {
    if (!ModelRepository.isValidVersion(raw)) {
      throw new InvalidInputException(
          "'" + raw + "' is not a valid version (a positive whole number)");
    }
    return raw;
  }

  private static void requireMethod(Method actual, Method... allowed) {
    for (Method m : allowed) {
      if (m.equals(actual)) {
        return;
      }
    }
    throw new MethodNotAllowedException(actual, allowed);
  }

  private int notFound(ServerResponse res, ServerRequest req) {
    return send(
        res,
        404,
        HttpErrors.errorBody(
            "no such endpoint: "
                + req.prologue().method().text()
                + " "
                + req.path().rawPath()
                + "; see /v2 (Open Inference Protocol), /v1/models/{m}:predict (TF Serving),"
                + " /metrics"));
  }

  private byte[] readBody(ServerRequest req) throws IOException {
    OptionalLong length = req.headers().contentLength();
    if (length.isPresent() && length.getAsLong() > maxBodyBytes) {
      throw tooLarge(length.getAsLong());
    }
    // A client that stalls or trickles its body past the body timeout has its read interrupted,
    // which closes the connection: it holds this handler no longer.
    BodyDeadline deadline = BodyDeadline.start(limits.bodyTimeout());
    byte[] body;
    try {
      body = readBodyBytes(req);
    } catch (RuntimeException | IOException e) {
      if (deadline.end()) {
        throw new RequestTimeoutException(
            "the request body did not arrive within "
                + limits.bodyTimeout().toMillis()
                + " ms (--body-timeout); send it whole, without pauses",
            e);
      }
      throw e;
    }
    deadline.end(); // a deadline that passed as the last byte came changes nothing
    if (body.length > maxBodyBytes) {
      throw tooLarge(-1);
    }
    return body;
  }

  private byte[] readBodyBytes(ServerRequest req) throws IOException {
    try (InputStream in = req.content().inputStream()) {
      return in.readNBytes((int) Math.min(maxBodyBytes + 1, Integer.MAX_VALUE - 8));
    } catch (NumberFormatException e) {
      // the web server parses chunk sizes while the body is read
      throw new InvalidInputException(
          "the request body's chunked transfer encoding is malformed (a chunk size is not"
              + " hexadecimal)",
          e);
    } catch (io.helidon.common.buffers.DataReader.InsufficientDataAvailableException e) {
      throw new InvalidInputException(
          "the request body ended (the client closed the connection) before its Content-Length", e);
    }
  }

  private PayloadTooLargeException tooLarge(long size) {
    return new PayloadTooLargeException(
        "request body "
            + (size >= 0 ? "of " + size + " bytes " : "")
            + "is larger than the limit of "
            + maxBodyBytes
            + " bytes; send fewer rows per request or raise --max-body-size");
  }

  private static List<String> segments(String rawPath) {
    List<String> out = new ArrayList<>();
    for (String s : rawPath.split("/")) {
      if (!s.isEmpty()) {
        try {
          out.add(URLDecoder.decode(s.replace("+", "%2B"), StandardCharsets.UTF_8));
        } catch (IllegalArgumentException e) {
          throw new InvalidInputException("the path has a malformed %-escape: " + rawPath);
        }
      }
    }
    return out;
  }

  private byte[] serverMetadata() throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (JsonGenerator g = OipJson.JSON.createGenerator(out)) {
      g.writeStartObject();
      g.writeStringField("name", "berth");
      g.writeStringField("version", version);
      g.writeArrayFieldStart("extensions");
      for (String extension : TritonModels.EXTENSIONS) {
        g.writeString(extension);
      }
      g.writeEndArray();
      g.writeEndObject();
    }
    return out.toByteArray();
  }

  /**
   * {@code {"ready": bool}}, and when not ready a reason that names no model: the endpoint is open
   * to probes, so which models failed and why stay with the log and the repository API.
   */
  private byte[] readiness(boolean ready) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (JsonGenerator g = OipJson.JSON.createGenerator(out)) {
      g.writeStartObject();
      g.writeBooleanField("ready", ready);
      if (!ready) {
        g.writeStringField(
            "reason",
            service.serving()
                ? MODELS_NOT_READY
                : service.draining() ? "draining" : "loading models");
      }
      g.writeEndObject();
    }
    return out.toByteArray();
  }

  /** The readiness reason while loading is over but a served model has no ready version. */
  public static final String MODELS_NOT_READY =
      "a served model has no ready version (strict readiness); the server log says why";

  private static byte[] flag(String name, boolean value) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (JsonGenerator g = OipJson.JSON.createGenerator(out)) {
      g.writeStartObject();
      g.writeBooleanField(name, value);
      g.writeEndObject();
    }
    return out.toByteArray();
  }

  private static byte[] modelReady(String model, boolean ready) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (JsonGenerator g = OipJson.JSON.createGenerator(out)) {
      g.writeStartObject();
      g.writeStringField("name", model);
      g.writeBooleanField("ready", ready);
      g.writeEndObject();
    }
    return out.toByteArray();
  }
}
