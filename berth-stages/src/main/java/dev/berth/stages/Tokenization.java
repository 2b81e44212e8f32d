package dev.berth.stages;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import dev.berth.api.DataType;
import dev.berth.api.InvalidInputException;
import dev.berth.api.Tensor;
import dev.berth.api.TensorSpec;
import dev.berth.runtime.ConfigReader;
import dev.berth.runtime.Preprocessor;
import dev.berth.runtime.TensorBatching;
import java.io.IOException;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Set;

/**
 * The {@code preprocessing: {type: tokenize}} step of model.yaml: a BYTES input of UTF-8 strings is
 * turned into the token tensors a transformer graph takes, with a Hugging Face {@code
 * tokenizer.json}. All strings of a batch are tokenized together and padded to the longest, with an
 * attention mask that marks the padding.
 */
final class Tokenization implements Preprocessor {
  static final String TYPE = "tokenize";
  static final String DEFAULT_INPUT = "text";
  static final String DEFAULT_TOKENIZER = "tokenizer.json";
  static final int DEFAULT_MAX_LENGTH = 256;

  private final HuggingFaceTokenizer tokenizer;
  private final String input;
  private final String idsInput;
  private final String maskInput;
  private final String typeIdsInput;
  private final Map<String, DataType> types; // per token input: INT64 or INT32, as the model takes

  private Tokenization(
      HuggingFaceTokenizer tokenizer,
      String input,
      String ids,
      String mask,
      String typeIds,
      Map<String, DataType> types) {
    this.tokenizer = tokenizer;
    this.types = Map.copyOf(types);
    this.input = input;
    this.idsInput = ids;
    this.maskInput = mask;
    this.typeIdsInput = typeIds;
  }

  /**
   * Reads the section and loads the tokenizer.
   *
   * @param section the preprocessing section
   * @param versionDir where a relative tokenizer path is resolved
   * @param graphInputs the graph's input names, to check the token tensor names against
   */
  static Tokenization load(
      ConfigReader section, Path versionDir, Map<String, TensorSpec> graphInputSpecs) {
    Set<String> graphInputs = graphInputSpecs.keySet();
    section.allowOnly(
        Set.of(
            "type",
            "tokenizer",
            "input",
            "max-length",
            "input-ids",
            "attention-mask",
            "token-type-ids"));
    Path file = versionDir.resolve(section.string("tokenizer", DEFAULT_TOKENIZER)).normalize();
    if (!file.startsWith(versionDir.getParent()) || !Files.isRegularFile(file)) {
      throw section.error(
          "tokenizer",
          "no tokenizer file at "
              + file
              + "; put tokenizer.json in the version directory or"
              + " name it relative to it");
    }
    int maxLength = section.integer("max-length", DEFAULT_MAX_LENGTH, 1, 1 << 16);
    String ids = graphName(section, "input-ids", "input_ids", graphInputs, true);
    String mask = graphName(section, "attention-mask", "attention_mask", graphInputs, false);
    String typeIds = graphName(section, "token-type-ids", "token_type_ids", graphInputs, false);
    Map<String, DataType> types = new LinkedHashMap<>();
    String[] keys = {"input-ids", "attention-mask", "token-type-ids"};
    String[] names = {ids, mask, typeIds};
    for (int k = 0; k < names.length; k++) {
      if (names[k] == null) {
        continue;
      }
      TensorSpec spec = graphInputSpecs.get(names[k]);
      if ((spec.datatype() != DataType.INT64 && spec.datatype() != DataType.INT32)
          || spec.shape().length != 2) {
        throw section.error(
            keys[k],
            "the model's input '"
                + names[k]
                + "' is "
                + spec
                + "; token tensors are INT64 or INT32 [batch, tokens]");
      }
      types.put(names[k], spec.datatype());
    }
    String input = section.string("input", DEFAULT_INPUT);
    if (graphInputs.contains(input)) {
      throw section.error(
          "input", "'" + input + "' is already a model input; choose another name for the text");
    }
    try {
      HuggingFaceTokenizer tokenizer =
          HuggingFaceTokenizer.newInstance(
              file,
              Map.of(
                  "maxLength", Integer.toString(maxLength),
                  "truncation", "true",
                  "padding", "true",
                  "addSpecialTokens", "true"));
      return new Tokenization(tokenizer, input, ids, mask, typeIds, types);
    } catch (IOException | RuntimeException e) {
      throw section.error("tokenizer", "cannot load " + file + ": " + e.getMessage());
    }
  }

