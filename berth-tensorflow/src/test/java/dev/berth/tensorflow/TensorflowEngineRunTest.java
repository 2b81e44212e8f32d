package dev.berth.tensorflow;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.DataType;
import dev.berth.api.InvalidInputException;
import dev.berth.api.Tensor;
import dev.berth.runtime.TensorEngine;
import dev.berth.tensorflow.testing.SavedModelWriter;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.family.TType;

/** Runs of real SavedModels: values, every datatype, joined batches and refused inputs. */
class TensorflowEngineRunTest {
  private static final long SEED = 11;

  @TempDir static Path repo;
  private static TensorEngine two;
  private static TensorEngine mlp;
  private static TensorEngine bert;
  private static TensorEngine identities;
  private static float[][] weights;

  /** One identity per datatype Berth carries: in_TYPE -> out_TYPE, shape [-1, -1]. */
  private static final List<DataType> TYPES =
      List.of(
          DataType.FP32,
          DataType.FP64,
          DataType.FP16,
          DataType.INT32,
          DataType.INT64,
          DataType.UINT8,
          DataType.UINT16,
          DataType.BOOL,
          DataType.BYTES);

  @BeforeAll
  static void loadModels() {
    TensorflowModels.twoInTwoOut(TensorflowModels.savedModel(repo, "two"));
    weights = SavedModelWriter.mlpWeights(SEED);
    SavedModelWriter.mlp(
        TensorflowModels.savedModel(repo, "mlp"), weights[0], weights[1], weights[2], weights[3]);
    SavedModelWriter.bert(
        TensorflowModels.savedModel(repo, "bert"), SavedModelWriter.BERT_VOCAB, 4, 3);
    try (SavedModelWriter w = SavedModelWriter.create()) {
      Ops tf = w.ops();
      var signature = SavedModelWriter.serving();
      for (DataType type : TYPES) {
        Class<? extends TType> cls = TensorflowTypes.tensorClass(type);
        var in = tf.withName("in_" + type).placeholder(cls, Placeholder.shape(Shape.of(-1, -1)));
        signature.input("in_" + type, in).output("out_" + type, tf.identity(in));
      }
      w.signature(signature).write(TensorflowModels.savedModel(repo, "identities"));
    }
    two = (TensorEngine) TensorflowModels.load(repo, "two", null);
    mlp = (TensorEngine) TensorflowModels.load(repo, "mlp", null);
    bert = (TensorEngine) TensorflowModels.load(repo, "bert", null);
    identities = (TensorEngine) TensorflowModels.load(repo, "identities", null);
  }

  @AfterAll
  static void close() {
    for (TensorEngine e : new TensorEngine[] {two, mlp, bert, identities}) {
      if (e != null) {
        e.close();
      }
    }
  }

  private static Map<String, Tensor> twoInputs(float[] x, long[] ids, int rows) {
    return Map.of(
        "x", Tensor.ofFloats("x", new long[] {rows, 3}, x),
        "ids", Tensor.ofLongs("ids", new long[] {rows, ids.length / rows}, ids));
  }

  @Test
  void aDenseLayerWithVariablesComputesXwPlusB() {
    Map<String, Tensor> out =
        two.run(
            twoInputs(new float[] {1, 0, 0, 0, 1, 1}, new long[] {1, 2, -3, 4}, 2),
            Set.of("y", "doubled"));

    assertArrayEquals(new float[] {11, 22, 18, 30}, out.get("y").floats());
    assertArrayEquals(new long[] {2, 2}, out.get("y").shape());
    assertArrayEquals(new long[] {2, 4, -6, 8}, out.get("doubled").longs());
    assertArrayEquals(new long[] {2, 2}, out.get("doubled").shape());
  }

  @Test
  void onlyTheOutputsAskedForAreComputed() {
    Map<String, Tensor> out =
        two.run(twoInputs(new float[] {0, 0, 1}, new long[] {5}, 1), Set.of("doubled"));

    assertEquals(Set.of("doubled"), out.keySet());
    assertArrayEquals(new long[] {10}, out.get("doubled").longs());
  }

