package dev.berth.xgboost;

import dev.berth.api.BerthException;
import dev.berth.api.DataType;
import dev.berth.api.InvalidInputException;
import dev.berth.api.ModelLoadException;
import dev.berth.api.Tensor;
import dev.berth.api.TensorSpec;
import dev.berth.runtime.ConfigReader;
import dev.berth.runtime.DeclaredTensors;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelContext;
import dev.berth.runtime.ModelSignature;
import dev.berth.runtime.TensorEngine;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Pattern;
import ml.dmlc.xgboost4j.java.Booster;
import ml.dmlc.xgboost4j.java.DMatrix;
import ml.dmlc.xgboost4j.java.XGBoost;
import ml.dmlc.xgboost4j.java.XGBoostError;

/**
 * A gradient-boosted tree model run by XGBoost's own library (xgboost4j).
 *
 * <p>It takes one input, FP32 {@code [-1, n_features]} named {@value #DEFAULT_INPUT} (model.yaml
 * may give it another name by declaring one input), where NaN marks a missing value. Its one output
 * follows the model's objective:
 *
 * <ul>
 *   <li>{@code multi:softprob} and {@code multi:softmax}: {@value #PROBABILITIES} FP32 {@code [-1,
 *       n_classes]}, the class probabilities (for {@code multi:softmax} the softmax of its margins,
 *       as Triton's FIL backend gives {@code predict_proba}; the class XGBoost would answer is the
 *       most probable one);
 *   <li>{@code binary:logistic}: {@value #PROBABILITY} FP32 {@code [-1, 1]}, the probability of
 *       class 1;
 *   <li>every other objective (regression, {@code binary:logitraw}, ranking, survival, count):
 *       {@value #VALUE} FP32 {@code [-1, n_targets]}, what XGBoost's {@code predict} gives.
 * </ul>
 *
 * <p>Tree models ({@code gbtree}, {@code dart}) run with XGBoost's in-place prediction ({@code
 * XGBoosterPredictFromDense}), which XGBoost documents as thread-safe and xgboost4j calls without a
 * lock, so the engine's workers share one booster and run side by side. Linear models ({@code
 * gblinear}, deprecated in XGBoost 3) have no in-place prediction: they predict from a DMatrix, one
 * call at a time, as XGBoost promises thread-safe prediction for tree boosters only. {@code
 * options.threads} sets the booster's {@code nthread}; see {@link #defaultThreads} for its default.
 */
final class XgboostEngine implements TensorEngine {
  /** The platform name reported in metadata (Triton's model configuration has no other). */
  static final String PLATFORM = "xgboost";

  static final String DEFAULT_INPUT = "features";
  static final String PROBABILITIES = "probabilities";
  static final String PROBABILITY = "probability";
  static final String VALUE = "value";

  /** Rows XGBoost's CPU predictor gives one thread at a time ({@code kBlockOfRowsSize}). */
  static final int ROWS_PER_THREAD = 64;

  /** Every tree: XGBoost's iteration range [0, 0). */
  private static final int[] ALL_TREES = {0, 0};

  /** XGBoost's "[12:00:00] /path/file.cc:123: " prefix of a message. */
  private static final Pattern LOG_PREFIX = Pattern.compile("^\\[[0-9:]+\\] \\S+:\\d+: ");

  private final String model;
  private final Booster booster;
  private final String input;
  private final long numFeature;
  private final String output;
  private final int width;
  private final Booster.PredictionType predictionType;
  private final boolean softmax; // multi:softmax: probabilities from its margins
  private final boolean inPlace; // false for gblinear: a DMatrix, one call at a time
  private final ModelSignature signature;

  private XgboostEngine(
      String model,
      Booster booster,
      String input,
      long numFeature,
      String output,
      int width,
      Booster.PredictionType predictionType,
      boolean softmax,
      boolean inPlace,
      ModelSignature signature) {
    this.model = model;
    this.booster = booster;
    this.input = input;
    this.numFeature = numFeature;
    this.output = output;
    this.width = width;
    this.predictionType = predictionType;
    this.softmax = softmax;
    this.inPlace = inPlace;
    this.signature = signature;
  }

