package dev.berth.onnx.testing;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Random;

/**
 * Writes small ONNX models for tests, with a hand-written protobuf encoder and the field numbers of
 * the official {@code onnx.proto} (no protobuf library, no protoc).
 *
 * <pre>{@code
 * OnnxModelWriter.graph("identity")
 *     .opset(17)
 *     .input("x", ElemType.FLOAT, -1, 4)
 *     .output("y", ElemType.FLOAT, -1, 4)
 *     .node("Identity", List.of("x"), List.of("y"))
 *     .write(dir.resolve("1/model.onnx"));
 * }</pre>
 *
 * <p>A dimension of -1 is written as a symbolic dimension: {@code dim_param "N"} for the first
 * dimension, {@code "d1"}, {@code "d2"}, ... for the others, so an input and an output of the same
 * shape share their symbols. Models carry {@code ir_version} 8 and {@code producer_name}
 * "berth-test".
 */
public final class OnnxModelWriter {
  /** IR version written into every model (ONNX 1.10+; ONNX Runtime reads it). */
  public static final long IR_VERSION = 8;

  /** Opset used when {@link #opset} is not called. */
  public static final int DEFAULT_OPSET = 17;

  /** {@code TensorProto.DataType} values of onnx.proto. */
  public enum ElemType {
    FLOAT(1, 4),
    UINT8(2, 1),
    INT8(3, 1),
    UINT16(4, 2),
    INT16(5, 2),
    INT32(6, 4),
    INT64(7, 8),
    STRING(8, 0),
    BOOL(9, 1),
    FLOAT16(10, 2),
    DOUBLE(11, 8),
    UINT32(12, 4),
    UINT64(13, 8);

    private final int code;
    private final int byteSize;

    ElemType(int code, int byteSize) {
      this.code = code;
      this.byteSize = byteSize;
    }

    /** The enum value onnx.proto gives this type. */
    public int code() {
      return code;
    }

    /** Bytes of one element in {@code raw_data}; 0 for STRING. */
    public int byteSize() {
      return byteSize;
    }
  }

  /** A node attribute ({@code AttributeProto}); make one with {@link #ofInt} and its siblings. */
  public static final class Attribute {
    // AttributeProto.AttributeType values of onnx.proto
    private static final int FLOAT = 1;
    private static final int INT = 2;
    private static final int STRING = 3;
    private static final int FLOATS = 6;
    private static final int INTS = 7;

    private final String name;
    private final int type;
    private final long[] ints;
    private final float[] floats;
    private final byte[] string;

    private Attribute(String name, int type, long[] ints, float[] floats, byte[] string) {
      this.name = Objects.requireNonNull(name, "name");
      this.type = type;
      this.ints = ints;
      this.floats = floats;
      this.string = string;
    }

    /** An INT attribute, e.g. Cast's {@code to}. */
    public static Attribute ofInt(String name, long value) {
      return new Attribute(name, INT, new long[] {value}, null, null);
    }

    /** A FLOAT attribute. */
    public static Attribute ofFloat(String name, float value) {
      return new Attribute(name, FLOAT, null, new float[] {value}, null);
    }

    /** A STRING attribute (UTF-8). */
    public static Attribute ofString(String name, String value) {
      return new Attribute(name, STRING, null, null, value.getBytes(StandardCharsets.UTF_8));
    }

    /** An INTS attribute, e.g. Transpose's {@code perm}. */
    public static Attribute ofInts(String name, long... values) {
      return new Attribute(name, INTS, values.clone(), null, null);
    }

    /** A FLOATS attribute. */
    public static Attribute ofFloats(String name, float... values) {
      return new Attribute(name, FLOATS, null, values.clone(), null);
    }

    private ProtoWriter encode() {
      ProtoWriter a = new ProtoWriter();
      a.string(1, name); // name
      switch (type) {
        case FLOAT -> a.float32(2, floats[0]); // f
        case INT -> a.int64(3, ints[0]); // i
        case STRING -> a.bytes(4, string); // s
        case FLOATS -> {
          for (float f : floats) {
            a.float32(7, f); // floats
          }
        }
        default -> {
          for (long i : ints) {
            a.int64(8, i); // ints
          }
        }
      }
      a.int64(20, type); // type
      return a;
    }
  }

  private record ValueInfo(String name, ElemType type, long[] dims) {}

  private record Node(
      String opType, List<String> inputs, List<String> outputs, List<Attribute> attributes) {}

