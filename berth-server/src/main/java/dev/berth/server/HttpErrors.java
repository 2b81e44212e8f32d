package dev.berth.server;

import com.fasterxml.jackson.core.JsonGenerator;
import dev.berth.api.BerthException;
import dev.berth.api.DeadlineExceededException;
import dev.berth.api.InvalidInputException;
import dev.berth.api.ModelNotFoundException;
import dev.berth.api.ModelNotReadyException;
import dev.berth.api.OverloadedException;
import dev.berth.api.PayloadTooLargeException;
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
  private static final Map<Class<? extends BerthException>, Integer> STATUS = new LinkedHashMap<>();

  static {
    STATUS.put(ModelNotFoundException.class, 404);
    STATUS.put(InvalidInputException.class, 400);
    STATUS.put(PayloadTooLargeException.class, 413);
    STATUS.put(OverloadedException.class, 429);
    STATUS.put(ModelNotReadyException.class, 503);
    STATUS.put(DeadlineExceededException.class, 504);
    STATUS.put(MethodNotAllowedException.class, 405);
  }

  /** An HTTP answer to an error. */
  record Answer(int status, String message, Duration retryAfter) {
    byte[] body() {
      return errorBody(message);
    }
  }

  private HttpErrors() {}

  static Answer answer(Throwable error, String requestId) {
    for (Map.Entry<Class<? extends BerthException>, Integer> e : STATUS.entrySet()) {
      if (e.getKey().isInstance(error)) {
        Duration retry =
            error instanceof OverloadedException o
                ? o.retryAfter()
                : error instanceof ModelNotReadyException ? Duration.ofSeconds(1) : null;
        return new Answer(e.getValue(), error.getMessage(), retry);
      }
    }
    if (error instanceof BerthException) {
      return new Answer(500, error.getMessage(), null);
    }
    return new Answer(
        500,
        "internal error while serving request " + requestId + "; the server log has details",
        null);
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
