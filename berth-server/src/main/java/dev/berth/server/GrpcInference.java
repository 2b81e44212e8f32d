package dev.berth.server;

import com.google.protobuf.ByteString;
import dev.berth.api.DataType;
import dev.berth.api.InferenceRequest;
import dev.berth.api.InferenceResponse;
import dev.berth.api.InvalidInputException;
import dev.berth.api.ModelMetadata;
import dev.berth.api.Tensor;
import dev.berth.api.TensorSpec;
import dev.berth.runtime.InferenceService;
import dev.berth.server.grpc.GRPCInferenceServiceGrpc;
import dev.berth.server.grpc.InferTensorContents;
import dev.berth.server.grpc.ModelConfigRequest;
import dev.berth.server.grpc.ModelConfigResponse;
import dev.berth.server.grpc.ModelInferRequest;
import dev.berth.server.grpc.ModelInferResponse;
import dev.berth.server.grpc.ModelMetadataRequest;
import dev.berth.server.grpc.ModelMetadataResponse;
import dev.berth.server.grpc.ModelReadyRequest;
import dev.berth.server.grpc.ModelReadyResponse;
import dev.berth.server.grpc.ModelStatisticsRequest;
import dev.berth.server.grpc.ModelStatisticsResponse;
import dev.berth.server.grpc.ServerLiveRequest;
import dev.berth.server.grpc.ServerLiveResponse;
import dev.berth.server.grpc.ServerMetadataRequest;
import dev.berth.server.grpc.ServerMetadataResponse;
import dev.berth.server.grpc.ServerReadyRequest;
import dev.berth.server.grpc.ServerReadyResponse;
import io.grpc.stub.StreamObserver;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * Open Inference Protocol v2 over gRPC: a thin adapter from {@code inference.GRPCInferenceService}
 * to the {@link CallPolicy} the REST routes use, with the same validation, batching, limits,
 * deadlines, metrics ({@code protocol="grpc"}) and error mapping. {@link GrpcCalls} opens and
 * closes each call; its methods are the gRPC port's routes.
 */
final class GrpcInference extends GRPCInferenceServiceGrpc.GRPCInferenceServiceImplBase {
  private final CallPolicy policy;
  private final InferenceService service;
  private final String version;

  GrpcInference(CallPolicy policy, String version) {
    this.policy = policy;
    this.service = policy.service();
    this.version = version;
  }

  @Override
  public void serverLive(ServerLiveRequest request, StreamObserver<ServerLiveResponse> out) {
    answer(out, () -> ServerLiveResponse.newBuilder().setLive(service.live()).build());
  }

  @Override
  public void serverReady(ServerReadyRequest request, StreamObserver<ServerReadyResponse> out) {
    answer(out, () -> ServerReadyResponse.newBuilder().setReady(service.ready()).build());
  }

  @Override
  public void modelReady(ModelReadyRequest request, StreamObserver<ModelReadyResponse> out) {
    answer(
        out,
        () -> {
          String model = CallPolicy.modelName(request.getName());
          String v = CallPolicy.versionName(request.getVersion());
          service.statuses(model); // NOT_FOUND for an unknown model
          return ModelReadyResponse.newBuilder().setReady(service.modelReady(model, v)).build();
        });
  }

  @Override
  public void serverMetadata(
      ServerMetadataRequest request, StreamObserver<ServerMetadataResponse> out) {
    answer(
        out,
        () ->
            ServerMetadataResponse.newBuilder()
                .setName("berth")
                .setVersion(version)
                .addAllExtensions(TritonModels.EXTENSIONS)
                .build());
  }

  @Override
  public void modelConfig(ModelConfigRequest request, StreamObserver<ModelConfigResponse> out) {
    answer(
        out,
        () ->
            ModelConfigResponse.newBuilder()
                .setConfig(
                    TritonModels.config(
                        service.configuration(
                            CallPolicy.modelName(request.getName()),
                            CallPolicy.versionName(request.getVersion()))))
                .build());
  }

  @Override
  public void modelStatistics(
      ModelStatisticsRequest request, StreamObserver<ModelStatisticsResponse> out) {
    answer(
        out,
        () ->
            TritonModels.statistics(
                service.statistics(
                    request.getName().isEmpty() ? null : CallPolicy.modelName(request.getName()),
                    CallPolicy.versionName(request.getVersion()))));
  }

