package dev.berth.server;

import dev.berth.api.BerthException;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.ForwardingServerCall;
import io.grpc.ForwardingServerCallListener;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.util.Set;

/**
 * Opens and closes every gRPC call under the {@link CallPolicy}, as the REST port does its
 * exchanges: the request id (taken from the {@code x-request-id} metadata or made, and sent back in
 * the response headers), the metadata size limit, API keys (every call but ServerLive and
 * ServerReady, the health checks, needs {@code authorization: Bearer KEY} of a key with the infer
 * role when keys are configured), the server span (every call but the health checks, with tracing
 * on), the access log line, the request metrics and the audit of refusals. The service reads its
 * {@link Call} from {@link #CALL}.
 */
final class GrpcCalls implements ServerInterceptor {
  static final Context.Key<Call> CALL = Context.key("berth-call");
  static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
  static final Metadata.Key<String> REQUEST_ID =
      Metadata.Key.of("x-request-id", Metadata.ASCII_STRING_MARSHALLER);
  private static final Set<String> OPEN = Set.of("ServerLive", "ServerReady");

  private final CallPolicy policy;
  private final int maxHeaderBytes;
  private final String scheme;
  private volatile int port; // for the calls' spans: set once the server has bound it

  /**
   * @param tls whether calls come over TLS
   */
  GrpcCalls(CallPolicy policy, int maxHeaderBytes, boolean tls) {
    this.policy = policy;
    this.maxHeaderBytes = maxHeaderBytes;
    this.scheme = tls ? "https" : "http";
  }

  /** The port the server bound. */
  void port(int port) {
    this.port = port;
  }

  /** Reads a call's metadata for the trace context (only with tracing on). */
  private static final io.opentelemetry.context.propagation.TextMapGetter<Metadata> METADATA =
      new io.opentelemetry.context.propagation.TextMapGetter<>() {
        @Override
        public String get(Metadata metadata, String key) {
          return metadata == null || key.endsWith(Metadata.BINARY_HEADER_SUFFIX)
              ? null
              : metadata.get(Metadata.Key.of(key, Metadata.ASCII_STRING_MARSHALLER));
        }
      };

  @Override
  public <Q, A> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, A> call, Metadata headers, ServerCallHandler<Q, A> next) {
    boolean open = OPEN.contains(call.getMethodDescriptor().getBareMethodName());
    Call c =
        policy.begin(
            headers.get(REQUEST_ID),
            "POST",
            "/" + call.getMethodDescriptor().getFullMethodName(),
            true,
            () -> String.valueOf(call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR)),
            open ? null : headers, // health checks are not traced: probes would bury the requests
            METADATA,
            scheme,
            port);
    String authorization = headers.get(AUTHORIZATION);
    ServerCall<Q, A> answered = new Answered<>(call, c, authorization);
    // oversized metadata is refused before keys are checked
    long size = GrpcRequestChecks.size(headers);
    if (size > maxHeaderBytes) {
      c.error =
          "the call's metadata is "
              + size
              + " bytes, over the server's --max-header-size of "
              + maxHeaderBytes
              + "; send less metadata";
      answered.close(Status.RESOURCE_EXHAUSTED.withDescription(c.error), new Metadata());
      return new ServerCall.Listener<>() {};
    }
    if (!open) {
      try {
        policy.authorize(c, Access.Role.INFER, authorization);
      } catch (BerthException e) {
        answered.close(policy.fail(c, e).grpc(), new Metadata());
        return new ServerCall.Listener<>() {};
      }
    }
    ServerCall.Listener<Q> listener =
        Contexts.interceptCall(Context.current().withValue(CALL, c), answered, headers, next);
    return new ForwardingServerCallListener.SimpleForwardingServerCallListener<>(listener) {
      @Override
      public void onCancel() {
        try {
          super.onCancel(); // a queued request leaves its queue first
        } finally {
          policy.finish(c, Status.Code.CANCELLED.name());
        }
      }
    };
  }

  /** The call, answering with its request id, and closing its {@link Call} as it closes. */
  private final class Answered<Q, A> extends ForwardingServerCall.SimpleForwardingServerCall<Q, A> {
    private final Call c;
    private final String authorization;
    private boolean headersSent;

    Answered(ServerCall<Q, A> call, Call c, String authorization) {
      super(call);
      this.c = c;
      this.authorization = authorization;
    }

    @Override
    public void sendHeaders(Metadata headers) {
      headers.put(REQUEST_ID, c.id);
      headersSent = true;
      super.sendHeaders(headers);
    }

    @Override
    public void close(Status status, Metadata trailers) {
      if (!headersSent) {
        trailers.put(REQUEST_ID, c.id); // a trailers-only answer: its trailers are its headers
      }
      if (!status.isOk() && c.error == null) {
        c.error = status.getDescription();
      }
      Status.Code code = status.getCode();
      try {
        policy.answering(
            c,
            code.name(),
            code == Status.Code.UNAUTHENTICATED || code == Status.Code.PERMISSION_DENIED,
            () -> authorization);
        policy.finish(c, code.name());
      } finally {
        super.close(status, trailers); // whatever the audit, metric, span or log line did
      }
    }
  }
}
