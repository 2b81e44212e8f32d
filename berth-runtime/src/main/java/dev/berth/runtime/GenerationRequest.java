package dev.berth.runtime;

import java.util.List;

/**
 * A request to a language model, as a client gave it: a prompt, or chat messages for the model's
 * chat template. Unset values (null) take the model's {@code llm.defaults}.
 *
 * @param prompt the prompt, or null when {@code messages} is given
 * @param messages chat messages, or null when {@code prompt} is given
 * @param maxTokens most tokens to generate; never more than the context leaves
 * @param temperature 0 (greedy) to 2
 * @param topP nucleus sampling, above 0 and at most 1
 * @param seed sampler seed, for repeatable text
 * @param stop strings that end the text where they first appear (not included)
 */
public record GenerationRequest(
    String prompt,
    List<TextGenerator.ChatMessage> messages,
    Integer maxTokens,
    Double temperature,
    Double topP,
    Integer seed,
    List<String> stop) {

  public GenerationRequest {
    if ((prompt == null) == (messages == null)) {
      throw new IllegalArgumentException("give a prompt or messages, not both");
    }
    messages = messages == null ? null : List.copyOf(messages);
    stop = stop == null ? List.of() : List.copyOf(stop);
  }
}
