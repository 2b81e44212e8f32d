package dev.berth.tensorflow;

import dev.berth.runtime.Engine;
import dev.berth.runtime.EngineProvider;
import dev.berth.runtime.ModelContext;
import java.nio.file.Files;

/**
 * Loads TensorFlow SavedModels ({@code model.savedmodel/} in a version directory, as Triton lays
 * them out) with TensorFlow Java.
 */
public final class TensorflowEngineProvider implements EngineProvider {
  /** The SavedModel directory of a version: saved_model.pb and variables/. */
  public static final String MODEL_DIR = "model.savedmodel";

  @Override
  public String name() {
    return "tensorflow";
  }

  @Override
  public String files() {
    return MODEL_DIR + "/ (a SavedModel: saved_model.pb and variables/)";
  }

  @Override
  public boolean canLoad(ModelContext context) {
    return Files.isDirectory(context.versionDir().resolve(MODEL_DIR));
  }

  @Override
  public Engine load(ModelContext context) {
    return TensorflowEngine.load(context);
  }
}
