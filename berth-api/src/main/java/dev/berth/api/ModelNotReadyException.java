package dev.berth.api;

/** The model exists but cannot answer now: it is loading, failed to load, or the server drains. */
public class ModelNotReadyException extends BerthException {
  private static final long serialVersionUID = 1L;

  public ModelNotReadyException(String message) {
    super(message);
  }
}
