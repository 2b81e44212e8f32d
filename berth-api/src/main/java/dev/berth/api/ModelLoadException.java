package dev.berth.api;

/** A model version could not be loaded; the message says why and what to change. */
public class ModelLoadException extends BerthException {
  private static final long serialVersionUID = 1L;

  public ModelLoadException(String message) {
    super(message);
  }

  public ModelLoadException(String message, Throwable cause) {
    super(message, cause);
  }
}
