package dev.berth.api;

/**
 * A model version was refused because its files are not the ones its owner pinned or signed: a
 * digest differs, a file is missing or was added, or the signature does not verify. The message
 * names the file, the expected and the actual digest, and the fix.
 */
public class ModelIntegrityException extends ModelLoadException {
  private static final long serialVersionUID = 1L;
  private final String file;

  /**
   * @param file the file at fault, relative to the model directory, or null when it is the model as
   *     a whole (no signature, a signature that does not verify)
   * @param message what is wrong and how to fix it
   */
  public ModelIntegrityException(String file, String message) {
    super(message);
    this.file = file;
  }

  /** The file at fault, relative to the model directory, or null for the model as a whole. */
  public String file() {
    return file;
  }
}
