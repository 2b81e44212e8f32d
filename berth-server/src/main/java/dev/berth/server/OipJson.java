package dev.berth.server;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.exc.StreamConstraintsException;
import com.fasterxml.jackson.core.exc.StreamReadException;
import dev.berth.api.DataType;
import dev.berth.api.InferenceRequest;
import dev.berth.api.InferenceResponse;
import dev.berth.api.InvalidInputException;
import dev.berth.api.ModelMetadata;
import dev.berth.api.Tensor;
import dev.berth.api.TensorSpec;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

/**
 * Open Inference Protocol v2 JSON: inference requests in, responses and metadata out. Streams with
 * Jackson's parser and generator, straight into and out of {@link Tensor}'s little-endian layout,
 * with no object tree in between.
 */
final class OipJson {
  /** Deepest nesting of JSON arrays and objects in a request. */
  static final int MAX_NESTING_DEPTH = 64;

  /** Longest JSON string value, in characters (a BYTES element; base64 takes 4/3 of its bytes). */
  static final int MAX_STRING_CHARS = 64 << 20;

  /** Longest JSON number literal, in characters. */
  static final int MAX_NUMBER_CHARS = 100;

  /** Longest JSON field name, in characters. */
  static final int MAX_NAME_CHARS = 1024;

  static final JsonFactory JSON =
      JsonFactory.builder()
          .streamReadConstraints(
              StreamReadConstraints.builder()
                  .maxNestingDepth(MAX_NESTING_DEPTH)
                  .maxStringLength(MAX_STRING_CHARS)
                  .maxNumberLength(MAX_NUMBER_CHARS)
                  .maxNameLength(MAX_NAME_CHARS)
                  .build())
          .build();

  /** Jackson's advice to turn on a parser feature: the server's setting, not the client's fix. */
  private static final Pattern FEATURE_ADVICE =
      Pattern.compile(":? ?(?:\\()?enable `[^`]*` to allow(?:\\))?");

  /**
   * Jackson's pointer to the constraint's getter, e.g. {@code , from `StreamReadConstraints...`}.
   */
  private static final Pattern CONSTRAINT_SOURCE = Pattern.compile(",? from `[^`]*`");

  /**
   * How Jackson's messages name a position, e.g. {@code [Source: REDACTED (`StreamReadFeature...`
   * disabled); line: 1, column: 12]}: library internals a client cannot act on, bar the position.
   */
  private static final Pattern SOURCE_POSITION =
      Pattern.compile("\\[Source: .*?; line: (\\d+), column: (\\d+)\\]");

  private OipJson() {}

  /** A JSON syntax error for the client: Jackson's description without its internal names. */
  static InvalidInputException malformed(StreamReadException e) {
    String original = e.getOriginalMessage();
    String problem = FEATURE_ADVICE.matcher(original).replaceAll("");
    if (!problem.equals(original) && problem.matches("(?s).*'-?(NaN|Infinity|INF)'.*")) {
      problem +=
          " (JSON has no NaN or Infinity; send them as the strings \"NaN\", \"Infinity\","
              + " \"-Infinity\")";
    }
    problem = SOURCE_POSITION.matcher(problem).replaceAll("line $1, column $2");
    return new InvalidInputException("malformed JSON: " + problem + at(e.getLocation()), e);
  }

  /** A JSON document over one of the parser's limits (nesting, string, number or name length). */
  static InvalidInputException tooComplex(StreamConstraintsException e) {
    String problem = CONSTRAINT_SOURCE.matcher(e.getOriginalMessage()).replaceAll("");
    problem = SOURCE_POSITION.matcher(problem).replaceAll("line $1, column $2");
    return new InvalidInputException("JSON over a limit: " + problem + at(e.getLocation()), e);
  }

  private static String at(com.fasterxml.jackson.core.JsonLocation where) {
    return where == null || where.getLineNr() < 0
        ? ""
        : " (line " + where.getLineNr() + ", column " + where.getColumnNr() + ")";
  }

