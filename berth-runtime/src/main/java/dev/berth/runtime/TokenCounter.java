package dev.berth.runtime;

import java.util.List;

/** An engine that tokenizes text itself, and so can say how many tokens texts take. */
public interface TokenCounter {
  /** Tokens of all the texts together, as the engine feeds them to the model. */
  int countTokens(List<String> texts);
}
