package dev.berth.tensorflow;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.ConfigException;
import dev.berth.api.DataType;
import dev.berth.api.ModelLoadException;
import dev.berth.api.TensorSpec;
import dev.berth.runtime.Engine;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelSignature;
import dev.berth.tensorflow.testing.SavedModelWriter;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.op.Ops;
import org.tensorflow.op.core.Placeholder;
import org.tensorflow.types.TBfloat16;
import org.tensorflow.types.TFloat32;

/** What the engine reads from a SavedModel's signature and from model.yaml. */
class TensorflowEngineSignatureTest {
  @TempDir static Path repo;

  @BeforeAll
  static void writeModels() {
    TensorflowModels.twoInTwoOut(TensorflowModels.savedModel(repo, "two"));
  }

  @Test
  void namesTypesAndShapesComeFromTheServingSignature() {
    try (Engine engine = TensorflowModels.load(repo, "two", null)) {
      ModelSignature s = engine.signature();
      assertEquals("tensorflow_savedmodel", s.platform());
      assertEquals(
          List.of(
              new TensorSpec("ids", DataType.INT64, new long[] {-1, -1}),
              new TensorSpec("x", DataType.FP32, new long[] {-1, 3})),
          s.inputs());
      assertEquals(
          List.of(
              new TensorSpec("doubled", DataType.INT64, new long[] {-1, -1}),
              new TensorSpec("y", DataType.FP32, new long[] {-1, 2})),
          s.outputs());
      assertTrue(s.batchable());
    }
  }

  @Test
  void optionsSignaturePicksAnotherSignature() {
    try (Engine engine = TensorflowModels.load(repo, "two", "options: {signature: ids_only}\n")) {
      assertEquals(List.of("ids"), engine.signature().inputNames());
      assertEquals(List.of("doubled"), engine.signature().outputNames());
    }
  }

  @Test
  void declarationsThatAgreeWithTheSignatureNarrowIt() {
    String yaml =
        """
        inputs:
          - {name: x, datatype: FP32, shape: [-1, 3]}
          - {name: ids, datatype: INT64, shape: [-1, 16]}
        outputs:
          - {name: y, datatype: FP32, shape: [-1, 2]}
        """;
    try (Engine engine = TensorflowModels.load(repo, "two", yaml)) {
      assertArrayEquals(new long[] {-1, 16}, engine.signature().input("ids").orElseThrow().shape());
      assertEquals(List.of("y"), engine.signature().outputNames());
    }
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      textBlock =
          """
          inputs[0].datatype  | inputs: [{name: x, datatype: FP64, shape: [-1, 3]}, {name: ids, datatype: INT64, shape: [-1, -1]}]
          inputs[1].name      | inputs: [{name: x, datatype: FP32, shape: [-1, 3]}, {name: mask, datatype: INT64, shape: [-1, -1]}]
          inputs[0].shape     | inputs: [{name: x, datatype: FP32, shape: [-1, 4]}, {name: ids, datatype: INT64, shape: [-1, -1]}]
          inputs[0].shape     | inputs: [{name: x, datatype: FP32, shape: [-1]}, {name: ids, datatype: INT64, shape: [-1, -1]}]
          inputs              | inputs: [{name: x, datatype: FP32, shape: [-1, 3]}]
          outputs[0].name     | outputs: [{name: logits, datatype: FP32, shape: [-1, 2]}]
          outputs[0].datatype | outputs: [{name: doubled, datatype: INT32, shape: [-1, -1]}]
          """)
  void declarationsThatContradictTheSignatureNameTheKey(String key, String declaration) {
    ConfigException e =
        assertThrows(
            ConfigException.class,
            () -> TensorflowModels.load(repo, "two", declaration + "\n").close());

    assertEquals(key, e.key(), e.getMessage());
    assertEquals(repo.resolve("two").resolve(ModelConfig.FILE_NAME), e.file());
  }

