package dev.berth.server;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import dev.berth.api.DataType;
import dev.berth.api.InvalidInputException;
import dev.berth.api.Tensor;
import java.io.IOException;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;

/**
 * Reads JSON tensor elements of one datatype, flat or nested to any depth, into the little-endian
 * layout of {@link Tensor}. Values are range-checked for their type; a wrong value names the
 * tensor, the type and what came.
 */
final class ElementWriter {
  private static final BigInteger UINT64_MAX = new BigInteger("18446744073709551615");

  private final String tensor;
  private final DataType type;
  private ByteBuffer buffer;
  private final List<byte[]> strings;
  private long count;

  ElementWriter(String tensor, DataType type, long expectedCount) {
    this.tensor = tensor;
    this.type = type;
    if (type == DataType.BYTES) {
      strings = new ArrayList<>((int) Math.min(expectedCount, 1 << 16));
    } else {
      strings = null;
      long initial = Math.max(16, Math.min(expectedCount, 1 << 20) * type.byteSize());
      buffer = ByteBuffer.allocate((int) initial).order(ByteOrder.LITTLE_ENDIAN);
    }
  }

  long count() {
    return count;
  }

  /** Reads the value the parser is on (an array, nested arrays, or one scalar). */
  void read(JsonParser p) throws IOException {
    JsonToken token = p.currentToken();
    if (token == JsonToken.START_ARRAY) {
      int depth = 1;
      while (depth > 0) {
        JsonToken t = p.nextToken();
        if (t == null) {
          throw new InvalidInputException(
              "tensor '" + tensor + "': data ends before its arrays close");
        }
        switch (t) {
          case START_ARRAY -> depth++;
          case END_ARRAY -> depth--;
          case START_OBJECT -> base64(p);
          default -> scalar(p, t);
        }
      }
    } else if (token == JsonToken.START_OBJECT) {
      base64(p);
    } else {
      scalar(p, token);
    }
  }

  /** A BYTES element written as {@code {"b64": "..."}} (TensorFlow Serving's binary values). */
  private void base64(JsonParser p) throws IOException {
    if (type != DataType.BYTES) {
      throw new InvalidInputException(
          "tensor '" + tensor + "' is " + type + "; only BYTES values may be {\"b64\": ...}");
    }
    byte[] value = null;
    while (p.nextToken() == JsonToken.FIELD_NAME) {
      String field = p.currentName();
      JsonToken v = p.nextToken();
      if (!field.equals("b64") || v != JsonToken.VALUE_STRING) {
        throw new InvalidInputException(
            "tensor '" + tensor + "': an object value must be {\"b64\": \"<base64>\"}");
      }
      try {
        value = Base64.getDecoder().decode(p.getText());
      } catch (IllegalArgumentException e) {
        throw new InvalidInputException(
            "tensor '" + tensor + "': the b64 value is not valid base64 (" + e.getMessage() + ")");
      }
    }
    if (value == null) {
      throw new InvalidInputException(
          "tensor '" + tensor + "': an object value must be {\"b64\": \"<base64>\"}");
    }
    count++;
    strings.add(value);
  }

  /** Adds the scalar value the parser is on. */
  void scalar(JsonParser p, JsonToken t) throws IOException {
    count++;
    switch (type) {
      case BYTES -> {
        if (t != JsonToken.VALUE_STRING) {
          throw wrong(p, t, "strings");
        }
        strings.add(p.getText().getBytes(StandardCharsets.UTF_8));
      }
      case BOOL -> {
        ensure(1);
        if (t == JsonToken.VALUE_TRUE) {
          buffer.put((byte) 1);
        } else if (t == JsonToken.VALUE_FALSE) {
          buffer.put((byte) 0);
        } else if (t == JsonToken.VALUE_NUMBER_INT
            && (p.getIntValue() == 0 || p.getIntValue() == 1)) {
          buffer.put((byte) p.getIntValue());
        } else {
          throw wrong(p, t, "true or false");
        }
      }
      case FP16, FP32, FP64 -> {
        double v;
        if (t == JsonToken.VALUE_NUMBER_FLOAT || t == JsonToken.VALUE_NUMBER_INT) {
          v = p.getDoubleValue();
        } else if (t == JsonToken.VALUE_STRING) {
          v = special(p, t);
        } else {
          throw wrong(p, t, "numbers");
        }
        ensure(type.byteSize());
        switch (type) {
          case FP16 -> buffer.putShort(Float.floatToFloat16((float) v));
          case FP32 -> buffer.putFloat((float) v);
          default -> buffer.putDouble(v);
        }
      }
      default -> integer(p, t);
    }
  }

