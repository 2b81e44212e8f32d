package dev.berth.llm;

import dev.berth.runtime.Engine;
import dev.berth.runtime.EngineProvider;
import dev.berth.runtime.ModelContext;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Loads {@code model.gguf} language models with llama.cpp. */
public final class LlamaEngineProvider implements EngineProvider {
  public static final String MODEL_FILE = dev.berth.runtime.GgufHeader.MODEL_FILE;

  @Override
  public String name() {
    return "llama";
  }

  @Override
  public String files() {
    return MODEL_FILE;
  }

  @Override
  public boolean canLoad(ModelContext context) {
    return Files.isRegularFile(context.versionDir().resolve(MODEL_FILE));
  }

  /**
   * System property of the binding: where it unpacks its native library. It deletes every file
   * there whose name starts with "llama" when it loads, so Berth gives it a directory of its own.
   */
  static final String NATIVE_DIR_PROPERTY = "de.kherud.llama.tmpdir";

  /** System property of the binding: a directory with a llama.cpp library of the user's own. */
  static final String LIBRARY_PATH_PROPERTY = "de.kherud.llama.lib.path";

  @Override
  public Engine load(ModelContext context) {
    privateNativeDirectory();
    return LlamaEngine.load(context, context.versionDir().resolve(MODEL_FILE));
  }

  private static synchronized void privateNativeDirectory() {
    if (System.getProperty(NATIVE_DIR_PROPERTY) == null
        && System.getProperty(LIBRARY_PATH_PROPERTY) == null) {
      try {
        Path dir = Files.createTempDirectory("berth-llama-");
        dir.toFile().deleteOnExit();
        System.setProperty(NATIVE_DIR_PROPERTY, dir.toString());
      } catch (IOException e) {
        throw new UncheckedIOException("cannot make a directory for llama.cpp's native library", e);
      }
    }
  }
}
