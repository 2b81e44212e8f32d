package dev.berth.runtime;

import dev.berth.api.TensorSpec;
import java.time.Duration;
import java.util.List;

/**
 * How a model version is served, as Triton's model configuration extension describes a model.
 *
 * @param platform the engine's platform name (Triton's where one exists: onnxruntime_onnx,
 *     pytorch_libtorch, tensorflow_savedmodel)
 * @param maxBatchSize the most rows one engine call takes when requests are batched along their
 *     first dimension; 0 when they are not (the tensors have no batch dimension)
 * @param inputs the inputs with their whole shapes, the batch dimension included
 * @param outputs the outputs, likewise
 * @param maxQueueDelay how long a batch waits to fill; null when requests are not batched
 * @param instances engine workers running batches side by side
 */
public record ModelConfiguration(
    String name,
    String version,
    String platform,
    int maxBatchSize,
    List<TensorSpec> inputs,
    List<TensorSpec> outputs,
    Duration maxQueueDelay,
    int instances) {
  public ModelConfiguration {
    inputs = List.copyOf(inputs);
    outputs = List.copyOf(outputs);
  }

  /**
   * The backend Triton would name for this platform (onnxruntime, pytorch, tensorflow), else the
   * platform itself.
   */
  public String backend() {
    return switch (platform) {
      case "onnxruntime_onnx" -> "onnxruntime";
      case "pytorch_libtorch" -> "pytorch";
      case "tensorflow_savedmodel", "tensorflow_graphdef" -> "tensorflow";
      default -> platform;
    };
  }
}