  /**
   * A decoded inference request and how its answer is to be encoded.
   *
   * @param request the request
   * @param binaryOutputs outputs to answer as raw bytes (binary tensor extension)
   * @param allBinary whether every output not named otherwise is answered as raw bytes
   * @param textOutputs outputs asked for explicitly as JSON
   */
  record Decoded(
      InferenceRequest request,
      Set<String> binaryOutputs,
      boolean allBinary,
      Set<String> textOutputs) {
    boolean binary(String output) {
      return binaryOutputs.contains(output) || (allBinary && !textOutputs.contains(output));
    }

    boolean anyBinary() {
      return allBinary || !binaryOutputs.isEmpty();
    }
  }

  /** Raw tensor bytes after the JSON header of a binary-extension request. */
  private static final class BinarySection {
    private final byte[] body;
    private final boolean present;
    private int position;

    BinarySection(byte[] body, int headerLength, boolean present) {
      this.body = body;
      this.present = present;
      this.position = headerLength;
    }

    int remaining() {
      return body.length - position;
    }

    ByteBuffer take(String tensor, long size) {
      if (!present) {
        throw new InvalidInputException(
            "input '"
                + tensor
                + "' sets parameters.binary_data_size, but the request has no"
                + " Inference-Header-Content-Length header saying where its JSON ends");
      }
      if (size > remaining()) {
        throw new InvalidInputException(
            "input '"
                + tensor
                + "' declares binary_data_size "
                + size
                + " but only "
                + remaining()
                + " bytes of binary data remain after the JSON header");
      }
      ByteBuffer slice =
          ByteBuffer.wrap(body, position, (int) size).slice().order(ByteOrder.LITTLE_ENDIAN);
      position += (int) size;
      return slice;
    }
  }

  /** Decodes a JSON-only inference request body. */
  static InferenceRequest readRequest(byte[] body, String model, String version) {
    return decode(body, -1, model, version).request();
  }

  /**
   * Decodes an inference request body: JSON, or with the binary tensor extension a JSON header of
   * {@code headerLength} bytes followed by raw little-endian tensor data.
   *
   * @param headerLength the {@code Inference-Header-Content-Length}, or -1 when the body is JSON
   *     only
   */
  static Decoded decode(byte[] body, int headerLength, String model, String version) {
    if (headerLength > body.length) {
      throw new InvalidInputException(
          "Inference-Header-Content-Length is "
              + headerLength
              + " but the body has only "
              + body.length
              + " bytes");
    }
    int jsonLength = headerLength < 0 ? body.length : headerLength;
    BinarySection binary = new BinarySection(body, jsonLength, headerLength >= 0);
    String id = null;
    List<Tensor> inputs = null;
    List<String> outputs = new ArrayList<>();
    Set<String> binaryOutputs = new HashSet<>();
    Set<String> textOutputs = new HashSet<>();
    boolean allBinary = false;
    List<String> unknown = new ArrayList<>();
    try (JsonParser p = JSON.createParser(body, 0, jsonLength)) {
      expect(p, p.nextToken(), JsonToken.START_OBJECT, "the request body must be a JSON object");
      while (p.nextToken() == JsonToken.FIELD_NAME) {
        String field = p.currentName();
        JsonToken value = p.nextToken();
        switch (field) {
          case "id" -> {
            if (value != JsonToken.VALUE_STRING) {
              throw new InvalidInputException("'id' must be a string");
            }
            id = p.getText();
          }
          case "inputs" -> inputs = readInputs(p, body.length, binary);
          case "outputs" -> readOutputs(p, outputs, binaryOutputs, textOutputs);
          case "parameters" ->
              allBinary = Boolean.TRUE.equals(readFlag(p, "binary_data_output", "parameters"));
          default -> {
            unknown.add(field);
            p.skipChildren();
          }
        }
      }
      if (hasMore(p)) {
        throw new InvalidInputException(
            headerLength < 0
                ? "the request body has content after its JSON object; binary tensor data needs"
                    + " the Inference-Header-Content-Length header"
                : "the JSON header (Inference-Header-Content-Length "
                    + headerLength
                    + ") has content after its JSON object");
      }
    } catch (StreamReadException e) {
      throw malformed(e);
    } catch (StreamConstraintsException e) {
      throw tooComplex(e);
    } catch (IOException e) {
      throw new InvalidInputException("cannot read the request body: " + e.getMessage(), e);
    }
    if (inputs == null) {
      throw new InvalidInputException(
          "the request has no 'inputs'"
              + unknownFields(unknown)
              + "; send {\"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}]}");
    }
    if (headerLength >= 0 && binary.remaining() > 0) {
      throw new InvalidInputException(
          binary.remaining()
              + " bytes of binary data follow the last input's binary_data_size; the sizes must"
              + " add up to the body length minus Inference-Header-Content-Length");
    }
    return new Decoded(
        new InferenceRequest(id, model, version, inputs, outputs),
        binaryOutputs,
        allBinary,
        textOutputs);
  }

