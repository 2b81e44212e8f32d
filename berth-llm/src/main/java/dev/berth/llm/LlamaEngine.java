package dev.berth.llm;

import dev.berth.api.BerthException;
import dev.berth.api.DataType;
import dev.berth.api.InvalidInputException;
import dev.berth.api.ModelLoadException;
import dev.berth.api.TensorSpec;
import dev.berth.runtime.LlmConfig;
import dev.berth.runtime.ModelContext;
import dev.berth.runtime.ModelSignature;
import dev.berth.runtime.TextGenerator;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.logging.Logger;

/**
 * A GGUF language model run by llama.cpp through Berth's own binding ({@link LlamaCpp}). One
 * context holds {@code llm.parallel} sequences, each with its own {@code context-size} tokens of KV
 * cache; one platform thread (the decode loop) owns the context and decodes every running sequence
 * together, a token each, with the next chunk of any prompt still being read, in one llama.cpp
 * batch: a new request joins between two tokens (continuous batching).
 *
 * <p>A sequence keeps the tokens of its last request in its cache, and a new request goes to the
 * free sequence whose cached tokens share the longest start with its prompt: only the rest of the
 * prompt is decoded (prefix reuse, as llama.cpp's server does with {@code cache_prompt}).
 */
final class LlamaEngine implements TextGenerator {
  private static final Logger LOG = Logger.getLogger(LlamaEngine.class.getName());

  private static final Object END = new Object();

  /** Most tokens of one llama.cpp batch: prompts longer than this are read in chunks. */
  static final int BATCH = 512;

  private final String name;
  private final LlmConfig config;
  private final ModelSignature signature;
  private final long model;
  private final long context;
  private final long batch;
  private final int contextSize;
  private final Sequence[] sequences;
  private final LinkedBlockingQueue<Generation> arriving = new LinkedBlockingQueue<>();
  private final Thread loop;
  private volatile boolean closing;
  // prompt tokens decoded so far (not those a sequence's cache already held): for tests
  private volatile long promptTokensRead;

  // the decode loop's batch, reused
  private final int[] tokens = new int[BATCH];
  private final int[] positions = new int[BATCH];
  private final int[] owners = new int[BATCH];
  private final boolean[] outputs = new boolean[BATCH];

  private LlamaEngine(String name, LlmConfig config, long model, long context) {
    this.name = name;
    this.config = config;
    this.model = model;
    this.context = context;
    this.batch = LlamaCpp.newBatch(BATCH);
    this.contextSize = LlamaCpp.contextSize(context);
    this.sequences = new Sequence[config.parallel()];
    for (int i = 0; i < sequences.length; i++) {
      sequences[i] = new Sequence(i);
    }
    this.signature =
        new ModelSignature(
            "llama.cpp",
            List.of(new TensorSpec("text_input", DataType.BYTES, new long[] {1})),
            List.of(new TensorSpec("text_output", DataType.BYTES, new long[] {1})),
            false);
    this.loop = Thread.ofPlatform().daemon().name("berth-llm-" + name).unstarted(this::decodeLoop);
  }

  /**
   * A model that asks for GPU layers loads only where llama.cpp has a GPU backend (the bundled
   * build has CPU backends only), rather than quietly running every layer on the CPU.
   */
  static void requireGpu(int gpuLayers, int gpuDevices) {
    if (gpuLayers != 0 && gpuDevices == 0) {
      throw new ModelLoadException(
          (gpuLayers < 0 ? "every layer" : gpuLayers + " layers")
              + " of this model should run on a GPU (llm.gpu-layers, or --execution-provider cuda"
              + " when it is unset), but llama.cpp found no GPU: the libraries Berth bundles have"
              + " CPU backends only. Give a directory holding libggml-cuda.so of the npm package"
              + " @node-llama-cpp/linux-x64-cuda@3.21.1 (the same llama.cpp) with -D"
              + LlamaCpp.BACKENDS_PROPERTY
              + "=DIR (BERTH_JAVA_OPTS, or image.jvm-options in an image), or set llm.gpu-layers: 0"
              + " to run it on the CPU");
    }
  }