  private record Initializer(
      String name, ElemType type, long[] dims, byte[] raw, List<String> strings) {}

  private final String name;
  private int opset = DEFAULT_OPSET;
  private final List<ValueInfo> inputs = new ArrayList<>();
  private final List<ValueInfo> outputs = new ArrayList<>();
  private final List<Node> nodes = new ArrayList<>();
  private final List<Initializer> initializers = new ArrayList<>();

  private OnnxModelWriter(String name) {
    this.name = Objects.requireNonNull(name, "name");
  }

  /** Starts a model whose graph has this name. */
  public static OnnxModelWriter graph(String name) {
    return new OnnxModelWriter(name);
  }

  /**
   * A one-node model {@code y = Identity(x)}, input {@code x} and output {@code y} of the given
   * type and shape.
   */
  public static OnnxModelWriter identity(ElemType type, long... dims) {
    return graph("identity_" + type.name().toLowerCase(java.util.Locale.ROOT))
        .input("x", type, dims)
        .output("y", type, dims)
        .node("Identity", List.of("x"), List.of("y"));
  }

  /** The default-domain opset version the model imports. */
  public OnnxModelWriter opset(int version) {
    this.opset = version;
    return this;
  }

  /** Adds a graph input; -1 dimensions are symbolic. */
  public OnnxModelWriter input(String name, ElemType type, long... dims) {
    inputs.add(new ValueInfo(name, type, dims.clone()));
    return this;
  }

  /** Adds a graph output; -1 dimensions are symbolic. */
  public OnnxModelWriter output(String name, ElemType type, long... dims) {
    outputs.add(new ValueInfo(name, type, dims.clone()));
    return this;
  }

  /** Adds a node of the default domain. */
  public OnnxModelWriter node(
      String opType, List<String> inputs, List<String> outputs, Attribute... attributes) {
    nodes.add(new Node(opType, List.copyOf(inputs), List.copyOf(outputs), List.of(attributes)));
    return this;
  }

  /** Adds a FLOAT initializer (a constant tensor); {@code dims} empty for a scalar. */
  public OnnxModelWriter initializer(String name, long[] dims, float... values) {
    ByteBuffer raw = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
    raw.asFloatBuffer().put(values);
    return initializer(name, ElemType.FLOAT, dims, raw.array());
  }

  /** Adds an INT64 initializer; {@code dims} empty for a scalar. */
  public OnnxModelWriter longInitializer(String name, long[] dims, long... values) {
    ByteBuffer raw = ByteBuffer.allocate(values.length * 8).order(ByteOrder.LITTLE_ENDIAN);
    raw.asLongBuffer().put(values);
    return initializer(name, ElemType.INT64, dims, raw.array());
  }

  /**
   * Adds an initializer of any fixed-size type from its little-endian element bytes ({@code
   * raw_data}).
   */
  public OnnxModelWriter initializer(String name, ElemType type, long[] dims, byte[] raw) {
    if (type == ElemType.STRING) {
      throw new IllegalArgumentException("STRING initializers take strings; use stringInitializer");
    }
    long count = Arrays.stream(dims).reduce(1, Math::multiplyExact);
    if (raw.length != count * type.byteSize()) {
      throw new IllegalArgumentException(
          "initializer '"
              + name
              + "' of shape "
              + Arrays.toString(dims)
              + " needs "
              + count * type.byteSize()
              + " bytes, got "
              + raw.length);
    }
    initializers.add(new Initializer(name, type, dims.clone(), raw.clone(), null));
    return this;
  }

  /** Adds a STRING initializer. */
  public OnnxModelWriter stringInitializer(String name, long[] dims, String... values) {
    initializers.add(new Initializer(name, ElemType.STRING, dims.clone(), null, List.of(values)));
    return this;
  }

  /** The encoded {@code ModelProto}. */
  public byte[] toBytes() {
    ProtoWriter graph = new ProtoWriter();
    for (Node n : nodes) {
      graph.message(1, node(n)); // node
    }
    graph.string(2, name); // name
    for (Initializer i : initializers) {
      graph.message(5, tensor(i)); // initializer
    }
    for (ValueInfo v : inputs) {
      graph.message(11, valueInfo(v)); // input
    }
    for (ValueInfo v : outputs) {
      graph.message(12, valueInfo(v)); // output
    }

    ProtoWriter opsetId = new ProtoWriter();
    opsetId.string(1, ""); // domain: the default one
    opsetId.int64(2, opset); // version

    ProtoWriter model = new ProtoWriter();
    model.int64(1, IR_VERSION); // ir_version
    model.string(2, "berth-test"); // producer_name
    model.message(7, graph); // graph
    model.message(8, opsetId); // opset_import
    return model.toByteArray();
  }