  static XgboostEngine load(ModelContext context, Path file) {
    ModelConfig config = context.config();
    ConfigReader options = config.options();
    options.allowOnly(Set.of("threads"));
    int threads = options.integer("threads", defaultThreads(config), 1, 1024);
    Booster booster;
    try {
      booster = XGBoost.loadModel(file.toString());
    } catch (XGBoostError e) {
      throw new ModelLoadException(
          "XGBoost cannot load "
              + file
              + ": "
              + brief(e)
              + "; it must be a model saved by XGBoost's save_model as "
              + XgboostEngineProvider.JSON_FILE
              + " (JSON) or "
              + XgboostEngineProvider.UBJ_FILE
              + " (UBJSON), whole and unchanged",
          e);
    } catch (LinkageError e) {
      throw new ModelLoadException(
          "XGBoost's native library cannot be loaded to read "
              + file
              + " ("
              + e
              + "); it needs the system's OpenMP runtime libgomp.so.1 (Debian and Ubuntu:"
              + " apt-get install libgomp1) and a writable java.io.tmpdir to unpack into",
          e);
    }
    try {
      booster.setParam("nthread", threads);
      LearnerParams learner = LearnerParams.read(booster.toByteArray("json"), file);
      long numFeature = booster.getNumFeature();
      if (numFeature < 1 || numFeature > Integer.MAX_VALUE) {
        throw new ModelLoadException(
            file + " says the model takes " + numFeature + " features; train it on some");
      }
      String objective = learner.objective();
      boolean multiClass = objective.equals("multi:softprob") || objective.equals("multi:softmax");
      boolean softmax = objective.equals("multi:softmax");
      Booster.PredictionType type =
          softmax ? Booster.PredictionType.kMargin : Booster.PredictionType.kValue;
      String outputName =
          multiClass ? PROBABILITIES : objective.equals("binary:logistic") ? PROBABILITY : VALUE;
      boolean inPlace = !learner.booster().equals("gblinear");
      float[] missing = new float[(int) numFeature];
      Arrays.fill(missing, Float.NaN);
      int width = predict(booster, inPlace, missing, 1, (int) numFeature, type)[0].length;
      if (multiClass && width != learner.numClass()) {
        throw new ModelLoadException(
            file
                + " has objective "
                + objective
                + " with num_class "
                + learner.numClass()
                + ", but XGBoost predicts "
                + width
                + " values per row; save the model again with XGBoost's save_model");
      }

      String inputName = DEFAULT_INPUT;
      if (config.inputs().size() > 1) {
        throw config.error(
            "inputs",
            "declares "
                + config.inputs().size()
                + " inputs, but an XGBoost model takes one, FP32 [-1, "
                + numFeature
                + "]; declare one or none");
      } else if (config.inputs().size() == 1) {
        inputName = config.inputs().get(0).name(); // the file names no input: model.yaml may
      }
      String fileKind = "the XGBoost model (" + objective + ")";
      Map<String, TensorSpec> inputs =
          DeclaredTensors.reconcile(
              config,
              "inputs",
              Map.of(inputName, new TensorSpec(inputName, DataType.FP32, shape(numFeature))),
              fileKind);
      Map<String, TensorSpec> outputs =
          DeclaredTensors.reconcile(
              config,
              "outputs",
              Map.of(outputName, new TensorSpec(outputName, DataType.FP32, shape(width))),
              fileKind);
      List<TensorSpec> in = List.copyOf(inputs.values());
      List<TensorSpec> out = List.copyOf(outputs.values());
      ModelSignature signature =
          new ModelSignature(PLATFORM, in, out, DeclaredTensors.batchable(in, out));
      return new XgboostEngine(
          context.name(),
          booster,
          inputName,
          numFeature,
          outputName,
          width,
          type,
          softmax,
          inPlace,
          signature);
    } catch (XGBoostError e) {
      booster.dispose();
      throw new ModelLoadException("XGBoost cannot serve " + file + ": " + brief(e), e);
    } catch (RuntimeException e) {
      booster.dispose();
      throw e;
    }
  }

  /**
   * The cores divided among the instances, as every engine's default, but no more threads than a
   * full batch has blocks of {@value #ROWS_PER_THREAD} rows: XGBoost's CPU predictor gives each
   * thread such a block, so further threads have nothing to do, and on a busy host their OpenMP
   * spin-waiting slows every call many times over.
   */
  static int defaultThreads(ModelConfig config) {
    int blocks = (config.batching().maxBatchSize() + ROWS_PER_THREAD - 1) / ROWS_PER_THREAD;
    return Math.max(1, Math.min(config.threadsPerInstance(), blocks));
  }

