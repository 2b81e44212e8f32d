package dev.berth.pytorch;

import dev.berth.runtime.Engine;
import dev.berth.runtime.EngineProvider;
import dev.berth.runtime.ModelContext;
import java.nio.file.Files;

/** Loads TorchScript {@code model.pt} files with libtorch. */
public final class PytorchEngineProvider implements EngineProvider {
  public static final String MODEL_FILE = "model.pt";

  @Override
  public String name() {
    return "pytorch";
  }

  @Override
  public String files() {
    return MODEL_FILE + " (TorchScript)";
  }

  @Override
  public boolean canLoad(ModelContext context) {
    return Files.isRegularFile(context.versionDir().resolve(MODEL_FILE));
  }

  @Override
  public Engine load(ModelContext context) {
    return PytorchEngine.load(context);
  }
}