  /** Reads a {@code parameters} object; returns its boolean {@code flag}, or null if absent. */
  private static Boolean readFlag(JsonParser p, String flag, String where) throws IOException {
    expect(p, p.currentToken(), JsonToken.START_OBJECT, "'" + where + "' must be an object");
    Boolean value = null;
    while (p.nextToken() == JsonToken.FIELD_NAME) {
      String field = p.currentName();
      JsonToken v = p.nextToken();
      if (field.equals(flag)) {
        if (v != JsonToken.VALUE_TRUE && v != JsonToken.VALUE_FALSE) {
          throw new InvalidInputException(where + "." + flag + " must be true or false");
        }
        value = v == JsonToken.VALUE_TRUE;
      } else {
        p.skipChildren();
      }
    }
    return value;
  }

  private static List<Tensor> readInputs(JsonParser p, int bodyLength, BinarySection binary)
      throws IOException {
    expect(p, p.currentToken(), JsonToken.START_ARRAY, "'inputs' must be an array of tensors");
    List<Tensor> inputs = new ArrayList<>();
    while (p.nextToken() != JsonToken.END_ARRAY) {
      expect(
          p, p.currentToken(), JsonToken.START_OBJECT, "each entry of 'inputs' must be an object");
      inputs.add(readTensor(p, bodyLength, inputs.size(), binary));
    }
    return inputs;
  }

  private static Tensor readTensor(JsonParser p, int bodyLength, int index, BinarySection binary)
      throws IOException {
    long binarySize = -1;
    String name = null;
    DataType type = null;
    long[] shape = null;
    ElementWriter data = null;
    byte[] deferred = null; // "data" that came before "datatype" or "shape"
    List<String> unknown = new ArrayList<>();
    while (p.nextToken() == JsonToken.FIELD_NAME) {
      String field = p.currentName();
      JsonToken value = p.nextToken();
      switch (field) {
        case "name" -> {
          if (value != JsonToken.VALUE_STRING) {
            throw new InvalidInputException("inputs[" + index + "].name must be a string");
          }
          name = p.getText();
        }
        case "datatype" -> {
          if (value != JsonToken.VALUE_STRING) {
            throw new InvalidInputException("inputs[" + index + "].datatype must be a string");
          }
          type = DataType.fromName(p.getText());
        }
        case "shape" -> shape = readShape(p, index);
        case "data" -> {
          if (type != null && shape != null && name != null) {
            long count = Tensor.elementCount(shape);
            if (count > bodyLength) {
              throw new InvalidInputException(
                  "tensor '"
                      + name
                      + "' has shape "
                      + java.util.Arrays.toString(shape)
                      + " ("
                      + count
                      + " elements), more than a body of "
                      + bodyLength
                      + " bytes can hold");
            }
            data = new ElementWriter(name, type, count);
            data.read(p);
          } else {
            ByteArrayOutputStream copy = new ByteArrayOutputStream();
            try (JsonGenerator g = JSON.createGenerator(copy)) {
              g.copyCurrentStructure(p);
            }
            deferred = copy.toByteArray();
          }
        }
        case "parameters" -> binarySize = readBinarySize(p, index);
        default -> {
          unknown.add(field);
          p.skipChildren();
        }
      }
    }
    String at = name == null ? "inputs[" + index + "]" : "input '" + name + "'";
    if (name == null) {
      throw new InvalidInputException(at + " has no 'name'" + unknownFields(unknown));
    }
    if (type == null) {
      throw new InvalidInputException(
          at + " has no 'datatype' (e.g. \"FP32\")" + unknownFields(unknown));
    }
    if (shape == null) {
      throw new InvalidInputException(
          at + " has no 'shape' (e.g. [1, 784])" + unknownFields(unknown));
    }
    if (binarySize >= 0) {
      if (data != null || deferred != null) {
        throw new InvalidInputException(
            at + " has both 'data' and parameters.binary_data_size; send one of them");
      }
      return BinaryTensors.read(name, type, shape, binary.take(name, binarySize));
    }
    if (data == null && deferred == null) {
      throw new InvalidInputException(at + " has no 'data' (nor parameters.binary_data_size)");
    }
    if (data == null) {
      data = new ElementWriter(name, type, Math.min(Tensor.elementCount(shape), bodyLength));
      try (JsonParser again = JSON.createParser(deferred)) {
        again.nextToken();
        data.read(again);
      }
    }
    return data.toTensor(shape);
  }