  /** Writes the model to a file, creating its directory; returns the file. */
  public Path write(Path file) {
    return writeBytes(file, toBytes());
  }

  /** Writes bytes that are not an ONNX model (a fixed pseudo-random sequence); returns the file. */
  public static Path writeGarbage(Path file) {
    byte[] bytes = new byte[512];
    new Random(42).nextBytes(bytes);
    return writeBytes(file, bytes);
  }

  private static Path writeBytes(Path file, byte[] bytes) {
    try {
      Path parent = file.toAbsolutePath().getParent();
      if (parent != null) {
        Files.createDirectories(parent);
      }
      return Files.write(file, bytes);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + file, e);
    }
  }

  private static ProtoWriter node(Node n) {
    ProtoWriter w = new ProtoWriter();
    n.inputs().forEach(s -> w.string(1, s)); // input
    n.outputs().forEach(s -> w.string(2, s)); // output
    w.string(3, n.opType() + "_" + String.join("_", n.outputs())); // name
    w.string(4, n.opType()); // op_type
    for (Attribute a : n.attributes()) {
      w.message(5, a.encode()); // attribute
    }
    return w;
  }

  private static ProtoWriter valueInfo(ValueInfo v) {
    ProtoWriter shape = new ProtoWriter();
    for (int i = 0; i < v.dims().length; i++) {
      ProtoWriter dim = new ProtoWriter();
      if (v.dims()[i] < 0) {
        dim.string(2, i == 0 ? "N" : "d" + i); // dim_param
      } else {
        dim.int64(1, v.dims()[i]); // dim_value
      }
      shape.message(1, dim); // TensorShapeProto.dim
    }
    ProtoWriter tensorType = new ProtoWriter();
    tensorType.int64(1, v.type().code()); // TypeProto.Tensor.elem_type
    tensorType.message(2, shape); // TypeProto.Tensor.shape
    ProtoWriter type = new ProtoWriter();
    type.message(1, tensorType); // TypeProto.tensor_type
    ProtoWriter w = new ProtoWriter();
    w.string(1, v.name()); // name
    w.message(2, type); // type
    return w;
  }

  private static ProtoWriter tensor(Initializer i) {
    ProtoWriter w = new ProtoWriter();
    for (long d : i.dims()) {
      w.int64(1, d); // dims
    }
    w.int64(2, i.type().code()); // data_type
    if (i.strings() != null) {
      i.strings().forEach(s -> w.bytes(6, s.getBytes(StandardCharsets.UTF_8))); // string_data
    }
    w.string(8, i.name()); // name
    if (i.raw() != null) {
      w.bytes(9, i.raw()); // raw_data
    }
    return w;
  }

  /** The protobuf wire format, as much of it as ONNX models need. */
  private static final class ProtoWriter {
    private static final int VARINT = 0;
    private static final int LENGTH_DELIMITED = 2;
    private static final int FIXED32 = 5;

    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    void int64(int field, long value) {
      tag(field, VARINT);
      varint(value);
    }

    void float32(int field, float value) {
      tag(field, FIXED32);
      int bits = Float.floatToRawIntBits(value);
      for (int i = 0; i < 4; i++) {
        out.write(bits >>> (8 * i));
      }
    }

    void string(int field, String value) {
      bytes(field, value.getBytes(StandardCharsets.UTF_8));
    }

    void bytes(int field, byte[] value) {
      tag(field, LENGTH_DELIMITED);
      varint(value.length);
      out.writeBytes(value);
    }

    void message(int field, ProtoWriter message) {
      bytes(field, message.toByteArray());
    }

    byte[] toByteArray() {
      return out.toByteArray();
    }

    private void tag(int field, int wireType) {
      varint(((long) field << 3) | wireType);
    }

    /** Base-128 varint; negative values take ten bytes, as protobuf encodes int64. */
    private void varint(long value) {
      long v = value;
      while ((v & ~0x7FL) != 0) {
        out.write((int) ((v & 0x7F) | 0x80));
        v >>>= 7;
      }
      out.write((int) v);
    }
  }
}