  @Test
  void theMlpComputesSoftmaxOfTheTwoLayers() {
    Random random = new Random(5);
    float[] pixels = new float[SavedModelWriter.PIXELS];
    for (int i = 0; i < pixels.length; i++) {
      pixels[i] = random.nextFloat();
    }
    float[] p =
        mlp.run(
                Map.of("pixels", Tensor.ofFloats("pixels", new long[] {1, pixels.length}, pixels)),
                Set.of("probabilities"))
            .get("probabilities")
            .floats();

    assertArrayEquals(reference(pixels), p, 1e-5f);
  }

  /** The MLP in plain Java, in double precision. */
  private static float[] reference(float[] x) {
    int hiddenUnits = SavedModelWriter.HIDDEN;
    int classes = SavedModelWriter.CLASSES;
    double[] hidden = new double[hiddenUnits];
    for (int j = 0; j < hiddenUnits; j++) {
      double sum = weights[1][j];
      for (int i = 0; i < x.length; i++) {
        sum += x[i] * weights[0][i * hiddenUnits + j];
      }
      hidden[j] = Math.max(0, sum);
    }
    double[] logits = new double[classes];
    double max = Double.NEGATIVE_INFINITY;
    for (int k = 0; k < classes; k++) {
      double sum = weights[3][k];
      for (int j = 0; j < hiddenUnits; j++) {
        sum += hidden[j] * weights[2][j * classes + k];
      }
      logits[k] = sum;
      max = Math.max(max, sum);
    }
    double total = 0;
    for (int k = 0; k < classes; k++) {
      logits[k] = Math.exp(logits[k] - max);
      total += logits[k];
    }
    float[] out = new float[classes];
    for (int k = 0; k < classes; k++) {
      out[k] = (float) (logits[k] / total);
    }
    return out;
  }

  @Test
  void aJoinedBatchInDirectMemoryEqualsItsRowsRunOneByOne() {
    int rows = 5;
    int n = SavedModelWriter.PIXELS;
    Random random = new Random(9);
    ByteBuffer joined = ByteBuffer.allocateDirect(rows * n * 4).order(ByteOrder.LITTLE_ENDIAN);
    float[][] each = new float[rows][n];
    for (int r = 0; r < rows; r++) {
      for (int i = 0; i < n; i++) {
        each[r][i] = random.nextFloat();
        joined.putFloat(each[r][i]);
      }
    }
    joined.flip();
    float[] batch =
        mlp.run(
                Map.of("pixels", Tensor.of("pixels", DataType.FP32, new long[] {rows, n}, joined)),
                Set.of("probabilities"))
            .get("probabilities")
            .floats();

    for (int r = 0; r < rows; r++) {
      float[] one =
          mlp.run(
                  Map.of("pixels", Tensor.ofFloats("pixels", new long[] {1, n}, each[r])),
                  Set.of("probabilities"))
              .get("probabilities")
              .floats();
      float[] row = java.util.Arrays.copyOfRange(batch, r * 10, r * 10 + 10);
      assertArrayEquals(one, row, 1e-6f, "row " + r);
    }
  }