  /** Fields a request has that Berth does not read: often a misspelt one that is missing. */
  private static String unknownFields(List<String> unknown) {
    if (unknown.isEmpty()) {
      return "";
    }
    List<String> shown = unknown.subList(0, Math.min(5, unknown.size()));
    return " (it has "
        + String.join(
            ", ",
            shown.stream()
                .map(f -> "'" + (f.length() > 40 ? f.substring(0, 40) + "..." : f) + "'")
                .toList())
        + (unknown.size() > shown.size() ? ", ..." : "")
        + ", which Berth does not know)";
  }

  private static long readBinarySize(JsonParser p, int index) throws IOException {
    expect(
        p,
        p.currentToken(),
        JsonToken.START_OBJECT,
        "inputs[" + index + "].parameters must be an object");
    long size = -1;
    while (p.nextToken() == JsonToken.FIELD_NAME) {
      String field = p.currentName();
      JsonToken v = p.nextToken();
      if (field.equals("binary_data_size")) {
        if (v != JsonToken.VALUE_NUMBER_INT || p.getLongValue() < 0) {
          throw new InvalidInputException(
              "inputs[" + index + "].parameters.binary_data_size must be a whole number >= 0");
        }
        size = p.getLongValue();
      } else {
        p.skipChildren();
      }
    }
    return size;
  }

  private static long[] readShape(JsonParser p, int index) throws IOException {
    if (p.currentToken() != JsonToken.START_ARRAY) {
      throw new InvalidInputException(
          "inputs[" + index + "].shape must be an array of whole numbers");
    }
    List<Long> dims = new ArrayList<>();
    while (p.nextToken() != JsonToken.END_ARRAY) {
      if (p.currentToken() != JsonToken.VALUE_NUMBER_INT || p.getLongValue() < 0) {
        throw new InvalidInputException(
            "inputs[" + index + "].shape must hold whole numbers >= 0, got " + p.getText());
      }
      dims.add(p.getLongValue());
    }
    return dims.stream().mapToLong(Long::longValue).toArray();
  }

  private static void readOutputs(
      JsonParser p, List<String> outputs, Set<String> binary, Set<String> text) throws IOException {
    expect(
        p,
        p.currentToken(),
        JsonToken.START_ARRAY,
        "'outputs' must be an array of {\"name\": ...}");
    while (p.nextToken() != JsonToken.END_ARRAY) {
      expect(
          p, p.currentToken(), JsonToken.START_OBJECT, "each entry of 'outputs' must be an object");
      String name = null;
      Boolean asBinary = null;
      while (p.nextToken() == JsonToken.FIELD_NAME) {
        String field = p.currentName();
        JsonToken v = p.nextToken();
        if (field.equals("name") && v == JsonToken.VALUE_STRING) {
          name = p.getText();
        } else if (field.equals("parameters")) {
          asBinary = readFlag(p, "binary_data", "outputs[].parameters");
        } else {
          p.skipChildren();
        }
      }
      if (name == null) {
        throw new InvalidInputException("each entry of 'outputs' needs a string 'name'");
      }
      outputs.add(name);
      if (asBinary != null) {
        (asBinary ? binary : text).add(name);
      }
    }
  }

