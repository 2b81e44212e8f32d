package dev.berth.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.ConfigException;
import dev.berth.api.DataType;
import dev.berth.api.Tensor;
import dev.berth.api.TensorSpec;
import dev.berth.onnx.testing.OnnxModelWriter;
import dev.berth.onnx.testing.OnnxModelWriter.Attribute;
import dev.berth.onnx.testing.OnnxModelWriter.ElemType;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelContext;
import dev.berth.runtime.ModelSignature;
import dev.berth.runtime.StageProvider;
import dev.berth.runtime.TensorEngine;
import dev.berth.runtime.TensorPipeline;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * What the engine reads from a graph and from model.yaml, and how it runs graphs with constants and
 * requests of different shapes.
 */
class OnnxEngineSignatureTest {
  private static final float DELTA = 1e-6f;

  @TempDir Path repo;

  /** x FP32 [-1, 4] and mask INT64 [-1, 4] in; y = x and m = mask out. */
  private static OnnxModelWriter twoInOut() {
    return OnnxModelWriter.graph("two")
        .input("x", ElemType.FLOAT, -1, 4)
        .input("mask", ElemType.INT64, -1, 4)
        .output("y", ElemType.FLOAT, -1, 4)
        .output("m", ElemType.INT64, -1, 4)
        .node("Identity", List.of("x"), List.of("y"))
        .node("Identity", List.of("mask"), List.of("m"));
  }

  @Test
  void metadataComesFromTheGraph() {
    try (TensorPipeline engine = load("two", twoInOut(), null)) {
      ModelSignature s = engine.signature();
      assertEquals("onnxruntime_onnx", s.platform());
      assertEquals(
          List.of(
              new TensorSpec("x", DataType.FP32, new long[] {-1, 4}),
              new TensorSpec("mask", DataType.INT64, new long[] {-1, 4})),
          s.inputs());
      assertEquals(
          List.of(
              new TensorSpec("y", DataType.FP32, new long[] {-1, 4}),
              new TensorSpec("m", DataType.INT64, new long[] {-1, 4})),
          s.outputs());
      assertTrue(s.batchable());
    }
  }

  @Test
  void symbolicTrailingDimensionsAreMinusOne() {
    OnnxModelWriter model =
        OnnxModelWriter.graph("cube")
            .input("x", ElemType.DOUBLE, -1, 3, -1)
            .output("y", ElemType.DOUBLE, -1, 3, -1)
            .node("Identity", List.of("x"), List.of("y"));
    try (TensorPipeline engine = load("cube", model, null)) {
      assertArrayEquals(new long[] {-1, 3, -1}, engine.signature().inputs().get(0).shape());
      assertArrayEquals(new long[] {-1, 3, -1}, engine.signature().outputs().get(0).shape());
    }
  }

  @Test
  void outputTypesComeFromTheGraphNotTheInputs() {
    OnnxModelWriter model =
        OnnxModelWriter.graph("cast")
            .input("x", ElemType.INT32, -1, 2)
            .output("y", ElemType.FLOAT, -1, 2)
            .node("Cast", List.of("x"), List.of("y"), Attribute.ofInt("to", ElemType.FLOAT.code()));
    try (TensorPipeline engine = load("cast", model, null)) {
      assertEquals(DataType.FP32, engine.signature().outputs().get(0).datatype());
      Tensor x = Tensor.of("x", DataType.INT32, new long[] {1, 2}, ints(-7, 1 << 20));
      Tensor y = engine.run(List.of(List.of(x)), Set.of("y")).get(0).get(0);
      assertArrayEquals(new float[] {-7f, 1 << 20}, y.floats());
    }
  }

