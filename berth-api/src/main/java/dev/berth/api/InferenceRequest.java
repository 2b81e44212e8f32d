package dev.berth.api;

import java.util.List;
import java.util.Objects;

/**
 * One inference call, whatever transport it came through.
 *
 * @param id client-chosen request id, echoed in the response; may be null
 * @param model model name
 * @param version model version, or null for the highest ready one
 * @param inputs input tensors
 * @param outputs names of the outputs wanted; empty for all of them
 */
public record InferenceRequest(
    String id, String model, String version, List<Tensor> inputs, List<String> outputs) {

  public InferenceRequest {
    Objects.requireNonNull(model, "model");
    inputs = List.copyOf(inputs);
    outputs = outputs == null ? List.of() : List.copyOf(outputs);
  }
}
