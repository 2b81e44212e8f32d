package dev.berth.server;

import dev.berth.api.DataType;
import dev.berth.api.InvalidInputException;
import dev.berth.api.Tensor;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * The binary tensor extension's raw layout: little-endian elements, and for BYTES each element as a
 * 4-byte little-endian length followed by its bytes. Sizes that do not match the shape and datatype
 * are refused with the numbers that disagree.
 */
final class BinaryTensors {
  private BinaryTensors() {}

  static Tensor read(String name, DataType type, long[] shape, ByteBuffer raw) {
    long count = Tensor.elementCount(shape);
    if (type != DataType.BYTES) {
      long expected = count * type.byteSize();
      if (raw.remaining() != expected) {
        throw new InvalidInputException(
            "input '"
                + name
                + "' is "
                + type
                + Arrays.toString(shape)
                + ", which takes "
                + expected
                + " bytes, but its binary data has "
                + raw.remaining());
      }
      return Tensor.of(name, type, shape, raw);
    }
    ByteBuffer in = raw.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    List<byte[]> elements = new ArrayList<>((int) Math.min(count, 1 << 16));
    while (in.hasRemaining()) {
      if (in.remaining() < 4) {
        throw new InvalidInputException(
            "input '"
                + name
                + "': BYTES element "
                + elements.size()
                + " has a cut-off length prefix");
      }
      long length = Integer.toUnsignedLong(in.getInt());
      if (length > in.remaining()) {
        throw new InvalidInputException(
            "input '"
                + name
                + "': BYTES element "
                + elements.size()
                + " says "
                + length
                + " bytes but only "
                + in.remaining()
                + " remain in its binary data");
      }
      byte[] element = new byte[(int) length];
      in.get(element);
      elements.add(element);
      if (elements.size() > count) {
        break;
      }
    }
    if (elements.size() != count) {
      throw new InvalidInputException(
          "input '"
              + name
              + "' has shape "
              + Arrays.toString(shape)
              + " ("
              + count
              + " elements) but its binary data holds "
              + (elements.size() > count ? "more" : Integer.toString(elements.size())));
    }
    return Tensor.ofBytes(name, shape, elements);
  }

  /** The raw bytes of a tensor. */
  static byte[] write(Tensor t) {
    if (t.datatype() != DataType.BYTES) {
      ByteBuffer d = t.data();
      byte[] out = new byte[d.remaining()];
      d.get(out);
      return out;
    }
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] length = new byte[4];
    for (byte[] e : t.elements()) {
      ByteBuffer.wrap(length).order(ByteOrder.LITTLE_ENDIAN).putInt(e.length);
      out.writeBytes(length);
      out.writeBytes(e);
    }
    return out.toByteArray();
  }
}
