package dev.berth.client.bench;

import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;

/**
 * What one load thread saw in a step's measured time: the exact latency of every successful
 * request, a count per error (HTTP status or transport failure), and the first error's message.
 * Written by its thread alone; read by others only for progress (counts may lag) and after the
 * thread has ended.
 */
final class Recorder {
  private long[] latencies = new long[1024];
  private int size;
  private final long[] statusCounts = new long[600];
  private final Map<String, Long> failures = new TreeMap<>();
  private long errors;
  private String firstError;
  private long firstErrorNanos = Long.MAX_VALUE;
  private volatile long completed;
  private final LatencyHistogram histogram = new LatencyHistogram();
  private long lastCompletionNanos = Long.MIN_VALUE;
  private boolean usage;
  private long promptTokens;
  private long completionTokens;
  private long longestSequence;
  private long withoutUsage;

  /**
   * Reads each successful answer's OpenAI {@code usage} ({@code prompt_tokens}, {@code
   * completion_tokens}): a language model's answers. Their bodies must be kept.
   */
  void readUsage() {
    usage = true;
  }

  /** An answer with {@code status}; its body is read only for the first error. */
  void answer(int status, long latencyNanos, long atNanos, ResponseParser response) {
    if (status >= 200 && status < 300) {
      ok(latencyNanos, atNanos);
      if (usage) {
        byte[] body = response.body();
        long prompt = usageField(body, "prompt_tokens");
        long completion = usageField(body, "completion_tokens");
        if (prompt < 0 || completion < 0) {
          withoutUsage++;
        } else {
          promptTokens += prompt;
          completionTokens += completion;
          longestSequence = Math.max(longestSequence, prompt + completion);
        }
      }
      return;
    }
    statusCounts[status >= 0 && status < statusCounts.length ? status : 0]++;
    errors++;
    if (atNanos < firstErrorNanos) {
      firstErrorNanos = atNanos;
      String body = response.bodyText().strip();
      firstError = "HTTP " + status + (body.isEmpty() ? "" : ": " + abbreviate(body));
    }
    lastCompletionNanos = Math.max(lastCompletionNanos, atNanos);
    completed++;
  }

  /** A successful answer. */
  void ok(long latencyNanos, long atNanos) {
    if (size == latencies.length) {
      latencies = Arrays.copyOf(latencies, size * 2);
    }
    latencies[size++] = latencyNanos;
    histogram.record(latencyNanos);
    lastCompletionNanos = Math.max(lastCompletionNanos, atNanos);
    completed++;
  }

  /**
   * A request that failed without an HTTP status: {@code kind} is e.g. {@code timeout} or {@code
   * refused}, or a gRPC status such as {@code UNAVAILABLE}.
   */
  void failure(String kind, String message, long atNanos) {
    failures.merge(kind, 1L, Long::sum);
    errors++;
    if (atNanos < firstErrorNanos) {
      firstErrorNanos = atNanos;
      firstError = kind + ": " + message;
    }
    lastCompletionNanos = Math.max(lastCompletionNanos, atNanos);
    completed++;
  }

  /**
   * The whole number after the last {@code "NAME":} of a JSON answer, or -1. A key's quotes are
   * never escaped, and the same name inside a string value would be ({@code \"NAME\"}): the last
   * unescaped one is the key of OpenAI's usage object, which follows the choices.
   */
  static long usageField(byte[] json, String name) {
    byte[] key = ('"' + name + '"').getBytes(StandardCharsets.US_ASCII);
    for (int at = json.length - key.length; at >= 0; at--) {
      if (!matches(json, at, key) || (at > 0 && json[at - 1] == '\\')) {
        continue;
      }
      int i = at + key.length;
      while (i < json.length
          && (json[i] == ' ' || json[i] == '\n' || json[i] == '\r' || json[i] == '\t')) {
        i++;
      }
      if (i >= json.length || json[i] != ':') {
        continue;
      }
      i++;
      while (i < json.length
          && (json[i] == ' ' || json[i] == '\n' || json[i] == '\r' || json[i] == '\t')) {
        i++;
      }
      long value = 0;
      int digits = 0;
      while (i < json.length && json[i] >= '0' && json[i] <= '9' && digits < 18) {
        value = value * 10 + (json[i++] - '0');
        digits++;
      }
      return digits == 0 ? -1 : value;
    }
    return -1;
  }

