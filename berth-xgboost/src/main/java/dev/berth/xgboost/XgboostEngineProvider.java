package dev.berth.xgboost;

import dev.berth.api.ModelLoadException;
import dev.berth.runtime.Engine;
import dev.berth.runtime.EngineProvider;
import dev.berth.runtime.ModelContext;
import java.nio.file.Files;
import java.nio.file.Path;

/** Loads XGBoost models saved as {@code model.json} or {@code model.ubj} with XGBoost's library. */
public final class XgboostEngineProvider implements EngineProvider {
  /** A model saved as JSON ({@code booster.save_model("model.json")}). */
  public static final String JSON_FILE = "model.json";

  /** A model saved as Universal Binary JSON ({@code booster.save_model("model.ubj")}). */
  public static final String UBJ_FILE = "model.ubj";

  @Override
  public String name() {
    return "xgboost";
  }

  @Override
  public String files() {
    return JSON_FILE + " or " + UBJ_FILE;
  }

  @Override
  public boolean canLoad(ModelContext context) {
    return Files.isRegularFile(context.versionDir().resolve(JSON_FILE))
        || Files.isRegularFile(context.versionDir().resolve(UBJ_FILE));
  }

  @Override
  public Engine load(ModelContext context) {
    return XgboostEngine.load(context, modelFile(context.versionDir()));
  }

  /** The version directory's model file; both formats at once are refused rather than guessed. */
  static Path modelFile(Path versionDir) {
    Path json = versionDir.resolve(JSON_FILE);
    Path ubj = versionDir.resolve(UBJ_FILE);
    boolean hasJson = Files.isRegularFile(json);
    boolean hasUbj = Files.isRegularFile(ubj);
    if (hasJson && hasUbj) {
      throw new ModelLoadException(
          versionDir
              + " holds both "
              + JSON_FILE
              + " and "
              + UBJ_FILE
              + "; keep the one to serve and remove the other (or move it to another version)");
    }
    if (!hasJson && !hasUbj) {
      throw new ModelLoadException(
          versionDir + " holds no " + JSON_FILE + " or " + UBJ_FILE + "; save the model there");
    }
    return hasJson ? json : ubj;
  }
}