  @Test
  void aMissingSignatureNamesItTheOnesThereAreAndTheKey() {
    ConfigException e =
        assertThrows(
            ConfigException.class,
            () -> TensorflowModels.load(repo, "two", "options: {signature: predict}\n").close());

    assertEquals("options.signature", e.key());
    assertTrue(e.getMessage().contains("no signature 'predict'"), e.getMessage());
    assertTrue(e.getMessage().contains("ids_only"), e.getMessage());
    assertTrue(e.getMessage().contains("serving_default"), e.getMessage());
  }

  @Test
  void aModelWithoutServingDefaultSaysWhichKeyPicksOne(@TempDir Path other) {
    try (SavedModelWriter w = SavedModelWriter.create()) {
      Ops tf = w.ops();
      Placeholder<TFloat32> x =
          tf.withName("x").placeholder(TFloat32.class, Placeholder.shape(Shape.of(-1, 2)));
      w.signature(SavedModelWriter.serving("classify").input("x", x).output("y", tf.identity(x)))
          .write(TensorflowModels.savedModel(other, "m"));
    }
    ModelLoadException e =
        assertThrows(ModelLoadException.class, () -> TensorflowModels.load(other, "m", null));

    assertTrue(e.getMessage().contains("saved_model.pb"), e.getMessage());
    assertTrue(e.getMessage().contains("no signature 'serving_default'"), e.getMessage());
    assertTrue(e.getMessage().contains("[classify]"), e.getMessage());
    assertTrue(e.getMessage().contains("options.signature"), e.getMessage());
  }

  @Test
  void aTypeBerthCannotCarryIsRefusedAtLoad(@TempDir Path other) {
    try (SavedModelWriter w = SavedModelWriter.create()) {
      Ops tf = w.ops();
      Placeholder<TBfloat16> x =
          tf.withName("x").placeholder(TBfloat16.class, Placeholder.shape(Shape.of(-1, 2)));
      w.signature(SavedModelWriter.serving().input("x", x).output("y", tf.identity(x)))
          .write(TensorflowModels.savedModel(other, "bf16"));
    }
    ModelLoadException e =
        assertThrows(ModelLoadException.class, () -> TensorflowModels.load(other, "bf16", null));

    assertTrue(e.getMessage().contains("input 'x'"), e.getMessage());
    assertTrue(e.getMessage().contains("DT_BFLOAT16"), e.getMessage());
    assertTrue(e.getMessage().contains("DT_FLOAT"), e.getMessage());
  }

  @Test
  void aFixedFirstDimensionIsNotBatchable(@TempDir Path other) {
    try (SavedModelWriter w = SavedModelWriter.create()) {
      Ops tf = w.ops();
      Placeholder<TFloat32> x =
          tf.withName("x").placeholder(TFloat32.class, Placeholder.shape(Shape.of(2, 2)));
      w.signature(SavedModelWriter.serving().input("x", x).output("y", tf.identity(x)))
          .write(TensorflowModels.savedModel(other, "fixed"));
    }
    try (Engine engine = TensorflowModels.load(other, "fixed", null)) {
      assertFalse(engine.signature().batchable());
    }
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      textBlock =
          """
          options.threads          | options: {threads: 2}
          options.intra-op-threads | options: {intra-op-threads: many}
          options.inter-op-threads | options: {inter-op-threads: -2}
          """)
  void badOptionsNameTheKey(String key, String yaml) {
    ConfigException e =
        assertThrows(
            ConfigException.class, () -> TensorflowModels.load(repo, "two", yaml + "\n").close());

    assertEquals(key, e.key(), e.getMessage());
  }

  @Test
  void threadOptionsAreAccepted() {
    try (Engine engine =
        TensorflowModels.load(
            repo, "two", "options: {intra-op-threads: 1, inter-op-threads: 0}\n")) {
      assertEquals(2, engine.signature().inputs().size());
    }
  }
}
