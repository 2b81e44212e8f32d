package dev.berth.onnx;

import dev.berth.runtime.Engine;
import dev.berth.runtime.EngineProvider;
import dev.berth.runtime.ModelContext;
import java.nio.file.Files;

/** Loads {@code model.onnx} files with ONNX Runtime. */
public final class OnnxEngineProvider implements EngineProvider {
  public static final String MODEL_FILE = "model.onnx";

  /**
   * System property: the execution provider of every model whose model.yaml names none ({@code cpu}
   * unless set; {@code berth serve --execution-provider} sets it).
   */
  public static final String DEFAULT_PROVIDER_PROPERTY = "berth.onnx.execution-provider";

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
