package dev.berth.server;

import dev.berth.api.BerthException;
import io.helidon.http.Method;
import java.util.Arrays;
import java.util.stream.Collectors;

/** An endpoint called with a method it does not answer (405). */
final class MethodNotAllowedException extends BerthException {
  private static final long serialVersionUID = 1L;

  MethodNotAllowedException(Method actual, Method... allowed) {
    super(
        actual.text()
            + " is not allowed here; use "
            + Arrays.stream(allowed).map(Method::text).collect(Collectors.joining(" or ")));
  }
}
