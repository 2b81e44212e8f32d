package dev.berth.pytorch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.DataType;
import dev.berth.api.InvalidInputException;
import dev.berth.api.Tensor;
import dev.berth.runtime.TensorBatching;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/** Real TorchScript files run through the engine: values, result kinds, datatypes, bad inputs. */
class PytorchEngineRunTest {
  private static Path repo;
  private static PytorchEngine mlp;
  private static PytorchEngine tuple;
  private static PytorchEngine dict;
  private static PytorchEngine twoInputs;
  private static PytorchEngine bert;

  @BeforeAll
  static void load() throws Exception {
    repo = Files.createTempDirectory("pytorch-run");
    mlp = PytorchEngine.load(TestModels.model(repo, "mlp", "mlp.pt", TestModels.MLP_YAML));
    String x4 =
        """
        inputs:
          - {name: x, datatype: FP32, shape: [-1, 4]}
        outputs:
          - {name: doubled, datatype: FP32, shape: [-1, 4]}
          - {name: total, datatype: FP32, shape: [-1, 1]}
        """;
    tuple = PytorchEngine.load(TestModels.model(repo, "tuple", "tuple.pt", TestModels.yaml(x4)));
    dict = PytorchEngine.load(TestModels.model(repo, "dict", "dict.pt", TestModels.yaml(x4)));
    twoInputs =
        PytorchEngine.load(
            TestModels.model(
                repo,
                "two",
                "two-inputs.pt",
                TestModels.yaml(
                    """
                    inputs:
                      - {name: ids, datatype: INT64, shape: [-1, 3]}
                      - {name: scale, datatype: FP32, shape: [-1, 1]}
                    outputs:
                      - {name: scaled, datatype: FP32, shape: [-1, 3]}
                      - {name: next, datatype: INT64, shape: [-1, 3]}
                    """)));
    bert =
        PytorchEngine.load(
            TestModels.model(
                repo,
                "bert",
                "bert.pt",
                TestModels.yaml(
                    """
                    inputs:
                      - {name: input_ids, datatype: INT64, shape: [-1, -1]}
                      - {name: attention_mask, datatype: INT64, shape: [-1, -1]}
                      - {name: token_type_ids, datatype: INT64, shape: [-1, -1]}
                    outputs:
                      - {name: last_hidden_state, datatype: FP32, shape: [-1, -1, 8]}
                    """)));
  }

  @AfterAll
  static void close() {
    for (PytorchEngine e : new PytorchEngine[] {mlp, tuple, dict, twoInputs, bert}) {
      if (e != null) {
        e.close();
      }
    }
  }

  static float[] pixels(int rows, long seed) {
    Random random = new Random(seed);
    float[] v = new float[rows * 784];
    for (int i = 0; i < v.length; i++) {
      v[i] = random.nextFloat();
    }
    return v;
  }

  private static float[] probabilities(Tensor pixels) {
    return mlp.run(Map.of("pixels", pixels), Set.of("probabilities")).get("probabilities").floats();
  }

  @Test
  void mlpGivesTheProbabilitiesOfItsWeights() {
    float[] in = pixels(3, 1);
    Tensor out =
        mlp.run(Map.of("pixels", Tensor.ofFloats("pixels", new long[] {3, 784}, in)), Set.of())
            .get("probabilities");
    assertEquals(null, out);
    out =
        mlp.run(
                Map.of("pixels", Tensor.ofFloats("pixels", new long[] {3, 784}, in)),
                Set.of("probabilities"))
            .get("probabilities");
    assertArrayEquals(new long[] {3, 10}, out.shape());
    assertEquals(DataType.FP32, out.datatype());
    assertArrayEquals(TestModels.WEIGHTS.probabilities(in), out.floats(), 1e-5f);
  }

