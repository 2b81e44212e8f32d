package dev.berth.server;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.exc.StreamReadException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.berth.api.DataType;
import dev.berth.api.InferenceRequest;
import dev.berth.api.InferenceResponse;
import dev.berth.api.InvalidInputException;
import dev.berth.api.Tensor;
import dev.berth.api.TensorSpec;
import dev.berth.runtime.ModelSignature;
import dev.berth.runtime.ModelStatus;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * TensorFlow Serving's REST predict API: {@code instances} (row format) or {@code inputs} (columnar
 * format) in, {@code predictions} or {@code outputs} out. TF-Serving JSON carries no datatypes, so
 * values are read by the model's signature.
 */
final class TfServingJson {
  private static final ObjectMapper MAPPER = new ObjectMapper(OipJson.JSON);

  private TfServingJson() {}

  /** A decoded predict call and the format its answer must take. */
  record Predict(InferenceRequest request, boolean rowFormat) {}

  static Predict readPredict(byte[] body, String model, String version, ModelSignature signature) {
    JsonNode root;
    try {
      root = MAPPER.readTree(body);
    } catch (StreamReadException e) {
      throw OipJson.malformed(e);
    } catch (com.fasterxml.jackson.core.exc.StreamConstraintsException e) {
      throw OipJson.tooComplex(e);
    } catch (IOException e) {
      throw new InvalidInputException("cannot read the request body: " + e.getMessage(), e);
    }
    if (root == null || !root.isObject()) {
      throw new InvalidInputException(
          "the request body must be a JSON object with 'instances' or 'inputs'");
    }
    boolean hasInstances = root.has("instances");
    boolean hasInputs = root.has("inputs");
    if (hasInstances == hasInputs) {
      throw new InvalidInputException(
          "send exactly one of 'instances' (row format) or 'inputs' (columnar format)");
    }
    List<Tensor> tensors = new ArrayList<>();
    if (hasInstances) {
      JsonNode instances = root.get("instances");
      if (!instances.isArray() || instances.isEmpty()) {
        throw new InvalidInputException("'instances' must be a non-empty list, one entry per row");
      }
      if (isNamedRow(instances.get(0), signature)) {
        Map<String, List<JsonNode>> columns = new LinkedHashMap<>();
        for (JsonNode row : instances) {
          if (!row.isObject()) {
            throw new InvalidInputException(
                "every entry of 'instances' must be an object like the first");
          }
          for (Map.Entry<String, JsonNode> e : row.properties()) {
            columns.computeIfAbsent(e.getKey(), k -> new ArrayList<>()).add(e.getValue());
          }
        }
        for (Map.Entry<String, List<JsonNode>> c : columns.entrySet()) {
          if (c.getValue().size() != instances.size()) {
            throw new InvalidInputException(
                "input '" + c.getKey() + "' is missing from some instances; give it in every row");
          }
          tensors.add(rows(spec(signature, c.getKey()), c.getValue()));
        }
      } else {
        refuseUnknownNames(instances.get(0), signature);
        List<JsonNode> rows = new ArrayList<>();
        instances.forEach(rows::add);
        tensors.add(rows(primary(signature), rows));
      }
    } else {
      JsonNode inputs = root.get("inputs");
      if (inputs.isObject() && isNamedRow(inputs, signature)) {
        for (Map.Entry<String, JsonNode> e : inputs.properties()) {
          tensors.add(column(spec(signature, e.getKey()), e.getValue()));
        }
      } else {
        refuseUnknownNames(inputs, signature);
        tensors.add(column(primary(signature), inputs));
      }
    }
    return new Predict(
        new InferenceRequest(null, model, version, tensors, List.of()), hasInstances);
  }

  private static boolean isNamedRow(JsonNode node, ModelSignature signature) {
    if (!node.isObject() || node.isEmpty() || isBase64(node)) {
      return false;
    }
    for (Map.Entry<String, JsonNode> e : node.properties()) {
      if (signature.input(e.getKey()).isEmpty()) {
        return false;
      }
    }
    return true;
  }

  /** An object of named inputs that names one the model does not take. */
  private static void refuseUnknownNames(JsonNode node, ModelSignature signature) {
    if (!node.isObject() || isBase64(node)) {
      return;
    }
    for (Map.Entry<String, JsonNode> e : node.properties()) {
      spec(signature, e.getKey());
    }
  }

  private static TensorSpec spec(ModelSignature signature, String name) {
    return signature
        .input(name)
        .orElseThrow(
            () ->
                new InvalidInputException(
                    "the model has no input '" + name + "'; it takes " + signature.inputNames()));
  }

  private static TensorSpec primary(ModelSignature signature) {
    return signature.inputs().get(0);
  }

  /** One value per row: the tensor is [rows, ...shape of one value]. */
  private static Tensor rows(TensorSpec spec, List<JsonNode> rows) {
    long[] rowShape = shapeOf(rows.get(0), spec.name());
    long[] shape = new long[rowShape.length + 1];
    shape[0] = rows.size();
    System.arraycopy(rowShape, 0, shape, 1, rowShape.length);
    ElementWriter writer =
        new ElementWriter(spec.name(), spec.datatype(), Tensor.elementCount(shape));
    for (JsonNode row : rows) {
      if (!java.util.Arrays.equals(shapeOf(row, spec.name()), rowShape)) {
        throw new InvalidInputException(
            "instances of input '"
                + spec.name()
                + "' differ in shape; every row must have shape "
                + java.util.Arrays.toString(rowShape));
      }
      feed(writer, row);
    }
    return writer.toTensor(shape);
  }

