package dev.berth.runtime;

import dev.berth.api.TensorSpec;
import java.util.List;
import java.util.Optional;

/**
 * The tensors a loaded model takes and gives.
 *
 * @param platform engine platform name reported in metadata, e.g. {@code onnxruntime_onnx}
 * @param inputs every input a client may send; the first is the primary input (the one a TF-Serving
 *     {@code instances} list feeds)
 * @param outputs every output a client may ask for
 * @param batchable whether the first dimension of every tensor is the batch dimension, so requests
 *     may be combined
 */
public record ModelSignature(
    String platform, List<TensorSpec> inputs, List<TensorSpec> outputs, boolean batchable) {

  public ModelSignature {
    inputs = List.copyOf(inputs);
    outputs = List.copyOf(outputs);
  }

  public Optional<TensorSpec> input(String name) {
    return inputs.stream().filter(t -> t.name().equals(name)).findFirst();
  }

  public Optional<TensorSpec> output(String name) {
    return outputs.stream().filter(t -> t.name().equals(name)).findFirst();
  }

  /** Input names, for messages. */
  public List<String> inputNames() {
    return inputs.stream().map(TensorSpec::name).toList();
  }

  /** Output names, for messages. */
  public List<String> outputNames() {
    return outputs.stream().map(TensorSpec::name).toList();
  }
}
