package dev.berth.api;

import java.time.Duration;

/** The request was refused at once because a queue is full; the client should retry later. */
public class OverloadedException extends BerthException {
  private static final long serialVersionUID = 1L;
  private final Duration retryAfter;

  public OverloadedException(String message, Duration retryAfter) {
    super(message);
    this.retryAfter = retryAfter;
  }

  /** How long the client should wait before trying again. */
  public Duration retryAfter() {
    return retryAfter;
  }
}