  @Test
  void concurrentRunsOfOneEngineEachGetTheirOwnAnswer() throws Exception {
    var pool = java.util.concurrent.Executors.newFixedThreadPool(4);
    try {
      List<java.util.concurrent.Future<Boolean>> results = new java.util.ArrayList<>();
      for (int t = 0; t < 4; t++) {
        long k = t;
        results.add(
            pool.submit(
                () -> {
                  for (int i = 0; i < 50; i++) {
                    long v = k * 1000 + i;
                    long[] doubled =
                        two.run(twoInputs(new float[3], new long[] {v}, 1), Set.of("doubled"))
                            .get("doubled")
                            .longs();
                    if (doubled[0] != 2 * v) {
                      return false;
                    }
                  }
                  return true;
                }));
      }
      for (var r : results) {
        assertTrue(r.get(60, java.util.concurrent.TimeUnit.SECONDS));
      }
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void aBertShapedModelLooksUpEveryIdOfTheVocabulary() {
    long[] ids = {101, 7592, SavedModelWriter.BERT_VOCAB - 1, 102};
    Map<String, Tensor> in =
        Map.of(
            "input_ids", Tensor.ofLongs("input_ids", new long[] {1, 4}, ids),
            "attention_mask",
                Tensor.ofLongs("attention_mask", new long[] {1, 4}, new long[] {1, 1, 1, 0}),
            "token_type_ids", Tensor.ofLongs("token_type_ids", new long[] {1, 4}, new long[4]));
    Tensor hidden = bert.run(in, Set.of("last_hidden_state")).get("last_hidden_state");

    assertArrayEquals(new long[] {1, 4, 4}, hidden.shape());
    float[] v = hidden.floats();
    assertArrayEquals(new float[4], java.util.Arrays.copyOfRange(v, 12, 16), 0f, "masked position");
    assertTrue(v[0] != 0 || v[1] != 0, "an id's embedding is not zero");
  }

  @Test
  void anIdOutsideTheVocabularyIsTheRequestsFault() {
    Map<String, Tensor> in =
        Map.of(
            "input_ids",
                Tensor.ofLongs(
                    "input_ids", new long[] {1, 1}, new long[] {SavedModelWriter.BERT_VOCAB}),
            "attention_mask", Tensor.ofLongs("attention_mask", new long[] {1, 1}, new long[] {1}),
            "token_type_ids", Tensor.ofLongs("token_type_ids", new long[] {1, 1}, new long[1]));
    InvalidInputException e =
        assertThrows(InvalidInputException.class, () -> bert.run(in, Set.of("last_hidden_state")));

    assertTrue(e.getMessage().contains("model 'bert' refused the inputs"), e.getMessage());
    assertTrue(e.getMessage().contains("30522"), e.getMessage());
  }

  @ParameterizedTest
  @EnumSource(
      value = DataType.class,
      names = {"FP32", "FP64", "FP16", "INT32", "INT64", "UINT8", "UINT16", "BOOL", "BYTES"})
  void everyCarriedTypeGoesThroughUnchanged(DataType type) {
    long[] shape = {2, 3};
    Tensor in;
    if (type == DataType.BYTES) {
      List<byte[]> values =
          List.of("a", "", "ünï", "d", "long text", "f").stream()
              .map(s -> s.getBytes(StandardCharsets.UTF_8))
              .toList();
      in = Tensor.ofBytes("in_" + type, shape, values);
    } else {
      byte[] bytes = new byte[6 * type.byteSize()];
      new Random(type.ordinal()).nextBytes(bytes);
      if (type == DataType.BOOL) {
        for (int i = 0; i < bytes.length; i++) {
          bytes[i] = (byte) (bytes[i] & 1);
        }
      }
      if (type == DataType.FP16 || type == DataType.FP32 || type == DataType.FP64) {
        bytes = finite(type, bytes.length / type.byteSize());
      }
      in = Tensor.of("in_" + type, type, shape, ByteBuffer.wrap(bytes));
    }
    Map<String, Tensor> inputs = new java.util.HashMap<>();
    for (DataType t : TYPES) {
      inputs.put("in_" + t, t == type ? in : empty(t));
    }
    Tensor out = identities.run(inputs, Set.of("out_" + type)).get("out_" + type);

    assertEquals(in.withName("out_" + type), out);
  }

  /** A tensor of shape [0, 0]. */
  private static Tensor empty(DataType type) {
    long[] shape = {0, 0};
    return type == DataType.BYTES
        ? Tensor.ofBytes("in_" + type, shape, List.of())
        : Tensor.of("in_" + type, type, shape, ByteBuffer.allocate(0));
  }

  private static byte[] finite(DataType type, int n) {
    ByteBuffer b = ByteBuffer.allocate(n * type.byteSize()).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < n; i++) {
      switch (type) {
        case FP16 -> b.putShort(Float.floatToFloat16(i * 0.5f - 1));
        case FP32 -> b.putFloat(i * 1.25f - 3);
        default -> b.putDouble(i * 1e-3 - 7);
      }
    }
    return b.array();
  }
}
