package dev.berth.server;

import dev.berth.api.BerthException;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.util.Set;

/**
 * API keys on gRPC: every call but ServerLive and ServerReady (the health checks, open as on REST)
 * needs the {@code authorization: Bearer KEY} metadata of a key with the infer role when keys are
 * configured. Refusals answer UNAUTHENTICATED or PERMISSION_DENIED and go to the audit log.
 */
final class GrpcAccess implements ServerInterceptor {
  static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
  private static final Set<String> OPEN = Set.of("ServerLive", "ServerReady");

  private final Access access;

  GrpcAccess(Access access) {
    this.access = access;
  }

  @Override
  public <Q, A> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, A> call, Metadata headers, ServerCallHandler<Q, A> next) {
    String method = call.getMethodDescriptor().getBareMethodName();
    if (!access.inferenceProtected() || OPEN.contains(method)) {
      return next.startCall(call, headers);
    }
    String authorization = headers.get(AUTHORIZATION);
    try {
      access.require(Access.Role.INFER, authorization);
    } catch (BerthException e) {
      Status status = HttpErrors.grpcStatus(e, "-");
      String who = authorization == null ? "anonymous" : access.nameOf(authorization);
      Audit.log(
          who == null ? "unknown-credential" : who,
          String.valueOf(call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR)),
          "gRPC " + call.getMethodDescriptor().getFullMethodName(),
          null,
          status.getCode().name(),
          true,
          e.getMessage());
      call.close(status, new Metadata());
      return new ServerCall.Listener<>() {};
    }
    return next.startCall(call, headers);
  }
}
