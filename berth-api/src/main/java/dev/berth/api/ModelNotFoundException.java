package dev.berth.api;

/** No model (or no such version of it) is in the repository. */
public class ModelNotFoundException extends BerthException {
  private static final long serialVersionUID = 1L;
  private final String model;
  private final String version;

  public ModelNotFoundException(String model, String version) {
    super(
        version == null
            ? "model '"
                + model
                + "' is not in the repository; the server's start-up log lists the models it"
                + " serves (so does POST /v2/repository/index where the repository API is on)"
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

  public String model() {
    return model;
  }

  /** The version asked for, or null when none was named. */
  public String version() {
    return version;
  }
}
