package dev.berth.runtime;

import java.util.List;
import java.util.OptionalInt;

/** An engine that may tokenize text itself, and so can say how many tokens texts take. */
public interface TokenCounter {
  /**
   * Tokens of all the texts together, as the engine feeds them to the model; empty when this model
   * takes no text.
   */
  OptionalInt countTokens(List<String> texts);
}
