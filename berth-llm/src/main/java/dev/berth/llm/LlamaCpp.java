package dev.berth.llm;

import dev.berth.api.ModelLoadException;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Berth's binding to llama.cpp's C API ({@code berth_llama.c}), and the loading of its libraries.
 *
 * <p>The jar carries llama.cpp's Linux x64 libraries with one CPU backend per processor family; on
 * first use they are unpacked into a private temporary directory, and llama.cpp loads the backend
 * that suits the processor (the {@code loaded CPU backend from ...} line of {@link #backends()}). A
 * directory given by {@value #BACKENDS_PROPERTY} adds backends built from the same llama.cpp
 * release, such as {@code libggml-cuda.so} from the npm package
 * {@code @node-llama-cpp/linux-x64-cuda}, for GPU layers.
 *
 * <p>Handles are native pointers. Nothing here is thread-safe beyond what llama.cpp promises: one
 * thread drives a context ({@link LlamaEngine}'s decode loop).
 */
final class LlamaCpp {
  private static final Logger LOG = Logger.getLogger(LlamaCpp.class.getName());

  /** llama.cpp's own log lines go to stderr when this logger is at FINE, else nowhere. */
  private static final Logger NATIVE = Logger.getLogger("llama.cpp");

  /** System property: a directory of further llama.cpp backends (a CUDA one) to load. */
  static final String BACKENDS_PROPERTY = "berth.llama.backends";

  static final String RESOURCES = "/dev/berth/llm/native/linux-x86_64/";

  private static String backends;

  private LlamaCpp() {}

  /**
   * Unpacks and loads the libraries once; returns what llama.cpp loaded (backends and devices).
   *
   * @throws ModelLoadException when this platform has no bundled libraries or they do not link
   */
  static synchronized String load() {
    if (backends != null) {
      return backends;
    }
    List<String> files = files();
    Path dir;
    try {
      dir = Files.createTempDirectory("berth-llama-");
      for (String f : files) {
        try (InputStream in = LlamaCpp.class.getResourceAsStream(RESOURCES + f)) {
          if (in == null) {
            throw new IOException(RESOURCES + f + " is missing from berth-llm's jar");
          }
          Files.copy(in, dir.resolve(f), StandardCopyOption.REPLACE_EXISTING);
        }
        dir.resolve(f).toFile().deleteOnExit();
      }
      dir.toFile().deleteOnExit();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot unpack llama.cpp's libraries", e);
    }
    try {
      System.load(dir.resolve("libberth_llama.so").toString());
    } catch (UnsatisfiedLinkError e) {
      throw new ModelLoadException(LlamaNatives.explain(e), e);
    }
    boolean verbose = NATIVE.isLoggable(Level.FINE);
    StringBuilder loaded = new StringBuilder(init(dir.toString(), verbose));
    String extra = System.getProperty(BACKENDS_PROPERTY);
    if (extra != null && !extra.isBlank()) {
      if (!Files.isDirectory(Path.of(extra))) {
        throw new ModelLoadException(
            "-D" + BACKENDS_PROPERTY + "=" + extra + " is not a directory of llama.cpp backends");
      }
      loaded.append(init(extra, verbose));
    }
    backends = loaded.toString();
    LOG.fine(() -> "llama.cpp: " + backends.strip());
    return backends;
  }

  /** The bundled libraries in load order, as the build listed them. */
  static List<String> files() {
    try (InputStream in = LlamaCpp.class.getResourceAsStream(RESOURCES + "files.txt")) {
      if (in == null) {
        throw new ModelLoadException(
            "Berth bundles llama.cpp for Linux x86_64 only; this is "
                + System.getProperty("os.name")
                + " "
                + System.getProperty("os.arch")
                + ", so GGUF language models cannot run here");
      }
      return new String(in.readAllBytes(), StandardCharsets.UTF_8)
          .lines()
          .map(String::strip)
          .filter(l -> !l.isEmpty())
          .toList();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** What {@link #load()} reported. */
  static synchronized String backends() {
    return backends;
  }

  /** The CPU backend llama.cpp chose, such as {@code zen4}, or "unknown". */
  static String cpuVariant(String backends) {
    java.util.regex.Matcher m =
        java.util.regex.Pattern.compile("libggml-cpu-([A-Za-z0-9_]+)\\.so").matcher(backends);
    return m.find() ? m.group(1) : "unknown";
  }

  // --- berth_llama.c ---

  private static native String init(String backendDir, boolean verbose);

  static native int gpuDevices();

  static native long loadModel(String file, int gpuLayers);

  static native void freeModel(long model);

  static native long newContext(
      long model, int contextTokens, int sequences, int batch, int threads, int threadsBatch);

  static native void freeContext(long context);

  /** Tokens one sequence may hold. */
  static native int contextSize(long context);

  static native int[] tokenize(long model, byte[] utf8, boolean addSpecial, boolean parseSpecial);

  /** A token's bytes: part of a UTF-8 character, possibly; "" for a control token. */
  static native byte[] piece(long model, int token);

  static native boolean isEndOfGeneration(long model, int token);

  static native String chatTemplate(long model);

  /** The prompt by a template llama.cpp knows (null: the model's), or null for one it does not. */
  static native byte[] applyTemplate(byte[] template, byte[][] roles, byte[][] contents);

  static native long newBatch(int size);

  static native void freeBatch(long batch);

  /** llama_decode of the first {@code n} entries; 0 when it went well. */
  static native int decode(
      long context,
      long batch,
      int n,
      int[] tokens,
      int[] positions,
      int[] sequences,
      boolean[] outputs);

  /** Forgets a sequence's positions from {@code from} on. */
  static native boolean forget(long context, int sequence, int from);

  static native long newSampler(float temperature, float topP, long seed);

  static native void freeSampler(long sampler);

  /** The logits of the batch's {@code index}-th entry (one decoded with an output). */
  static native float[] logits(long model, long context, int index);

  /** Draws the next token from the logits of the batch's {@code index}-th entry. */
  static native int sample(long sampler, long context, int index);
}
