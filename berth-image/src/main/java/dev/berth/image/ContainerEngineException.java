package dev.berth.image;

import dev.berth.api.BerthException;

/**
 * The container engine refused or failed a request; {@link #status()} is its HTTP status, or 0 when
 * it gave no answer.
 */
public class ContainerEngineException extends BerthException {
  private static final long serialVersionUID = 1L;
  private final int status;

  ContainerEngineException(int status, String message) {
    super(message);
    this.status = status;
  }

  ContainerEngineException(int status, String message, Throwable cause) {
    super(message, cause);
    this.status = status;
  }

  /** The engine's HTTP status, or 0 when the failure came before or instead of an answer. */
  public int status() {
    return status;
  }
}
