package dev.berth.server;

import io.grpc.ForwardingServerCallListener;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.charset.StandardCharsets;

/**
 * Checks on gRPC requests that grpc-java would otherwise answer with a server-fault status: a
 * message that is not valid protobuf gets INVALID_ARGUMENT (grpc-java says UNKNOWN), and metadata
 * over {@code --max-header-size} gets RESOURCE_EXHAUSTED naming the option. The HTTP/2 codec still
 * refuses, before any of this, metadata over {@link #codecHeaderCeiling(int)}.
 */
final class GrpcRequestChecks {
  /** HPACK's per-entry overhead in a header list's size (RFC 7541, 4.1). */
  private static final int ENTRY_OVERHEAD = 32;

  private GrpcRequestChecks() {}

  /**
   * The HTTP/2 codec's own header-list limit: well above Berth's, so that metadata a little over
   * the limit gets Berth's clear answer rather than a stream reset.
   */
  static int codecHeaderCeiling(int maxHeaderBytes) {
    return Math.max(4 * maxHeaderBytes, 64 << 10);
  }

  /**
   * The service with its requests parsed where a bad one can be answered INVALID_ARGUMENT:
   * grpc-java answers a message its marshaller cannot parse with UNKNOWN, a server fault. The
   * service takes raw messages, and the parsing happens in its listener, which this wraps.
   */
  static ServerServiceDefinition checkedParsing(ServerServiceDefinition service) {
    return ServerInterceptors.intercept(
        ServerInterceptors.useInputStreamMessages(service), new ParseGuard());
  }

  private static final class ParseGuard implements ServerInterceptor {
    @Override
    public <Q, A> ServerCall.Listener<Q> interceptCall(
        ServerCall<Q, A> call, Metadata headers, ServerCallHandler<Q, A> next) {
      return new ForwardingServerCallListener.SimpleForwardingServerCallListener<>(
          next.startCall(call, headers)) {
        private boolean refused;

        @Override
        public void onMessage(Q message) {
          if (refused) {
            return;
          }
          try {
            super.onMessage(message);
          } catch (StatusRuntimeException e) {
            if (e.getStatus().getCode() != Status.Code.INTERNAL) {
              throw e;
            }
            refused = true;
            call.close(
                Status.INVALID_ARGUMENT.withDescription(
                    "the "
                        + call.getMethodDescriptor().getBareMethodName()
                        + " request is not a valid protobuf message of its type ("
                        + e.getStatus().getDescription()
                        + "); send one built from grpc_service.proto"),
                new Metadata());
          }
        }

        @Override
        public void onHalfClose() {
          if (!refused) {
            super.onHalfClose();
          }
        }

        @Override
        public void onReady() {
          if (!refused) {
            super.onReady();
          }
        }
      };
    }
  }

  /** The size of a call's metadata, counted as HTTP/2 counts a header list. */
  static long size(Metadata headers) {
    long size = 0;
    for (String name : headers.keys()) {
      int nameBytes = name.length();
      if (name.endsWith(Metadata.BINARY_HEADER_SUFFIX)) {
        for (byte[] value :
            headers.getAll(Metadata.Key.of(name, Metadata.BINARY_BYTE_MARSHALLER))) {
          size += nameBytes + (value.length + 2L) / 3 * 4 + ENTRY_OVERHEAD; // sent as base64
        }
      } else {
        for (String value :
            headers.getAll(Metadata.Key.of(name, Metadata.ASCII_STRING_MARSHALLER))) {
          size += nameBytes + value.getBytes(StandardCharsets.US_ASCII).length + ENTRY_OVERHEAD;
        }
      }
    }
    return size;
  }
}