  @Override
  public void modelMetadata(
      ModelMetadataRequest request, StreamObserver<ModelMetadataResponse> out) {
    answer(
        out,
        () -> {
          ModelMetadata m =
              service.metadata(
                  CallPolicy.modelName(request.getName()),
                  CallPolicy.versionName(request.getVersion()));
          ModelMetadataResponse.Builder b =
              ModelMetadataResponse.newBuilder()
                  .setName(m.name())
                  .addAllVersions(m.versions())
                  .setPlatform(m.platform());
          m.inputs().forEach(t -> b.addInputs(spec(t)));
          m.outputs().forEach(t -> b.addOutputs(spec(t)));
          return b.build();
        });
  }

  private static ModelMetadataResponse.TensorMetadata spec(TensorSpec t) {
    ModelMetadataResponse.TensorMetadata.Builder b =
        ModelMetadataResponse.TensorMetadata.newBuilder()
            .setName(t.name())
            .setDatatype(t.datatype().name());
    for (long d : t.shape()) {
      b.addShape(d);
    }
    return b.build();
  }

  @Override
  public void modelInfer(ModelInferRequest request, StreamObserver<ModelInferResponse> out) {
    Call call = GrpcCalls.CALL.get();
    call.protocol = "grpc";
    call.target(request.getModelName(), emptyToNull(request.getModelVersion()));
    try {
      InferenceRequest inference = decode(request);
      io.grpc.Deadline deadline = io.grpc.Context.current().getDeadline();
      CompletableFuture<InferenceResponse> answer =
          policy.infer(
              call,
              inference,
              deadline == null
                  ? null
                  : Duration.ofNanos(Math.max(0, deadline.timeRemaining(TimeUnit.NANOSECONDS))),
              "the client's gRPC deadline");
      // A client that cancels, disconnects or passes its deadline frees its slot at once: the
      // request leaves the queue unrun (it has no one to answer); GrpcCalls records it.
      if (out instanceof io.grpc.stub.ServerCallStreamObserver<ModelInferResponse> observer) {
        observer.setOnCancelHandler(() -> answer.cancel(false));
      }
      answer.whenComplete(
          (response, error) -> {
            if (answer.isCancelled()) {
              return;
            }
            if (error != null) {
              fail(out, call, error);
              return;
            }
            try {
              out.onNext(encode(response));
              out.onCompleted();
            } catch (RuntimeException e) {
              fail(out, call, e);
            }
          });
    } catch (RuntimeException e) {
      fail(out, call, e);
    }
  }

  private void fail(StreamObserver<?> out, Call call, Throwable error) {
    out.onError(policy.fail(call, error).grpc().asRuntimeException());
  }

  private <T> void answer(StreamObserver<T> out, Supplier<T> body) {
    T value;
    try {
      value = body.get();
    } catch (RuntimeException e) {
      fail(out, GrpcCalls.CALL.get(), e);
      return;
    }
    out.onNext(value);
    out.onCompleted();
  }

  private static String emptyToNull(String s) {
    return s == null || s.isEmpty() ? null : s;
  }

  static InferenceRequest decode(ModelInferRequest request) {
    String model = CallPolicy.modelName(request.getModelName());
    String version = CallPolicy.versionName(request.getModelVersion());
    int rawCount = request.getRawInputContentsCount();
    if (rawCount > 0 && rawCount != request.getInputsCount()) {
      throw new InvalidInputException(
          "raw_input_contents has "
              + rawCount
              + " entries for "
              + request.getInputsCount()
              + " inputs; send one per input, in input order");
    }
    List<Tensor> inputs = new ArrayList<>(request.getInputsCount());
    for (int i = 0; i < request.getInputsCount(); i++) {
      ModelInferRequest.InferInputTensor in = request.getInputs(i);
      DataType type = DataType.fromName(in.getDatatype());
      long[] shape = in.getShapeList().stream().mapToLong(Long::longValue).toArray();
      for (long d : shape) {
        if (d < 0) {
          throw new InvalidInputException(
              "input '" + in.getName() + "' has a negative dimension in " + Arrays.toString(shape));
        }
      }
      if (rawCount > 0) {
        if (in.hasContents()) {
          throw new InvalidInputException(
              "input '" + in.getName() + "' has contents and raw_input_contents; send one of them");
        }
        ByteBuffer raw =
            request.getRawInputContents(i).asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
        inputs.add(BinaryTensors.read(in.getName(), type, shape, raw));
      } else {
        inputs.add(typed(in.getName(), type, shape, in.getContents()));
      }
    }
    List<String> outputs =
        request.getOutputsList().stream()
            .map(ModelInferRequest.InferRequestedOutputTensor::getName)
            .toList();
    String id = request.getId().isEmpty() ? null : request.getId();
    return new InferenceRequest(id, model, version, inputs, outputs);
  }