  /** A whole tensor given as nested lists. */
  private static Tensor column(TensorSpec spec, JsonNode value) {
    long[] shape = shapeOf(value, spec.name());
    ElementWriter writer =
        new ElementWriter(spec.name(), spec.datatype(), Tensor.elementCount(shape));
    feed(writer, value);
    return writer.toTensor(shape);
  }

  private static void feed(ElementWriter writer, JsonNode value) {
    try (JsonParser p = value.traverse(MAPPER)) {
      p.nextToken();
      writer.read(p);
    } catch (IOException e) {
      throw new InvalidInputException("cannot read values: " + e.getMessage(), e);
    }
  }

  /** The shape of nested lists, which must be rectangular. */
  private static long[] shapeOf(JsonNode node, String name) {
    List<Long> dims = new ArrayList<>();
    JsonNode n = node;
    while (n.isArray()) {
      dims.add((long) n.size());
      if (n.isEmpty()) {
        break;
      }
      n = n.get(0);
    }
    long[] shape = dims.stream().mapToLong(Long::longValue).toArray();
    checkRectangular(node, shape, 0, name);
    return shape;
  }

  /**
   * TensorFlow Serving's binary value, {@code {"b64": "..."}}: one element, not a nesting level.
   */
  private static boolean isBase64(JsonNode node) {
    return node.isObject() && node.size() == 1 && node.has("b64");
  }

  private static void checkRectangular(JsonNode node, long[] shape, int depth, String name) {
    if (depth == shape.length) {
      if (node.isArray() || (node.isObject() && !isBase64(node))) {
        throw new InvalidInputException("values of input '" + name + "' are nested unevenly");
      }
      return;
    }
    if (!node.isArray() || node.size() != shape[depth]) {
      throw new InvalidInputException(
          "values of input '"
              + name
              + "' are not rectangular: lists at depth "
              + depth
              + " differ in length");
    }
    for (JsonNode child : node) {
      checkRectangular(child, shape, depth + 1, name);
    }
  }

  /** Encodes the answer in the format of the request. */
  static byte[] writePredict(InferenceResponse response, boolean rowFormat) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(256);
    List<Tensor> outputs = response.outputs();
    try (JsonGenerator g = OipJson.JSON.createGenerator(out)) {
      g.writeStartObject();
      if (rowFormat) {
        g.writeArrayFieldStart("predictions");
        long rows = outputs.get(0).rank() == 0 ? 1 : outputs.get(0).dim(0);
        for (int r = 0; r < rows; r++) {
          if (outputs.size() == 1) {
            writeRow(g, outputs.get(0), r);
          } else {
            g.writeStartObject();
            for (Tensor t : outputs) {
              g.writeFieldName(t.name());
              writeRow(g, t, r);
            }
            g.writeEndObject();
          }
        }
        g.writeEndArray();
      } else {
        g.writeFieldName("outputs");
        if (outputs.size() == 1) {
          writeNested(g, outputs.get(0), 0, cursor(outputs.get(0)));
        } else {
          g.writeStartObject();
          for (Tensor t : outputs) {
            g.writeFieldName(t.name());
            writeNested(g, t, 0, cursor(t));
          }
          g.writeEndObject();
        }
      }
      g.writeEndObject();
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
    return out.toByteArray();
  }

  private record Cursor(ByteBuffer data, Iterator<byte[]> strings) {}

  private static Cursor cursor(Tensor t) {
    return new Cursor(t.data(), t.elements() == null ? null : t.elements().iterator());
  }

  private static void writeRow(JsonGenerator g, Tensor t, int row) throws IOException {
    long rowElements = t.dim(0) == 0 ? 0 : t.elementCount() / t.dim(0);
    Cursor c;
    if (t.datatype() == DataType.BYTES) {
      c =
          new Cursor(
              null,
              t.elements()
                  .subList((int) (row * rowElements), (int) ((row + 1) * rowElements))
                  .iterator());
    } else {
      ByteBuffer d = t.data();
      d.position(Math.toIntExact(row * rowElements * t.datatype().byteSize()));
      c = new Cursor(d, null);
    }
    writeNested(g, t, 1, c);
  }

  private static void writeNested(JsonGenerator g, Tensor t, int depth, Cursor c)
      throws IOException {
    if (depth == t.rank()) {
      if (t.datatype() == DataType.BYTES) {
        g.writeString(new String(c.strings().next(), java.nio.charset.StandardCharsets.UTF_8));
      } else {
        OipJson.writeElement(g, t.datatype(), c.data());
      }
      return;
    }
    g.writeStartArray();
    for (long i = 0; i < t.dim(depth); i++) {
      writeNested(g, t, depth + 1, c);
    }
    g.writeEndArray();
  }

  /** TF-Serving's model status answer. */
  static byte[] writeStatus(List<ModelStatus> statuses) {
    ObjectNode root = MAPPER.createObjectNode();
    var list = root.putArray("model_version_status");
    for (ModelStatus s : statuses) {
      ObjectNode entry = list.addObject();
      entry.put("version", s.version());
      entry.put(
          "state",
          switch (s.state()) {
            case READY -> "AVAILABLE";
            case LOADING -> "LOADING";
            case UNLOADED -> "END";
            case UNAVAILABLE -> "END";
          });
      ObjectNode status = entry.putObject("status");
      status.put("error_code", s.reason().isEmpty() ? "OK" : "UNKNOWN");
      status.put("error_message", s.reason());
    }
    try {
      return MAPPER.writeValueAsBytes(root);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }
}
