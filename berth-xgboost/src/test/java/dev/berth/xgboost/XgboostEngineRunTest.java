package dev.berth.xgboost;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.InvalidInputException;
import dev.berth.api.Tensor;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelContext;
import dev.berth.runtime.TensorEngine;
import dev.berth.xgboost.testing.XgboostModelWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import ml.dmlc.xgboost4j.java.Booster;
import ml.dmlc.xgboost4j.java.DMatrix;
import ml.dmlc.xgboost4j.java.XGBoostError;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs of a joined batch give every row what XGBoost's own {@code Booster.predict} gives that row
 * alone; what a request gets wrong is an {@link InvalidInputException}.
 */
class XgboostEngineRunTest {
  private static final int FEATURES = 6;

  @TempDir static Path repo;
  private static XgboostModelWriter.Trained softprob;
  private static XgboostModelWriter.Trained softmax;
  private static XgboostModelWriter.Trained regression;
  private static TensorEngine softprobEngine;
  private static TensorEngine softmaxEngine;
  private static TensorEngine regressionEngine;

  @BeforeAll
  static void trainAndLoad() {
    softprob = XgboostModelWriter.objective("multi:softprob").classes(3).features(FEATURES).train();
    softmax =
        XgboostModelWriter.objective("multi:softmax").classes(3).features(FEATURES).seed(2).train();
    regression =
        XgboostModelWriter.objective("reg:squarederror").features(FEATURES).seed(3).train();
    softprobEngine = load("softprob", softprob.save(repo.resolve("softprob/1/model.ubj")));
    softmaxEngine = load("softmax", softmax.save(repo.resolve("softmax/1/model.json")));
    regressionEngine = load("regression", regression.save(repo.resolve("regression/1/model.json")));
  }

  @AfterAll
  static void close() {
    softprobEngine.close();
    softmaxEngine.close();
    regressionEngine.close();
  }

  private static TensorEngine load(String name, Path file) {
    Path modelDir = repo.resolve(name);
    ModelContext context =
        new ModelContext(name, "1", file.getParent(), ModelConfig.load(modelDir));
    return (TensorEngine) new XgboostEngineProvider().load(context);
  }

  @Test
  void aJoinedBatchGivesEachRowWhatTheBoosterGivesItAlone() throws XGBoostError {
    int rows = 40;
    Tensor out = run(softprobEngine, "probabilities", softprob.firstRows(rows), rows);
    assertArrayEquals(new long[] {rows, 3}, out.shape());
    float[] got = out.floats();
    for (int r = 0; r < rows; r++) {
      float[] expected = alone(softprob.booster(), softprob.features(), r)[0];
      assertArrayEquals(expected, Arrays.copyOfRange(got, r * 3, r * 3 + 3), "row " + r);
    }
    float[] regressionOut =
        run(regressionEngine, "value", regression.firstRows(rows), rows).floats();
    for (int r = 0; r < rows; r++) {
      assertEquals(alone(regression.booster(), regression.features(), r)[0][0], regressionOut[r]);
    }
  }

  @Test
  void linearAndDartModelsGiveWhatTheBoosterGives() throws XGBoostError {
    for (String kind : new String[] {"gblinear", "dart"}) {
      XgboostModelWriter.Trained m =
          XgboostModelWriter.objective("multi:softmax")
              .booster(kind)
              .classes(3)
              .features(FEATURES)
              .train();
      try (TensorEngine engine = load(kind, m.save(repo.resolve(kind + "/1/model.json")))) {
        int rows = 20;
        float[] got = run(engine, "probabilities", m.firstRows(rows), rows).floats();
        for (int r = 0; r < rows; r++) {
          float[] row = Arrays.copyOfRange(got, r * 3, r * 3 + 3);
          int best = row[0] >= row[1] && row[0] >= row[2] ? 0 : row[1] >= row[2] ? 1 : 2;
          assertEquals((int) alone(m.booster(), m.features(), r)[0][0], best, kind + " row " + r);
        }
      }
    }
  }

  @Test
  void softmaxModelsGiveProbabilitiesWhoseMostProbableClassIsXgboostsAnswer() throws XGBoostError {
    int rows = 50;
    float[] p = run(softmaxEngine, "probabilities", softmax.firstRows(rows), rows).floats();
    for (int r = 0; r < rows; r++) {
      float[] row = Arrays.copyOfRange(p, r * 3, r * 3 + 3);
      assertEquals(1.0, row[0] + row[1] + row[2], 1e-5, "row " + r);
      int best = row[0] >= row[1] && row[0] >= row[2] ? 0 : row[1] >= row[2] ? 1 : 2;
      float xgboostClass = alone(softmax.booster(), softmax.features(), r)[0][0];
      assertEquals((int) xgboostClass, best, "row " + r);
    }
  }

