package dev.berth.onnx;

import dev.berth.runtime.Engine;
import dev.berth.runtime.EngineProvider;
import dev.berth.runtime.ModelContext;
import java.nio.file.Files;

/** Loads {@code model.onnx} files with ONNX Runtime. */
public final class OnnxEngineProvider implements EngineProvider {
  public static final String MODEL_FILE = "model.onnx";

  @Override
  public String name() {
    return "onnx";
  }

  @Override
  public String files() {
    return MODEL_FILE;
  }

  @Override
  public boolean canLoad(ModelContext context) {
    return Files.isRegularFile(context.versionDir().resolve(MODEL_FILE));
  }

  @Override
  public Engine load(ModelContext context) {
    return OnnxEngine.load(context);
  }
}
