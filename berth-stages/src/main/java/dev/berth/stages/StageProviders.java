package dev.berth.stages;

import dev.berth.api.TensorSpec;
import dev.berth.runtime.Postprocessor;
import dev.berth.runtime.Preprocessor;
import dev.berth.runtime.StageProvider;
import java.util.LinkedHashMap;
import java.util.Map;

/** The steps this module brings, one provider each, listed for {@link java.util.ServiceLoader}. */
public final class StageProviders {
  private StageProviders() {}

  /** {@code preprocessing: {type: tokenize}}: text in, token tensors out. */
  public static final class Tokenize implements StageProvider {
    @Override
    public String type() {
      return Tokenization.TYPE;
    }

    @Override
    public Kind kind() {
      return Kind.PRE;
    }

    @Override
    public Preprocessor preprocessor(Context context) {
      Map<String, TensorSpec> inputs = new LinkedHashMap<>();
      context.engine().inputs().forEach(t -> inputs.put(t.name(), t));
      return Tokenization.load(context.section(), context.versionDir(), inputs);
    }
  }

  /** {@code preprocessing: {type: image}}: image files in, pixels out. */
  public static final class Image implements StageProvider {
    @Override
    public String type() {
      return ImagePreprocessing.TYPE;
    }

    @Override
    public Kind kind() {
      return Kind.PRE;
    }

    @Override
    public Preprocessor preprocessor(Context context) {
      Map<String, TensorSpec> inputs = new LinkedHashMap<>();
      context.engine().inputs().forEach(t -> inputs.put(t.name(), t));
      return ImagePreprocessing.load(context.section(), inputs);
    }
  }

  /** {@code postprocessing: {type: mean-pool}}: token vectors in, a sentence embedding out. */
  public static final class MeanPool implements StageProvider {
    @Override
    public String type() {
      return MeanPooling.TYPE;
    }

    @Override
    public Kind kind() {
      return Kind.POST;
    }

    @Override
    public Postprocessor postprocessor(Context context) {
      return MeanPooling.load(context.section(), context.engine());
    }
  }
}
