package dev.berth.llm;

import dev.berth.runtime.Engine;
import dev.berth.runtime.EngineProvider;
import dev.berth.runtime.ModelContext;
import java.nio.file.Files;

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

  @Override
  public Engine load(ModelContext context) {
    return LlamaEngine.load(context, context.versionDir().resolve(MODEL_FILE));
  }
}
