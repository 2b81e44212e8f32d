package dev.berth.api;

/** No model (or no such version of it) is in the repository. */
public class ModelNotFoundException extends BerthException {
  private static final long serialVersionUID = 1L;
  private final String model;
  private final String version;

  public ModelNotFoundException(String model, String version) {
    this(model, version, null);
  }

  /**
   * @param served the names of the models the server serves, for the message (null: not known)
   */
  public ModelNotFoundException(String model, String version, java.util.List<String> served) {
    super(
        version == null
            ? "model '"
                + model
                + "' is not in the repository; "
                + (served == null
                    ? "the server's start-up log lists the models it serves"
                    : served.isEmpty() ? "it has no models" : "its models: " + listed(served))
            : "model '"
                + model
                + "' has no version '"
                + version
                + "'; GET /v2/models/"
                + model
                + " lists its versions");
    this.model = model;
    this.version = version;
  }

  private static String listed(java.util.List<String> served) {
    int shown = Math.min(served.size(), 20);
    return String.join(", ", served.subList(0, shown))
        + (served.size() > shown ? " and " + (served.size() - shown) + " more" : "");
  }

  public String model() {
    return model;
  }

  /** The version asked for, or null when none was named. */
  public String version() {
    return version;
  }
}
