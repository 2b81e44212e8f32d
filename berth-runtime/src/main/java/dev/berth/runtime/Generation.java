package dev.berth.runtime;

import java.util.List;

/**
 * One generation under way: its text as it comes, then its counts and why it ended. Stop strings
 * are applied here: text is handed on only once it cannot be the start of one, and the generation
 * ends where one appears. {@link #close()} ends it early, frees its sequence and ends its hold on
 * the model; call it in every case.
 */
public final class Generation implements AutoCloseable {
  /** Why a generation ended, as OpenAI's {@code finish_reason} says it. */
  public enum FinishReason {
    /** An end-of-sequence token or a stop string. */
    STOP,
    /** {@code max_tokens}, or the context, ran out. */
    LENGTH
  }

  private final String model;
  private final String version;
  private final TextGenerator.TokenStream tokens;
  private final List<String> stop;
  private final int maxTokens;
  private final int promptTokens;
  private final Listener listener;
  private final StringBuilder held = new StringBuilder();
  private int completionTokens;
  private FinishReason finishReason;
  private boolean closed;

  /** What the queue and the metrics learn of a generation. */
  interface Listener {
    /** A token came, {@code completionTokens} so far. */
    void token(int completionTokens);

    /**
     * The engine is done with the sequence: free it. Called once.
     *
     * @param reason why it ended, or null when the caller ended it first
     */
    void ended(int completionTokens, FinishReason reason);

    /** The caller is done: end its hold on the model. Called once, after {@link #ended}. */
    void closed();
  }

  Generation(
      String model,
      String version,
      TextGenerator.TokenStream tokens,
      List<String> stop,
      int maxTokens,
      int promptTokens,
      Listener listener) {
    this.model = model;
    this.version = version;
    this.tokens = tokens;
    this.stop = stop;
    this.maxTokens = maxTokens;
    this.promptTokens = promptTokens;
    this.listener = listener;
  }

  public String model() {
    return model;
  }

  public String version() {
    return version;
  }

  /** Tokens of the prompt, special tokens included. */
  public int promptTokens() {
    return promptTokens;
  }

  /** Tokens generated so far (those a stop string ended on included). */
  public synchronized int completionTokens() {
    return completionTokens;
  }

  /** Why it ended, or null while it runs. */
  public synchronized FinishReason finishReason() {
    return finishReason;
  }

  /**
   * The next text, never empty, or null once the generation has ended. Blocks while the engine
   * works; safe on virtual threads.
   */
  public String next() throws InterruptedException {
    while (true) {
      String piece;
      synchronized (this) {
        if (finishReason != null || closed) {
          return flush();
        }
      }
      piece = tokens.next();
      synchronized (this) {
        if (closed) {
          return null;
        }
        if (piece == null) {
          if (tokens.reachedLimit()) {
            completionTokens = maxTokens; // pieces that carried several tokens counted once
          }
          end(completionTokens >= maxTokens ? FinishReason.LENGTH : FinishReason.STOP);
          return flush();
        }
        completionTokens++;
        listener.token(completionTokens);
        held.append(piece);
        int at = firstStop();
        if (at >= 0) {
          held.setLength(at);
          end(FinishReason.STOP);
          return flush();
        }
        if (completionTokens >= maxTokens) {
          end(FinishReason.LENGTH);
          return flush();
        }
        int ready = held.length() - stopPrefixAtEnd();
        if (ready > 0) {
          String out = held.substring(0, ready);
          held.delete(0, ready);
          return out;
        }
      }
    }
  }

  private String flush() {
    if (held.isEmpty()) {
      return null;
    }
    String out = held.toString();
    held.setLength(0);
    return out;
  }

  private void end(FinishReason reason) {
    finishReason = reason;
    tokens.close();
    listener.ended(completionTokens, reason);
  }

  /** Where the first stop string starts in the held text, or -1. */
  private int firstStop() {
    int first = -1;
    for (String s : stop) {
      int at = held.indexOf(s);
      if (at >= 0 && (first < 0 || at < first)) {
        first = at;
      }
    }
    return first;
  }

  /** The length of the longest end of the held text that begins some stop string. */
  private int stopPrefixAtEnd() {
    int longest = 0;
    String tail = held.substring(Math.max(0, held.length() - maxStopLength()));
    for (String s : stop) {
      for (int n = Math.min(s.length() - 1, tail.length()); n > longest; n--) {
        if (tail.regionMatches(tail.length() - n, s, 0, n)) {
          longest = n;
          break;
        }
      }
    }
    return longest;
  }

  private int maxStopLength() {
    int max = 0;
    for (String s : stop) {
      max = Math.max(max, s.length());
    }
    return max;
  }

  /** Ends the generation if it still runs, and its hold on the model. */
  @Override
  public void close() {
    synchronized (this) {
      if (closed) {
        return;
      }
      closed = true;
      if (finishReason == null) {
        tokens.close();
        listener.ended(completionTokens, null);
      }
    }
    listener.closed();
  }
}
