package dev.berth.server;

import io.helidon.http.DirectHandler;
import io.helidon.http.HeaderNames;
import io.helidon.http.ServerResponseHeaders;
import io.helidon.http.Status;
import io.helidon.webserver.http.DirectHandlers;

/**
 * Answers the web server gives before any route runs (a malformed request line, headers over the
 * limit, too many requests at once) in Berth's own form: {@code {"error": "..."}}, and for 503 a
 * {@code Retry-After}. Server-side failures keep their details in the log.
 */
final class JsonDirectHandler implements DirectHandler {
  private JsonDirectHandler() {}

  static DirectHandlers handlers() {
    JsonDirectHandler handler = new JsonDirectHandler();
    DirectHandlers.Builder b = DirectHandlers.builder();
    for (EventType type : EventType.values()) {
      b.addHandler(type, handler);
    }
    return b.build();
  }

  @Override
  public TransportResponse handle(
      TransportRequest request,
      EventType eventType,
      Status status,
      ServerResponseHeaders headers,
      String message) {
    String error;
    if (status.code() == Status.SERVICE_UNAVAILABLE_503.code()) {
      error = "the server is handling as many requests as it allows at once; retry shortly";
      headers.set(HeaderNames.RETRY_AFTER, "1");
    } else if (status.code() >= 500) {
      error = "internal error; the server log has details";
    } else if (message == null || message.isBlank()) {
      error =
          status.reasonPhrase()
              + ": the request line, path or headers are not valid HTTP/1.1 (check %-escapes,"
              + " header syntax and sizes: headers at most --max-header-size, the request line"
              + " at most 4096 bytes)";
    } else {
      error = message;
    }
    headers.set(HeaderNames.CONTENT_TYPE, "application/json");
    return TransportResponse.builder()
        .status(status)
        .headers(headers)
        .entity(HttpErrors.errorBody(error))
        .keepAlive(eventType.keepAlive() && status.code() < 500)
        .build();
  }
}