  @Test
  void declarationsThatAgreeWithTheGraphReplaceIt() {
    OnnxModelWriter model =
        OnnxModelWriter.graph("open")
            .input("x", ElemType.FLOAT, -1, -1)
            .output("y", ElemType.FLOAT, -1, -1)
            .node("Identity", List.of("x"), List.of("y"));
    String yaml =
        """
        inputs:
          - {name: x, datatype: FP32, shape: [-1, 8]}
        outputs:
          - {name: y, datatype: FP32, shape: [-1, 8]}
        """;
    try (TensorPipeline engine = load("open", model, yaml)) {
      assertEquals(
          List.of(new TensorSpec("x", DataType.FP32, new long[] {-1, 8})),
          engine.signature().inputs());
      assertEquals(
          List.of(new TensorSpec("y", DataType.FP32, new long[] {-1, 8})),
          engine.signature().outputs());
    }
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      textBlock =
          """
          inputs[0].datatype  | inputs: [{name: x, datatype: INT64, shape: [-1, 4]}, {name: mask, datatype: INT64, shape: [-1, 4]}]
          inputs[1].name      | inputs: [{name: x, datatype: FP32, shape: [-1, 4]}, {name: ids, datatype: INT64, shape: [-1, 4]}]
          inputs[0].shape     | inputs: [{name: x, datatype: FP32, shape: [-1]}, {name: mask, datatype: INT64, shape: [-1, 4]}]
          inputs[1].shape     | inputs: [{name: x, datatype: FP32, shape: [-1, 4]}, {name: mask, datatype: INT64, shape: [-1, 5]}]
          inputs[0].shape     | inputs: [{name: x, datatype: FP32, shape: [-1, -1]}, {name: mask, datatype: INT64, shape: [-1, 4]}]
          inputs              | inputs: [{name: x, datatype: FP32, shape: [-1, 4]}]
          outputs[0].datatype | outputs: [{name: y, datatype: FP16, shape: [-1, 4]}]
          outputs[1].name     | outputs: [{name: y, datatype: FP32, shape: [-1, 4]}, {name: logits, datatype: FP32, shape: [-1, 4]}]
          outputs[0].shape    | outputs: [{name: y, datatype: FP32, shape: [-1, 4, 1]}]
          """)
  void declarationsThatDisagreeWithTheGraphNameTheKey(String key, String declaration) {
    ConfigException e =
        assertThrows(
            ConfigException.class, () -> load("two", twoInOut(), declaration + "\n").close());

    assertEquals(key, e.key(), e.getMessage());
    assertEquals(repo.resolve("two").resolve(ModelConfig.FILE_NAME), e.file());
    assertTrue(e.getMessage().contains("key '" + key + "'"), e.getMessage());
  }

  @Test
  void aFixedFirstDimensionIsNotBatchable() {
    OnnxModelWriter model =
        OnnxModelWriter.graph("fixed")
            .input("x", ElemType.FLOAT, 2, 3)
            .output("y", ElemType.FLOAT, 2, 3)
            .node("Identity", List.of("x"), List.of("y"));
    try (TensorPipeline engine = load("fixed", model, null)) {
      assertFalse(engine.signature().batchable());
      assertArrayEquals(new long[] {2, 3}, engine.signature().inputs().get(0).shape());
    }
  }

  @Test
  void aRankZeroInputIsNotBatchable() {
    OnnxModelWriter model =
        OnnxModelWriter.graph("scalar")
            .input("x", ElemType.FLOAT)
            .output("y", ElemType.FLOAT)
            .node("Identity", List.of("x"), List.of("y"));
    try (TensorPipeline engine = load("scalar", model, null)) {
      assertFalse(engine.signature().batchable());
      Tensor x = Tensor.ofFloats("x", new long[0], new float[] {4.5f});
      Tensor y = engine.run(List.of(List.of(x)), Set.of("y")).get(0).get(0);
      assertEquals(0, y.rank());
      assertArrayEquals(new float[] {4.5f}, y.floats());
    }
  }

