package dev.berth.llm;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Objects;
import java.util.SequencedSet;
import java.util.SplittableRandom;

/**
 * Writes llama-architecture GGUF (version 3) files with random weights, for tests and benchmarks:
 * no model can be downloaded where Berth is built, so this writer is where its LLM models come
 * from.
 *
 * <pre>{@code
 * GgufWriter.tiny().write(dir.resolve("tiny.gguf"));                  // 0.7 MB, F32, loads in ms
 * GgufWriter.tiny().feedForward(192).type(TensorType.Q4_0).write(dir.resolve("q4.gguf"));
 * GgufWriter.tinyLlama1B().write(path);          // 1.1B parameters, Q4_0: 0.62 GB, written in ~10 s
 * GgufWriter.llama().vocabulary(1024).embedding(128).layers(4).heads(4).kvHeads(2)
 *     .feedForward(256).contextLength(1024).type(TensorType.Q8_0).seed(7).write(path);
 * }</pre>
 *
 * <p>The same settings and seed give the same bytes. Weights are uniform in ±{@value #WEIGHT_RANGE}
 * (standard deviation 0.02), norm weights are 1.0 and always F32; the data is generated and written
 * one buffer at a time, so a model of any size needs a few MB of heap.
 *
 * <p>The vocabulary is SentencePiece-style ({@code tokenizer.ggml.model = "llama"}): {@code <unk>},
 * {@code <s>}, {@code </s>}, the 256 byte-fallback tokens {@code <0x00>..<0xFF>} (so any UTF-8 text
 * tokenizes), the ChatML control tokens {@code <|im_start|>} and {@code <|im_end|>} (the latter
 * also the end-of-turn token), then single characters, common English words with every prefix
 * ({@code "▁t"}, {@code "▁th"}, {@code "▁the"}: SentencePiece merges reach a word only through
 * pieces in the vocabulary) and synthetic pieces up to the vocabulary size, with descending scores.
 *
 * <p>Quantized types store each row in blocks of 32 elements, so with {@link TensorType#Q8_0} and
 * {@link TensorType#Q4_0} the embedding and feed-forward lengths must be multiples of 32.
 */
public final class GgufWriter {
  /** Weights are drawn uniformly from [-WEIGHT_RANGE, WEIGHT_RANGE]: 0.02 × √3. */
  public static final float WEIGHT_RANGE = 0.034641016f;

  /** Id of {@code <unk>}. */
  public static final int UNKNOWN_TOKEN_ID = 0;

  /** Id of {@code <s>}, added in front of prompts ({@code tokenizer.ggml.add_bos_token}). */
  public static final int BOS_TOKEN_ID = 1;

  /** Id of {@code </s>}, the end-of-sequence token. */
  public static final int EOS_TOKEN_ID = 2;

  /** Id of {@code <0x00>}; byte b is token {@code FIRST_BYTE_TOKEN_ID + b}. */
  public static final int FIRST_BYTE_TOKEN_ID = 3;

  /** Id of the control token {@code <|im_start|>}. */
  public static final int IM_START_TOKEN_ID = FIRST_BYTE_TOKEN_ID + 256;

  /** Id of the control token {@code <|im_end|>}, also written as the end-of-turn token. */
  public static final int IM_END_TOKEN_ID = IM_START_TOKEN_ID + 1;

  /** The ChatML template written unless {@link #chatTemplate} says otherwise. */
  public static final String CHATML_TEMPLATE =
      "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
          + "{{ message['content'] }}<|im_end|>\n{% endfor %}"
          + "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

  /** {@code general.alignment}: tensor data offsets are multiples of this. */
  public static final int ALIGNMENT = 32;

  /** How the weight matrices are stored; norm weights are F32 whatever this says. */
  public enum TensorType {
    F32(0, 1, 4, 0),
    F16(1, 1, 2, 1),
    Q4_0(2, 32, 18, 2),
    Q8_0(8, 32, 34, 7);

    private final int ggmlType;
    private final int blockElements;
    private final int blockBytes;
    private final int fileType;