  @Test
  void nanIsAMissingValue() throws XGBoostError {
    float[] row = softprob.firstRows(1);
    row[0] = Float.NaN;
    row[3] = Float.NaN;
    float[] allMissing = new float[FEATURES];
    Arrays.fill(allMissing, Float.NaN);
    float[] both = new float[2 * FEATURES];
    System.arraycopy(row, 0, both, 0, FEATURES);
    System.arraycopy(allMissing, 0, both, FEATURES, FEATURES);
    float[] got = run(softprobEngine, "probabilities", both, 2).floats();
    assertArrayEquals(predict(softprob.booster(), row, 1)[0], Arrays.copyOfRange(got, 0, 3));
    assertArrayEquals(predict(softprob.booster(), allMissing, 1)[0], Arrays.copyOfRange(got, 3, 6));
  }

  @Test
  void aWrongFeatureCountIsTheRequestsFaultNamingBothCounts() {
    InvalidInputException e =
        assertThrows(
            InvalidInputException.class,
            () -> run(softprobEngine, "probabilities", new float[8], 2));
    assertTrue(e.getMessage().contains("must have 6 features"), e.getMessage());
    assertTrue(e.getMessage().contains("got 4 features"), e.getMessage());
    assertThrows(
        InvalidInputException.class,
        () ->
            softprobEngine.run(
                Map.of("features", Tensor.ofFloats("features", new long[] {6}, new float[6])),
                Set.of("probabilities")));
  }

  @Test
  void infinityIsRefusedNamingTheRowAndFeature() {
    float[] rows = softprob.firstRows(3);
    rows[FEATURES + 2] = Float.NEGATIVE_INFINITY;
    InvalidInputException e =
        assertThrows(
            InvalidInputException.class, () -> run(softprobEngine, "probabilities", rows, 3));
    assertTrue(e.getMessage().contains("row 1, feature 2"), e.getMessage());
  }

  @Test
  void noRowsGiveNoRows() {
    assertArrayEquals(
        new long[] {0, 3}, run(softprobEngine, "probabilities", new float[0], 0).shape());
  }

  @Test
  void concurrentRunsShareTheBooster() throws Exception {
    float[] expected =
        run(softprobEngine, "probabilities", softprob.features(), softprob.rows()).floats();
    ExecutorService pool = Executors.newFixedThreadPool(6);
    try {
      List<Future<?>> runs = new ArrayList<>();
      for (int t = 0; t < 24; t++) {
        int from = t * 7;
        int n = 1 + t % 9;
        runs.add(
            pool.submit(
                () -> {
                  for (int k = 0; k < 30; k++) {
                    float[] in =
                        Arrays.copyOfRange(
                            softprob.features(), from * FEATURES, (from + n) * FEATURES);
                    float[] got = run(softprobEngine, "probabilities", in, n).floats();
                    assertArrayEquals(
                        Arrays.copyOfRange(expected, from * 3, (from + n) * 3),
                        got,
                        "rows " + from);
                  }
                  return null;
                }));
      }
      for (Future<?> f : runs) {
        f.get();
      }
    } finally {
      pool.shutdown();
    }
  }

  private static Tensor run(TensorEngine engine, String output, float[] values, int rows) {
    Tensor in =
        Tensor.ofFloats("features", new long[] {rows, values.length / Math.max(1, rows)}, values);
    if (rows == 0) {
      in = Tensor.ofFloats("features", new long[] {0, FEATURES}, values);
    }
    Map<String, Tensor> out = engine.run(Map.of("features", in), Set.of(output));
    return out.get(output);
  }

  /** What {@code Booster.predict} on a DMatrix of one row gives. */
  private static float[][] alone(Booster booster, float[] features, int row) throws XGBoostError {
    return predict(booster, Arrays.copyOfRange(features, row * FEATURES, (row + 1) * FEATURES), 1);
  }

  private static float[][] predict(Booster booster, float[] values, int rows) throws XGBoostError {
    DMatrix m = new DMatrix(values, rows, FEATURES, Float.NaN);
    try {
      return booster.predict(m);
    } finally {
      m.dispose();
    }
  }
}