  /** Whether anything but white space follows the JSON object (binary data included). */
  private static boolean hasMore(JsonParser p) throws IOException {
    try {
      return p.nextToken() != null;
    } catch (StreamReadException e) {
      return true; // bytes that are not JSON at all
    }
  }

  private static void expect(JsonParser p, JsonToken actual, JsonToken expected, String message) {
    if (actual == null) {
      throw new InvalidInputException(
          "malformed JSON: the body ends before the JSON is complete (" + message + ")");
    }
    if (actual != expected) {
      throw new InvalidInputException(message);
    }
  }

  /** An encoded response: the body, and the length of its JSON part when binary data follows. */
  record Encoded(byte[] body, int headerLength) {
    boolean binary() {
      return headerLength >= 0;
    }
  }

  /** Encodes an inference response as JSON. */
  static byte[] writeResponse(InferenceResponse response) {
    return writeResponse(response, null).body();
  }

  /**
   * Encodes an inference response; outputs the request asked for in binary follow the JSON header
   * as raw bytes, with their size in {@code parameters.binary_data_size}.
   */
  static Encoded writeResponse(InferenceResponse response, Decoded request) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(256);
    List<byte[]> binary = new ArrayList<>();
    try (JsonGenerator g = JSON.createGenerator(out)) {
      g.writeStartObject();
      g.writeStringField("model_name", response.model());
      g.writeStringField("model_version", response.version());
      if (response.id() != null) {
        g.writeStringField("id", response.id());
      }
      g.writeArrayFieldStart("outputs");
      for (Tensor t : response.outputs()) {
        g.writeStartObject();
        g.writeStringField("name", t.name());
        g.writeStringField("datatype", t.datatype().name());
        writeShape(g, t.shape());
        if (request != null && request.binary(t.name())) {
          byte[] raw = BinaryTensors.write(t);
          binary.add(raw);
          g.writeObjectFieldStart("parameters");
          g.writeNumberField("binary_data_size", raw.length);
          g.writeEndObject();
        } else {
          g.writeFieldName("data");
          writeData(g, t);
        }
        g.writeEndObject();
      }
      g.writeEndArray();
      g.writeEndObject();
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
    if (request == null || !request.anyBinary()) {
      return new Encoded(out.toByteArray(), -1);
    }
    int headerLength = out.size();
    binary.forEach(out::writeBytes);
    return new Encoded(out.toByteArray(), headerLength);
  }

  static void writeShape(JsonGenerator g, long[] shape) throws IOException {
    g.writeFieldName("shape");
    g.writeArray(shape, 0, shape.length);
  }

  /** Writes a tensor's elements as one flat JSON array. */
  static void writeData(JsonGenerator g, Tensor t) throws IOException {
    DataType type = t.datatype();
    if (type == DataType.FP32 || type == DataType.FP64 || type == DataType.FP16) {
      writeFloats(g, t);
      return;
    }
    g.writeStartArray();
    if (t.datatype() == DataType.BYTES) {
      for (byte[] b : t.elements()) {
        g.writeString(new String(b, java.nio.charset.StandardCharsets.UTF_8));
      }
      g.writeEndArray();
      return;
    }
    ByteBuffer d = t.data();
    int n = (int) t.elementCount();
    for (int i = 0; i < n; i++) {
      writeElement(g, t.datatype(), d);
    }
    g.writeEndArray();
  }

