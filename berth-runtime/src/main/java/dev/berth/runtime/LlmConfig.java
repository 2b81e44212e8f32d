package dev.berth.runtime;

import java.util.Set;

/**
 * The {@code llm} section of a language model's model.yaml: how its engine runs and what a request
 * gets when it does not say.
 *
 * <pre>{@code
 * llm:
 *   context-size: 4096     # tokens one sequence may hold, prompt and answer together
 *   parallel: 4            # sequences generated at once (continuous batching)
 *   max-waiting: 64        # requests waiting for a sequence; more get 429
 *   chat-template: ...     # Jinja chat template; default: the one in the GGUF
 *   threads: 0             # CPU threads; 0: one per core
 *   gpu-layers: -1         # layers offloaded to a GPU (-1: all); unset: all with
 *                          # --execution-provider cuda, else none
 *   defaults: {max-tokens: 512, temperature: 0.8, top-p: 0.95}
 * }</pre>
 */
public record LlmConfig(
    int contextSize,
    int parallel,
    int maxWaiting,
    String chatTemplate,
    int threads,
    Integer gpuLayers,
    int maxTokens,
    double temperature,
    double topP) {

  public static final int DEFAULT_CONTEXT_SIZE = 4096;
  public static final int DEFAULT_PARALLEL = 4;
  public static final int DEFAULT_MAX_WAITING = 64;
  public static final int DEFAULT_MAX_TOKENS = 512;
  public static final double DEFAULT_TEMPERATURE = 0.8;
  public static final double DEFAULT_TOP_P = 0.95;

  static final String KEY = "llm";

  /** Reads the section; every key is optional. */
  public static LlmConfig parse(ConfigReader llm) {
    llm.allowOnly(
        Set.of(
            "context-size",
            "parallel",
            "max-waiting",
            "chat-template",
            "threads",
            "gpu-layers",
            "defaults"));
    ConfigReader d = llm.section("defaults");
    d.allowOnly(Set.of("max-tokens", "temperature", "top-p"));
    int contextSize = llm.integer("context-size", DEFAULT_CONTEXT_SIZE, 16, 1 << 20);
    double temperature = d.number("temperature", DEFAULT_TEMPERATURE);
    if (temperature < 0 || temperature > 2) {
      throw d.error("temperature", "must be between 0 and 2");
    }
    double topP = d.number("top-p", DEFAULT_TOP_P);
    if (!(topP > 0) || topP > 1) {
      throw d.error("top-p", "must be above 0 and at most 1");
    }
    return new LlmConfig(
        contextSize,
        llm.integer("parallel", DEFAULT_PARALLEL, 1, 256),
        llm.integer("max-waiting", DEFAULT_MAX_WAITING, 0, 1_000_000),
        llm.string("chat-template", null),
        llm.integer("threads", 0, 0, 1024),
        llm.has("gpu-layers") ? llm.integer("gpu-layers", 0, -1, 100_000) : null,
        d.integer("max-tokens", Math.min(DEFAULT_MAX_TOKENS, contextSize - 1), 1, contextSize),
        temperature,
        topP);
  }
}
