package dev.berth.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.DataType;
import dev.berth.api.ModelLoadException;
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
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every element type ONNX Runtime's Java API carries goes through an Identity graph byte for byte,
 * in a batch of several requests; the unsigned types it cannot carry fail to load.
 */
class OnnxEngineDatatypeTest {
  @TempDir Path repo;

  private static final long COLUMNS = 3;

  /**
   * One supported type with sample elements (little-endian bytes, or strings for BYTES). Tensors
   * are cut from the samples cyclically, from an offset, so two requests hold different values.
   */
  record TypeCase(DataType type, ElemType elem, byte[] samples, List<String> strings) {
    Tensor tensor(String name, long rows, int offset) {
      long[] shape = {rows, COLUMNS};
      int count = (int) (rows * COLUMNS);
      if (type == DataType.BYTES) {
        List<byte[]> elements = new ArrayList<>();
        for (int i = 0; i < count; i++) {
          elements.add(strings.get((offset + i) % strings.size()).getBytes(StandardCharsets.UTF_8));
        }
        return Tensor.ofBytes(name, shape, elements);
      }
      int size = type.byteSize();
      int available = samples.length / size;
      ByteBuffer data = Tensor.allocate((long) count * size);
      for (int i = 0; i < count; i++) {
        data.put(samples, ((offset + i) % available) * size, size);
      }
      return Tensor.of(name, type, shape, data.flip());
    }

    @Override
    public String toString() {
      return type.name();
    }
  }

  static Stream<TypeCase> supported() {
    return Stream.of(
        numeric(DataType.BOOL, ElemType.BOOL, b -> b.put((byte) 1).put((byte) 0).put((byte) 1)),
        numeric(
            DataType.UINT8,
            ElemType.UINT8,
            b -> b.put((byte) 0).put((byte) 255).put((byte) 128).put((byte) 1).put((byte) 7)),
        numeric(
            DataType.INT8,
            ElemType.INT8,
            b -> b.put(Byte.MIN_VALUE).put(Byte.MAX_VALUE).put((byte) -1).put((byte) 0)),
        numeric(
            DataType.INT16,
            ElemType.INT16,
            b -> b.putShort(Short.MIN_VALUE).putShort(Short.MAX_VALUE).putShort((short) -2)),
        numeric(
            DataType.INT32,
            ElemType.INT32,
            b -> b.putInt(Integer.MIN_VALUE).putInt(Integer.MAX_VALUE).putInt(-3).putInt(0)),
        numeric(
            DataType.INT64,
            ElemType.INT64,
            b ->
                b.putLong(Long.MIN_VALUE)
                    .putLong(Long.MAX_VALUE)
                    .putLong((1L << 53) + 1)
                    .putLong(-4)),
        numeric(
            DataType.FP16,
            ElemType.FLOAT16,
            b -> {
              for (float f :
                  new float[] {
                    0f, -0f, 1f, -2.5f, 65504f, 0x1p-14f, 0x1p-24f, Float.POSITIVE_INFINITY
                  }) {
                b.putShort(Float.floatToFloat16(f));
              }
              b.putShort((short) 0x7e00); // NaN
            }),
        numeric(
            DataType.FP32,
            ElemType.FLOAT,
            b ->
                b.putFloat(0.1f)
                    .putFloat(-0f)
                    .putFloat(Float.MAX_VALUE)
                    .putFloat(Float.MIN_VALUE)
                    .putFloat(Float.NEGATIVE_INFINITY)
                    .putFloat(Float.NaN)
                    .putFloat(3.5f)),
        numeric(
            DataType.FP64,
            ElemType.DOUBLE,
            b ->
                b.putDouble(0.1)
                    .putDouble(-1e300)
                    .putDouble(Double.MIN_VALUE)
                    .putDouble(Math.PI)
                    .putDouble(-0.0)),
        new TypeCase(
            DataType.BYTES,
            ElemType.STRING,
            null,
            List.of("hello", "", "wörld", "日本語", "a longer string, with punctuation!")));
  }

