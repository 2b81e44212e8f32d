package dev.berth.api;

/** The request waited past its deadline before the model could answer it. */
public class DeadlineExceededException extends BerthException {
  private static final long serialVersionUID = 1L;

  public DeadlineExceededException(String message) {
    super(message);
  }
}