  @Test
  void aJoinedBatchGivesEachRowWhatItGetsAlone() {
    List<Tensor> rows = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      rows.add(Tensor.ofFloats("pixels", new long[] {1, 784}, pixels(1, 10 + i)));
    }
    Tensor joined = TensorBatching.concat(rows); // direct, as the runtime joins them
    assertTrue(joined.data().isDirect());
    float[] together = probabilities(joined);
    for (int i = 0; i < rows.size(); i++) {
      float[] alone = probabilities(rows.get(i));
      float[] row = java.util.Arrays.copyOfRange(together, i * 10, i * 10 + 10);
      assertArrayEquals(alone, row, 1e-6f, "row " + i);
    }
  }

  @Test
  void concurrentRunsShareTheModule() throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(4);
    try {
      List<Future<float[]>> answers = new ArrayList<>();
      List<float[]> inputs = new ArrayList<>();
      for (int i = 0; i < 16; i++) {
        float[] in = pixels(1 + i % 4, 100 + i);
        inputs.add(in);
        answers.add(
            pool.submit(
                () ->
                    probabilities(
                        Tensor.ofFloats("pixels", new long[] {in.length / 784, 784}, in))));
      }
      for (int i = 0; i < answers.size(); i++) {
        assertArrayEquals(
            TestModels.WEIGHTS.probabilities(inputs.get(i)), answers.get(i).get(), 1e-5f);
      }
    } finally {
      pool.shutdown();
    }
  }

  private static Tensor x4() {
    return Tensor.ofFloats("x", new long[] {2, 4}, new float[] {0, 1, 2, 3, 4, 5, 6, 7});
  }

  @Test
  void aTupleMapsToTheDeclaredOutputsInOrder() {
    Map<String, Tensor> out = tuple.run(Map.of("x", x4()), Set.of("doubled", "total"));
    assertArrayEquals(new float[] {0, 2, 4, 6, 8, 10, 12, 14}, out.get("doubled").floats());
    assertArrayEquals(new long[] {2, 1}, out.get("total").shape());
    assertArrayEquals(new float[] {6, 22}, out.get("total").floats());
  }

  @Test
  void aDictMapsToTheDeclaredOutputsByKey() {
    // the dict's own order is total, doubled; model.yaml's is doubled, total
    Map<String, Tensor> out = dict.run(Map.of("x", x4()), Set.of("doubled", "total"));
    assertArrayEquals(new float[] {0, 2, 4, 6, 8, 10, 12, 14}, out.get("doubled").floats());
    assertArrayEquals(new float[] {6, 22}, out.get("total").floats());
    Map<String, Tensor> one = dict.run(Map.of("x", x4()), Set.of("total"));
    assertEquals(Set.of("total"), one.keySet());
  }

  @Test
  void inputsGoToForwardInDeclaredOrder() {
    Map<String, Tensor> out =
        twoInputs.run(
            Map.of(
                "ids", Tensor.ofLongs("ids", new long[] {2, 3}, new long[] {1, 2, 3, 4, 5, 6}),
                "scale", Tensor.ofFloats("scale", new long[] {2, 1}, new float[] {1, 10})),
            Set.of("scaled", "next"));
    assertArrayEquals(new float[] {1, 2, 3, 40, 50, 60}, out.get("scaled").floats());
    assertEquals(DataType.INT64, out.get("next").datatype());
    assertArrayEquals(new long[] {2, 3, 4, 5, 6, 7}, out.get("next").longs());
  }

  @Test
  void theBertShapedModelLooksUpItsTables() {
    long[] ids = {101, 30521, 0, 2054};
    long[] mask = {1, 1, 1, 0};
    long[] types = {0, 0, 1, 1};
    long[] shape = {2, 2};
    Tensor out =
        bert.run(
                Map.of(
                    "input_ids", Tensor.ofLongs("input_ids", shape, ids),
                    "attention_mask", Tensor.ofLongs("attention_mask", shape, mask),
                    "token_type_ids", Tensor.ofLongs("token_type_ids", shape, types)),
                Set.of("last_hidden_state"))
            .get("last_hidden_state");
    assertArrayEquals(new long[] {2, 2, 8}, out.shape());
    float[][] tables =
        dev.berth.pytorch.testing.TorchScriptWriter.bertTables(
            TestModels.VOCAB, TestModels.HIDDEN, TestModels.BERT_SEED);
    float[] expected = new float[4 * 8];
    for (int t = 0; t < 4; t++) {
      for (int h = 0; h < 8; h++) {
        expected[t * 8 + h] =
            mask[t] * (tables[0][(int) ids[t] * 8 + h] + tables[1][(int) types[t] * 8 + h]);
      }
    }
    assertArrayEquals(expected, out.floats(), 1e-6f);
  }

  @Test
  void everyDatatypeGoesThereAndBackUnchanged() throws Exception {
    for (DataType type :
        List.of(
            DataType.FP32,
            DataType.FP64,
            DataType.FP16,
            DataType.INT8,
            DataType.UINT8,
            DataType.INT32,
            DataType.INT64,
            DataType.BOOL)) {
      String name = "echo-" + type.name().toLowerCase(java.util.Locale.ROOT);
      try (PytorchEngine echo =
          PytorchEngine.load(
              TestModels.model(
                  repo,
                  name,
                  "echo.pt",
                  TestModels.yaml(
                      "inputs:\n  - {name: x, datatype: "
                          + type
                          + ", shape: [-1, 3]}\noutputs:\n  - {name: y, datatype: "
                          + type
                          + ", shape: [-1, 3]}\n")))) {
        byte[] bytes = new byte[2 * 3 * type.byteSize()];
        new Random(type.ordinal()).nextBytes(bytes);
        if (type == DataType.BOOL) {
          for (int i = 0; i < bytes.length; i++) {
            bytes[i] = (byte) (bytes[i] & 1);
          }
        }
        if (type == DataType.FP16 || type == DataType.FP32 || type == DataType.FP64) {
          bytes = finite(type, bytes.length / type.byteSize());
        }
        ByteBuffer heap = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        ByteBuffer direct = ByteBuffer.allocateDirect(bytes.length).order(ByteOrder.LITTLE_ENDIAN);
        direct.put(bytes).flip();
        for (ByteBuffer data : List.of(heap, direct)) {
          Tensor y =
              echo.run(Map.of("x", Tensor.of("x", type, new long[] {2, 3}, data)), Set.of("y"))
                  .get("y");
          assertEquals(type, y.datatype());
          assertArrayEquals(new long[] {2, 3}, y.shape());
          byte[] back = new byte[bytes.length];
          y.data().get(back);
          assertArrayEquals(bytes, back, type + (data.isDirect() ? " direct" : " heap"));
        }
      }
    }
  }

  private static byte[] finite(DataType type, int n) {
    ByteBuffer b = ByteBuffer.allocate(n * type.byteSize()).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < n; i++) {
      switch (type) {
        case FP16 -> b.putShort(Float.floatToFloat16(i * 0.5f - 1));
        case FP32 -> b.putFloat(i * 0.25f - 1);
        default -> b.putDouble(i * 0.125 - 1);
      }
    }
    return b.array();
  }

  @Test
  void aShapeTheModelRefusesIsTheRequestsFaultWithLibtorchsReason() {
    // [2, 5] fits model.yaml's [-1, -1] only if declared so: call the engine as the runtime would
    // for a model declared loosely
    try (PytorchEngine loose =
        PytorchEngine.load(
            TestModels.model(
                repo,
                "loose",
                "mlp.pt",
                TestModels.yaml(
                    """
                    inputs:
                      - {name: pixels, datatype: FP32, shape: [-1, -1]}
                    outputs:
                      - {name: probabilities, datatype: FP32, shape: [-1, 10]}
                    """)))) {
      InvalidInputException e =
          assertThrows(
              InvalidInputException.class,
              () ->
                  loose.run(
                      Map.of("pixels", Tensor.ofFloats("pixels", new long[] {2, 5}, new float[10])),
                      Set.of("probabilities")));
      assertEquals(
          "libtorch refused the inputs of model 'loose': mat1 and mat2 shapes cannot be multiplied"
              + " (2x5 and 784x128)",
          e.getMessage());
      assertFalse(e.getMessage().contains("\n"));
    }
  }
}
