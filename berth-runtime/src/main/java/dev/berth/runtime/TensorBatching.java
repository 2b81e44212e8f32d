package dev.berth.runtime;

import dev.berth.api.DataType;
import dev.berth.api.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/** Joins tensors along the batch (first) dimension and splits them back. */
public final class TensorBatching {
  private TensorBatching() {}

  /**
   * Joins tensors of one name, datatype and trailing shape along dimension 0. Numeric data goes
   * into a direct buffer, which native engines read without another copy.
   */
  public static Tensor concat(List<Tensor> parts) {
    Tensor first = parts.get(0);
    if (parts.size() == 1) {
      return first;
    }
    long rows = 0;
    for (Tensor t : parts) {
      if (t.datatype() != first.datatype()
          || t.rank() != first.rank()
          || !Arrays.equals(trailing(t.shape()), trailing(first.shape()))) {
        throw new IllegalArgumentException(
            "cannot join " + t + " with " + first + ": datatype or trailing shape differ");
      }
      rows += t.dim(0);
    }
    long[] shape = first.shape();
    shape[0] = rows;
    if (first.datatype() == DataType.BYTES) {
      List<byte[]> all = new ArrayList<>();
      parts.forEach(t -> all.addAll(t.elements()));
      return Tensor.ofBytes(first.name(), shape, all);
    }
    long bytes = 0;
    for (Tensor t : parts) {
      bytes += t.data().remaining();
    }
    ByteBuffer joined =
        ByteBuffer.allocateDirect(Math.toIntExact(bytes)).order(ByteOrder.LITTLE_ENDIAN);
    parts.forEach(t -> joined.put(t.data()));
    joined.flip();
    return Tensor.of(first.name(), first.datatype(), shape, joined);
  }

  /** Splits a tensor along dimension 0 into parts of the given row counts. */
  public static List<Tensor> split(Tensor tensor, int[] rows) {
    if (rows.length == 1) {
      return List.of(tensor);
    }
    long[] shape = tensor.shape();
    long rowElements = shape[0] == 0 ? 0 : tensor.elementCount() / shape[0];
    List<Tensor> out = new ArrayList<>(rows.length);
    long offset = 0;
    for (int r : rows) {
      long[] partShape = shape.clone();
      partShape[0] = r;
      if (tensor.datatype() == DataType.BYTES) {
        out.add(
            Tensor.ofBytes(
                tensor.name(),
                partShape,
                tensor.elements().subList((int) offset, (int) (offset + r * rowElements))));
      } else {
        int size = tensor.datatype().byteSize();
        ByteBuffer data = tensor.data();
        data.position(Math.toIntExact(offset * size));
        data.limit(Math.toIntExact((offset + r * rowElements) * size));
        out.add(Tensor.of(tensor.name(), tensor.datatype(), partShape, data.slice()));
      }
      offset += r * rowElements;
    }
    return out;
  }

  private static long[] trailing(long[] shape) {
    return Arrays.copyOfRange(shape, 1, shape.length);
  }
}
