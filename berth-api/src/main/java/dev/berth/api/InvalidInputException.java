package dev.berth.api;

/** A request that does not match what the model takes (name, shape, datatype, encoding). */
public class InvalidInputException extends BerthException {
  private static final long serialVersionUID = 1L;

  public InvalidInputException(String message) {
    super(message);
  }

  public InvalidInputException(String message, Throwable cause) {
    super(message, cause);
  }
}