    TensorType(int ggmlType, int blockElements, int blockBytes, int fileType) {
      this.ggmlType = ggmlType;
      this.blockElements = blockElements;
      this.blockBytes = blockBytes;
      this.fileType = fileType;
    }

    /** The {@code ggml_type} value written in the tensor infos. */
    public int ggmlType() {
      return ggmlType;
    }

    /** Elements per block: 1 for F32 and F16, 32 for the quantized types. */
    public int blockElements() {
      return blockElements;
    }

    /** Bytes per block. */
    public int blockBytes() {
      return blockBytes;
    }

    /** Bytes that {@code elements} elements (a multiple of the block size) take. */
    public long bytes(long elements) {
      return elements / blockElements * blockBytes;
    }
  }

  private static final int GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian uint32
  private static final int GGUF_VERSION = 3;

  // gguf_type values
  private static final int GGUF_UINT32 = 4;
  private static final int GGUF_INT32 = 5;
  private static final int GGUF_FLOAT32 = 6;
  private static final int GGUF_BOOL = 7;
  private static final int GGUF_STRING = 8;
  private static final int GGUF_ARRAY = 9;

  // llama_token_type values
  private static final int TOKEN_NORMAL = 1;
  private static final int TOKEN_UNKNOWN = 2;
  private static final int TOKEN_CONTROL = 3;
  private static final int TOKEN_BYTE = 6;

  private static final int CHUNK_ELEMENTS = 1 << 16;

  /** Maps a 24-bit signed integer onto [-WEIGHT_RANGE, WEIGHT_RANGE). */
  private static final float UNIFORM_SCALE = WEIGHT_RANGE / (1 << 23);

  private static final String[] WORDS = {
    "the",
    "of",
    "and",
    "to",
    "in",
    "a",
    "is",
    "that",
    "for",
    "it",
    "as",
    "was",
    "with",
    "be",
    "by",
    "on",
    "not",
    "he",
    "I",
    "this",
    "are",
    "or",
    "his",
    "from",
    "at",
    "which",
    "but",
    "have",
    "an",
    "had",
    "they",
    "you",
    "were",
    "their",
    "one",
    "all",
    "we",
    "can",
    "her",
    "has",
    "there",
    "been",
    "if",
    "more",
    "when",
    "will",
    "would",
    "who",
    "so",
    "no",
    "model",
    "serve",
    "request",
    "token",
    "hello",
    "world",
    "Berth",
    "llama",
    "what",
    "how",
    "time",
    "day",
    "year",
    "good",
    "new",
    "first",
    "last",
    "long",
    "great",
    "little",
    "own",
    "other",
    "old",
    "right",
    "big",
    "high",
    "different",
    "small",
    "large",
    "next",
    "early",
    "young",
    "important",
    "few",
    "public",
    "bad",
    "same",
    "able",
    "user",
    "assistant",
    "system",
    "answer",
    "question",
    "please",
    "thank",
    "yes",
    "number",
    "name"
  };

  private String name = "berth-random-llama";
  private int vocabulary = 512;
  private int embedding = 64;
  private int layers = 2;
  private int heads = 4;
  private int kvHeads = 4;
  private int feedForward = 172;
  private int contextLength = 512;
  private float rmsEpsilon = 1e-5f;
  private float ropeFreqBase = 10000f;
  private TensorType type = TensorType.F32;
  private long seed = 42;
  private String chatTemplate = CHATML_TEMPLATE;

  private GgufWriter() {}

  /** A llama model with the dimensions of {@link #tiny()}; change what you need. */
  public static GgufWriter llama() {
    return new GgufWriter();
  }

  /**
   * 164,672 parameters (vocabulary 512, embedding 64, 2 layers, 4 heads, feed-forward 172, context
   * 512), F32: 0.7 MB, loaded and run in milliseconds. With a quantized {@link #type} set {@code
   * feedForward(192)} (rows of whole 32-element blocks).
   */
  public static GgufWriter tiny() {
    return llama().name("berth-tiny-llama");
  }