  static LlamaEngine load(ModelContext context, Path file) {
    LlmConfig config = context.config().llm();
    String backends = LlamaCpp.load();
    int threads =
        config.threads() > 0 ? config.threads() : Runtime.getRuntime().availableProcessors();
    int gpuLayers =
        config.gpuLayers() != null
            ? config.gpuLayers()
            : "cuda".equals(context.executionProvider()) ? -1 : 0;
    requireGpu(gpuLayers, LlamaCpp.gpuDevices());
    long model;
    try {
      model = LlamaCpp.loadModel(file.toString(), gpuLayers < 0 ? Integer.MAX_VALUE : gpuLayers);
    } catch (IllegalStateException e) {
      throw new ModelLoadException(
          "llama.cpp could not load "
              + file
              + " ("
              + e.getMessage()
              + "); is it a GGUF file of an architecture llama.cpp knows?",
          e);
    }
    long ctx;
    try {
      ctx =
          LlamaCpp.newContext(
              model,
              config.contextSize() * config.parallel(),
              config.parallel(),
              BATCH,
              threads,
              threads);
    } catch (IllegalStateException e) {
      LlamaCpp.freeModel(model);
      throw new ModelLoadException(
          "llama.cpp could not make room for "
              + config.parallel()
              + " sequences of "
              + config.contextSize()
              + " tokens ("
              + e.getMessage()
              + "); lower llm.context-size or llm.parallel",
          e);
    }
    LlamaEngine engine = new LlamaEngine(context.name(), config, model, ctx);
    engine.loop.start();
    LOG.fine(
        () ->
            "llama.cpp loaded "
                + file
                + " with "
                + threads
                + " threads, CPU backend "
                + LlamaCpp.cpuVariant(backends));
    return engine;
  }

  @Override
  public ModelSignature signature() {
    return signature;
  }

  @Override
  public int parallel() {
    return config.parallel();
  }

  @Override
  public int contextSize() {
    return contextSize;
  }

  /** The prompt's tokens, a beginning-of-sequence token first where the model wants one. */
  @Override
  public int promptTokens(String prompt) {
    return tokenize(prompt).length;
  }

  private int[] tokenize(String text) {
    return LlamaCpp.tokenize(model, text.getBytes(StandardCharsets.UTF_8), true, true);
  }

  /**
   * The chat by {@code llm.chat-template}, else the GGUF's own template, else ChatML; llama.cpp
   * recognises its list of well-known templates (ChatML, Llama 2 and 3, Mistral, Gemma, Phi, ...)
   * from the Jinja text or by name.
   */
  @Override
  public String chatPrompt(List<ChatMessage> messages) {
    return applyTemplate(
        name,
        config.chatTemplate() != null ? config.chatTemplate() : LlamaCpp.chatTemplate(model),
        messages);
  }

  /** The chat by a template (null: ChatML); refused when llama.cpp does not know it. */
  static String applyTemplate(String name, String template, List<ChatMessage> messages) {
    byte[][] roles = new byte[messages.size()][];
    byte[][] contents = new byte[messages.size()][];
    for (int i = 0; i < messages.size(); i++) {
      roles[i] = messages.get(i).role().getBytes(StandardCharsets.UTF_8);
      contents[i] = messages.get(i).content().getBytes(StandardCharsets.UTF_8);
    }
    byte[] prompt =
        LlamaCpp.applyTemplate(
            template == null ? null : template.getBytes(StandardCharsets.UTF_8), roles, contents);
    if (prompt == null) {
      throw new InvalidInputException(
          "the chat template of model '"
              + name
              + "' is not one llama.cpp knows; set llm.chat-template in model.yaml to one of its"
              + " names (chatml, llama3, llama2, mistral-v7, gemma, phi3, ...)");
    }
    return new String(prompt, StandardCharsets.UTF_8);
  }

  @Override
  public TokenStream start(Sampling sampling) {
    if (closing) {
      throw new BerthException("model '" + name + "' is unloading");
    }
    int[] prompt = tokenize(sampling.prompt());
    if (prompt.length == 0) {
      prompt = tokenize(" ");
    }
    long seed =
        sampling.seed() != null
            ? Integer.toUnsignedLong(sampling.seed())
            : ThreadLocalRandom.current().nextInt() & 0xffffffffL;
    Generation g =
        new Generation(
            prompt,
            sampling.maxTokens(),
            LlamaCpp.newSampler((float) sampling.temperature(), (float) sampling.topP(), seed));
    arriving.add(g);
    return g;
  }

