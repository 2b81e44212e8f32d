package dev.berth.tensorflow;

import dev.berth.api.DataType;
import dev.berth.api.Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;
import org.bytedeco.javacpp.BytePointer;
import org.tensorflow.ndarray.Shape;
import org.tensorflow.ndarray.buffer.ByteDataBuffer;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.ndarray.buffer.DataStorageVisitor;
import org.tensorflow.types.TString;
import org.tensorflow.types.family.TType;

/**
 * Copies between Berth's tensors (little-endian buffers, heap or direct) and TensorFlow's (native
 * memory in the host's order, little-endian on every platform TensorFlow Java ships for): one bulk
 * copy each way. TensorFlow Java's own buffer copies fall back to a byte-by-byte loop between a
 * direct NIO buffer and native memory, so the copies here go through a {@link ByteBuffer} view of
 * the tensor's native memory instead.
 */
final class TensorCopies {
  private TensorCopies() {}

  /** A new TensorFlow tensor holding a copy of {@code t}; the caller closes it. */
  static org.tensorflow.Tensor toTensorflow(Tensor t) {
    Shape shape = Shape.of(t.shape());
    if (t.datatype() == DataType.BYTES) {
      return TString.tensorOfBytes(
          shape, DataBuffers.ofObjects(t.elements().toArray(new byte[0][])));
    }
    ByteBuffer data = t.data();
    Class<? extends TType> type = TensorflowTypes.tensorClass(t.datatype());
    org.tensorflow.Tensor out = org.tensorflow.Tensor.of(type, shape, data.remaining(), x -> {});
    try {
      if (data.remaining() > 0) {
        ByteDataBuffer memory = out.asRawTensor().data();
        ByteBuffer view = view(memory, data.remaining());
        if (view != null) {
          view.put(data);
        } else {
          byte[] bytes = new byte[data.remaining()];
          data.get(bytes);
          memory.write(bytes);
        }
      }
      return out;
    } catch (RuntimeException e) {
      out.close();
      throw e;
    }
  }

  /** A Berth tensor holding a copy of a TensorFlow tensor of Berth type {@code datatype}. */
  static Tensor fromTensorflow(String name, DataType datatype, org.tensorflow.Tensor t) {
    long[] shape = t.shape().asArray();
    if (datatype == DataType.BYTES) {
      List<byte[]> elements = new ArrayList<>();
      ((TString) t).asBytes().scalars().forEach(s -> elements.add(s.getObject()));
      return Tensor.ofBytes(name, shape, elements);
    }
    long bytes = Tensor.elementCount(shape) * datatype.byteSize();
    ByteBuffer out = Tensor.allocate(bytes);
    if (bytes > 0) {
      ByteDataBuffer memory = t.asRawTensor().data();
      ByteBuffer view = view(memory, bytes);
      if (view != null) {
        out.put(view);
      } else {
        memory.read(out.array(), out.arrayOffset(), (int) bytes);
      }
      out.flip();
    }
    return Tensor.of(name, datatype, shape, out);
  }

  /**
   * A little-endian buffer over the first {@code bytes} of a tensor's native memory, or null when
   * the memory is not native (a Java array).
   */
  private static ByteBuffer view(ByteDataBuffer memory, long bytes) {
    Long address =
        memory.accept(
            new DataStorageVisitor<Long>() {
              @Override
              public Long visit(long address, long length, long scale) {
                return length * scale >= bytes ? address : null;
              }

              @Override
              public Long fallback() {
                return null;
              }
            });
    if (address == null || address == 0) {
      return null;
    }
    ByteBuffer view = new NativeMemory(address, bytes).asByteBuffer();
    if (view.capacity() != bytes) {
      throw new IllegalStateException(
          "a view of " + bytes + " bytes of native memory holds " + view.capacity());
    }
    return view.order(ByteOrder.LITTLE_ENDIAN);
  }

  /** A JavaCPP pointer to memory TensorFlow owns: it frees nothing. */
  private static final class NativeMemory extends BytePointer {
    NativeMemory(long address, long bytes) {
      this.address = address;
      this.limit = bytes;
      this.capacity = bytes;
    }
  }
}
