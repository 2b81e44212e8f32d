package dev.berth.client.bench;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.api.BerthException;
import dev.berth.api.DataType;
import dev.berth.api.ModelMetadata;
import dev.berth.api.TensorSpec;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The request bodies a benchmark sends: generated from the model's metadata, or read from a file.
 * Generated requests give every -1 first dimension the batch size and every other -1 dimension
 * {@link #DYNAMIC_SIZE}; values are random from a seeded generator (floats in [0, 1), integers in
 * [0, 10), booleans) or, for BYTES, sample English sentences.
 */
final class RequestBodies {
  /** The size of a -1 dimension other than the first. */
  static final int DYNAMIC_SIZE = 8;

  /** Distinct generated bodies, sent round-robin. */
  static final int VARIANTS = 16;

  static final List<String> SENTENCES =
      List.of(
          "The quick brown fox jumps over the lazy dog.",
          "Berth serves models over HTTP and gRPC.",
          "A cat sat on the mat and watched the rain.",
          "Please send the quarterly report by Friday afternoon.",
          "The train to the airport leaves every fifteen minutes.",
          "She planted tomatoes, basil and peppers in the garden.",
          "How long does it take to boil an egg?",
          "The museum opens at nine and closes at six.",
          "Our new phone has a bigger screen and a better camera.",
          "He forgot his umbrella on the bus again.",
          "The recipe calls for two cups of flour and one egg.",
          "Traffic was light on the highway this morning.",
          "The meeting has been moved to the large conference room.",
          "Children were playing football in the park.",
          "This restaurant serves the best noodles in town.",
          "The library has thousands of books about history.");

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final JsonFactory FACTORY = JSON.getFactory();

  private RequestBodies() {}

  /** Whether an OpenAI {@code GET /v1/models} answer lists a model with this id. */
  static boolean listsModel(byte[] json, String model) {
    try {
      for (JsonNode m : JSON.readTree(json).path("data")) {
        if (model.equals(m.path("id").asText())) {
          return true;
        }
      }
      return false;
    } catch (IOException e) {
      throw new BerthException(
          "the server's GET /v1/models answer is not JSON (" + e.getMessage() + ")", e);
    }
  }

  /** Model metadata from an OIP v2 {@code GET /v2/models/M} answer. */
  static ModelMetadata parseMetadata(byte[] json) {
    try {
      JsonNode root = JSON.readTree(json);
      List<String> versions = new ArrayList<>();
      root.path("versions").forEach(v -> versions.add(v.asText()));
      List<String> labels = new ArrayList<>();
      root.path("parameters").path("labels").forEach(l -> labels.add(l.asText()));
      return new ModelMetadata(
          root.path("name").asText(),
          versions,
          root.path("platform").asText(""),
          specs(root.path("inputs")),
          specs(root.path("outputs")),
          labels);
    } catch (IOException | RuntimeException e) {
      throw new BerthException(
          "the server's model metadata is not OIP v2 metadata ("
              + e.getMessage()
              + "); give the requests with --data FILE",
          e);
    }
  }

  private static List<TensorSpec> specs(JsonNode list) {
    List<TensorSpec> out = new ArrayList<>();
    for (JsonNode t : list) {
      JsonNode shape = t.path("shape");
      long[] dims = new long[shape.size()];
      for (int i = 0; i < dims.length; i++) {
        dims[i] = shape.get(i).asLong();
      }
      out.add(
          new TensorSpec(
              t.path("name").asText(), DataType.fromName(t.path("datatype").asText()), dims));
    }
    return out;
  }

  /**
   * The inputs generated requests carry: those named, else every input of the metadata — except
   * when the first input is BYTES and there are others, where the first alone (Berth lists a text
   * input first and the token tensors it stands for after it; a request carries one or the other).
   */
  static List<TensorSpec> chooseInputs(ModelMetadata metadata, List<String> names) {
    List<TensorSpec> all = metadata.inputs();
    if (all.isEmpty()) {
      throw new BerthException(
          "model '" + metadata.name() + "' lists no inputs; give the requests with --data FILE");
    }
    if (names.isEmpty()) {
      return all.get(0).datatype() == DataType.BYTES ? List.of(all.get(0)) : all;
    }
    List<TensorSpec> chosen = new ArrayList<>();
    for (String name : names) {
      chosen.add(
          all.stream()
              .filter(t -> t.name().equals(name))
              .findFirst()
              .orElseThrow(
                  () ->
                      new BerthException(
                          "model '"
                              + metadata.name()
                              + "' has no input '"
                              + name
                              + "'; its inputs are "
                              + all.stream().map(TensorSpec::name).toList())));
    }
    return chosen;
  }

