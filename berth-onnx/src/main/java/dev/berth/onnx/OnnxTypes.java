package dev.berth.onnx;

import ai.onnxruntime.OnnxJavaType;
import ai.onnxruntime.TensorInfo;
import dev.berth.api.DataType;
import java.util.Optional;

/** Maps ONNX element types to protocol datatypes and back. */
final class OnnxTypes {
  private OnnxTypes() {}

  /** The protocol datatype of an ONNX element type, if ONNX Runtime's Java API can carry it. */
  static Optional<DataType> toDataType(TensorInfo.OnnxTensorType type) {
    return Optional.ofNullable(
        switch (type) {
          case ONNX_TENSOR_ELEMENT_DATA_TYPE_BOOL -> DataType.BOOL;
          case ONNX_TENSOR_ELEMENT_DATA_TYPE_UINT8 -> DataType.UINT8;
          case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT8 -> DataType.INT8;
          case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT16 -> DataType.INT16;
          case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT32 -> DataType.INT32;
          case ONNX_TENSOR_ELEMENT_DATA_TYPE_INT64 -> DataType.INT64;
          case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT16 -> DataType.FP16;
          case ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT -> DataType.FP32;
          case ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE -> DataType.FP64;
          case ONNX_TENSOR_ELEMENT_DATA_TYPE_STRING -> DataType.BYTES;
          default -> null; // UINT16/32/64, BFLOAT16, FLOAT8, COMPLEX: not in ORT's Java API or OIP
        });
  }

  static OnnxJavaType toJavaType(DataType type) {
    return switch (type) {
      case BOOL -> OnnxJavaType.BOOL;
      case UINT8 -> OnnxJavaType.UINT8;
      case INT8 -> OnnxJavaType.INT8;
      case INT16 -> OnnxJavaType.INT16;
      case INT32 -> OnnxJavaType.INT32;
      case INT64 -> OnnxJavaType.INT64;
      case FP16 -> OnnxJavaType.FLOAT16;
      case FP32 -> OnnxJavaType.FLOAT;
      case FP64 -> OnnxJavaType.DOUBLE;
      case BYTES -> OnnxJavaType.STRING;
      default -> throw new IllegalArgumentException(type + " has no ONNX Runtime Java type");
    };
  }
}
