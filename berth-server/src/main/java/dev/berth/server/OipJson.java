package dev.berth.server;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
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
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Open Inference Protocol v2 JSON: inference requests in, responses and metadata out. Streams with
 * Jackson's parser and generator, straight into and out of {@link Tensor}'s little-endian layout,
 * with no object tree in between.
 */
final class OipJson {
  static final JsonFactory JSON =
      JsonFactory.builder()
          .streamReadConstraints(
              StreamReadConstraints.builder().maxNestingDepth(64).maxStringLength(64 << 20).build())
          .build();

  /**
   * How Jackson's messages name a position, e.g. {@code [Source: REDACTED (`StreamReadFeature...`
   * disabled); line: 1, column: 12]}: library internals a client cannot act on, bar the position.
   */
  private static final Pattern SOURCE_POSITION =
      Pattern.compile("\\[Source: .*?; line: (\\d+), column: (\\d+)\\]");

  private OipJson() {}

  /** A JSON syntax error for the client: Jackson's description without its internal names. */
  static InvalidInputException malformed(StreamReadException e) {
    String problem =
        SOURCE_POSITION.matcher(e.getOriginalMessage()).replaceAll("line $1, column $2");
    return new InvalidInputException("malformed JSON: " + problem, e);
  }

  /** Decodes an inference request body. */
  static InferenceRequest readRequest(byte[] body, String model, String version) {
    String id = null;
    List<Tensor> inputs = null;
    List<String> outputs = new ArrayList<>();
    try (JsonParser p = JSON.createParser(body)) {
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
          case "inputs" -> inputs = readInputs(p, body.length);
          case "outputs" -> readOutputs(p, outputs);
          default -> p.skipChildren(); // "parameters" and extensions Berth does not use
        }
      }
      if (p.nextToken() != null) {
        throw new InvalidInputException("the request body has content after its JSON object");
      }
    } catch (StreamReadException e) {
      throw malformed(e);
    } catch (IOException e) {
      throw new InvalidInputException("cannot read the request body: " + e.getMessage(), e);
    }
    if (inputs == null) {
      throw new InvalidInputException(
          "the request has no 'inputs'; send {\"inputs\": [{\"name\", \"shape\", \"datatype\", \"data\"}]}");
    }
    return new InferenceRequest(id, model, version, inputs, outputs);
  }

  private static List<Tensor> readInputs(JsonParser p, int bodyLength) throws IOException {
    expect(p, p.currentToken(), JsonToken.START_ARRAY, "'inputs' must be an array of tensors");
    List<Tensor> inputs = new ArrayList<>();
    while (p.nextToken() != JsonToken.END_ARRAY) {
      expect(
          p, p.currentToken(), JsonToken.START_OBJECT, "each entry of 'inputs' must be an object");
      inputs.add(readTensor(p, bodyLength, inputs.size()));
    }
    return inputs;
  }

  private static Tensor readTensor(JsonParser p, int bodyLength, int index) throws IOException {
    String name = null;
    DataType type = null;
    long[] shape = null;
    ElementWriter data = null;
    byte[] deferred = null; // "data" that came before "datatype" or "shape"
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
        default -> p.skipChildren();
      }
    }
    String at = name == null ? "inputs[" + index + "]" : "input '" + name + "'";
    if (name == null) {
      throw new InvalidInputException(at + " has no 'name'");
    }
    if (type == null) {
      throw new InvalidInputException(at + " has no 'datatype' (e.g. \"FP32\")");
    }
    if (shape == null) {
      throw new InvalidInputException(at + " has no 'shape' (e.g. [1, 784])");
    }
    if (data == null && deferred == null) {
      throw new InvalidInputException(at + " has no 'data'");
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

  private static void readOutputs(JsonParser p, List<String> outputs) throws IOException {
    expect(
        p,
        p.currentToken(),
        JsonToken.START_ARRAY,
        "'outputs' must be an array of {\"name\": ...}");
    while (p.nextToken() != JsonToken.END_ARRAY) {
      expect(
          p, p.currentToken(), JsonToken.START_OBJECT, "each entry of 'outputs' must be an object");
      String name = null;
      while (p.nextToken() == JsonToken.FIELD_NAME) {
        String field = p.currentName();
        JsonToken v = p.nextToken();
        if (field.equals("name") && v == JsonToken.VALUE_STRING) {
          name = p.getText();
        } else {
          p.skipChildren();
        }
      }
      if (name == null) {
        throw new InvalidInputException("each entry of 'outputs' needs a string 'name'");
      }
      outputs.add(name);
    }
  }

  private static void expect(JsonParser p, JsonToken actual, JsonToken expected, String message) {
    if (actual != expected) {
      throw new InvalidInputException(message);
    }
  }

  /** Encodes an inference response. */
  static byte[] writeResponse(InferenceResponse response) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(256);
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
        g.writeFieldName("data");
        writeData(g, t);
        g.writeEndObject();
      }
      g.writeEndArray();
      g.writeEndObject();
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
    return out.toByteArray();
  }

  static void writeShape(JsonGenerator g, long[] shape) throws IOException {
    g.writeFieldName("shape");
    g.writeArray(shape, 0, shape.length);
  }

  /** Writes a tensor's elements as one flat JSON array. */
  static void writeData(JsonGenerator g, Tensor t) throws IOException {
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
