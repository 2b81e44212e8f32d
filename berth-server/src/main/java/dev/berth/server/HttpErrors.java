package dev.berth.server;

import com.fasterxml.jackson.core.JsonGenerator;
import dev.berth.api.BerthException;
import dev.berth.api.ConfigException;
import dev.berth.api.DeadlineExceededException;
import dev.berth.api.InvalidInputException;
import dev.berth.api.ModelLoadException;
import dev.berth.api.ModelNotFoundException;
import dev.berth.api.ModelNotReadyException;
import dev.berth.api.OverloadedException;
import dev.berth.api.PayloadTooLargeException;
import dev.berth.api.PermissionDeniedException;
import dev.berth.api.UnauthenticatedException;
import io.grpc.Status;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The one place where errors become HTTP answers, keyed by exception type. Clients get a status and
 * {@code {"error": "..."}} with Berth's own message; an unexpected exception gets a generic message
 * and the details go to the log only.
 */
final class HttpErrors {
  /** The answer to one kind of error, in each protocol. */
  private record Codes(int http, Status.Code grpc) {}

  private static final Map<Class<? extends BerthException>, Codes> CODES = new LinkedHashMap<>();

  static {
    CODES.put(ModelNotFoundException.class, new Codes(404, Status.Code.NOT_FOUND));
    CODES.put(InvalidInputException.class, new Codes(400, Status.Code.INVALID_ARGUMENT));
    CODES.put(PayloadTooLargeException.class, new Codes(413, Status.Code.RESOURCE_EXHAUSTED));
    CODES.put(OverloadedException.class, new Codes(429, Status.Code.RESOURCE_EXHAUSTED));
    CODES.put(ModelNotReadyException.class, new Codes(503, Status.Code.UNAVAILABLE));
    CODES.put(DeadlineExceededException.class, new Codes(504, Status.Code.DEADLINE_EXCEEDED));
    CODES.put(MethodNotAllowedException.class, new Codes(405, Status.Code.UNIMPLEMENTED));
    CODES.put(NoSuchEndpointException.class, new Codes(404, Status.Code.UNIMPLEMENTED));
    CODES.put(RequestTimeoutException.class, new Codes(408, Status.Code.DEADLINE_EXCEEDED));
    CODES.put(UnauthenticatedException.class, new Codes(401, Status.Code.UNAUTHENTICATED));
    CODES.put(PermissionDeniedException.class, new Codes(403, Status.Code.PERMISSION_DENIED));
    // a model that fails to load on a repository request: 400, as Triton answers
    CODES.put(ModelLoadException.class, new Codes(400, Status.Code.FAILED_PRECONDITION));
    CODES.put(ConfigException.class, new Codes(400, Status.Code.FAILED_PRECONDITION));
  }

  /** An HTTP answer to an error. */
  record Answer(int status, String message, Duration retryAfter) {
    byte[] body() {
      return errorBody(message);
    }
  }

  private HttpErrors() {}

  static Answer answer(Throwable error, String requestId) {
    Codes codes = codes(error);
    if (codes != null) {
      Duration retry =
          error instanceof OverloadedException o
              ? o.retryAfter()
              : error instanceof ModelNotReadyException ? Duration.ofSeconds(1) : null;
      return new Answer(codes.http(), error.getMessage(), retry);
    }
    return new Answer(500, internalMessage(error, requestId), null);
  }

  /** The same error as a gRPC status. */
  static Status grpcStatus(Throwable error, String requestId) {
    Codes codes = codes(error);
    if (codes != null) {
      return Status.fromCode(codes.grpc()).withDescription(error.getMessage());
    }
    return Status.INTERNAL.withDescription(internalMessage(error, requestId));
  }

  private static Codes codes(Throwable error) {
    for (Map.Entry<Class<? extends BerthException>, Codes> e : CODES.entrySet()) {
      if (e.getKey().isInstance(error)) {
        return e.getValue();
      }
    }
    return null;
  }

  private static String internalMessage(Throwable error, String requestId) {
    return error instanceof BerthException
        ? error.getMessage()
        : "internal error while serving request " + requestId + "; the server log has details";
  }

  static byte[] errorBody(String message) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(64 + message.length());
    try (JsonGenerator g = OipJson.JSON.createGenerator(out)) {
      g.writeStartObject();
      g.writeStringField("error", message);
      g.writeEndObject();
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
    return out.toByteArray();
  }
}
