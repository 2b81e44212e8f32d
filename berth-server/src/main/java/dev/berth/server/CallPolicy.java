package dev.berth.server;

import dev.berth.api.BerthException;
import dev.berth.api.InferenceRequest;
import dev.berth.api.InferenceResponse;
import dev.berth.api.InvalidInputException;
import dev.berth.api.ModelNotFoundException;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.ModelRepository;
import io.grpc.Status;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ThreadLocalRandom;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The one place that decides, for every protocol, how a call is run: its request id, who may make
 * it, which model and version it names, its deadline and limits, how a failure is answered, and
 * what the access log, the audit log and the request metrics say of it. The REST routes and the
 * gRPC service are thin adapters over it: they decode, call {@link #infer}, encode.
 */
final class CallPolicy {
  private static final Logger LOG = Logger.getLogger(CallPolicy.class.getName());

  /** The status recorded, as by nginx, for a request whose client left before its answer. */
  static final int CLIENT_CLOSED_REQUEST = 499;

  /** Longest request id taken from a client; a longer or odd one is replaced by a new one. */
  static final int MAX_REQUEST_ID_LENGTH = 128;

  private final InferenceService service;
  private final ServerLimits limits;
  private final Access access;
  private final Tracing tracing;
  private final boolean tracingOn;

  CallPolicy(InferenceService service, ServerLimits limits, Access access) {
    this(service, limits, access, Tracing.off());
  }

  CallPolicy(InferenceService service, ServerLimits limits, Access access, Tracing tracing) {
    this.service = service;
    this.limits = limits;
    this.access = access;
    this.tracing = tracing;
    this.tracingOn = tracing.enabled();
  }

  InferenceService service() {
    return service;
  }

  ServerLimits limits() {
    return limits;
  }

  Access access() {
    return access;
  }

  /**
   * Opens a call.
   *
   * @param offeredId the client's request id ({@code X-Request-Id}, gRPC {@code x-request-id}), or
   *     null
   */
  Call begin(
      String offeredId,
      String method,
      String path,
      boolean grpc,
      java.util.function.Supplier<String> remote) {
    return new Call(requestId(offeredId), method, path, grpc, remote);
  }

  /** Whether calls are traced at all. */
  boolean tracing() {
    return tracingOn;
  }

  /**
   * Opens a call and, with tracing on, its server span: a child of the client's span when its
   * headers ({@code headers} reads {@code carrier}) carry a W3C {@code traceparent}. With tracing
   * off, or no {@code carrier} (a call not worth a trace), the headers are not looked at.
   *
   * @param scheme {@code http} or {@code https}
   * @param port the port the call came in on
   */
  <C> Call begin(
      String offeredId,
      String method,
      String path,
      boolean grpc,
      java.util.function.Supplier<String> remote,
      C carrier,
      io.opentelemetry.context.propagation.TextMapGetter<C> headers,
      String scheme,
      int port) {
    Call call = begin(offeredId, method, path, grpc, remote);
    if (tracingOn && carrier != null) {
      call.span = tracing.start(call, carrier, headers, scheme, port);
    }
    return call;
  }

  /**
   * The client's request id when it is 1 to {@value #MAX_REQUEST_ID_LENGTH} visible ASCII
   * characters (what log lines and headers carry safely), else a new random one.
   */
  static String requestId(String offered) {
    if (offered != null && !offered.isEmpty() && offered.length() <= MAX_REQUEST_ID_LENGTH) {
      boolean visible = true;
      for (int i = 0; i < offered.length() && visible; i++) {
        char c = offered.charAt(i);
        visible = c > 0x20 && c < 0x7f;
      }
      if (visible) {
        return offered;
      }
    }
    return Long.toHexString(ThreadLocalRandom.current().nextLong() | Long.MIN_VALUE);
  }

  /**
   * Checks the call's credential for {@code role} (null: an open call, such as health) and records
   * who made it. Management calls are audited whatever their outcome, and answer 404 while the
   * repository API is off.
   *
   * @param authorization the {@code Authorization} header or metadata value, or null
   */
  void authorize(Call call, Access.Role role, String authorization) {
    if (role == null) {
      return;
    }
    if (role == Access.Role.MANAGE) {
      if (!access.managementEnabled()) {
        throw new NoSuchEndpointException(
            "the repository API is off; start berth serve with --management to list, load and"
                + " unload models over HTTP");
      }
      call.audited = true;
    }
    call.caller = access.require(role, authorization).name();
  }

  /** A model name from a path or message, checked: letters, digits, '_', '-', '.'. */
  static String modelName(String raw) {
    if (!ModelRepository.isValidModelName(raw)) {
      throw new InvalidInputException(
          "'" + raw + "' is not a valid model name (letters, digits, '_', '-', '.'; no paths)");
    }
    return raw;
  }

  /** A version from a path or message, checked; null or empty means the highest ready one. */
  static String versionName(String raw) {
    if (raw == null || raw.isEmpty()) {
      return null;
    }
    if (!ModelRepository.isValidVersion(raw)) {
      throw new InvalidInputException(
          "'" + raw + "' is not a valid version (a positive whole number)");
    }
    return raw;
  }

  /**
   * Runs one inference call under the server's limits. Its deadline is the least of the client's
   * (when it sent one), the server's {@code --max-request-timeout} and the model's {@code
   * request-timeout}. The call learns its model and the version that answers as soon as the version
   * is chosen, so a call that fails or is given up after that is labelled with both.
   *
   * @param clientDeadline the client's own deadline, or null
   * @param clientSource what set it, for the message when it passes
   * @return the answer; cancelling it takes a request still queued out of the queue unrun
   */
  CompletableFuture<InferenceResponse> infer(
      Call call, InferenceRequest request, Duration clientDeadline, String clientSource) {
    call.target(request.model(), request.version());
    limits.check(request);
    Duration cap = limits.maxRequestTimeout();
    boolean clients = clientDeadline != null && clientDeadline.compareTo(cap) < 0;
    return service.infer(
        request,
        clients ? clientDeadline : cap,
        clients ? clientSource : "the server's --max-request-timeout",
        version -> call.version = version,
        call.trace());
  }

  /** How one failure is answered, in every protocol. */
  record Failure(Throwable error, HttpErrors.Answer http, Status grpc) {}

  /**
   * The answer to a failed call: its status in each protocol and its message. An unexpected failure
   * is logged with its request id and answered without details; an unknown model is labelled {@code
   * _unknown} in the metrics, so names that do not exist share one series.
   */
  Failure fail(Call call, Throwable t) {
    Throwable error = t;
    while (error instanceof CompletionException && error.getCause() != null) {
      error = error.getCause();
    }
    HttpErrors.Answer answer = HttpErrors.answer(error, call.id);
    call.error = answer.message();
    if (answer.status() >= 500 && !(error instanceof BerthException)) {
      LOG.log(Level.SEVERE, "request " + call.id + " failed", error);
    }
    if (error instanceof ModelNotFoundException
        || (call.model != null && !ModelRepository.isValidModelName(call.model))) {
      call.target("_unknown", null);
    }
    return new Failure(error, answer, HttpErrors.grpcStatus(error, call.id));
  }

  /**
   * Writes the audit event of a call about to be answered, when it is a management call or was
   * refused for its credential. It is written before the answer leaves: a client that has its
   * answer finds the event logged, and one caller's events stay in the order of its calls.
   *
   * @param result the status answered ({@code 200}, {@code UNAUTHENTICATED}, ...)
   * @param authorization the credential sent, to name who was refused (read only then)
   */
  void answering(
      Call call,
      String result,
      boolean refused,
      java.util.function.Supplier<String> authorization) {
    if (!call.audited && !refused) {
      return;
    }
    String who = call.caller;
    if (who == null) {
      String credential = authorization.get();
      who = credential == null ? "anonymous" : access.nameOf(credential);
      who = who == null ? "unknown-credential" : who;
    }
    Audit.log(
        who,
        call.remote.get(),
        call.grpc ? "gRPC " + call.path.substring(1) : call.method + " " + call.path,
        call.model,
        result,
        refused,
        call.error);
  }

  /**
   * Closes a call: its request metric (inference calls, by model, version, protocol and {@code
   * result}), its server span and its access log line. Only the first close of a call counts.
   *
   * @param result the status answered: an HTTP status, or a gRPC code's name
   */
  void finish(Call call, String result) {
    if (!call.finish()) {
      return;
    }
    long nanos = System.nanoTime() - call.start;
    if (call.protocol != null && call.model != null) {
      service.metrics().request(call.model, call.version, call.protocol, result, nanos);
    }
    if (call.span != null) {
      try {
        call.span.end(call, result);
      } catch (RuntimeException e) { // a span that fails to end never costs the call its log line
        LOG.log(Level.WARNING, "request " + call.id + ": its span was not recorded", e);
      }
    }
    AccessLog.log(call, result, nanos);
  }
}