  /**
   * The shape of TinyLlama 1.1B (vocabulary 32000, embedding 2048, 22 layers, 32 heads, 4 KV heads,
   * feed-forward 5632, context 2048): 1,100,048,384 parameters; Q4_0 (the default here) 0.62 GB,
   * Q8_0 1.2 GB, F16 2.2 GB.
   */
  public static GgufWriter tinyLlama1B() {
    return llama()
        .name("berth-random-tinyllama-1.1b")
        .vocabulary(32000)
        .embedding(2048)
        .layers(22)
        .heads(32)
        .kvHeads(4)
        .feedForward(5632)
        .contextLength(2048)
        .type(TensorType.Q4_0);
  }

  /** {@code general.name}. */
  public GgufWriter name(String name) {
    this.name = Objects.requireNonNull(name, "name");
    return this;
  }

  /** Tokens in the vocabulary; at least 3 + 256 + 2 + 1. */
  public GgufWriter vocabulary(int tokens) {
    this.vocabulary = tokens;
    return this;
  }

  /** {@code llama.embedding_length}: the model (hidden) dimension. */
  public GgufWriter embedding(int length) {
    this.embedding = length;
    return this;
  }

  /** {@code llama.block_count}. */
  public GgufWriter layers(int count) {
    this.layers = count;
    return this;
  }

  /** {@code llama.attention.head_count}; must divide the embedding length. */
  public GgufWriter heads(int count) {
    this.heads = count;
    return this;
  }

  /**
   * {@code llama.attention.head_count_kv}; must divide the head count (grouped-query attention).
   */
  public GgufWriter kvHeads(int count) {
    this.kvHeads = count;
    return this;
  }

  /** {@code llama.feed_forward_length}. */
  public GgufWriter feedForward(int length) {
    this.feedForward = length;
    return this;
  }

  /** {@code llama.context_length}: the context the model was "trained" with. */
  public GgufWriter contextLength(int tokens) {
    this.contextLength = tokens;
    return this;
  }

  /** Storage of the weight matrices. */
  public GgufWriter type(TensorType type) {
    this.type = Objects.requireNonNull(type, "type");
    return this;
  }

  /** Seed of the weights; the same seed and settings give the same file. */
  public GgufWriter seed(long seed) {
    this.seed = seed;
    return this;
  }

  /** {@code tokenizer.chat_template} (Jinja); {@code null} writes none. Default: ChatML. */
  public GgufWriter chatTemplate(String template) {
    this.chatTemplate = template;
    return this;
  }

  /** Parameters (weights) the model has. */
  public long parameterCount() {
    long total = 0;
    for (TensorSpec t : tensors()) {
      total += t.elements();
    }
    return total;
  }

