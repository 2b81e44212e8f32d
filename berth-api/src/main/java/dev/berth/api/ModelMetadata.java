package dev.berth.api;

import java.util.List;

/**
 * What a model version tells a client about itself (Open Inference Protocol model metadata).
 *
 * @param name model name
 * @param versions the versions this answer covers
 * @param platform engine platform, e.g. {@code onnxruntime_onnx}
 * @param inputs input tensors it takes
 * @param outputs output tensors it gives
 * @param labels class names of a classifier's scores, in index order (empty for none)
 */
public record ModelMetadata(
    String name,
    List<String> versions,
    String platform,
    List<TensorSpec> inputs,
    List<TensorSpec> outputs,
    List<String> labels) {

  public ModelMetadata {
    versions = List.copyOf(versions);
    inputs = List.copyOf(inputs);
    outputs = List.copyOf(outputs);
    labels = List.copyOf(labels);
  }
}
