package dev.berth.api;

/** The call carries no credential, or one the server does not know (HTTP 401, UNAUTHENTICATED). */
public class UnauthenticatedException extends BerthException {
  private static final long serialVersionUID = 1L;

  public UnauthenticatedException(String message) {
    super(message);
  }
}
