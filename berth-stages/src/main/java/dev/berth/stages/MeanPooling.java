package dev.berth.stages;

import dev.berth.api.DataType;
import dev.berth.api.Tensor;
import dev.berth.api.TensorSpec;
import dev.berth.runtime.ConfigReader;
import dev.berth.runtime.ModelSignature;
import dev.berth.runtime.Postprocessor;
import java.nio.FloatBuffer;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The {@code postprocessing: {type: mean-pool}} step of model.yaml: a token-level output [b, s, h]
 * is averaged over the tokens the attention mask marks, then (by default) scaled to unit L2 length,
 * giving one sentence embedding [b, h] per row.
 */
final class MeanPooling implements Postprocessor {
  static final String TYPE = "mean-pool";

  static final String DEFAULT_MASK = "attention_mask";

  private final String source;
  private final String output;
  private final String mask; // null: every token counts
  private final boolean normalize;
  private final long hidden;

  private MeanPooling(String source, String output, String mask, boolean normalize, long hidden) {
    this.source = source;
    this.output = output;
    this.mask = mask;
    this.normalize = normalize;
    this.hidden = hidden;
  }

  static MeanPooling load(ConfigReader section, ModelSignature engine) {
    section.allowOnly(Set.of("type", "source", "output", "normalize", "attention-mask"));
    String source = section.string("source", "last_hidden_state");
    TensorSpec spec =
        engine
            .output(source)
            .orElseThrow(
                () ->
                    section.error(
                        "source",
                        "the model has no output '"
                            + source
                            + "'; its outputs are "
                            + engine.outputNames()));
    if (spec.datatype() != DataType.FP32 || spec.shape().length != 3) {
      throw section.error(
          "source",
          "'" + source + "' is " + spec + "; mean-pool needs FP32 [batch, tokens, hidden]");
    }
    String mask = section.string("attention-mask", DEFAULT_MASK);
    if (engine.input(mask).isEmpty()) {
      if (section.has("attention-mask")) {
        throw section.error(
            "attention-mask",
            "the model has no input '" + mask + "'; its inputs are " + engine.inputNames());
      }
      mask = null;
    } else {
      DataType type = engine.input(mask).get().datatype();
      if (type != DataType.INT64 && type != DataType.INT32) {
        throw section.error(
            "attention-mask",
            "the model's input '" + mask + "' is " + type + ", not INT64 or INT32");
      }
    }
    return new MeanPooling(
        source,
        section.string("output", "embedding"),
        mask,
        section.bool("normalize", true),
        spec.shape()[2]);
  }

  /** Any thread: pooling keeps no state between calls. */
  @Override
  public boolean runsOnAnyThread() {
    return true;
  }

  @Override
  public List<TensorSpec> outputs() {
    return List.of(new TensorSpec(output, DataType.FP32, new long[] {-1, hidden}));
  }

  @Override
  public Set<String> sources() {
    return Set.of(source);
  }

  @Override
  public Map<String, Tensor> apply(
      Map<String, Tensor> engineOutputs, Map<String, Tensor> engineInputs) {
    return Map.of(
        output, pool(engineOutputs.get(source), mask == null ? null : engineInputs.get(mask)));
  }

  /** The graph output pooled. */
  String source() {
    return source;
  }

  /** Name of the pooled output clients see. */
  String output() {
    return output;
  }

  /**
   * Whether a token is padding, read from the mask as it is (INT64 or INT32, as the model takes).
   */
  private static java.util.function.IntPredicate padding(Tensor mask) {
    if (mask.datatype() == DataType.INT64) {
      java.nio.LongBuffer longs = mask.data().asLongBuffer();
      return i -> longs.get(i) == 0;
    }
    if (mask.datatype() != DataType.INT32) {
      throw new IllegalStateException("the attention mask is " + mask + ", not INT64 or INT32");
    }
    java.nio.IntBuffer ints = mask.data().asIntBuffer();
    return i -> ints.get(i) == 0;
  }

  /**
   * Pools one batch.
   *
   * @param hidden FP32 [b, s, h]
   * @param mask INT64 or INT32 [b, s], or null to average every token
   */
  Tensor pool(Tensor hidden, Tensor mask) {
    if (hidden.datatype() != DataType.FP32 || hidden.rank() != 3) {
      throw new IllegalStateException("mean-pool needs an FP32 [b, s, h] output, got " + hidden);
    }
    int b = (int) hidden.dim(0);
    int s = (int) hidden.dim(1);
    int h = (int) hidden.dim(2);
    FloatBuffer in = hidden.data().asFloatBuffer();
    java.util.function.IntPredicate padding = mask == null ? null : padding(mask);
    float[] out = new float[b * h];
    double[] sum = new double[h];
    for (int r = 0; r < b; r++) {
      java.util.Arrays.fill(sum, 0);
      long count = 0;
      for (int t = 0; t < s; t++) {
        if (padding != null && padding.test(r * s + t)) {
          continue;
        }
        count++;
        int base = (r * s + t) * h;
        for (int k = 0; k < h; k++) {
          sum[k] += in.get(base + k);
        }
      }
      double scale = 1.0 / Math.max(count, 1);
      double norm = 0;
      for (int k = 0; k < h; k++) {
        sum[k] *= scale;
        norm += sum[k] * sum[k];
      }
      double divisor = normalize ? Math.max(Math.sqrt(norm), 1e-12) : 1.0;
      for (int k = 0; k < h; k++) {
        out[r * h + k] = (float) (sum[k] / divisor);
      }
    }
    return Tensor.ofFloats(output, new long[] {b, h}, out);
  }
}
