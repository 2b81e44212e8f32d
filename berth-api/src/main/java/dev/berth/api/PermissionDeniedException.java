package dev.berth.api;

/** The caller is known but lacks the role the call needs (HTTP 403, PERMISSION_DENIED). */
public class PermissionDeniedException extends BerthException {
  private static final long serialVersionUID = 1L;

  public PermissionDeniedException(String message) {
    super(message);
  }
}