  @Override
  public void close() {
    closing = true;
    loop.interrupt();
    try {
      loop.join();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    for (Sequence s : sequences) {
      if (s.current != null) {
        s.current.finish(false);
      }
    }
    for (Generation g; (g = arriving.poll()) != null; ) {
      g.fail(new BerthException("model '" + name + "' unloaded before it could start"));
    }
    LlamaCpp.freeBatch(batch);
    LlamaCpp.freeContext(context);
    LlamaCpp.freeModel(model);
  }

  /** Prompt tokens decoded so far; those a sequence's cache held already are not counted. */
  long promptTokensRead() {
    return promptTokensRead;
  }

  // --- the decode loop ---

  private void decodeLoop() {
    try {
      while (!closing) {
        admit();
        int n = fill();
        if (n == 0) {
          continue;
        }
        int status = LlamaCpp.decode(context, batch, n, tokens, positions, owners, outputs);
        if (status != 0) {
          failBatch(n, status);
          continue;
        }
        for (int i = 0; i < n; i++) {
          Sequence s = sequences[owners[i]];
          s.cached = append(s.cached, s.cachedLength, tokens[i]);
          s.cachedLength++;
        }
        for (int i = 0; i < n; i++) {
          if (outputs[i]) {
            next(sequences[owners[i]], i);
          }
        }
      }
    } catch (InterruptedException e) {
      // closing
    } catch (RuntimeException | Error e) {
      LOG.severe("llama.cpp's decode loop for model '" + name + "' stopped: " + e);
      for (Sequence s : sequences) {
        if (s.current != null) {
          s.current.fail(e);
          s.current = null;
        }
      }
    }
  }

  /** Frees the sequences of generations their callers closed; starts arrivals on free ones. */
  private void admit() throws InterruptedException {
    boolean running = false;
    for (Sequence s : sequences) {
      if (s.current != null && s.current.closed) {
        s.current.finish(false);
        s.current = null;
      }
      running |= s.current != null;
    }
    Generation g = running ? arriving.poll() : arriving.take();
    while (g != null) {
      if (g.closed) {
        g.finish(false);
      } else {
        Sequence s = freeSequenceFor(g.prompt);
        if (s == null) { // the runtime starts at most parallel() at once; wait for one to end
          arriving.add(g);
          return;
        }
        begin(s, g);
      }
      g = arriving.poll();
    }
  }

  private Sequence freeSequenceFor(int[] prompt) {
    Sequence best = null;
    int bestShared = -1;
    for (Sequence s : sequences) {
      if (s.current == null) {
        int shared = shared(s.cached, s.cachedLength, prompt);
        if (shared > bestShared) {
          best = s;
          bestShared = shared;
        }
      }
    }
    return best;
  }

  private void begin(Sequence s, Generation g) {
    // keep the cached start the prompt shares; the last prompt token is always decoded again, for
    // its logits
    int keep = Math.min(shared(s.cached, s.cachedLength, g.prompt), g.prompt.length - 1);
    if (!LlamaCpp.forget(context, s.id, keep)) {
      LlamaCpp.forget(context, s.id, 0);
      keep = 0;
    }
    s.cachedLength = keep;
    s.current = g;
    g.read = keep;
  }

  /** Puts the next token of every generating sequence, then prompt chunks, into the batch. */
  private int fill() {
    int n = 0;
    for (Sequence s : sequences) {
      Generation g = s.current;
      if (g != null && g.read == g.prompt.length) {
        if (s.cachedLength >= contextSize) {
          g.finish(true); // the sequence's context is full
          s.current = null;
          continue;
        }
        tokens[n] = g.last;
        positions[n] = s.cachedLength;
        owners[n] = s.id;
        outputs[n] = true;
        n++;
      }
    }
    for (Sequence s : sequences) {
      Generation g = s.current;
      if (g == null || g.read == g.prompt.length) {
        continue;
      }
      if (g.prompt.length > contextSize) {
        g.fail(
            new InvalidInputException(
                "the prompt has "
                    + g.prompt.length
                    + " tokens; model '"
                    + name
                    + "' holds "
                    + contextSize
                    + " a sequence (llm.context-size)"));
        s.current = null;
        continue;
      }
      int position = s.cachedLength;
      while (g.read < g.prompt.length && n < BATCH) {
        tokens[n] = g.prompt[g.read];
        positions[n] = position++;
        owners[n] = s.id;
        g.read++;
        promptTokensRead++;
        outputs[n] = g.read == g.prompt.length;
        n++;
      }
      if (n == BATCH) {
        break;
      }
    }
    return n;
  }

  /** The token drawn for a sequence from the batch's {@code index}-th logits. */
  private void next(Sequence s, int index) {
    Generation g = s.current;
    int token = LlamaCpp.sample(g.sampler, context, index);
    if (LlamaCpp.isEndOfGeneration(model, token)) {
      g.finish(false);
      s.current = null;
      return;
    }
    g.generated++;
    g.emit(LlamaCpp.piece(model, token));
    g.last = token;
    if (g.generated >= g.maxTokens) {
      g.finish(true);
      s.current = null;
    }
  }

  private void failBatch(int n, int status) {
    String why =
        status == 1
            ? "no room left in the KV cache"
            : status == 2 ? "aborted" : "llama_decode returned " + status;
    for (int i = 0; i < n; i++) {
      Sequence s = sequences[owners[i]];
      if (s.current != null) {
        s.current.fail(new BerthException("model '" + name + "' failed while generating: " + why));
        s.current = null;
      }
      LlamaCpp.forget(context, s.id, 0);
      s.cachedLength = 0;
    }
  }

  private static int shared(int[] cached, int cachedLength, int[] prompt) {
    int n = Math.min(cachedLength, prompt.length);
    int i = 0;
    while (i < n && cached[i] == prompt[i]) {
      i++;
    }
    return i;
  }

  private static int[] append(int[] a, int length, int token) {
    if (length == a.length) {
      a = Arrays.copyOf(a, Math.max(16, a.length * 2));
    }
    a[length] = token;
    return a;
  }

  /** One of the context's sequences: what its cache holds, and who generates in it now. */
  private static final class Sequence {
    final int id;
    int[] cached = new int[0];
    int cachedLength;
    Generation current;

    Sequence(int id) {
      this.id = id;
    }
  }

  /**
   * One request's generation. The decode loop writes its state and hands its text over through a
   * queue; the caller reads it, and closing sets a flag the loop acts on before its next batch.
   */
  private static final class Generation implements TokenStream {
    final int[] prompt;
    final int maxTokens;
    final long sampler;
    private final LinkedBlockingQueue<Object> out = new LinkedBlockingQueue<>();
    private final CharsetDecoder utf8 =
        StandardCharsets.UTF_8
            .newDecoder()
            .onMalformedInput(CodingErrorAction.REPLACE)
            .onUnmappableCharacter(CodingErrorAction.REPLACE);
    private ByteBuffer pending = ByteBuffer.allocate(0);
    volatile boolean closed;
    private volatile boolean reachedLimit;
    private boolean finished;
    // the decode loop's
    int read;
    int generated;
    int last;

    Generation(int[] prompt, int maxTokens, long sampler) {
      this.prompt = prompt;
      this.maxTokens = maxTokens;
      this.sampler = sampler;
    }

    /** A token's bytes: the characters they complete, with any bytes held from before. */
    void emit(byte[] piece) {
      ByteBuffer in = ByteBuffer.allocate(pending.remaining() + piece.length);
      in.put(pending).put(piece).flip();
      CharBuffer chars = CharBuffer.allocate(in.remaining() + 1);
      utf8.decode(in, chars, false);
      pending = in.slice();
      if (pending.remaining() > 3) { // never a character's start: let the decoder replace it
        utf8.decode(pending, chars, true);
        utf8.reset();
        pending = ByteBuffer.allocate(0);
      }
      chars.flip();
      out.add(chars.toString());
    }

    void finish(boolean limit) {
      if (finished) {
        return;
      }
      finished = true;
      reachedLimit = limit;
      LlamaCpp.freeSampler(sampler);
      out.add(END);
    }

    void fail(Throwable e) {
      if (finished) {
        return;
      }
      finished = true;
      LlamaCpp.freeSampler(sampler);
      out.add(e);
    }

    @Override
    public String next() throws InterruptedException {
      Object item = out.take();
      if (item == END) {
        out.add(END);
        return null;
      }
      if (item instanceof BerthException e) {
        out.add(END);
        throw e;
      }
      if (item instanceof Throwable e) {
        out.add(END);
        throw new BerthException("generation failed: " + e, e);
      }
      return (String) item;
    }

    @Override
    public boolean reachedLimit() {
      return reachedLimit;
    }

    @Override
    public void close() {
      closed = true;
      out.add(END);
    }
  }
}