  private static Tensor typed(String name, DataType type, long[] shape, InferTensorContents c) {
    long count = Tensor.elementCount(shape);
    int given =
        switch (type) {
          case BOOL -> c.getBoolContentsCount();
          case INT8, INT16, INT32 -> c.getIntContentsCount();
          case INT64 -> c.getInt64ContentsCount();
          case UINT8, UINT16, UINT32 -> c.getUintContentsCount();
          case UINT64 -> c.getUint64ContentsCount();
          case FP32 -> c.getFp32ContentsCount();
          case FP64 -> c.getFp64ContentsCount();
          case BYTES -> c.getBytesContentsCount();
          case FP16 ->
              throw new InvalidInputException(
                  "input '"
                      + name
                      + "' is FP16, which has no typed contents; send it in"
                      + " raw_input_contents");
        };
    if (given != count) {
      throw new InvalidInputException(
          "input '"
              + name
              + "' has shape "
              + Arrays.toString(shape)
              + " ("
              + count
              + " elements) but its "
              + type
              + " contents hold "
              + given);
    }
    if (type == DataType.BYTES) {
      return Tensor.ofBytes(
          name, shape, c.getBytesContentsList().stream().map(ByteString::toByteArray).toList());
    }
    ByteBuffer b = Tensor.allocate(count * type.byteSize());
    for (int i = 0; i < count; i++) {
      switch (type) {
        case BOOL -> b.put((byte) (c.getBoolContents(i) ? 1 : 0));
        case INT8 ->
            b.put((byte) range(name, type, c.getIntContents(i), Byte.MIN_VALUE, Byte.MAX_VALUE));
        case INT16 ->
            b.putShort(
                (short) range(name, type, c.getIntContents(i), Short.MIN_VALUE, Short.MAX_VALUE));
        case INT32 -> b.putInt(c.getIntContents(i));
        case INT64 -> b.putLong(c.getInt64Contents(i));
        case UINT8 ->
            b.put((byte) range(name, type, Integer.toUnsignedLong(c.getUintContents(i)), 0, 255));
        case UINT16 ->
            b.putShort(
                (short) range(name, type, Integer.toUnsignedLong(c.getUintContents(i)), 0, 65535));
        case UINT32 -> b.putInt(c.getUintContents(i));
        case UINT64 -> b.putLong(c.getUint64Contents(i));
        case FP32 -> b.putFloat(c.getFp32Contents(i));
        case FP64 -> b.putDouble(c.getFp64Contents(i));
        default -> throw new IllegalStateException(type.name());
      }
    }
    b.flip();
    return Tensor.of(name, type, shape, b);
  }

  private static long range(String name, DataType type, long v, long min, long max) {
    if (v < min || v > max) {
      throw new InvalidInputException(
          "tensor '" + name + "': " + v + " is out of range for " + type);
    }
    return v;
  }

  /**
   * Encodes an answer as Triton does, whatever the request used: every output's data in {@code
   * raw_output_contents} (the binary extension's layout), none in typed contents. Triton's clients
   * read only the raw contents, and the raw form is the cheaper one to write and to read.
   */
  static ModelInferResponse encode(InferenceResponse response) {
    ModelInferResponse.Builder b =
        ModelInferResponse.newBuilder()
            .setModelName(response.model())
            .setModelVersion(response.version());
    if (response.id() != null) {
      b.setId(response.id());
    }
    for (Tensor t : response.outputs()) {
      ModelInferResponse.InferOutputTensor.Builder o =
          ModelInferResponse.InferOutputTensor.newBuilder()
              .setName(t.name())
              .setDatatype(t.datatype().name());
      for (long d : t.shape()) {
        o.addShape(d);
      }
      b.addRawOutputContents(ByteString.copyFrom(BinaryTensors.write(t)));
      b.addOutputs(o);
    }
    return b.build();
  }
}