  private static String graphName(
      ConfigReader section,
      String key,
      String fallback,
      Set<String> graphInputs,
      boolean required) {
    String name = section.string(key, fallback);
    if (!graphInputs.contains(name)) {
      if (required || section.has(key)) {
        throw section.error(
            key, "the model has no input '" + name + "'; its inputs are " + graphInputs);
      }
      return null;
    }
    return name;
  }

  /** Name of the BYTES input clients send text on. */
  String input() {
    return input;
  }

  /** Graph inputs this step fills. */
  List<String> tokenInputs() {
    List<String> out = new ArrayList<>();
    out.add(idsInput);
    if (maskInput != null) {
      out.add(maskInput);
    }
    if (typeIdsInput != null) {
      out.add(typeIdsInput);
    }
    return out;
  }

  String maskInput() {
    return maskInput;
  }

  String typeIdsInput() {
    return typeIdsInput;
  }

  /** Any thread: the tokenizer keeps no state per calling thread. */
  @Override
  public boolean runsOnAnyThread() {
    return true;
  }

  @Override
  public List<TensorSpec> inputs() {
    return List.of(new TensorSpec(input, DataType.BYTES, new long[] {-1}));
  }

  /**
   * Tokenizes the texts of every request that sends text, all together and padded to one length,
   * and completes the requests that send token ids themselves (a mask of ones, zero type ids).
   */
  @Override
  public List<Map<String, Tensor>> apply(List<Map<String, Tensor>> requests) {
    List<Map<String, Tensor>> out = new ArrayList<>(requests);
    List<Integer> textRequests = new ArrayList<>();
    List<Tensor> texts = new ArrayList<>();
    for (int i = 0; i < requests.size(); i++) {
      Map<String, Tensor> request = requests.get(i);
      Tensor text = request.get(input);
      if (text != null) {
        if (request.size() > 1) {
          throw new InvalidInputException(
              "send either '"
                  + input
                  + "' (text) or the token tensors "
                  + tokenInputs()
                  + ", not both");
        }
        textRequests.add(i);
        texts.add(text);
      } else {
        out.set(i, completeTokenInputs(request));
      }
    }
    if (!texts.isEmpty()) {
      List<Tensor> tokens = tokenize(texts);
      int[] rows = texts.stream().mapToInt(t -> (int) t.dim(0)).toArray();
      List<Map<String, Tensor>> perRequest = new ArrayList<>();
      for (int r = 0; r < rows.length; r++) {
        perRequest.add(new LinkedHashMap<>());
      }
      for (Tensor t : tokens) {
        List<Tensor> parts = TensorBatching.split(t, rows);
        for (int r = 0; r < rows.length; r++) {
          perRequest.get(r).put(t.name(), parts.get(r));
        }
      }
      for (int r = 0; r < rows.length; r++) {
        out.set(textRequests.get(r), perRequest.get(r));
      }
    }
    return out;
  }