  /** The shape a generated tensor gets. */
  static long[] shapeOf(TensorSpec spec, int batchSize) {
    long[] shape = spec.shape();
    for (int i = 0; i < shape.length; i++) {
      if (shape[i] < 0) {
        shape[i] = i == 0 ? batchSize : DYNAMIC_SIZE;
      }
    }
    return shape;
  }

  /** {@link #VARIANTS} request bodies for the inputs, in the protocol's JSON. */
  static List<byte[]> generate(
      List<TensorSpec> inputs, Protocol protocol, int batchSize, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    List<byte[]> bodies = new ArrayList<>(VARIANTS);
    for (int v = 0; v < VARIANTS; v++) {
      List<Object[]> values = new ArrayList<>();
      for (TensorSpec spec : inputs) {
        values.add(values(spec, shapeOf(spec, batchSize), random, v));
      }
      bodies.add(
          protocol == Protocol.TFSERVING
              ? tfServing(inputs, values, batchSize)
              : oip(inputs, values, batchSize));
    }
    return bodies;
  }

  /**
   * Distinct generated completion prompts, sent round-robin: more than a server runs sequences at
   * once, so that a request seldom finds its whole prompt in a sequence's cache.
   */
  static final int PROMPT_VARIANTS = 256;

  /**
   * {@link #PROMPT_VARIANTS} bodies of {@code POST /v1/completions} for {@code model}: a prompt of
   * {@code words} words of the sample sentences, each starting with its own number (so that no two
   * share a start a server could reuse), {@code max_tokens} of {@code maxTokens} and greedy
   * decoding ({@code temperature} 0, so that a request generates the same tokens each time).
   */
  static List<byte[]> completions(String model, int words, int maxTokens, long seed) {
    List<String> vocabulary = new ArrayList<>();
    for (String sentence : SENTENCES) {
      vocabulary.addAll(List.of(sentence.split(" ")));
    }
    SplittableRandom random = new SplittableRandom(seed);
    List<byte[]> bodies = new ArrayList<>(PROMPT_VARIANTS);
    for (int v = 0; v < PROMPT_VARIANTS; v++) {
      StringBuilder prompt = new StringBuilder("Request ").append(v + 1).append(':');
      int at = random.nextInt(vocabulary.size());
      for (int w = 0; w < words; w++) {
        prompt.append(' ').append(vocabulary.get((at + w) % vocabulary.size()));
      }
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      try (JsonGenerator g = FACTORY.createGenerator(out)) {
        g.writeStartObject();
        g.writeStringField("model", model);
        g.writeStringField("prompt", prompt.toString());
        g.writeNumberField("max_tokens", maxTokens);
        g.writeNumberField("temperature", 0);
        g.writeEndObject();
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      bodies.add(out.toByteArray());
    }
    return bodies;
  }

  private static Object[] values(TensorSpec spec, long[] shape, SplittableRandom random, int v) {
    long n = 1;
    for (long d : shape) {
      n = Math.multiplyExact(n, d);
    }
    if (n > 50_000_000) {
      throw new BerthException(
          "input '"
              + spec.name()
              + "' would have "
              + n
              + " elements; give a smaller --batch-size or the requests with --data FILE");
    }
    Object[] out = new Object[(int) n];
    for (int i = 0; i < n; i++) {
      out[i] =
          switch (spec.datatype()) {
            case BYTES -> SENTENCES.get((v + i) % SENTENCES.size());
            case BOOL -> random.nextBoolean();
            case FP16, FP32 -> (float) random.nextDouble();
            case FP64 -> random.nextDouble();
            default -> (long) random.nextInt(10);
          };
    }
    return out;
  }

  private static byte[] oip(List<TensorSpec> inputs, List<Object[]> values, int batchSize) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (JsonGenerator g = FACTORY.createGenerator(out)) {
      g.writeStartObject();
      g.writeArrayFieldStart("inputs");
      for (int k = 0; k < inputs.size(); k++) {
        TensorSpec spec = inputs.get(k);
        g.writeStartObject();
        g.writeStringField("name", spec.name());
        g.writeArrayFieldStart("shape");
        for (long d : shapeOf(spec, batchSize)) {
          g.writeNumber(d);
        }
        g.writeEndArray();
        g.writeStringField("datatype", spec.datatype().name());
        g.writeArrayFieldStart("data");
        for (Object x : values.get(k)) {
          writeValue(g, x);
        }
        g.writeEndArray();
        g.writeEndObject();
      }
      g.writeEndArray();
      g.writeEndObject();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out.toByteArray();
  }

  /**
   * TF-Serving row format: {@code {"instances": [row, ...]}}, a row being the input's value for one
   * first-dimension entry, or with several inputs an object of them by name.
   */
  private static byte[] tfServing(List<TensorSpec> inputs, List<Object[]> values, int batchSize) {
    long rows =
        shapeOf(inputs.get(0), batchSize).length == 0 ? 1 : shapeOf(inputs.get(0), batchSize)[0];
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (JsonGenerator g = FACTORY.createGenerator(out)) {
      g.writeStartObject();
      g.writeArrayFieldStart("instances");
      for (int r = 0; r < rows; r++) {
        if (inputs.size() > 1) {
          g.writeStartObject();
        }
        for (int k = 0; k < inputs.size(); k++) {
          TensorSpec spec = inputs.get(k);
          long[] shape = shapeOf(spec, batchSize);
          if (inputs.size() > 1) {
            g.writeFieldName(spec.name());
          }
          if (shape.length == 0) {
            writeValue(g, values.get(k)[0]);
            continue;
          }
          long[] rowShape = java.util.Arrays.copyOfRange(shape, 1, shape.length);
          int rowSize = (int) (values.get(k).length / shape[0]);
          writeNested(g, values.get(k), r * rowSize, rowShape, 0);
        }
        if (inputs.size() > 1) {
          g.writeEndObject();
        }
      }
      g.writeEndArray();
      g.writeEndObject();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return out.toByteArray();
  }

  /** Writes values[from..] as nested lists of {@code shape} (a scalar when the shape is empty). */
  private static int writeNested(JsonGenerator g, Object[] values, int from, long[] shape, int dim)
      throws IOException {
    if (dim == shape.length) {
      writeValue(g, values[from]);
      return from + 1;
    }
    g.writeStartArray();
    int at = from;
    for (long i = 0; i < shape[dim]; i++) {
      at = writeNested(g, values, at, shape, dim + 1);
    }
    g.writeEndArray();
    return at;
  }

  private static void writeValue(JsonGenerator g, Object x) throws IOException {
    switch (x) {
      case String s -> g.writeString(s);
      case Boolean b -> g.writeBoolean(b);
      case Float f -> g.writeNumber(f);
      case Double d -> g.writeNumber(d);
      case Long l -> g.writeNumber(l);
      default -> throw new IllegalArgumentException("no JSON for " + x);
    }
  }

  /**
   * Request bodies from a file: one JSON object (the whole file) or JSON Lines (one object per
   * non-blank line). Each body is sent as it stands in the file.
   */
  static List<byte[]> read(Path file) {
    String text;
    try {
      text = Files.readString(file, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new BerthException("cannot read --data " + file + ": " + e.getMessage(), e);
    }
    String whole = text.strip();
    if (whole.isEmpty()) {
      throw new BerthException("--data " + file + " is empty; give one request body per line");
    }
    if (isOneObject(whole)) {
      return List.of(whole.getBytes(StandardCharsets.UTF_8));
    }
    List<byte[]> bodies = new ArrayList<>();
    String[] lines = text.split("\n", -1);
    for (int i = 0; i < lines.length; i++) {
      String line = lines[i].strip();
      if (line.isEmpty()) {
        continue;
      }
      try {
        JsonNode node = JSON.readTree(line);
        if (node == null || !node.isObject()) {
          throw new BerthException(
              "--data " + file + " line " + (i + 1) + " is not a JSON object (a request body)");
        }
      } catch (JsonProcessingException e) {
        throw new BerthException(
            "--data "
                + file
                + " line "
                + (i + 1)
                + " is not JSON ("
                + e.getOriginalMessage()
                + "); give one JSON object, or one per line (JSONL)",
            e);
      }
      bodies.add(line.getBytes(StandardCharsets.UTF_8));
    }
    return bodies;
  }

  private static boolean isOneObject(String text) {
    try (JsonParser p = FACTORY.createParser(text)) {
      JsonNode node = JSON.readTree(p);
      return node != null && node.isObject() && p.nextToken() == null;
    } catch (IOException e) {
      return false;
    }
  }
}
