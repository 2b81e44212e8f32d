package dev.berth.server;

import dev.berth.api.BerthException;

/** The client did not send its request in time (HTTP 408). */
final class RequestTimeoutException extends BerthException {
  private static final long serialVersionUID = 1L;

  RequestTimeoutException(String message, Throwable cause) {
    super(message, cause);
  }
}
