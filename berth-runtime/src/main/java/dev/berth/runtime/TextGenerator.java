package dev.berth.runtime;

import java.util.List;

/**
 * An engine for a language model: it generates text token by token. The runtime admits requests
 * through a queue of their own ({@link GenerationQueue}), not the tensor batcher: it starts at most
 * {@link #parallel()} generations at once, and only through {@link #start}; the engine batches the
 * running sequences itself (continuous batching).
 */
public non-sealed interface TextGenerator extends Engine {

  /** Sequences the engine generates at once (continuous batching). */
  int parallel();

  /** Tokens one sequence may hold, prompt and answer together. */
  int contextSize();

  /** The tokens the prompt takes, as {@link #start} will count them (special tokens included). */
  int promptTokens(String prompt);

  /**
   * The prompt for a chat, by the model's chat template.
   *
   * @throws dev.berth.api.InvalidInputException when the template refuses the messages
   */
  String chatPrompt(List<ChatMessage> messages);

  /** Starts generating now; a sequence is free. */
  TokenStream start(Sampling sampling);

  /** One message of a chat. */
  record ChatMessage(String role, String content) {}

  /**
   * A generation's prompt and sampling, every value decided.
   *
   * @param maxTokens most tokens to generate
   * @param temperature 0 for greedy
   * @param seed the sampler's seed, or null for a random one
   */
  record Sampling(String prompt, int maxTokens, double temperature, double topP, Integer seed) {}

  /** The tokens of one generation, as they come. */
  interface TokenStream extends AutoCloseable {
    /**
     * The text of the next generated token ("" for a control token), or null once the engine has
     * stopped: an end-of-sequence token, or {@code maxTokens} reached. An engine may hand over the
     * tokens of one character together (bytes of a character outside its vocabulary). Blocks until
     * the engine produces it; safe on virtual threads.
     */
    String next() throws InterruptedException;

    /**
     * After {@link #next()} returned null: whether the engine stopped because {@code maxTokens} ran
     * out, having generated exactly that many tokens (not at an end-of-sequence token).
     */
    boolean reachedLimit();

    /** Stops generating and frees the sequence; the next {@link #next()} returns null. */
    @Override
    void close();
  }
}