  /** Writes the element at the buffer's position and advances it. */
  static void writeElement(JsonGenerator g, DataType type, ByteBuffer d) throws IOException {
    switch (type) {
      case BOOL -> g.writeBoolean(d.get() != 0);
      case UINT8 -> g.writeNumber(Byte.toUnsignedInt(d.get()));
      case INT8 -> g.writeNumber(d.get());
      case UINT16 -> g.writeNumber(Short.toUnsignedInt(d.getShort()));
      case INT16 -> g.writeNumber(d.getShort());
      case UINT32 -> g.writeNumber(Integer.toUnsignedLong(d.getInt()));
      case INT32 -> g.writeNumber(d.getInt());
      case UINT64 -> {
        long v = d.getLong();
        if (v >= 0) {
          g.writeNumber(v);
        } else {
          g.writeNumber(new BigInteger(Long.toUnsignedString(v)));
        }
      }
      case INT64 -> g.writeNumber(d.getLong());
      case FP16 -> writeFloat(g, Float.float16ToFloat(d.getShort()));
      case FP32 -> writeFloat(g, d.getFloat());
      case FP64 -> {
        double v = d.getDouble();
        if (Double.isFinite(v)) {
          g.writeNumber(v);
        } else {
          g.writeString(Double.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
        }
      }
      default -> throw new IllegalStateException(type.name());
    }
  }

  /**
   * Floating-point elements as one JSON array, formatted straight into one buffer: each the
   * shortest decimal that reads back as the same value ({@link Float#toString}'s, which is what
   * Jackson writes too), with no String made per element. Writing floats one by one through the
   * generator was the largest share of the REST path's own CPU time for an embedding model's
   * answer.
   */
  private static void writeFloats(JsonGenerator g, Tensor t) throws IOException {
    ByteBuffer d = t.data();
    int n = (int) t.elementCount();
    StringBuilder text = new StringBuilder(2 + n * 12);
    text.append('[');
    for (int i = 0; i < n; i++) {
      if (i > 0) {
        text.append(',');
      }
      switch (t.datatype()) {
        case FP32 -> appendFloat(text, d.getFloat());
        case FP16 -> appendFloat(text, Float.float16ToFloat(d.getShort()));
        default -> {
          double v = d.getDouble();
          if (Double.isFinite(v)) {
            text.append(v);
          } else {
            text.append(Double.isNaN(v) ? "\"NaN\"" : v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
          }
        }
      }
    }
    text.append(']');
    g.writeRawValue(text.toString());
  }

  private static void appendFloat(StringBuilder text, float v) {
    if (Float.isFinite(v)) {
      text.append(v);
    } else {
      text.append(Float.isNaN(v) ? "\"NaN\"" : v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    }
  }

  private static void writeFloat(JsonGenerator g, float v) throws IOException {
    if (Float.isFinite(v)) {
      g.writeNumber(v);
    } else {
      g.writeString(Float.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
    }
  }

  /** Encodes model metadata. */
  static byte[] writeMetadata(ModelMetadata m) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(256);
    try (JsonGenerator g = JSON.createGenerator(out)) {
      g.writeStartObject();
      g.writeStringField("name", m.name());
      g.writeArrayFieldStart("versions");
      for (String v : m.versions()) {
        g.writeString(v);
      }
      g.writeEndArray();
      g.writeStringField("platform", m.platform());
      writeSpecs(g, "inputs", m.inputs());
      writeSpecs(g, "outputs", m.outputs());
      if (!m.labels().isEmpty()) {
        // a classifier's class names, by score index (model.yaml's labels)
        g.writeObjectFieldStart("parameters");
        g.writeArrayFieldStart("labels");
        for (String label : m.labels()) {
          g.writeString(label);
        }
        g.writeEndArray();
        g.writeEndObject();
      }
      g.writeEndObject();
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
    return out.toByteArray();
  }

  private static void writeSpecs(JsonGenerator g, String field, List<TensorSpec> specs)
      throws IOException {
    g.writeArrayFieldStart(field);
    for (TensorSpec s : specs) {
      g.writeStartObject();
      g.writeStringField("name", s.name());
      g.writeStringField("datatype", s.datatype().name());
      writeShape(g, s.shape());
      g.writeEndObject();
    }
    g.writeEndArray();
  }
}
