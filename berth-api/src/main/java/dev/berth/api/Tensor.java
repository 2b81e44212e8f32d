package dev.berth.api;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * A named n-dimensional array in the Open Inference Protocol's terms.
 *
 * <p>Numeric and BOOL elements live in {@code data}: a little-endian buffer of exactly {@code
 * elementCount(shape) * datatype.byteSize()} bytes, read from position 0 (BOOL is one byte, 0 or 1;
 * FP16 holds IEEE half-precision bits). BYTES elements live in {@code elements}, one array per
 * element in row-major order, and {@code data} is null. The same layout is what the binary tensor
 * extension and gRPC's raw contents carry, so no transport needs another one.
 *
 * @param name tensor name as the model declares it
 * @param datatype element type
 * @param shape dimensions; every dimension is at least 0
 * @param data little-endian element bytes for every type but BYTES, else null
 * @param elements BYTES elements, else null
 */
public record Tensor(
    String name, DataType datatype, long[] shape, ByteBuffer data, List<byte[]> elements) {

  public Tensor {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(datatype, "datatype");
    shape = shape.clone();
    long count = elementCount(shape);
    if (datatype == DataType.BYTES) {
      if (elements == null || data != null) {
        throw new IllegalArgumentException("BYTES tensor '" + name + "' needs elements, not data");
      }
      if (elements.size() != count) {
        throw new InvalidInputException(
            "tensor '"
                + name
                + "' has shape "
                + Arrays.toString(shape)
                + " ("
                + count
                + " elements) but "
                + elements.size()
                + " values");
      }
      elements = List.copyOf(elements);
    } else {
      if (data == null || elements != null) {
        throw new IllegalArgumentException(datatype + " tensor '" + name + "' needs data");
      }
      long bytes = count * datatype.byteSize();
      if (data.remaining() != bytes) {
        throw new InvalidInputException(
            "tensor '"
                + name
                + "' has shape "
                + Arrays.toString(shape)
                + " ("
                + count
                + " "
                + datatype
                + " elements, "
                + bytes
                + " bytes) but "
                + data.remaining()
                + " bytes of data");
      }
      data = data.slice().order(ByteOrder.LITTLE_ENDIAN);
    }
  }

  /** A numeric or BOOL tensor over little-endian bytes. */
  public static Tensor of(String name, DataType datatype, long[] shape, ByteBuffer data) {
    return new Tensor(name, datatype, shape, data, null);
  }

  /** A BYTES tensor. */
  public static Tensor ofBytes(String name, long[] shape, List<byte[]> elements) {
    return new Tensor(name, DataType.BYTES, shape, null, elements);
  }

  /** A BYTES tensor of UTF-8 strings, shape [n]. */
  public static Tensor ofStrings(String name, List<String> values) {
    return ofBytes(
        name,
        new long[] {values.size()},
        values.stream().map(s -> s.getBytes(StandardCharsets.UTF_8)).toList());
  }

  /** An FP32 tensor. */
  public static Tensor ofFloats(String name, long[] shape, float[] values) {
    ByteBuffer buffer = allocate(values.length * 4L);
    buffer.asFloatBuffer().put(values);
    return of(name, DataType.FP32, shape, buffer);
  }

  /** An INT64 tensor. */
  public static Tensor ofLongs(String name, long[] shape, long[] values) {
    ByteBuffer buffer = allocate(values.length * 8L);
    buffer.asLongBuffer().put(values);
    return of(name, DataType.INT64, shape, buffer);
  }

  /** A little-endian heap buffer of the given size. */
  public static ByteBuffer allocate(long bytes) {
    if (bytes > Integer.MAX_VALUE) {
      throw new InvalidInputException("tensor of " + bytes + " bytes is larger than 2 GiB");
    }
    return ByteBuffer.allocate((int) bytes).order(ByteOrder.LITTLE_ENDIAN);
  }

  /** Number of elements a shape holds. */
  public static long elementCount(long[] shape) {
    long count = 1;
    for (long dim : shape) {
      if (dim < 0) {
        throw new InvalidInputException(
            "shape " + Arrays.toString(shape) + " has a negative dimension");
      }
      try {
        count = Math.multiplyExact(count, dim);
      } catch (ArithmeticException e) {
        throw new InvalidInputException(
            "shape " + Arrays.toString(shape) + " holds more elements than a tensor can", e);
      }
    }
    return count;
  }

  @Override
  public long[] shape() {
    return shape.clone();
  }

  /** Dimension {@code i} of the shape, without copying it. */
  public long dim(int i) {
    return shape[i];
  }

  public int rank() {
    return shape.length;
  }

  public long elementCount() {
    return elementCount(shape);
  }

  /** A read-only view of the element bytes, positioned at 0. */
  @Override
  public ByteBuffer data() {
    return data == null ? null : data.asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
  }

  /** The elements as floats; FP32 only. */
  public float[] floats() {
    requireType(DataType.FP32);
    float[] out = new float[(int) elementCount()];
    data().asFloatBuffer().get(out);
    return out;
  }

  /** The elements as longs; INT64 only. */
  public long[] longs() {
    requireType(DataType.INT64);
    long[] out = new long[(int) elementCount()];
    data().asLongBuffer().get(out);
    return out;
  }

  /** This tensor under another name. */
  public Tensor withName(String newName) {
    return new Tensor(newName, datatype, shape, data, elements);
  }

  private void requireType(DataType type) {
    if (datatype != type) {
      throw new IllegalStateException("tensor '" + name + "' is " + datatype + ", not " + type);
    }
  }

  @Override
  public String toString() {
    return "Tensor[" + name + ", " + datatype + ", " + Arrays.toString(shape) + "]";
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof Tensor t
        && name.equals(t.name)
        && datatype == t.datatype
        && Arrays.equals(shape, t.shape)
        && Objects.equals(data, t.data)
        && elementsEqual(elements, t.elements);
  }

  @Override
  public int hashCode() {
    return Objects.hash(name, datatype, Arrays.hashCode(shape), data);
  }

  private static boolean elementsEqual(List<byte[]> a, List<byte[]> b) {
    if (a == null || b == null) {
      return a == b;
    }
    if (a.size() != b.size()) {
      return false;
    }
    for (int i = 0; i < a.size(); i++) {
      if (!Arrays.equals(a.get(i), b.get(i))) {
        return false;
      }
    }
    return true;
  }
}
