package dev.berth.tensorflow;

import dev.berth.api.DataType;
import java.util.Optional;
import org.tensorflow.types.TBool;
import org.tensorflow.types.TFloat16;
import org.tensorflow.types.TFloat32;
import org.tensorflow.types.TFloat64;
import org.tensorflow.types.TInt32;
import org.tensorflow.types.TInt64;
import org.tensorflow.types.TString;
import org.tensorflow.types.TUint16;
import org.tensorflow.types.TUint8;
import org.tensorflow.types.family.TType;

/**
 * TensorFlow element types that Berth serves, and their TensorFlow Java tensor classes. TensorFlow
 * Java 1.1 has no tensor class for DT_INT8, DT_INT16, DT_UINT32 or DT_UINT64, so it can neither
 * feed nor fetch them; DT_BFLOAT16 has no Open Inference Protocol type.
 */
final class TensorflowTypes {
  /** The types a signature's tensors may have, for messages. */
  static final String SUPPORTED =
      "DT_FLOAT, DT_DOUBLE, DT_HALF, DT_INT32, DT_INT64, DT_UINT8, DT_UINT16, DT_BOOL, DT_STRING";

  private TensorflowTypes() {}

  /** Berth's type of a TensorFlow element type, empty when Berth cannot carry it. */
  static Optional<DataType> toDataType(org.tensorflow.proto.DataType type) {
    return Optional.ofNullable(
        switch (type) {
          case DT_FLOAT -> DataType.FP32;
          case DT_DOUBLE -> DataType.FP64;
          case DT_HALF -> DataType.FP16;
          case DT_INT32 -> DataType.INT32;
          case DT_INT64 -> DataType.INT64;
          case DT_UINT8 -> DataType.UINT8;
          case DT_UINT16 -> DataType.UINT16;
          case DT_BOOL -> DataType.BOOL;
          case DT_STRING -> DataType.BYTES;
          default -> null;
        });
  }

  /** TensorFlow Java's tensor class for one of the types {@link #toDataType} accepts. */
  static Class<? extends TType> tensorClass(DataType type) {
    return switch (type) {
      case FP32 -> TFloat32.class;
      case FP64 -> TFloat64.class;
      case FP16 -> TFloat16.class;
      case INT32 -> TInt32.class;
      case INT64 -> TInt64.class;
      case UINT8 -> TUint8.class;
      case UINT16 -> TUint16.class;
      case BOOL -> TBool.class;
      case BYTES -> TString.class;
      default -> throw new IllegalArgumentException(type + " has no TensorFlow Java tensor class");
    };
  }
}
