package dev.berth.client.eval;

import com.fasterxml.jackson.databind.JsonNode;
import dev.berth.api.BerthException;
import dev.berth.api.DataType;
import dev.berth.api.InvalidInputException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * One output tensor of an inference answer, as numbers or (BYTES) strings, with the batch's rows
 * along its first dimension.
 *
 * @param name output name
 * @param datatype its datatype
 * @param shape its shape
 * @param numbers its values, row-major, when numeric
 * @param strings its values when BYTES
 */
record ModelOutput(
    String name, DataType datatype, long[] shape, double[] numbers, List<String> strings) {

  /** Values per row: the output's elements over the batch's rows. */
  int width(int rows) {
    int n = datatype == DataType.BYTES ? strings.size() : numbers.length;
    if (rows == 0 || n % rows != 0 || n == 0) {
      throw new BerthException(
          "output '"
              + name
              + "' of shape "
              + Arrays.toString(shape)
              + " holds "
              + n
              + " values for "
              + rows
              + " rows; the evaluator needs the same number of values for every row");
    }
    return n / rows;
  }

  boolean isFloat() {
    return datatype == DataType.FP16 || datatype == DataType.FP32 || datatype == DataType.FP64;
  }

  /** Reads output {@code output} from an OIP v2 inference answer. */
  static ModelOutput parse(JsonNode answer, String output) {
    JsonNode outputs = answer.path("outputs");
    for (JsonNode o : outputs) {
      if (!o.path("name").asText().equals(output)) {
        continue;
      }
      DataType type;
      try {
        type = DataType.fromName(o.path("datatype").asText());
      } catch (InvalidInputException e) {
        throw new BerthException(
            "output '" + output + "' has an unknown datatype '" + o.path("datatype") + "'", e);
      }
      long[] shape = new long[o.path("shape").size()];
      for (int i = 0; i < shape.length; i++) {
        shape[i] = o.path("shape").get(i).asLong();
      }
      List<JsonNode> values = new ArrayList<>();
      flatten(o.path("data"), values);
      if (type == DataType.BYTES) {
        return new ModelOutput(
            output, type, shape, new double[0], values.stream().map(JsonNode::asText).toList());
      }
      double[] numbers = new double[values.size()];
      for (int i = 0; i < numbers.length; i++) {
        JsonNode v = values.get(i);
        numbers[i] =
            v.isBoolean() ? (v.booleanValue() ? 1 : 0) : v.isTextual() ? text(v) : v.asDouble();
      }
      return new ModelOutput(output, type, shape, numbers, List.of());
    }
    throw new BerthException(
        "the answer has no output '"
            + output
            + "' (it has: "
            + ModelSignature.abbreviate(outputs.findValuesAsText("name").toString())
            + ")");
  }

  private static double text(JsonNode v) {
    return switch (v.asText()) {
      case "NaN" -> Double.NaN;
      case "Infinity" -> Double.POSITIVE_INFINITY;
      case "-Infinity" -> Double.NEGATIVE_INFINITY;
      default -> throw new BerthException("output value " + v + " is not a number");
    };
  }

  private static void flatten(JsonNode node, List<JsonNode> out) {
    if (node.isArray()) {
      for (JsonNode v : node) {
        flatten(v, out);
      }
    } else if (!node.isMissingNode()) {
      out.add(node);
    }
  }
}
