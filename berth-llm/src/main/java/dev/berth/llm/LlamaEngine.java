package dev.berth.llm;

import de.kherud.llama.InferenceParameters;
import de.kherud.llama.LlamaIterator;
import de.kherud.llama.LlamaModel;
import de.kherud.llama.LlamaOutput;
import de.kherud.llama.ModelParameters;
import de.kherud.llama.Pair;
import dev.berth.api.BerthException;
import dev.berth.api.DataType;
import dev.berth.api.InvalidInputException;
import dev.berth.api.ModelLoadException;
import dev.berth.api.TensorSpec;
import dev.berth.runtime.LlmConfig;
import dev.berth.runtime.ModelContext;
import dev.berth.runtime.ModelSignature;
import dev.berth.runtime.TextGenerator;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * A GGUF language model run by llama.cpp (through the de.kherud:llama binding). llama.cpp holds
 * {@code llm.parallel} sequences ("slots") in one KV cache of {@code context-size × parallel}
 * tokens and decodes the running ones together, so a new request joins the batch between two tokens
 * (continuous batching).
 *
 * <p>The binding's calls block in native code, which would pin a virtual thread's carrier: each
 * generation reads its tokens on a platform thread of its own and hands them over through a queue.
 */
final class LlamaEngine implements TextGenerator {
  private static final Logger LOG = Logger.getLogger(LlamaEngine.class.getName());

  /** llama.cpp's own log lines go to stderr when this logger is at FINE, else nowhere. */
  private static final Logger NATIVE = Logger.getLogger("llama.cpp");

  private static final Object END = new Object();

  private final String name;
  private final LlamaModel model;
  private final LlmConfig config;
  private final ModelSignature signature;

  private LlamaEngine(String name, LlamaModel model, LlmConfig config) {
    this.name = name;
    this.model = model;
    this.config = config;
    this.signature =
        new ModelSignature(
            "llama.cpp",
            List.of(new TensorSpec("text_input", DataType.BYTES, new long[] {1})),
            List.of(new TensorSpec("text_output", DataType.BYTES, new long[] {1})),
            false);
  }

  /**
   * The library in the binding's jar is llama.cpp's CPU build, which would quietly run every layer
   * on the CPU: a model that asks for GPU layers loads only with a library of the user's own (like
   * ONNX Runtime's CUDA provider, which refuses to load without its GPU build).
   */
  static void requireGpuBuild(int gpuLayers, String libraryPath) {
    if (gpuLayers != 0 && libraryPath == null) {
      throw new ModelLoadException(
          (gpuLayers < 0 ? "every layer" : gpuLayers + " layers")
              + " of this model should run on a GPU (llm.gpu-layers, or --execution-provider cuda"
              + " when it is unset), but the llama.cpp library Berth bundles is its CPU build: give"
              + " a CUDA build of libjllama.so with -D"
              + LlamaEngineProvider.LIBRARY_PATH_PROPERTY
              + "=DIR (BERTH_JAVA_OPTS, or image.jvm-options in an image), or set llm.gpu-layers: 0"
              + " to run it on the CPU");
    }
  }

  static LlamaEngine load(ModelContext context, Path file) {
    LlmConfig config = context.config().llm();
    int threads =
        config.threads() > 0 ? config.threads() : Runtime.getRuntime().availableProcessors();
    ModelParameters parameters =
        new ModelParameters()
            .setModel(file.toString())
            // one KV cache, shared out equally among the sequences
            .setCtxSize(config.contextSize() * config.parallel())
            .setParallel(config.parallel())
            .setThreads(threads)
            .setThreadsBatch(threads);
    int gpuLayers =
        config.gpuLayers() != null
            ? config.gpuLayers()
            : "cuda".equals(context.executionProvider()) ? -1 : 0;
    if (gpuLayers != 0) {
      requireGpuBuild(gpuLayers, System.getProperty(LlamaEngineProvider.LIBRARY_PATH_PROPERTY));
      parameters.setGpuLayers(gpuLayers < 0 ? 100_000 : gpuLayers);
    }
    if (!NATIVE.isLoggable(Level.FINE)) {
      parameters.disableLog(); // the binding cannot route them: they would go to stderr
    }
    if (config.chatTemplate() != null) {
      parameters.setChatTemplate(config.chatTemplate());
    }
    try {
      LlamaModel model = new LlamaModel(parameters);
      LOG.fine(() -> "llama.cpp loaded " + file + " with " + threads + " threads");
      return new LlamaEngine(context.name(), model, config);
    } catch (LinkageError e) { // its native library, unpacked and linked on first use
      throw new ModelLoadException(LlamaNatives.explain(e), e);
    } catch (RuntimeException e) { // the binding's LlamaException is not public
      throw new ModelLoadException(
          "llama.cpp could not load "
              + file
              + " ("
              + e.getMessage()
              + "); is it a GGUF file of an architecture llama.cpp knows?",
          e);
    }
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
    return config.contextSize();
  }

