package dev.berth.server;

import dev.berth.api.BerthException;

/** A path no route answers, or an API that is switched off (404; gRPC UNIMPLEMENTED). */
final class NoSuchEndpointException extends BerthException {
  private static final long serialVersionUID = 1L;

  NoSuchEndpointException(String message) {
    super(message);
  }
}
