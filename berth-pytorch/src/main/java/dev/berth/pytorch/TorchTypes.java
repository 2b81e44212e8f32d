package dev.berth.pytorch;

import dev.berth.api.DataType;
import dev.berth.api.InvalidInputException;

/** Berth's tensor types and DJL's names for libtorch's. */
final class TorchTypes {
  private TorchTypes() {}

  static ai.djl.ndarray.types.DataType toTorch(DataType type) {
    return switch (type) {
      case FP32 -> ai.djl.ndarray.types.DataType.FLOAT32;
      case FP64 -> ai.djl.ndarray.types.DataType.FLOAT64;
      case FP16 -> ai.djl.ndarray.types.DataType.FLOAT16;
      case INT8 -> ai.djl.ndarray.types.DataType.INT8;
      case UINT8 -> ai.djl.ndarray.types.DataType.UINT8;
      case INT32 -> ai.djl.ndarray.types.DataType.INT32;
      case INT64 -> ai.djl.ndarray.types.DataType.INT64;
      case BOOL -> ai.djl.ndarray.types.DataType.BOOLEAN;
      // DJL 0.36's native layer aborts the process on an INT16 tensor: never hand it one
      case INT16, UINT16, UINT32, UINT64, BYTES ->
          throw new InvalidInputException(unsupported(type));
    };
  }

  /** Whether tensors of this type can go to and come from a TorchScript model. */
  static boolean supported(DataType type) {
    return switch (type) {
      case FP32, FP64, FP16, INT8, UINT8, INT32, INT64, BOOL -> true;
      default -> false;
    };
  }

  static String unsupported(DataType type) {
    return type
        + " tensors cannot go to a TorchScript model through DJL; use FP16, FP32, FP64, INT8, UINT8,"
        + " INT32, INT64 or BOOL";
  }

  /** The Berth type of a libtorch tensor, or null for one Berth cannot carry (BF16, complex). */
  static DataType toBerth(ai.djl.ndarray.types.DataType type) {
    return switch (type) {
      case FLOAT32 -> DataType.FP32;
      case FLOAT64 -> DataType.FP64;
      case FLOAT16 -> DataType.FP16;
      case INT8 -> DataType.INT8;
      case UINT8 -> DataType.UINT8;
      case INT32 -> DataType.INT32;
      case INT64 -> DataType.INT64;
      case BOOLEAN -> DataType.BOOL;
      default -> null;
    };
  }
}
