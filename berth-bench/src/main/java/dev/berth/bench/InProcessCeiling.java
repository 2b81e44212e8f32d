package dev.berth.bench;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The ceiling bench/serving compares Berth with: MiniLM run in this process by ONNX Runtime, doing
 * per sentence the work Berth's ONNX engine does (Hugging Face tokenization padded to the longest
 * of the batch, the graph, mean pooling over the attention mask, L2 normalisation), with nothing
 * else on the path: no HTTP, no JSON, no queue.
 *
 * <p>For each batch size (1, 2, 4 ... 64) it calls that work back to back for the given duration,
 * over a rotating list of short sentences, and reports sentences per second, the per-call latency
 * distribution and where a call's time goes. With {@code --callers N} (default 1), N platform
 * threads share one session and one tokenizer, each calling batches of the batch size back to back,
 * as Berth's engine instances share one model: throughput is all callers' sentences over the
 * elapsed time, latency percentiles are over all their calls. The session's intra-op threads are
 * {@code --intra-op-threads T} (default 0 = ONNX Runtime's choice, one per core); inter-op threads
 * 0, optimisation ALL; the tokenizer is loaded as Berth loads it (max length 256, truncation,
 * padding to the longest).
 *
 * <pre>
 * java --enable-native-access=ALL-UNNAMED -cp 'berth-bench/target/berth-bench.jar:berth-bench/target/lib/*' \
 *   dev.berth.bench.InProcessCeiling MODEL_DIR DURATION OUT.json [--sentences FILE] [--batch-sizes 1,2,4]
 *   [--warmup DURATION] [--callers N] [--intra-op-threads T]
 * </pre>
 *
 * MODEL_DIR holds model.onnx and tokenizer.json (a version directory such as
 * examples/models/minilm/1, or the model directory above it). DURATION is per batch size: 20, 20s,
 * 500ms.
 */
public final class InProcessCeiling implements AutoCloseable {
  static final int[] DEFAULT_BATCH_SIZES = {1, 2, 4, 8, 16, 32, 64};

  /**
   * "Short sentences": every benchmark sentence must tokenize to at most this, [CLS] and [SEP]
   * included.
   */
  static final int MAX_TOKENS = 32;

  /** Berth's Tokenization.DEFAULT_MAX_LENGTH (the example model.yaml says the same). */
  static final int TOKENIZER_MAX_LENGTH = 256;

  static final String SENTENCES_RESOURCE = "/dev/berth/bench/sentences.txt";

  private final OrtEnvironment env;
  private final OrtSession session;
  private final HuggingFaceTokenizer tokenizer;
  private final String hiddenOutput;
  private final boolean hasTypeIds;
  private final boolean hasMask;
  private final List<String> sentences;
  private final int intraOpThreads;
  private final Caller[] callers;

  private InProcessCeiling(
      OrtEnvironment env,
      OrtSession session,
      HuggingFaceTokenizer tokenizer,
      String hiddenOutput,
      List<String> sentences,
      int callers,
      int intraOpThreads) {
    this.env = env;
    this.session = session;
    this.tokenizer = tokenizer;
    this.hiddenOutput = hiddenOutput;
    this.hasTypeIds = session.getInputNames().contains("token_type_ids");
    this.hasMask = session.getInputNames().contains("attention_mask");
    this.sentences = sentences;
    this.intraOpThreads = intraOpThreads;
    this.callers = new Caller[callers];
    for (int i = 0; i < callers; i++) {
      // Each caller starts at its own place in the list, so that they do not all send the same
      // batch.
      this.callers[i] = new Caller((int) ((long) i * sentences.size() / callers));
    }
  }

  /**
   * Loads the model's session (shared by the callers, {@code intraOpThreads} threads a call, 0 for
   * ONNX Runtime's choice) and its tokenizer.
   */
  static InProcessCeiling open(
      Path modelDir, List<String> sentences, int callers, int intraOpThreads)
      throws OrtException, IOException {
    OrtEnvironment env = OrtEnvironment.getEnvironment();
    OrtSession.SessionOptions so = new OrtSession.SessionOptions();
    so.setIntraOpNumThreads(intraOpThreads);
    so.setInterOpNumThreads(0);
    so.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
    OrtSession session = env.createSession(modelDir.resolve("model.onnx").toString(), so);
    try {
      HuggingFaceTokenizer tokenizer =
          HuggingFaceTokenizer.newInstance(
              modelDir.resolve("tokenizer.json"),
              Map.of(
                  "maxLength", Integer.toString(TOKENIZER_MAX_LENGTH),
                  "truncation", "true",
                  "padding", "true",
                  "addSpecialTokens", "true"));
      String hidden =
          session.getOutputNames().contains("last_hidden_state")
              ? "last_hidden_state"
              : session.getOutputNames().iterator().next();
      return new InProcessCeiling(
          env, session, tokenizer, hidden, sentences, callers, intraOpThreads);
    } catch (IOException | RuntimeException e) {
      session.close();
      throw e;
    }
  }

  @Override
  public void close() throws OrtException {
    try {
      tokenizer.close();
    } finally {
      session.close();
    }
  }

  /** The first caller, for a single-threaded user of {@link #call}. */
  Caller caller() {
    return callers[0];
  }

  /** One calling thread's place in the sentence list and what it measured. */
  final class Caller {
    private int cursor;
    Stages stages = new Stages();
    long[] latencies = new long[1024];
    int calls;
    long sentences;
    long paddedTokens;
    long end;

    Caller(int cursor) {
      this.cursor = cursor;
    }

    void reset(boolean record) {
      stages = new Stages();
      if (record) {
        latencies = new long[1024];
      }
      calls = 0;
      sentences = 0;
      paddedTokens = 0;
    }

    /** Calls batches of {@code b} back to back until {@code deadline}; records them if asked. */
    void runUntil(int[] batchSizes, long deadline, boolean record) throws OrtException {
      long t = System.nanoTime();
      do {
        for (int b : batchSizes) {
          long t0 = System.nanoTime();
          int length = call(this, b, stages);
          t = System.nanoTime();
          if (record) {
            if (calls == latencies.length) {
              latencies = Arrays.copyOf(latencies, calls * 2);
            }
            latencies[calls] = t - t0;
          }
          calls++;
          sentences += b;
          paddedTokens += length;
        }
      } while (t < deadline);
      end = t;
    }
  }

  public static void main(String[] args) throws Exception {
    if (args.length < 3) {
      System.err.println(
          "usage: InProcessCeiling MODEL_DIR DURATION OUT.json [--sentences FILE]"
              + " [--batch-sizes 1,2,4,...] [--warmup DURATION] [--callers N] [--intra-op-threads T]");
      System.exit(2);
    }
    Path modelDir = versionDir(Path.of(args[0]));
    double seconds = seconds(args[1]);
    Path out = Path.of(args[2]);
    Path sentencesFile = null;
    int[] batchSizes = DEFAULT_BATCH_SIZES;
    double warmup = Math.min(5.0, Math.max(1.0, seconds));
    int callers = 1;
    int intraOpThreads = 0;
    for (int i = 3; i < args.length; i++) {
      String a = args[i];
      String v = i + 1 < args.length ? args[i + 1] : null;
      if (v == null) {
        throw new IllegalArgumentException(a + " needs a value");
      }
      switch (a) {
        case "--sentences" -> sentencesFile = Path.of(v);
        case "--batch-sizes" ->
            batchSizes =
                Arrays.stream(v.split(",")).map(String::trim).mapToInt(Integer::parseInt).toArray();
        case "--warmup" -> warmup = seconds(v);
        case "--callers" -> callers = Integer.parseInt(v.trim());
        case "--intra-op-threads" -> intraOpThreads = Integer.parseInt(v.trim());
        default -> throw new IllegalArgumentException("unknown option " + a);
      }
      i++;
    }
    if (callers < 1 || callers > 1024) {
      throw new IllegalArgumentException("--callers must be 1..1024, not " + callers);
    }
    if (intraOpThreads < 0 || intraOpThreads > 1024) {
      throw new IllegalArgumentException(
          "--intra-op-threads must be 0..1024, not " + intraOpThreads);
    }
    if (batchSizes.length == 0 || Arrays.stream(batchSizes).anyMatch(b -> b < 1)) {
      throw new IllegalArgumentException("--batch-sizes must be positive numbers");
    }
    List<String> sentences = sentences(sentencesFile);

    try (InProcessCeiling bench = open(modelDir, sentences, callers, intraOpThreads)) {
      ObjectNode result;
      // Platform threads, as Berth's engine workers are.
      ExecutorService pool =
          Executors.newFixedThreadPool(callers, Thread.ofPlatform().daemon().factory());
      try {
        result = bench.run(modelDir, seconds, warmup, batchSizes, pool);
      } finally {
        pool.shutdownNow();
      }
      Path parent = out.toAbsolutePath().getParent();
      if (parent != null) {
        Files.createDirectories(parent);
      }
      new ObjectMapper()
          .enable(SerializationFeature.INDENT_OUTPUT)
          .writeValue(out.toFile(), result);
      System.out.println("  wrote " + out);
    }
  }

  /**
   * A short description of the layout: how many callers, how many intra-op threads each call gets.
   */
  static String layout(int callers, int intraOpThreads) {
    return callers
        + (callers == 1 ? " caller" : " callers")
        + ", intra-op threads "
        + (intraOpThreads == 0 ? "0 (ONNX Runtime's choice)" : Integer.toString(intraOpThreads));
  }

  private ObjectNode run(
      Path modelDir, double seconds, double warmup, int[] batchSizes, ExecutorService pool)
      throws OrtException, InterruptedException {
    ObjectMapper json = new ObjectMapper();
    ObjectNode root = json.createObjectNode();
    root.put("kind", "in-process-ceiling");
    root.put("started", Instant.now().toString());
    root.put("model_dir", modelDir.toAbsolutePath().toString());
    root.put("duration_per_batch_size_s", seconds);
    root.put("warmup_s", warmup);
    root.put("onnxruntime_version", ortVersion());
    root.put("java_version", System.getProperty("java.vm.name") + " " + Runtime.version());
    root.put("available_processors", Runtime.getRuntime().availableProcessors());
    root.put("layout", layout(callers.length, intraOpThreads));
    ObjectNode settings = root.putObject("settings");
    settings.put("callers", callers.length);
    settings.put("intra_op_threads", intraOpThreads);
    settings.put("inter_op_threads", 0);
    settings.put("optimization", "all");
    settings.put("tokenizer_max_length", TOKENIZER_MAX_LENGTH);
    settings.put("padding", "longest in batch");
    settings.put("output", hiddenOutput);
    settings.put("pooling", "mean over attention mask, L2-normalised");
    settings.put("session_shared_by_callers", true);
    settings.put("tokenizer_shared_by_callers", true);

    // The sentences: all short, as the comparison promises.
    int maxTokens = 0;
    long totalTokens = 0;
    for (String s : sentences) {
      int n = tokenizer.encode(s).getIds().length;
      if (n > MAX_TOKENS) {
        throw new IllegalStateException(
            "sentence has " + n + " tokens, more than " + MAX_TOKENS + ": " + s);
      }
      maxTokens = Math.max(maxTokens, n);
      totalTokens += n;
    }
    ObjectNode sent = root.putObject("sentences");
    sent.put("count", sentences.size());
    sent.put("max_tokens", maxTokens);
    sent.put("mean_tokens", round((double) totalTokens / sentences.size(), 2));
    System.out.printf(
        Locale.ROOT,
        "  %d sentences, %.1f tokens on average, %d at most; ONNX Runtime %s, %d processors; %s%n",
        sentences.size(),
        (double) totalTokens / sentences.size(),
        maxTokens,
        ortVersion(),
        Runtime.getRuntime().availableProcessors(),
        layout(callers.length, intraOpThreads));

    // Warm-up: every batch size in turn on every caller, so each shape has been seen once.
    phase(pool, batchSizes, warmup, false);

    ArrayNode results = root.putArray("batch_sizes");
    ObjectNode best = null;
    for (int b : batchSizes) {
      int[] only = {b};
      // A short unmeasured run of this batch size first, then the measured one.
      phase(pool, only, Math.min(1.0, seconds / 5), false);
      long start = phase(pool, only, seconds, true);
      Stages stages = new Stages();
      int calls = 0;
      long sentencesDone = 0;
      long paddedTokens = 0;
      long end = start;
      for (Caller c : callers) {
        stages.add(c.stages);
        calls += c.calls;
        sentencesDone += c.sentences;
        paddedTokens += c.paddedTokens;
        end = Math.max(end, c.end);
      }
      long[] sorted = new long[calls];
      int at = 0;
      for (Caller c : callers) {
        System.arraycopy(c.latencies, 0, sorted, at, c.calls);
        at += c.calls;
      }
      Arrays.sort(sorted);
      double elapsed = (end - start) / 1e9;
      double rate = sentencesDone / elapsed;
      ObjectNode r = results.addObject();
      r.put("batch_size", b);
      r.put("callers", callers.length);
      r.put("intra_op_threads", intraOpThreads);
      r.put("sentences_per_s", round(rate, 1));
      r.put("calls", calls);
      r.put("sentences", sentencesDone);
      r.put("elapsed_s", round(elapsed, 3));
      r.put("mean_padded_length", round((double) paddedTokens / calls, 2));
      ObjectNode lat = r.putObject("call_latency_ms");
      lat.put("p50", ms(percentile(sorted, 50)));
      lat.put("p90", ms(percentile(sorted, 90)));
      lat.put("p99", ms(percentile(sorted, 99)));
      lat.put("max", ms(sorted[calls - 1]));
      lat.put("mean", round(Arrays.stream(sorted).average().orElse(0) / 1e6, 3));
      ObjectNode where = r.putObject("mean_ms_per_call");
      where.put("tokenize", round(stages.tokenize / 1e6 / calls, 3));
      where.put("tensors", round(stages.tensors / 1e6 / calls, 3));
      where.put("onnx_run", round(stages.run / 1e6 / calls, 3));
      where.put("pool", round(stages.pool / 1e6 / calls, 3));
      double total = stages.tokenize + stages.tensors + stages.run + stages.pool;
      System.out.printf(
          Locale.ROOT,
          "  batch %3d: %8.1f sentences/s  call p50 %7.3f ms  p99 %7.3f ms  (tokenize %4.1f%%,"
              + " tensors %4.1f%%, onnx run %4.1f%%, pool %4.1f%%)%n",
          b,
          rate,
          ms(percentile(sorted, 50)),
          ms(percentile(sorted, 99)),
          100 * stages.tokenize / total,
          100 * stages.tensors / total,
          100 * stages.run / total,
          100 * stages.pool / total);
      if (best == null || rate > best.get("sentences_per_s").asDouble()) {
        best = r;
      }
      if (b == 1) {
        ObjectNode single = root.putObject("single_sentence_latency_ms");
        single.put("p50", ms(percentile(sorted, 50)));
        single.put("p90", ms(percentile(sorted, 90)));
        single.put("p99", ms(percentile(sorted, 99)));
        single.put("calls", calls);
        single.put("callers", callers.length);
        single.put("intra_op_threads", intraOpThreads);
      }
    }
    if (best != null) {
      ObjectNode b = root.putObject("best");
      b.put("batch_size", best.get("batch_size").asInt());
      b.put("sentences_per_s", best.get("sentences_per_s").asDouble());
      b.put("callers", callers.length);
      b.put("intra_op_threads", intraOpThreads);
    }
    root.put("finished", Instant.now().toString());
    return root;
  }

  /**
   * Runs every caller on its own thread for {@code seconds}, all starting together, cycling through
   * {@code batchSizes}; returns the common start (System.nanoTime()). Each caller's numbers are
   * reset first and hold this phase's afterwards.
   */
  private long phase(ExecutorService pool, int[] batchSizes, double seconds, boolean record)
      throws OrtException, InterruptedException {
    long[] start = new long[1];
    // The barrier's action runs before any caller is let go, so each sees the same start.
    CyclicBarrier go = new CyclicBarrier(callers.length, () -> start[0] = System.nanoTime());
    List<Future<?>> running = new ArrayList<>(callers.length);
    for (Caller c : callers) {
      c.reset(record);
      running.add(
          pool.submit(
              () -> {
                go.await();
                c.runUntil(batchSizes, start[0] + (long) (seconds * 1e9), record);
                return null;
              }));
    }
    for (Future<?> f : running) {
      try {
        f.get();
      } catch (ExecutionException e) {
        running.forEach(r -> r.cancel(true));
        if (e.getCause() instanceof OrtException o) {
          throw o;
        }
        throw new IllegalStateException("a caller failed: " + e.getCause(), e.getCause());
      }
    }
    return start[0];
  }

  /** Time spent per stage, nanoseconds summed over calls. */
  static final class Stages {
    double tokenize;
    double tensors;
    double run;
    double pool;

    void add(Stages o) {
      tokenize += o.tokenize;
      tensors += o.tensors;
      run += o.run;
      pool += o.pool;
    }
  }

  /**
   * One engine call's work for the caller's next {@code b} sentences: tokenize, build the token
   * tensors, run the graph, mean-pool and normalise. Returns the padded length.
   */
  int call(Caller caller, int b, Stages stages) throws OrtException {
    List<String> batch = new ArrayList<>(b);
    for (int i = 0; i < b; i++) {
      batch.add(sentences.get(caller.cursor));
      caller.cursor = (caller.cursor + 1) % sentences.size();
    }
    long t0 = System.nanoTime();
    Encoding[] enc = tokenizer.batchEncode(batch);
    int length = enc[0].getIds().length;
    long t1 = System.nanoTime();
    long[] ids = new long[b * length];
    long[] mask = new long[b * length];
    long[] types = new long[b * length];
    for (int r = 0; r < b; r++) {
      System.arraycopy(enc[r].getIds(), 0, ids, r * length, length);
      System.arraycopy(enc[r].getAttentionMask(), 0, mask, r * length, length);
      System.arraycopy(enc[r].getTypeIds(), 0, types, r * length, length);
    }
    long[] shape = {b, length};
    Map<String, OnnxTensor> feeds = new HashMap<>(4);
    float[] embeddings;
    long t2;
    long t3;
    try {
      feeds.put("input_ids", OnnxTensor.createTensor(env, LongBuffer.wrap(ids), shape));
      if (hasMask) {
        feeds.put("attention_mask", OnnxTensor.createTensor(env, LongBuffer.wrap(mask), shape));
      }
      if (hasTypeIds) {
        feeds.put("token_type_ids", OnnxTensor.createTensor(env, LongBuffer.wrap(types), shape));
      }
      t2 = System.nanoTime();
      try (OrtSession.Result result = session.run(feeds, Set.of(hiddenOutput))) {
        t3 = System.nanoTime();
        OnnxTensor hidden = (OnnxTensor) result.get(0);
        long[] hs = hidden.getInfo().getShape();
        embeddings = meanPool(hidden.getFloatBuffer(), mask, b, (int) hs[1], (int) hs[2]);
      }
    } finally {
      feeds.values().forEach(OnnxTensor::close);
    }
    long t4 = System.nanoTime();
    if (embeddings.length == 0 || Float.isNaN(embeddings[0])) {
      throw new IllegalStateException("the model gave no usable embedding");
    }
    if (stages != null) {
      stages.tokenize += t1 - t0;
      stages.tensors += t2 - t1;
      stages.run += t3 - t2;
      stages.pool += t4 - t3;
    }
    return length;
  }

  /** Mean over the tokens the mask marks, then L2 normalisation: Berth's MeanPooling. */
  static float[] meanPool(FloatBuffer in, long[] mask, int b, int s, int h) {
    float[] out = new float[b * h];
    double[] sum = new double[h];
    for (int r = 0; r < b; r++) {
      Arrays.fill(sum, 0);
      long count = 0;
      for (int t = 0; t < s; t++) {
        if (mask[r * s + t] == 0) {
          continue;
        }
        count++;
        int base = (r * s + t) * h;
        for (int k = 0; k < h; k++) {
          sum[k] += in.get(base + k);
        }
      }
      double scale = 1.0 / Math.max(count, 1);
      double norm = 0;
      for (int k = 0; k < h; k++) {
        sum[k] *= scale;
        norm += sum[k] * sum[k];
      }
      double divisor = Math.max(Math.sqrt(norm), 1e-12);
      for (int k = 0; k < h; k++) {
        out[r * h + k] = (float) (sum[k] / divisor);
      }
    }
    return out;
  }

  static List<String> sentences(Path file) throws IOException {
    List<String> lines;
    if (file != null) {
      lines = Files.readAllLines(file, StandardCharsets.UTF_8);
    } else {
      try (InputStream in = InProcessCeiling.class.getResourceAsStream(SENTENCES_RESOURCE)) {
        if (in == null) {
          throw new IOException("no " + SENTENCES_RESOURCE + " on the class path");
        }
        lines = new String(in.readAllBytes(), StandardCharsets.UTF_8).lines().toList();
      }
    }
    List<String> out = lines.stream().map(String::strip).filter(l -> !l.isEmpty()).toList();
    if (out.isEmpty()) {
      throw new IOException("no sentences in " + (file == null ? SENTENCES_RESOURCE : file));
    }
    return out;
  }

  static Path versionDir(Path dir) {
    if (Files.isRegularFile(dir.resolve("model.onnx"))) {
      return dir;
    }
    if (Files.isRegularFile(dir.resolve("1/model.onnx"))) {
      return dir.resolve("1");
    }
    throw new IllegalArgumentException(
        "no model.onnx in "
            + dir
            + " or "
            + dir.resolve("1")
            + "; build the examples first (mvn install)");
  }

  /** Seconds from 20, 20s, 500ms or 1.5. */
  static double seconds(String v) {
    String s = v.trim().toLowerCase(Locale.ROOT);
    if (s.endsWith("ms")) {
      return Double.parseDouble(s.substring(0, s.length() - 2)) / 1000;
    }
    if (s.endsWith("s")) {
      s = s.substring(0, s.length() - 1);
    }
    double d = Double.parseDouble(s);
    if (!(d > 0)) {
      throw new IllegalArgumentException("duration must be positive: " + v);
    }
    return d;
  }

  private static String ortVersion() {
    try {
      return OrtEnvironment.getEnvironment().getVersion();
    } catch (RuntimeException | LinkageError e) {
      return "unknown";
    }
  }

  static long percentile(long[] sorted, double p) {
    int i = (int) Math.ceil(p / 100 * sorted.length) - 1;
    return sorted[Math.max(0, Math.min(sorted.length - 1, i))];
  }

  private static double ms(long nanos) {
    return round(nanos / 1e6, 3);
  }

  static double round(double v, int digits) {
    double f = Math.pow(10, digits);
    return Math.round(v * f) / f;
  }
}