  /** Writes the model to {@code file} (replacing it) and returns {@code file}. */
  public Path write(Path file) {
    validate();
    List<String> tokens = vocabularyTokens();
    List<TensorSpec> tensors = tensors();
    try {
      Path parent = file.toAbsolutePath().getParent();
      if (parent != null) {
        Files.createDirectories(parent);
      }
      try (FileChannel out =
          FileChannel.open(
              file,
              StandardOpenOption.CREATE,
              StandardOpenOption.WRITE,
              StandardOpenOption.TRUNCATE_EXISTING)) {
        writeFully(out, ByteBuffer.wrap(header(tokens, tensors)));
        ByteBuffer buffer =
            ByteBuffer.allocateDirect(CHUNK_ELEMENTS * 4).order(ByteOrder.LITTLE_ENDIAN);
        float[] values = new float[CHUNK_ELEMENTS];
        SplittableRandom random = new SplittableRandom(seed);
        for (TensorSpec t : tensors) {
          writeTensor(out, t, random.split(), values, buffer);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write GGUF model " + file, e);
    }
    return file;
  }

  private void validate() {
    require(
        vocabulary >= IM_END_TOKEN_ID + 2, "vocabulary must be at least " + (IM_END_TOKEN_ID + 2));
    require(embedding > 0 && layers > 0 && heads > 0 && kvHeads > 0, "dimensions must be positive");
    require(embedding % heads == 0, "embedding must be a multiple of heads");
    require(heads % kvHeads == 0, "heads must be a multiple of kvHeads");
    require(feedForward > 0 && contextLength > 0, "feedForward and contextLength must be positive");
    require(
        embedding % type.blockElements == 0 && feedForward % type.blockElements == 0,
        type + " needs embedding and feedForward to be multiples of " + type.blockElements);
  }

  private static void require(boolean condition, String message) {
    if (!condition) {
      throw new IllegalStateException(message);
    }
  }

  /** One tensor: name, ggml dimensions (innermost first), and whether it holds weights or ones. */
  private record TensorSpec(String name, long[] dims, boolean norm, TensorType type) {
    long elements() {
      long n = 1;
      for (long d : dims) {
        n *= d;
      }
      return n;
    }

    long bytes() {
      return type.bytes(elements());
    }
  }

  private List<TensorSpec> tensors() {
    int kv = embedding / heads * kvHeads;
    List<TensorSpec> list = new ArrayList<>();
    list.add(matrix("token_embd.weight", embedding, vocabulary));
    list.add(norm("output_norm.weight"));
    list.add(matrix("output.weight", embedding, vocabulary));
    for (int i = 0; i < layers; i++) {
      String b = "blk." + i + ".";
      list.add(norm(b + "attn_norm.weight"));
      list.add(matrix(b + "attn_q.weight", embedding, embedding));
      list.add(matrix(b + "attn_k.weight", embedding, kv));
      list.add(matrix(b + "attn_v.weight", embedding, kv));
      list.add(matrix(b + "attn_output.weight", embedding, embedding));
      list.add(norm(b + "ffn_norm.weight"));
      list.add(matrix(b + "ffn_gate.weight", embedding, feedForward));
      list.add(matrix(b + "ffn_up.weight", embedding, feedForward));
      list.add(matrix(b + "ffn_down.weight", feedForward, embedding));
    }
    return list;
  }

  private TensorSpec matrix(String tensorName, long columns, long rows) {
    return new TensorSpec(tensorName, new long[] {columns, rows}, false, type);
  }

  private TensorSpec norm(String tensorName) {
    return new TensorSpec(tensorName, new long[] {embedding}, true, TensorType.F32);
  }

  private List<String> vocabularyTokens() {
    SequencedSet<String> set = new LinkedHashSet<>();
    set.add("<unk>");
    set.add("<s>");
    set.add("</s>");
    for (int b = 0; b < 256; b++) {
      set.add(String.format("<0x%02X>", b));
    }
    set.add("<|im_start|>");
    set.add("<|im_end|>");
    List<String> pieces = new ArrayList<>();
    pieces.add("▁");
    for (char c = 'a'; c <= 'z'; c++) {
      pieces.add(String.valueOf(c));
    }
    for (char c = 'A'; c <= 'Z'; c++) {
      pieces.add(String.valueOf(c));
    }
    for (char c = '0'; c <= '9'; c++) {
      pieces.add(String.valueOf(c));
    }
    for (char c : ".,!?;:'\"-()[]{}<>/\\@#$%^&*_+=|~`".toCharArray()) {
      pieces.add(String.valueOf(c));
    }
    for (String word : WORDS) {
      String piece = "▁" + word;
      for (int end = 2; end <= piece.length(); end++) {
        pieces.add(piece.substring(0, end));
      }
    }
    for (String piece : pieces) {
      if (set.size() == vocabulary) {
        break;
      }
      set.add(piece);
    }
    for (int i = 0; set.size() < vocabulary; i++) {
      set.add(syntheticPiece(i));
    }
    return List.copyOf(set);
  }

  /** "▁ba", "▁be", ... then longer pieces: letter pairs from a fixed alphabet, base 26. */
  private static String syntheticPiece(int index) {
    StringBuilder s = new StringBuilder();
    int n = index;
    do {
      s.append((char) ('a' + n % 26));
      n /= 26;
    } while (n > 0);
    return (index % 2 == 0 ? "▁" : "") + "x" + s;
  }

  private int tokenType(int id) {
    if (id == UNKNOWN_TOKEN_ID) {
      return TOKEN_UNKNOWN;
    }
    if (id == BOS_TOKEN_ID
        || id == EOS_TOKEN_ID
        || id == IM_START_TOKEN_ID
        || id == IM_END_TOKEN_ID) {
      return TOKEN_CONTROL;
    }
    if (id >= FIRST_BYTE_TOKEN_ID && id < FIRST_BYTE_TOKEN_ID + 256) {
      return TOKEN_BYTE;
    }
    return TOKEN_NORMAL;
  }

  private byte[] header(List<String> tokens, List<TensorSpec> tensors) {
    Header h = new Header();
    int headDim = embedding / heads;
    h.kvString("general.architecture", "llama");
    h.kvString("general.name", name);
    h.kvU32("general.alignment", ALIGNMENT);
    h.kvU32("general.file_type", type.fileType);
    h.kvU32("llama.context_length", contextLength);
    h.kvU32("llama.embedding_length", embedding);
    h.kvU32("llama.block_count", layers);
    h.kvU32("llama.feed_forward_length", feedForward);
    h.kvU32("llama.attention.head_count", heads);
    h.kvU32("llama.attention.head_count_kv", kvHeads);
    h.kvF32("llama.attention.layer_norm_rms_epsilon", rmsEpsilon);
    h.kvU32("llama.rope.dimension_count", headDim);
    h.kvF32("llama.rope.freq_base", ropeFreqBase);
    h.kvU32("llama.vocab_size", vocabulary);
    h.kvString("tokenizer.ggml.model", "llama");
    h.kvArray("tokenizer.ggml.tokens", GGUF_STRING, tokens.size());
    for (String token : tokens) {
      h.string(token);
    }
    h.kvArray("tokenizer.ggml.scores", GGUF_FLOAT32, tokens.size());
    for (int id = 0; id < tokens.size(); id++) {
      h.f32(tokenType(id) == TOKEN_NORMAL ? -id : 0f);
    }
    h.kvArray("tokenizer.ggml.token_type", GGUF_INT32, tokens.size());
    for (int id = 0; id < tokens.size(); id++) {
      h.u32(tokenType(id));
    }
    h.kvU32("tokenizer.ggml.bos_token_id", BOS_TOKEN_ID);
    h.kvU32("tokenizer.ggml.eos_token_id", EOS_TOKEN_ID);
    h.kvU32("tokenizer.ggml.unknown_token_id", UNKNOWN_TOKEN_ID);
    h.kvU32("tokenizer.ggml.eot_token_id", IM_END_TOKEN_ID);
    h.kvBool("tokenizer.ggml.add_bos_token", true);
    h.kvBool("tokenizer.ggml.add_eos_token", false);
    if (chatTemplate != null) {
      h.kvString("tokenizer.chat_template", chatTemplate);
    }
    Header infos = new Header();
    long offset = 0;
    for (TensorSpec t : tensors) {
      infos.string(t.name()).u32(t.dims().length);
      for (long d : t.dims()) {
        infos.u64(d);
      }
      infos.u32(t.type().ggmlType).u64(offset);
      offset = align(offset + t.bytes());
    }
    Header file = new Header();
    file.u32(GGUF_MAGIC).u32(GGUF_VERSION).u64(tensors.size()).u64(h.keyValues);
    file.append(h).append(infos).pad();
    return file.bytes();
  }

  private static long align(long n) {
    return (n + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
  }

  private static void writeTensor(
      FileChannel out, TensorSpec t, SplittableRandom random, float[] values, ByteBuffer buffer)
      throws IOException {
    long remaining = t.elements();
    while (remaining > 0) {
      int n = (int) Math.min(remaining, values.length);
      for (int i = 0; i < n; i++) {
        values[i] = t.norm() ? 1f : (random.nextInt() >> 8) * UNIFORM_SCALE;
      }
      buffer.clear();
      encode(t.type(), values, n, buffer);
      buffer.flip();
      writeFully(out, buffer);
      remaining -= n;
    }
    int padding = (int) (align(t.bytes()) - t.bytes());
    writeFully(out, ByteBuffer.allocate(padding));
  }

  /** Appends {@code n} values (a multiple of the type's block size) to {@code out} as ggml does. */
  static void encode(TensorType type, float[] values, int n, ByteBuffer out) {
    switch (type) {
      case F32 -> {
        for (int i = 0; i < n; i++) {
          out.putFloat(values[i]);
        }
      }
      case F16 -> {
        for (int i = 0; i < n; i++) {
          out.putShort(Float.floatToFloat16(values[i]));
        }
      }
      case Q8_0 -> {
        for (int b = 0; b < n; b += 32) {
          quantizeQ8_0(values, b, out);
        }
      }
      case Q4_0 -> {
        for (int b = 0; b < n; b += 32) {
          quantizeQ4_0(values, b, out);
        }
      }
    }
  }

  /** ggml's {@code quantize_row_q8_0_ref} for one block: f16 d = amax / 127, then 32 × int8. */
  static void quantizeQ8_0(float[] x, int from, ByteBuffer out) {
    float amax = 0;
    for (int j = 0; j < 32; j++) {
      amax = Math.max(amax, Math.abs(x[from + j]));
    }
    float d = amax / 127f;
    float id = d != 0 ? 1f / d : 0f;
    out.putShort(Float.floatToFloat16(d));
    for (int j = 0; j < 32; j++) {
      float v = x[from + j] * id;
      out.put((byte) (v < 0 ? -Math.round(-v) : Math.round(v))); // roundf: halves away from zero
    }
  }

  /**
   * ggml's {@code quantize_row_q4_0_ref} for one block: f16 d = max / -8 (max: the value of largest
   * magnitude, with its sign), then 16 bytes: byte j holds element j in its low nibble and element
   * j + 16 in its high nibble, each q = min(15, (int) (x / d + 8.5)).
   */
  static void quantizeQ4_0(float[] x, int from, ByteBuffer out) {
    float amax = 0;
    float max = 0;
    for (int j = 0; j < 32; j++) {
      float v = x[from + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    float d = max / -8f;
    float id = d != 0 ? 1f / d : 0f;
    out.putShort(Float.floatToFloat16(d));
    for (int j = 0; j < 16; j++) {
      int lo = Math.min(15, (byte) (x[from + j] * id + 8.5f));
      int hi = Math.min(15, (byte) (x[from + 16 + j] * id + 8.5f));
      out.put((byte) (lo | hi << 4));
    }
  }

  private static void writeFully(FileChannel out, ByteBuffer buffer) throws IOException {
    while (buffer.hasRemaining()) {
      out.write(buffer);
    }
  }

  /** Little-endian header bytes, counting the key-values written with the {@code kv} methods. */
  private static final class Header {
    private final ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    private final ByteBuffer scratch = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
    private int keyValues;

    Header u32(int v) {
      scratch.clear();
      bytes.write(scratch.putInt(v).array(), 0, 4);
      return this;
    }

    Header u64(long v) {
      scratch.clear();
      bytes.write(scratch.putLong(v).array(), 0, 8);
      return this;
    }

    Header f32(float v) {
      return u32(Float.floatToRawIntBits(v));
    }

    Header string(String s) {
      byte[] utf8 = s.getBytes(StandardCharsets.UTF_8);
      u64(utf8.length);
      bytes.write(utf8, 0, utf8.length);
      return this;
    }

    Header append(Header other) {
      bytes.writeBytes(other.bytes());
      return this;
    }

    private Header key(String key, int type) {
      keyValues++;
      return string(key).u32(type);
    }

    void kvString(String key, String value) {
      key(key, GGUF_STRING).string(value);
    }

    void kvU32(String key, int value) {
      key(key, GGUF_UINT32).u32(value);
    }

    void kvF32(String key, float value) {
      key(key, GGUF_FLOAT32).f32(value);
    }

    void kvBool(String key, boolean value) {
      key(key, GGUF_BOOL);
      bytes.write(value ? 1 : 0);
    }

    /** The key and array header; the caller writes the {@code count} elements. */
    void kvArray(String key, int elementType, int count) {
      key(key, GGUF_ARRAY).u32(elementType).u64(count);
    }

    void pad() {
      while (bytes.size() % ALIGNMENT != 0) {
        bytes.write(0);
      }
    }

    byte[] bytes() {
      return bytes.toByteArray();
    }
  }
}
