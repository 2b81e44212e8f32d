package dev.berth.api;

import java.nio.file.Path;

/** A configuration file that Berth cannot use, with the file, the key and the fix. */
public class ConfigException extends BerthException {
  private static final long serialVersionUID = 1L;
  private final transient Path file;
  private final String key;

  public ConfigException(Path file, String key, String problemAndFix) {
    super(
        file + (key == null || key.isEmpty() ? "" : ": key '" + key + "'") + ": " + problemAndFix);
    this.file = file;
    this.key = key;
  }

  public Path file() {
    return file;
  }

  /**
   * The key at fault, dotted from the root ({@code batching.max-batch-size}); empty for the file.
   */
  public String key() {
    return key;
  }
}
