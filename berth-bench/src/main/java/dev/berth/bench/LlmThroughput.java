package dev.berth.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.berth.llm.GgufWriter;
import dev.berth.llm.LlamaEngineProvider;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelContext;
import dev.berth.runtime.TextGenerator;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CyclicBarrier;

/**
 * Token throughput of a GGUF language model, the same work measured two ways for bench/llm: driven
 * in this process by Berth's llama.cpp engine (the ceiling: no HTTP, no JSON, no queue), or through
 * a Berth server's OpenAI-compatible API as streamed {@code /v1/completions}.
 *
 * <pre>
 * java -cp ... dev.berth.bench.LlmThroughput write-model PATH
 * java -cp ... dev.berth.bench.LlmThroughput in-process PATH CONCURRENCY MAX_TOKENS SECONDS CONTEXT THREADS
 * java -cp ... dev.berth.bench.LlmThroughput http URL MODEL CONCURRENCY MAX_TOKENS SECONDS
 * </pre>
 *
 * <p>Each of CONCURRENCY workers sends the same prompt, greedy, again and again: one round to warm
 * up, then for SECONDS. It prints one JSON object: tokens generated, tokens/s, requests, and time
 * to first token (p50, p99). Tokens are counted the same way on both paths: one per streamed piece
 * the engine hands over.
 */