  private double special(JsonParser p, JsonToken t) throws IOException {
    return switch (p.getText()) {
      case "NaN" -> Double.NaN;
      case "Infinity", "inf" -> Double.POSITIVE_INFINITY;
      case "-Infinity", "-inf" -> Double.NEGATIVE_INFINITY;
      default -> throw wrong(p, t, "numbers");
    };
  }

  private void integer(JsonParser p, JsonToken t) throws IOException {
    if (t != JsonToken.VALUE_NUMBER_INT) {
      throw wrong(p, t, "whole numbers");
    }
    ensure(type.byteSize());
    if (type == DataType.UINT64) {
      BigInteger v = p.getBigIntegerValue();
      if (v.signum() < 0 || v.compareTo(UINT64_MAX) > 0) {
        throw outOfRange(v.toString());
      }
      buffer.putLong(v.longValue());
      return;
    }
    if (p.getNumberType() == JsonParser.NumberType.BIG_INTEGER) {
      throw outOfRange(p.getText());
    }
    long v = p.getLongValue();
    switch (type) {
      case INT8 -> buffer.put((byte) check(v, Byte.MIN_VALUE, Byte.MAX_VALUE));
      case UINT8 -> buffer.put((byte) check(v, 0, 255));
      case INT16 -> buffer.putShort((short) check(v, Short.MIN_VALUE, Short.MAX_VALUE));
      case UINT16 -> buffer.putShort((short) check(v, 0, 65535));
      case INT32 -> buffer.putInt((int) check(v, Integer.MIN_VALUE, Integer.MAX_VALUE));
      case UINT32 -> buffer.putInt((int) check(v, 0, 0xFFFFFFFFL));
      default -> buffer.putLong(v);
    }
  }

  private long check(long v, long min, long max) {
    if (v < min || v > max) {
      throw outOfRange(Long.toString(v));
    }
    return v;
  }

  private InvalidInputException outOfRange(String v) {
    return new InvalidInputException(
        "tensor '" + tensor + "': " + v + " is out of range for " + type);
  }

  private InvalidInputException wrong(JsonParser p, JsonToken t, String expected)
      throws IOException {
    String got = t == JsonToken.VALUE_STRING ? "\"" + abbreviate(p.getText()) + "\"" : p.getText();
    return new InvalidInputException(
        "tensor '"
            + tensor
            + "' is "
            + type
            + ", so its data must be "
            + expected
            + "; got "
            + got);
  }

  private static String abbreviate(String s) {
    return s.length() > 40 ? s.substring(0, 40) + "..." : s;
  }

  private void ensure(int bytes) {
    if (buffer.remaining() < bytes) {
      long grown = Math.max((long) buffer.capacity() * 2, buffer.capacity() + bytes);
      if (grown > Integer.MAX_VALUE - 16) {
        throw new InvalidInputException("tensor '" + tensor + "' is larger than 2 GiB");
      }
      ByteBuffer bigger = ByteBuffer.allocate((int) grown).order(ByteOrder.LITTLE_ENDIAN);
      buffer.flip();
      bigger.put(buffer);
      buffer = bigger;
    }
  }

  /** The tensor, after checking the element count matches the shape. */
  Tensor toTensor(long[] shape) {
    long expected = Tensor.elementCount(shape);
    if (expected != count) {
      throw new InvalidInputException(
          "tensor '"
              + tensor
              + "' has shape "
              + java.util.Arrays.toString(shape)
              + " ("
              + expected
              + " elements) but its data holds "
              + count);
    }
    if (type == DataType.BYTES) {
      return Tensor.ofBytes(tensor, shape, strings);
    }
    buffer.flip();
    return Tensor.of(tensor, type, shape, buffer);
  }
}
