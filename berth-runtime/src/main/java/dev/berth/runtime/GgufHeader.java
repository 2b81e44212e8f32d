package dev.berth.runtime;

import dev.berth.api.BerthException;
import java.io.BufferedInputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * The metadata of a GGUF language model file: its numbers and short strings (arrays, such as the
 * vocabulary, are skipped), read from the header without loading the weights. Used to size a
 * deployment's memory from the model itself.
 *
 * @param file the file
 * @param bytes its size
 * @param values metadata keys and their values: Long for integers, Double for floats, Boolean,
 *     String
 */
public record GgufHeader(Path file, long bytes, Map<String, Object> values) {
  /** The name a language model's weights have in a version directory. */
  public static final String MODEL_FILE = "model.gguf";

  private static final int MAGIC = 0x46554747; // "GGUF", little-endian
  private static final int MAX_STRING = 1 << 20;

  public GgufHeader {
    values = Map.copyOf(values);
  }

  /**
   * Reads the header.
   *
   * @throws BerthException when the file is not GGUF (version 2 or 3)
   */
  public static GgufHeader read(Path file) {
    try (InputStream raw = new BufferedInputStream(Files.newInputStream(file), 1 << 16)) {
      LittleEndian in = new LittleEndian(raw);
      if (in.int32() != MAGIC) {
        throw new BerthException(file + " is not a GGUF file (no GGUF magic)");
      }
      int version = in.int32();
      if (version < 2 || version > 3) {
        throw new BerthException(file + " is GGUF version " + version + "; Berth reads 2 and 3");
      }
      in.int64(); // tensors
      long count = in.int64();
      Map<String, Object> values = new HashMap<>();
      for (long i = 0; i < count; i++) {
        String key = in.string();
        Object value = in.value(in.int32());
        if (value != null) {
          values.put(key, value);
        }
      }
      return new GgufHeader(file, Files.size(file), values);
    } catch (EOFException e) {
      throw new BerthException(file + " ends inside its GGUF header", e);
    } catch (IOException e) {
      throw new BerthException("cannot read " + file + ": " + e.getMessage(), e);
    }
  }

  /** An integer value, or the default when absent. */
  public long integer(String key, long defaultValue) {
    return values.get(key) instanceof Long l ? l : defaultValue;
  }

  /** {@code general.architecture}, e.g. llama. */
  public String architecture() {
    return values.get("general.architecture") instanceof String s ? s : "llama";
  }

  /**
   * Bytes of the KV cache for this many tokens (all sequences together), with 16-bit keys and
   * values as llama.cpp keeps them by default; 0 when the header does not say the model's shape.
   */
  public long kvCacheBytes(long tokens) {
    String a = architecture();
    long layers = integer(a + ".block_count", 0);
    long embedding = integer(a + ".embedding_length", 0);
    long heads = integer(a + ".attention.head_count", 0);
    long kvHeads = integer(a + ".attention.head_count_kv", heads);
    if (layers == 0 || embedding == 0 || heads == 0) {
      return 0;
    }
    long kvWidth = embedding / heads * kvHeads;
    return 2 /* K and V */ * 2 /* bytes */ * layers * kvWidth * tokens;
  }

  /** GGUF's little-endian values. */
  private static final class LittleEndian {
    private final DataInputStream in;

    LittleEndian(InputStream in) {
      this.in = new DataInputStream(in);
    }

    int int32() throws IOException {
      return Integer.reverseBytes(in.readInt());
    }

    long int64() throws IOException {
      return Long.reverseBytes(in.readLong());
    }

    String string() throws IOException {
      long length = int64();
      if (length < 0 || length > MAX_STRING) {
        skip(length);
        return null;
      }
      byte[] bytes = new byte[(int) length];
      in.readFully(bytes);
      return new String(bytes, StandardCharsets.UTF_8);
    }

    void skip(long n) throws IOException {
      if (n < 0) {
        throw new IOException("negative length " + n);
      }
      in.skipNBytes(n);
    }

    /** A value of GGUF type {@code type}; arrays are skipped (null). */
    Object value(int type) throws IOException {
      return switch (type) {
        case 0 -> (long) in.readUnsignedByte(); // uint8
        case 1 -> (long) in.readByte(); // int8
        case 2 -> (long) Short.toUnsignedInt(Short.reverseBytes(in.readShort())); // uint16
        case 3 -> (long) Short.reverseBytes(in.readShort()); // int16
        case 4 -> Integer.toUnsignedLong(int32()); // uint32
        case 5 -> (long) int32(); // int32
        case 6 -> (double) Float.intBitsToFloat(int32()); // float32
        case 7 -> in.readByte() != 0; // bool
        case 8 -> string();
        case 9 -> { // array: element type, count, elements
          int elementType = int32();
          long count = int64();
          for (long i = 0; i < count; i++) {
            value(elementType);
          }
          yield null;
        }
        case 10, 11 -> int64(); // uint64, int64
        case 12 -> Double.longBitsToDouble(int64()); // float64
        default -> throw new IOException("unknown GGUF value type " + type);
      };
    }
  }
}