  @Test
  void aNotBatchableModelRunsEachRequestOfOneCallOnItsOwn() {
    OnnxModelWriter model =
        OnnxModelWriter.graph("fixed_add")
            .input("x", ElemType.FLOAT, 2, 3)
            .output("y", ElemType.FLOAT, 2, 3)
            .initializer("one", new long[0], 1f)
            .node("Add", List.of("x", "one"), List.of("y"));
    try (TensorPipeline engine = load("fixed_add", model, null)) {
      Tensor a = Tensor.ofFloats("x", new long[] {2, 3}, new float[] {0, 1, 2, 3, 4, 5});
      Tensor b = Tensor.ofFloats("x", new long[] {2, 3}, new float[] {10, 11, 12, 13, 14, 15});

      List<List<Tensor>> out = engine.run(List.of(List.of(a), List.of(b)), Set.of("y"));

      assertArrayEquals(new long[] {2, 3}, out.get(0).get(0).shape());
      assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, out.get(0).get(0).floats(), DELTA);
      assertArrayEquals(new long[] {2, 3}, out.get(1).get(0).shape());
      assertArrayEquals(new float[] {11, 12, 13, 14, 15, 16}, out.get(1).get(0).floats(), DELTA);
    }
  }

  @Test
  void anAddGraphWithAFloatInitializerComputesTheSum() {
    OnnxModelWriter model =
        OnnxModelWriter.graph("add")
            .input("x", ElemType.FLOAT, -1, 3)
            .output("y", ElemType.FLOAT, -1, 3)
            .initializer("bias", new long[] {3}, 0.5f, -1f, 100f)
            .node("Add", List.of("x", "bias"), List.of("y"));
    try (TensorPipeline engine = load("add", model, null)) {
      assertEquals(List.of("x"), engine.signature().inputNames(), "initializers are not inputs");
      Tensor a = Tensor.ofFloats("x", new long[] {2, 3}, new float[] {1, 2, 3, 4, 5, 6});
      Tensor b = Tensor.ofFloats("x", new long[] {1, 3}, new float[] {-0.5f, 1, -100});

      List<List<Tensor>> out = engine.run(List.of(List.of(a), List.of(b)), Set.of("y"));

      assertArrayEquals(new long[] {2, 3}, out.get(0).get(0).shape());
      assertArrayEquals(
          new float[] {1.5f, 1, 103, 4.5f, 4, 106}, out.get(0).get(0).floats(), DELTA);
      assertArrayEquals(new long[] {1, 3}, out.get(1).get(0).shape());
      assertArrayEquals(new float[] {0, 0, 0}, out.get(1).get(0).floats(), DELTA);
    }
  }

  @Test
  void aMatMulGraphWithAFloatInitializerComputesTheProduct() {
    OnnxModelWriter model =
        OnnxModelWriter.graph("matmul")
            .input("x", ElemType.FLOAT, -1, 2)
            .output("y", ElemType.FLOAT, -1, 3)
            .initializer("w", new long[] {2, 3}, 1, 2, 3, 4, 5, 6)
            .node("MatMul", List.of("x", "w"), List.of("y"));
    try (TensorPipeline engine = load("matmul", model, null)) {
      Tensor x = Tensor.ofFloats("x", new long[] {2, 2}, new float[] {1, 0, 1, 1});
      Tensor y = engine.run(List.of(List.of(x)), Set.of("y")).get(0).get(0);
      assertArrayEquals(new long[] {2, 3}, y.shape());
      assertArrayEquals(new float[] {1, 2, 3, 5, 7, 9}, y.floats(), DELTA);
    }
  }

  @Test
  void requestsWithOtherTrailingShapesRunApartAndAreAllAnswered() {
    OnnxModelWriter model =
        OnnxModelWriter.graph("add_ten")
            .input("x", ElemType.FLOAT, -1, -1)
            .output("y", ElemType.FLOAT, -1, -1)
            .initializer("ten", new long[0], 10f)
            .node("Add", List.of("x", "ten"), List.of("y"));
    try (TensorPipeline engine = load("add_ten", model, null)) {
      Tensor a = Tensor.ofFloats("x", new long[] {1, 2}, new float[] {1, 2});
      Tensor b = Tensor.ofFloats("x", new long[] {2, 3}, new float[] {1, 2, 3, 4, 5, 6});
      Tensor c = Tensor.ofFloats("x", new long[] {2, 2}, new float[] {-1, -2, -3, -4});

      List<List<Tensor>> out = engine.run(List.of(List.of(a), List.of(b), List.of(c)), Set.of("y"));

      assertEquals(3, out.size());
      assertArrayEquals(new long[] {1, 2}, out.get(0).get(0).shape());
      assertArrayEquals(new float[] {11, 12}, out.get(0).get(0).floats(), DELTA);
      assertArrayEquals(new long[] {2, 3}, out.get(1).get(0).shape());
      assertArrayEquals(new float[] {11, 12, 13, 14, 15, 16}, out.get(1).get(0).floats(), DELTA);
      assertArrayEquals(new long[] {2, 2}, out.get(2).get(0).shape());
      assertArrayEquals(new float[] {9, 8, 7, 6}, out.get(2).get(0).floats(), DELTA);
    }
  }

  @Test
  void onlyTheOutputsAskedForAreComputed() {
    try (TensorPipeline engine = load("two", twoInOut(), null)) {
      Tensor x = Tensor.ofFloats("x", new long[] {1, 4}, new float[] {1, 2, 3, 4});
      Tensor mask = Tensor.ofLongs("mask", new long[] {1, 4}, new long[] {1, 1, 0, 0});

      List<Tensor> out = engine.run(List.of(List.of(x, mask)), Set.of("m")).get(0);

      assertEquals(1, out.size());
      assertEquals(mask.withName("m"), out.get(0));
    }
  }

  private TensorPipeline load(String name, OnnxModelWriter model, String yamlBody) {
    Path modelDir = repo.resolve(name);
    model.write(modelDir.resolve("1").resolve(OnnxEngineProvider.MODEL_FILE));
    if (yamlBody != null) {
      try {
        Files.writeString(
            modelDir.resolve(ModelConfig.FILE_NAME),
            "apiVersion: berth.dev/v1\nkind: Model\n" + yamlBody);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    ModelContext context =
        new ModelContext(name, "1", modelDir.resolve("1"), ModelConfig.load(modelDir));
    return pipeline(context);
  }

  private static ByteBuffer ints(int... values) {
    ByteBuffer b = Tensor.allocate(values.length * 4L);
    b.asIntBuffer().put(values);
    return b;
  }

  /** The engine behind the steps its model.yaml names, as the runtime builds it. */
  static TensorPipeline pipeline(ModelContext context) {
    java.util.List<StageProvider> stages = new java.util.ArrayList<>();
    java.util.ServiceLoader.load(StageProvider.class).forEach(stages::add);
    return TensorPipeline.load(
        context, (TensorEngine) new OnnxEngineProvider().load(context), stages);
  }
}