  private static boolean matches(byte[] json, int at, byte[] key) {
    for (int k = 0; k < key.length; k++) {
      if (json[at + k] != key[k]) {
        return false;
      }
    }
    return true;
  }

  long completed() {
    return completed;
  }

  LatencyHistogram histogram() {
    return histogram;
  }

  /** Everything several recorders saw, merged: call after their threads have ended. */
  static Merged merge(Iterable<Recorder> recorders) {
    int n = 0;
    for (Recorder r : recorders) {
      n += r.size;
    }
    long[] all = new long[n];
    int at = 0;
    long errors = 0;
    long last = Long.MIN_VALUE;
    Map<String, Long> byStatus = new TreeMap<>(Merged::compareKeys);
    String first = null;
    long firstAt = Long.MAX_VALUE;
    boolean usage = false;
    long prompt = 0;
    long completion = 0;
    long longest = 0;
    long without = 0;
    for (Recorder r : recorders) {
      usage |= r.usage;
      prompt += r.promptTokens;
      completion += r.completionTokens;
      longest = Math.max(longest, r.longestSequence);
      without += r.withoutUsage;
      System.arraycopy(r.latencies, 0, all, at, r.size);
      at += r.size;
      errors += r.errors;
      last = Math.max(last, r.lastCompletionNanos);
      for (int s = 0; s < r.statusCounts.length; s++) {
        if (r.statusCounts[s] > 0) {
          byStatus.merge(Integer.toString(s), r.statusCounts[s], Long::sum);
        }
      }
      r.failures.forEach((k, v) -> byStatus.merge(k, v, Long::sum));
      if (r.firstErrorNanos < firstAt) {
        firstAt = r.firstErrorNanos;
        first = r.firstError;
      }
    }
    Arrays.sort(all);
    // token figures only when every answer said its usage
    boolean tokens = usage && without == 0;
    return new Merged(
        all,
        errors,
        byStatus,
        first,
        last,
        tokens ? prompt : -1,
        tokens ? completion : -1,
        tokens && all.length > 0 ? longest : -1);
  }

  /**
   * Merged recordings.
   *
   * @param sortedLatencies latencies of the successful requests, nanoseconds, ascending
   * @param errors failed requests
   * @param errorsByStatus failed requests by HTTP status ("503") or transport failure ("timeout")
   * @param firstError the first error's status and message; null when none
   * @param lastCompletionNanos when the last request ended (System.nanoTime); MIN_VALUE if none
   * @param promptTokens prompt tokens of the successful answers' usage; -1 when not read
   * @param completionTokens generated tokens of the successful answers' usage; -1 when not read
   * @param longestSequence the most prompt and generated tokens of one answer; -1 when not read
   */
  record Merged(
      long[] sortedLatencies,
      long errors,
      Map<String, Long> errorsByStatus,
      String firstError,
      long lastCompletionNanos,
      long promptTokens,
      long completionTokens,
      long longestSequence) {

    /** HTTP statuses first, in numeric order, then transport failures by name. */
    static int compareKeys(String a, String b) {
      boolean na = a.chars().allMatch(Character::isDigit);
      boolean nb = b.chars().allMatch(Character::isDigit);
      if (na != nb) {
        return na ? -1 : 1;
      }
      return na ? Integer.compare(Integer.parseInt(a), Integer.parseInt(b)) : a.compareTo(b);
    }
  }

  private static String abbreviate(String s) {
    String oneLine = s.replaceAll("\\s+", " ");
    return oneLine.length() > 300 ? oneLine.substring(0, 300) + "..." : oneLine;
  }
}
