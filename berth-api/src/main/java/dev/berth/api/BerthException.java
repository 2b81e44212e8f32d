package dev.berth.api;

/**
 * Root of every error Berth raises on purpose. Messages are written for the user: they say what was
 * wrong and how to fix it, and are safe to send to a client.
 */
public class BerthException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  public BerthException(String message) {
    super(message);
  }

  public BerthException(String message, Throwable cause) {
    super(message, cause);
  }
}