  /** A request that sends token ids gets the mask and type ids it leaves out. */
  private Map<String, Tensor> completeTokenInputs(Map<String, Tensor> given) {
    Tensor ids = given.get(idsInput);
    if (ids == null) {
      return given;
    }
    Map<String, Tensor> out = new LinkedHashMap<>(given);
    long count = ids.elementCount();
    if (ids.rank() != 2 || ids.dim(1) == 0) {
      throw new InvalidInputException(
          "'"
              + ids.name()
              + "' must be [rows, tokens] with at least one token per row, got "
              + Arrays.toString(ids.shape()));
    }
    if (maskInput != null && !given.containsKey(maskInput)) {
      long[] ones = new long[(int) count];
      Arrays.fill(ones, 1);
      out.put(maskInput, tokens(maskInput, ids.shape(), ones));
    }
    if (typeIdsInput != null && !given.containsKey(typeIdsInput)) {
      out.put(typeIdsInput, tokens(typeIdsInput, ids.shape(), new long[(int) count]));
    }
    for (Tensor t : out.values()) {
      if (!Arrays.equals(t.shape(), ids.shape())) {
        throw new InvalidInputException(
            "token tensors must share one shape: '"
                + t.name()
                + "' is "
                + Arrays.toString(t.shape())
                + ", '"
                + ids.name()
                + "' is "
                + Arrays.toString(ids.shape()));
      }
    }
    return out;
  }

  @Override
  public OptionalInt countTokens(List<String> texts) {
    return OptionalInt.of(count(texts));
  }

  /** Tokenizes the strings of several text tensors together; returns the token tensors. */
  List<Tensor> tokenize(List<Tensor> texts) {
    List<String> strings = new ArrayList<>();
    for (Tensor t : texts) {
      if (t.rank() != 1) {
        throw new InvalidInputException(
            "input '" + input + "' must be a list of strings (shape [n]), got rank " + t.rank());
      }
      for (byte[] b : t.elements()) {
        strings.add(decode(b));
      }
    }
    Encoding[] encodings = tokenizer.batchEncode(strings);
    int rows = encodings.length;
    int length = rows == 0 ? 0 : encodings[0].getIds().length;
    long[] ids = new long[rows * length];
    long[] mask = new long[rows * length];
    long[] typeIds = new long[rows * length];
    for (int r = 0; r < rows; r++) {
      System.arraycopy(encodings[r].getIds(), 0, ids, r * length, length);
      System.arraycopy(encodings[r].getAttentionMask(), 0, mask, r * length, length);
      System.arraycopy(encodings[r].getTypeIds(), 0, typeIds, r * length, length);
    }
    long[] shape = {rows, length};
    List<Tensor> out = new ArrayList<>(3);
    out.add(tokens(idsInput, shape, ids));
    if (maskInput != null) {
      out.add(tokens(maskInput, shape, mask));
    }
    if (typeIdsInput != null) {
      out.add(tokens(typeIdsInput, shape, typeIds));
    }
    return out;
  }

  /** A token tensor in the datatype the model takes for it. */
  private Tensor tokens(String name, long[] shape, long[] values) {
    if (types.get(name) == DataType.INT64) {
      return Tensor.ofLongs(name, shape, values);
    }
    java.nio.ByteBuffer data =
        java.nio.ByteBuffer.allocate(values.length * 4).order(java.nio.ByteOrder.LITTLE_ENDIAN);
    for (long v : values) {
      data.putInt((int) v);
    }
    data.flip();
    return Tensor.of(name, DataType.INT32, shape, data);
  }

  /** Tokens of the texts together, special tokens included, after truncation. */
  int count(List<String> texts) {
    int tokens = 0;
    for (Encoding e : tokenizer.batchEncode(texts)) {
      for (long m : e.getAttentionMask()) {
        tokens += (int) m;
      }
    }
    return tokens;
  }

  private String decode(byte[] bytes) {
    try {
      return StandardCharsets.UTF_8
          .newDecoder()
          .onMalformedInput(CodingErrorAction.REPORT)
          .onUnmappableCharacter(CodingErrorAction.REPORT)
          .decode(java.nio.ByteBuffer.wrap(bytes))
          .toString();
    } catch (CharacterCodingException e) {
      throw new InvalidInputException("input '" + input + "' holds bytes that are not UTF-8 text");
    }
  }

  @Override
  public void close() {
    tokenizer.close();
  }
}