  /** The prompt's tokens as llama.cpp's server counts them: a beginning-of-sequence token first. */
  @Override
  public int promptTokens(String prompt) {
    return model.encode(prompt).length + 1;
  }

  /**
   * The binding takes the system prompt apart from the turns (which it allows to be user or
   * assistant only): system messages join it, in order.
   */
  @Override
  public String chatPrompt(List<ChatMessage> messages) {
    StringBuilder system = new StringBuilder();
    List<Pair<String, String>> turns = new ArrayList<>();
    for (ChatMessage m : messages) {
      if (m.role().equals("system")) {
        system.append(system.isEmpty() ? "" : "\n").append(m.content());
      } else {
        turns.add(new Pair<>(m.role(), m.content()));
      }
    }
    try {
      return model.applyTemplate(new InferenceParameters("").setMessages(system.toString(), turns));
    } catch (RuntimeException e) {
      throw new InvalidInputException(
          "the chat template of model '" + name + "' refused the messages: " + e.getMessage());
    }
  }

  @Override
  public TokenStream start(Sampling sampling) {
    InferenceParameters parameters =
        new InferenceParameters(sampling.prompt())
            .setNPredict(sampling.maxTokens())
            .setTemperature((float) sampling.temperature())
            .setTopP((float) sampling.topP())
            .setCachePrompt(true);
    if (sampling.seed() != null) {
      parameters.setSeed(sampling.seed());
    }
    return new Tokens(model.generate(parameters).iterator(), sampling.maxTokens());
  }

  @Override
  public void close() {
    model.close();
  }

  /**
   * One generation's tokens, read on a platform thread and handed over through a queue. Only that
   * thread may cancel llama.cpp's task (a cancel from another thread leaves the reader blocked for
   * good), so closing sets a flag that the reader acts on at the next token.
   */
  private final class Tokens implements TokenStream {
    private final LinkedBlockingQueue<Object> queue = new LinkedBlockingQueue<>();
    private final int maxTokens;
    private volatile boolean closed;
    private volatile boolean reachedLimit;

    Tokens(LlamaIterator tokens, int maxTokens) {
      this.maxTokens = maxTokens;
      Thread.ofPlatform().daemon().name("berth-llm-" + name).start(() -> read(tokens));
    }

    private void read(LlamaIterator tokens) {
      try {
        int outputs = 0;
        String last = null;
        while (!closed && tokens.hasNext()) {
          LlamaOutput out = tokens.next();
          if (closed) {
            break;
          }
          if (!tokens.hasNext()) {
            // the final output carries no text; an end-of-sequence token came as an empty one
            reachedLimit = outputs >= maxTokens || (last != null && !last.isEmpty());
            break;
          }
          outputs++;
          last = out.text;
          queue.add(out.text);
        }
        if (closed && tokens.hasNext()) {
          tokens.cancel(); // frees llama.cpp's slot at once
        }
        queue.add(END);
      } catch (RuntimeException e) {
        queue.add(e);
      }
    }

    @Override
    public String next() throws InterruptedException {
      Object item = queue.take();
      if (item == END) {
        queue.add(END);
        return null;
      }
      if (item instanceof RuntimeException e) {
        queue.add(END);
        throw new BerthException("model '" + name + "' failed while generating: " + e, e);
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
      queue.add(END);
    }
  }
}