public final class LlmThroughput {
  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * The prompt of one request: with BERTH_BENCH_PROMPT_WORDS=N, N words after a number no other
   * request has, so that no side reuses a cached prompt start; else {@link #PROMPT}.
   */
  static String prompt() {
    String words = System.getenv("BERTH_BENCH_PROMPT_WORDS");
    if (words == null || words.isBlank()) {
      return PROMPT;
    }
    int n = Integer.parseInt(words.strip());
    StringBuilder b =
        new StringBuilder("Request ")
            .append(java.util.concurrent.ThreadLocalRandom.current().nextLong(1L << 40))
            .append(':');
    String[] text = PROMPT.split(" ");
    for (int i = 0; i < n; i++) {
      b.append(' ').append(text[i % text.length]);
    }
    return b.toString();
  }

  static final String PROMPT =
      "Berth serves models in production. Write a long story about a ship that finds its berth.";

  private LlmThroughput() {}

  /** One generation's count, time to its first token, and whole time. */
  private record Run(int tokens, long firstTokenNanos, long totalNanos) {
    /** Tokens after the first over the time after the first: the sequence's decode rate. */
    double decodeRate() {
      return tokens > 1 && totalNanos > firstTokenNanos && firstTokenNanos >= 0
          ? (tokens - 1) / ((totalNanos - firstTokenNanos) / 1e9)
          : Double.NaN;
    }
  }

  private interface Generator {
    Run generate(int maxTokens) throws Exception;
  }

  public static void main(String[] args) throws Exception {
    switch (args[0]) {
      case "write-model" -> {
        Path file = Path.of(args[1]);
        Files.createDirectories(file.toAbsolutePath().getParent());
        long start = System.nanoTime();
        GgufWriter.tinyLlama1B().write(file);
        System.err.printf(
            "wrote %s (%d MB) in %.1f s%n",
            file, Files.size(file) >> 20, (System.nanoTime() - start) / 1e9);
      }
      case "in-process" -> inProcess(args);
      case "http" -> http(args);
      default -> throw new IllegalArgumentException("unknown mode " + args[0]);
    }
    System.exit(0);
  }

  private static void inProcess(String[] args) throws Exception {
    Path model = Path.of(args[1]);
    int concurrency = Integer.parseInt(args[2]);
    int maxTokens = Integer.parseInt(args[3]);
    int seconds = Integer.parseInt(args[4]);
    int context = Integer.parseInt(args[5]);
    int threads = Integer.parseInt(args[6]);
    // Berth's llama.cpp engine, loaded as the server loads it, with llm.parallel = 8,
    // llm.context-size = CONTEXT and llm.threads = THREADS
    Path repo = Files.createTempDirectory("berth-llm-bench-");
    Path version = Files.createDirectories(repo.resolve("m/1"));
    Files.createSymbolicLink(version.resolve("model.gguf"), model.toAbsolutePath());
    Files.writeString(
        repo.resolve("m/model.yaml"),
        "apiVersion: berth.dev/v1\nkind: Model\nllm: {context-size: "
            + context
            + ", parallel: 8, threads: "
            + threads
            + "}\n");
    try (TextGenerator llama =
        (TextGenerator)
            new LlamaEngineProvider()
                .load(new ModelContext("m", "1", version, ModelConfig.load(repo.resolve("m"))))) {
      Generator generator =
          maxNew -> {
            long start = System.nanoTime();
            long first = -1;
            int tokens = 0;
            // greedy, with Berth's default top_p, which the server passes
            try (TextGenerator.TokenStream it =
                llama.start(new TextGenerator.Sampling(prompt(), maxNew, 0, 0.95, null))) {
              for (String text = it.next(); text != null; text = it.next()) {
                if (first < 0 && !text.isEmpty()) {
                  first = System.nanoTime() - start; // as the HTTP client: the first text
                }
                tokens++;
              }
            }
            return new Run(tokens, first, System.nanoTime() - start);
          };
      Result r = measure(generator, concurrency, maxTokens, seconds);
      print("in-process", r, llama.promptTokens(prompt()));
    }
  }

  private static void http(String[] args) throws Exception {
    URI url = URI.create(args[1]);
    String model = args[2];
    int concurrency = Integer.parseInt(args[3]);
    int maxTokens = Integer.parseInt(args[4]);
    int seconds = Integer.parseInt(args[5]);
    Generator generator =
        maxNew -> {
          ObjectNode body = JSON.createObjectNode();
          body.put("model", model);
          body.put("prompt", prompt());
          body.put("max_tokens", maxNew);
          body.put("temperature", 0);
          body.put("stream", true);
          body.putObject("stream_options").put("include_usage", true);
          return stream(url, "/v1/completions", JSON.writeValueAsBytes(body));
        };
    print("http", measure(generator, concurrency, maxTokens, seconds), -1);
  }

  /**
   * One streamed completion over a fresh HTTP/1.1 connection, read the way a lean client reads it:
   * the events are scanned as bytes and only the usage event is parsed. The client shares the
   * machine with the server, so every microsecond it spends per token is taken from the engine;
   * java.net.http plus a JSON tree per event cost more than the server's own work per token.
   */
  static Run stream(URI url, String path, byte[] body) throws java.io.IOException {
    long start = System.nanoTime();
    try (java.net.Socket socket = new java.net.Socket(url.getHost(), url.getPort())) {
      socket.setTcpNoDelay(true);
      socket.setSoTimeout((int) Duration.ofMinutes(10).toMillis());
      OutputStream out = socket.getOutputStream();
      String head =
          "POST "
              + path
              + " HTTP/1.1\r\nHost: "
              + url.getHost()
              + ':'
              + url.getPort()
              + "\r\nContent-Type: application/json\r\nContent-Length: "
              + body.length
              + "\r\nConnection: close\r\n\r\n";
      out.write(head.getBytes(StandardCharsets.ISO_8859_1));
      out.write(body);
      out.flush();
      InputStream in = new java.io.BufferedInputStream(socket.getInputStream(), 1 << 16);
      String status = asciiLine(in);
      boolean chunked = false;
      for (String h; !(h = asciiLine(in)).isEmpty(); ) {
        String lower = h.toLowerCase(java.util.Locale.ROOT);
        chunked |= lower.startsWith("transfer-encoding:") && lower.contains("chunked");
      }
      InputStream events = chunked ? new Chunked(in) : in;
      if (!status.startsWith("HTTP/1.1 200")) {
        throw new IllegalStateException(
            status + ": " + new String(events.readAllBytes(), StandardCharsets.UTF_8));
      }
      long first = -1;
      int tokens = 0;
      java.io.ByteArrayOutputStream line = new java.io.ByteArrayOutputStream(512);
      for (int b; (b = events.read()) >= 0; ) {
        if (b != '\n') {
          line.write(b);
          continue;
        }
        String event = line.toString(StandardCharsets.UTF_8);
        line.reset();
        if (!event.startsWith("data: {")) {
          continue;
        }
        if (event.contains("\"usage\":{")) {
          tokens = JSON.readTree(event.substring(6)).get("usage").get("completion_tokens").asInt();
        } else if (first < 0 && event.contains("\"text\":\"") && !event.contains("\"text\":\"\"")) {
          first = System.nanoTime() - start;
        }
      }
      return new Run(tokens, first, System.nanoTime() - start);
    }
  }

  private static String asciiLine(InputStream in) throws java.io.IOException {
    StringBuilder b = new StringBuilder();
    for (int c; (c = in.read()) != '\n'; ) {
      if (c < 0) {
        throw new java.io.EOFException("the server closed the connection mid-header");
      }
      if (c != '\r') {
        b.append((char) c);
      }
    }
    return b.toString();
  }

  /** An HTTP/1.1 chunked body, decoded. */
  private static final class Chunked extends InputStream {
    private final InputStream in;
    private long left;
    private boolean done;

    Chunked(InputStream in) {
      this.in = in;
    }

    @Override
    public int read() throws java.io.IOException {
      while (left == 0) {
        if (done) {
          return -1;
        }
        String size = asciiLine(in);
        if (size.isEmpty()) {
          continue; // the CRLF after a chunk's data
        }
        int semi = size.indexOf(';');
        left = Long.parseLong((semi < 0 ? size : size.substring(0, semi)).strip(), 16);
        if (left == 0) {
          done = true;
          return -1;
        }
      }
      left--;
      return in.read();
    }
  }

  private record Result(
      int concurrency,
      int requests,
      long tokens,
      double seconds,
      List<Long> firstTokens,
      double decodeRate) {}

  private static Result measure(Generator generator, int concurrency, int maxTokens, int seconds)
      throws Exception {
    CyclicBarrier warm = new CyclicBarrier(concurrency + 1);
    long[] deadline = new long[1];
    List<Run> runs = Collections.synchronizedList(new ArrayList<>());
    List<Thread> workers = new ArrayList<>();
    List<Throwable> failures = Collections.synchronizedList(new ArrayList<>());
    for (int i = 0; i < concurrency; i++) {
      workers.add(
          Thread.ofPlatform()
              .start(
                  () -> {
                    try {
                      generator.generate(maxTokens); // warm-up
                      warm.await();
                      warm.await(); // the clock starts
                      while (System.nanoTime() < deadline[0]) {
                        runs.add(generator.generate(maxTokens));
                      }
                    } catch (Throwable t) {
                      failures.add(t);
                      warm.reset();
                    }
                  }));
    }
    warm.await();
    long start = System.nanoTime();
    deadline[0] = start + seconds * 1_000_000_000L;
    warm.await();
    for (Thread w : workers) {
      w.join();
    }
    double elapsed = (System.nanoTime() - start) / 1e9;
    if (!failures.isEmpty()) {
      throw new IllegalStateException("a worker failed", failures.get(0));
    }
    long tokens = 0;
    List<Long> first = new ArrayList<>();
    for (Run r : runs) {
      tokens += r.tokens();
      if (r.firstTokenNanos() >= 0) {
        first.add(r.firstTokenNanos());
      }
    }
    Collections.sort(first);
    double decode =
        runs.stream()
            .mapToDouble(Run::decodeRate)
            .filter(d -> !Double.isNaN(d))
            .average()
            .orElse(0);
    return new Result(concurrency, runs.size(), tokens, elapsed, first, decode);
  }

  /** The CPU backend llama.cpp chose, as this process mapped it (libggml-cpu-zen4.so: zen4). */
  static String cpuBackend() throws java.io.IOException {
    java.util.regex.Matcher m =
        java.util.regex.Pattern.compile("libggml-cpu-([a-z0-9_]+)\\.so")
            .matcher(Files.readString(Path.of("/proc/self/maps")));
    return m.find() ? m.group(1) : "unknown";
  }

  private static double percentile(List<Long> sorted, double p) {
    if (sorted.isEmpty()) {
      return Double.NaN;
    }
    int i = (int) Math.ceil(p * sorted.size()) - 1;
    return sorted.get(Math.max(0, Math.min(sorted.size() - 1, i))) / 1e6;
  }

  private static void print(String path, Result r, int promptTokens) throws Exception {
    Map<String, Object> out = new HashMap<>();
    out.put("path", path);
    out.put("concurrency", r.concurrency());
    out.put("requests", r.requests());
    out.put("tokens", r.tokens());
    out.put("seconds", r.seconds());
    out.put("tokens_per_second", r.tokens() / r.seconds());
    out.put("ttft_p50_ms", percentile(r.firstTokens(), 0.50));
    out.put("ttft_p99_ms", percentile(r.firstTokens(), 0.99));
    out.put("decode_tokens_per_second_per_sequence", r.decodeRate());
    if (path.equals("in-process")) {
      out.put("cpu_backend", cpuBackend());
      out.put("prompt_tokens", promptTokens);
    }
    System.out.println(JSON.writeValueAsString(out));
  }
}
