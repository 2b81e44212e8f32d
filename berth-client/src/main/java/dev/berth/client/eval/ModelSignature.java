package dev.berth.client.eval;

import com.fasterxml.jackson.databind.JsonNode;
import dev.berth.api.BerthException;
import dev.berth.api.DataType;
import dev.berth.api.InvalidInputException;
import dev.berth.api.TensorSpec;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * A served model's metadata as {@code GET /v2/models/{m}} answers it: its inputs and outputs, and
 * the class names when the server sends them as {@code "parameters": {"labels": [...]}}.
 *
 * @param name the model's name
 * @param versions its ready versions
 * @param inputs what it takes
 * @param outputs what it gives
 * @param labels class names in class-index order; empty when the server sends none
 */
public record ModelSignature(
    String name,
    List<String> versions,
    List<TensorSpec> inputs,
    List<TensorSpec> outputs,
    List<String> labels) {

  public ModelSignature {
    Objects.requireNonNull(name, "name");
    versions = List.copyOf(versions);
    inputs = List.copyOf(inputs);
    outputs = List.copyOf(outputs);
    labels = List.copyOf(labels);
  }

  /** Reads OIP v2 model metadata. */
  static ModelSignature parse(String model, JsonNode json) {
    if (!json.isObject() || !json.path("inputs").isArray() || !json.path("outputs").isArray()) {
      throw new BerthException(
          "the metadata of model '"
              + model
              + "' is not Open Inference Protocol v2 metadata (no inputs/outputs): "
              + abbreviate(json.toString()));
    }
    List<String> versions = new ArrayList<>();
    json.path("versions").forEach(v -> versions.add(v.asText()));
    List<String> labels = new ArrayList<>();
    JsonNode names = json.path("parameters").path("labels");
    if (names.isArray()) {
      names.forEach(n -> labels.add(n.asText()));
    }
    return new ModelSignature(
        json.path("name").asText(model),
        versions,
        specs(model, json.get("inputs")),
        specs(model, json.get("outputs")),
        labels);
  }

  private static List<TensorSpec> specs(String model, JsonNode array) {
    List<TensorSpec> specs = new ArrayList<>();
    for (JsonNode t : array) {
      long[] shape = new long[t.path("shape").size()];
      for (int i = 0; i < shape.length; i++) {
        shape[i] = t.path("shape").get(i).asLong();
      }
      DataType type;
      try {
        type = DataType.fromName(t.path("datatype").asText());
      } catch (InvalidInputException e) {
        throw new BerthException(
            "model '" + model + "' declares tensor " + t + " with an unknown datatype", e);
      }
      specs.add(new TensorSpec(t.path("name").asText(), type, shape));
    }
    return specs;
  }

  /** The output with this name. */
  TensorSpec output(String output) {
    return outputs.stream()
        .filter(o -> o.name().equals(output))
        .findFirst()
        .orElseThrow(
            () ->
                new BerthException(
                    "model '"
                        + name
                        + "' has no output '"
                        + output
                        + "'; its outputs: "
                        + describe(outputs)));
  }

  /** The input with this name. */
  TensorSpec input(String input) {
    return inputs.stream()
        .filter(o -> o.name().equals(input))
        .findFirst()
        .orElseThrow(
            () ->
                new BerthException(
                    "model '"
                        + name
                        + "' has no input '"
                        + input
                        + "'; its inputs: "
                        + describe(inputs)));
  }

  static String describe(List<TensorSpec> specs) {
    return specs.isEmpty()
        ? "none"
        : String.join(", ", specs.stream().map(TensorSpec::toString).toList());
  }

  static String abbreviate(String s) {
    return s.length() <= 300 ? s : s.substring(0, 300) + "...";
  }
}
