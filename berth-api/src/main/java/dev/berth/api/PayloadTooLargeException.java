package dev.berth.api;

/** A request body larger than the configured limit. */
public class PayloadTooLargeException extends BerthException {
  private static final long serialVersionUID = 1L;

  public PayloadTooLargeException(String message) {
    super(message);
  }
}
