package dev.berth.api;

import java.util.Locale;

/**
 * Tensor element types of the Open Inference Protocol v2, with their size in bytes (0 for BYTES).
 */
public enum DataType {
  BOOL(1),
  UINT8(1),
  UINT16(2),
  UINT32(4),
  UINT64(8),
  INT8(1),
  INT16(2),
  INT32(4),
  INT64(8),
  FP16(2),
  FP32(4),
  FP64(8),
  BYTES(0);

  private final int byteSize;

  DataType(int byteSize) {
    this.byteSize = byteSize;
  }

  /** Size of one element in bytes; 0 for {@link #BYTES}, whose elements vary in length. */
  public int byteSize() {
    return byteSize;
  }

  /**
   * The data type with the given protocol name (case-insensitive).
   *
   * @throws InvalidInputException if the name is not a protocol data type
   */
  public static DataType fromName(String name) {
    try {
      return valueOf(name.toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException | NullPointerException e) {
      throw new InvalidInputException(
          "unknown datatype '"
              + name
              + "'; use one of BOOL, UINT8, UINT16, UINT32, UINT64, INT8,"
              + " INT16, INT32, INT64, FP16, FP32, FP64, BYTES");
    }
  }
}
