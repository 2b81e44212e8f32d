package dev.berth.runtime;

import dev.berth.api.TensorSpec;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * model.yaml's {@code inputs} and {@code outputs} against what a model file says of itself: a
 * declaration may narrow a dimension the file leaves open and pick some outputs, never contradict
 * the file. Engines whose files carry a signature (ONNX, SavedModel) use it; those whose files
 * carry none (TorchScript) take the declarations as they are.
 */
public final class DeclaredTensors {
  private DeclaredTensors() {}

  /**
   * The tensors a model serves: model.yaml's declarations under {@code key} after a check that they
   * agree with the file, or the file's own when model.yaml declares none.
   *
   * @param config the model.yaml
   * @param key {@code inputs} or {@code outputs}
   * @param fromFile what the model file declares, by name
   * @param fileKind what to call the file in messages, e.g. "the graph", "the signature"
   * @throws dev.berth.api.ConfigException naming the entry and what the file says
   */
  public static Map<String, TensorSpec> reconcile(
      ModelConfig config, String key, Map<String, TensorSpec> fromFile, String fileKind) {
    List<TensorSpec> declared = key.equals("inputs") ? config.inputs() : config.outputs();
    if (declared.isEmpty()) {
      return fromFile;
    }
    String singular = key.substring(0, key.length() - 1);
    Map<String, TensorSpec> out = new LinkedHashMap<>();
    for (int i = 0; i < declared.size(); i++) {
      TensorSpec d = declared.get(i);
      TensorSpec g = fromFile.get(d.name());
      String at = key + "[" + i + "]";
      if (g == null) {
        throw config.error(
            at + ".name",
            fileKind + " has no " + singular + " '" + d.name() + "'; it has " + fromFile.keySet());
      }
      if (g.datatype() != d.datatype()) {
        throw config.error(
            at + ".datatype", fileKind + " says " + g.datatype() + ", not " + d.datatype());
      }
      if (g.shape().length != d.shape().length) {
        throw config.error(
            at + ".shape",
            fileKind + "'s shape is " + Arrays.toString(g.shape()) + ", of another rank");
      }
      for (int k = 0; k < g.shape().length; k++) {
        long fixed = g.shape()[k];
        if (fixed >= 0 && d.shape()[k] != fixed) {
          throw config.error(
              at + ".shape",
              "dimension "
                  + k
                  + " is "
                  + d.shape()[k]
                  + " but "
                  + fileKind
                  + "'s shape is "
                  + Arrays.toString(g.shape())
                  + "; a dimension "
                  + fileKind
                  + " fixes must be declared"
                  + " with that size (-1 may be narrowed to a size, not the other way round)");
        }
      }
      out.put(d.name(), d);
    }
    if (key.equals("inputs") && !out.keySet().containsAll(fromFile.keySet())) {
      Set<String> missing = new LinkedHashSet<>(fromFile.keySet());
      missing.removeAll(out.keySet());
      throw config.error(key, "declares some inputs but not " + missing + "; declare all or none");
    }
    return out;
  }

  /**
   * Whether requests to a model with these inputs and outputs can be joined: every tensor's first
   * dimension is open (-1), the batch dimension.
   */
  public static boolean batchable(
      java.util.Collection<TensorSpec> inputs, java.util.Collection<TensorSpec> outputs) {
    return inputs.stream().allMatch(t -> t.shape().length > 0 && t.shape()[0] == -1)
        && outputs.stream().allMatch(t -> t.shape().length > 0 && t.shape()[0] == -1);
  }
}