  private static TypeCase numeric(DataType type, ElemType elem, Consumer<ByteBuffer> samples) {
    ByteBuffer b = ByteBuffer.allocate(256).order(ByteOrder.LITTLE_ENDIAN);
    samples.accept(b);
    byte[] bytes = new byte[b.flip().remaining()];
    b.get(bytes);
    return new TypeCase(type, elem, bytes, null);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("supported")
  void signatureShowsTheTypeWithABatchDimension(TypeCase c) {
    try (TensorPipeline engine = load("id", OnnxModelWriter.identity(c.elem(), -1, COLUMNS))) {
      ModelSignature s = engine.signature();
      assertEquals(List.of(new TensorSpec("x", c.type(), new long[] {-1, COLUMNS})), s.inputs());
      assertEquals(List.of(new TensorSpec("y", c.type(), new long[] {-1, COLUMNS})), s.outputs());
      assertTrue(s.batchable(), "a -1 first dimension is a batch dimension");
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("supported")
  void identityReturnsEachRequestItsOwnRowsByteForByte(TypeCase c) {
    try (TensorPipeline engine = load("id", OnnxModelWriter.identity(c.elem(), -1, COLUMNS))) {
      List<Tensor> sent = List.of(c.tensor("x", 2, 0), c.tensor("x", 3, 1), c.tensor("x", 1, 2));
      List<List<Tensor>> answers = engine.run(sent.stream().map(List::of).toList(), Set.of("y"));

      assertEquals(sent.size(), answers.size());
      for (int r = 0; r < sent.size(); r++) {
        Tensor in = sent.get(r);
        assertEquals(1, answers.get(r).size(), "request " + r + " gets one output");
        Tensor out = answers.get(r).get(0);
        assertEquals("y", out.name());
        assertEquals(c.type(), out.datatype(), "request " + r);
        assertArrayEquals(in.shape(), out.shape(), "request " + r);
        if (c.type() == DataType.BYTES) {
          assertNull(out.data());
          assertEquals(in.elements().size(), out.elements().size());
          for (int i = 0; i < in.elements().size(); i++) {
            assertArrayEquals(
                in.elements().get(i), out.elements().get(i), "request " + r + "[" + i + "]");
          }
        } else {
          assertArrayEquals(bytes(in), bytes(out), "request " + r);
        }
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("supported")
  void aSingleRequestRoundTrips(TypeCase c) {
    try (TensorPipeline engine = load("id", OnnxModelWriter.identity(c.elem(), -1, COLUMNS))) {
      Tensor in = c.tensor("x", 4, 3);
      Tensor out = engine.run(List.of(List.of(in)), Set.of("y")).get(0).get(0);
      assertEquals(in.withName("y"), out);
    }
  }

  @ParameterizedTest
  @EnumSource(
      value = ElemType.class,
      names = {"UINT16", "UINT32", "UINT64"})
  void anInputTypeTheJavaApiCannotCarryFailsToLoadNamingTheTensor(ElemType elem) {
    OnnxModelWriter model =
        OnnxModelWriter.graph("unsigned")
            .input("wide_ids", elem, -1, 2)
            .output("y", elem, -1, 2)
            .node("Identity", List.of("wide_ids"), List.of("y"));

    ModelLoadException e = assertThrows(ModelLoadException.class, () -> load("u", model).close());

    assertTrue(e.getMessage().contains("'wide_ids'"), e.getMessage());
    assertTrue(e.getMessage().contains(elem.name()), e.getMessage());
  }

  @Test
  void anOutputTypeTheJavaApiCannotCarryFailsToLoadNamingTheTensor() {
    OnnxModelWriter model =
        OnnxModelWriter.graph("cast_to_uint32")
            .input("x", ElemType.INT32, -1, 2)
            .output("counts", ElemType.UINT32, -1, 2)
            .node(
                "Cast",
                List.of("x"),
                List.of("counts"),
                Attribute.ofInt("to", ElemType.UINT32.code()));

    ModelLoadException e = assertThrows(ModelLoadException.class, () -> load("u", model).close());

    assertTrue(e.getMessage().contains("output 'counts'"), e.getMessage());
  }

  private TensorPipeline load(String name, OnnxModelWriter model) {
    Path modelDir = repo.resolve(name);
    model.write(modelDir.resolve("1").resolve(OnnxEngineProvider.MODEL_FILE));
    ModelContext context =
        new ModelContext(name, "1", modelDir.resolve("1"), ModelConfig.load(modelDir));
    return pipeline(context);
  }

  private static byte[] bytes(Tensor t) {
    ByteBuffer data = t.data();
    byte[] out = new byte[data.remaining()];
    data.get(out);
    return out;
  }

  /** The engine behind the steps its model.yaml names, as the runtime builds it. */
  static TensorPipeline pipeline(ModelContext context) {
    java.util.List<StageProvider> stages = new java.util.ArrayList<>();
    java.util.ServiceLoader.load(StageProvider.class).forEach(stages::add);
    return TensorPipeline.load(
        context, (TensorEngine) new OnnxEngineProvider().load(context), stages);
  }
}
