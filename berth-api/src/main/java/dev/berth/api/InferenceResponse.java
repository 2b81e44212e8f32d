package dev.berth.api;

import java.util.List;

/**
 * The answer to an {@link InferenceRequest}.
 *
 * @param id the request's id, or null
 * @param model model name
 * @param version the version that answered
 * @param outputs output tensors, in the order asked for (or the model's order)
 */
public record InferenceResponse(String id, String model, String version, List<Tensor> outputs) {

  public InferenceResponse {
    outputs = List.copyOf(outputs);
  }
}