  private static long[] shape(long width) {
    return new long[] {-1, width};
  }

  /** Predicts rows (row-major, NaN for missing): in place, or from a DMatrix under a lock. */
  private static float[][] predict(
      Booster booster,
      boolean inPlace,
      float[] values,
      int rows,
      int columns,
      Booster.PredictionType type)
      throws XGBoostError {
    if (inPlace) {
      return booster.inplace_predict(values, rows, columns, Float.NaN, ALL_TREES, type, null);
    }
    synchronized (booster) {
      DMatrix matrix = new DMatrix(values, rows, columns, Float.NaN);
      try {
        return booster.predict(matrix, type == Booster.PredictionType.kMargin, 0);
      } finally {
        matrix.dispose();
      }
    }
  }

  @Override
  public ModelSignature signature() {
    return signature;
  }

  @Override
  public Map<String, Tensor> run(Map<String, Tensor> inputs, Set<String> outputs) {
    Tensor x = inputs.get(input);
    if (x == null) {
      throw new InvalidInputException(
          "model '" + model + "' needs input '" + input + "'; got " + inputs.keySet());
    }
    if (x.datatype() != DataType.FP32) {
      throw new InvalidInputException(
          "input '" + input + "' must be FP32, got " + x.datatype() + " (model '" + model + "')");
    }
    if (x.rank() != 2 || x.dim(1) != numFeature) {
      throw new InvalidInputException(
          "input '"
              + input
              + "' of model '"
              + model
              + "' must have "
              + numFeature
              + " features per row, shape [rows, "
              + numFeature
              + "]; got "
              + (x.rank() == 2 ? x.dim(1) + " features (shape " : "shape ")
              + Arrays.toString(x.shape())
              + (x.rank() == 2 ? ")" : ""));
    }
    int rows = (int) x.dim(0);
    float[] values = x.floats();
    refuseInfinities(values);
    ByteBuffer data = Tensor.allocate((long) rows * width * Float.BYTES);
    if (rows > 0) { // xgboost4j divides by the row count
      float[][] predicted;
      try {
        predicted = predict(booster, inPlace, values, rows, (int) numFeature, predictionType);
      } catch (XGBoostError e) {
        throw new BerthException(
            "XGBoost failed to predict for model '" + model + "': " + brief(e), e);
      }
      FloatBuffer floats = data.asFloatBuffer();
      for (float[] row : predicted) {
        if (row.length != width) {
          throw new BerthException(
              "XGBoost gave "
                  + row.length
                  + " values per row for model '"
                  + model
                  + "', not "
                  + width);
        }
        if (softmax) {
          softmaxInPlace(row);
        }
        floats.put(row);
      }
    }
    return Map.of(output, Tensor.of(output, DataType.FP32, new long[] {rows, width}, data));
  }

  /**
   * XGBoost builds its trees on finite values and its DMatrix refuses infinities; in-place
   * prediction would take them silently, so they are refused here as the request's fault.
   */
  private void refuseInfinities(float[] values) {
    for (int i = 0; i < values.length; i++) {
      if (Float.isInfinite(values[i])) {
        throw new InvalidInputException(
            "input '"
                + input
                + "' has "
                + values[i]
                + " at row "
                + i / numFeature
                + ", feature "
                + i % numFeature
                + "; XGBoost takes finite values, and NaN for a missing one");
      }
    }
  }

  private static void softmaxInPlace(float[] margins) {
    float max = Float.NEGATIVE_INFINITY;
    for (float m : margins) {
      max = Math.max(max, m);
    }
    double sum = 0;
    for (int i = 0; i < margins.length; i++) {
      margins[i] = (float) Math.exp(margins[i] - max);
      sum += margins[i];
    }
    for (int i = 0; i < margins.length; i++) {
      margins[i] = (float) (margins[i] / sum);
    }
  }

  /** The first line of XGBoost's message, without its log prefix and native stack trace. */
  static String brief(XGBoostError e) {
    String message = e.getMessage() == null ? e.toString() : e.getMessage();
    int end = message.indexOf('\n');
    String first = (end < 0 ? message : message.substring(0, end)).strip();
    first = LOG_PREFIX.matcher(first).replaceFirst("");
    return first.endsWith(".") ? first.substring(0, first.length() - 1) : first;
  }

  /** Frees the booster's native memory. */
  @Override
  public void close() {
    booster.dispose();
  }
}
