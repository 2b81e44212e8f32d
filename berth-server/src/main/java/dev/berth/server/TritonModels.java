package dev.berth.server;

import com.fasterxml.jackson.core.JsonGenerator;
import com.google.protobuf.ByteString;
import com.google.protobuf.Descriptors.EnumValueDescriptor;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.MessageOrBuilder;
import dev.berth.api.TensorSpec;
import dev.berth.runtime.InferenceStatistics;
import dev.berth.runtime.ModelConfiguration;
import dev.berth.server.grpc.DataType;
import dev.berth.server.grpc.InferBatchStatistics;
import dev.berth.server.grpc.InferStatistics;
import dev.berth.server.grpc.ModelConfig;
import dev.berth.server.grpc.ModelDynamicBatching;
import dev.berth.server.grpc.ModelInput;
import dev.berth.server.grpc.ModelInstanceGroup;
import dev.berth.server.grpc.ModelOutput;
import dev.berth.server.grpc.ModelStatistics;
import dev.berth.server.grpc.ModelStatisticsResponse;
import dev.berth.server.grpc.StatisticDuration;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;

/**
 * Triton's model configuration and statistics extensions, built once as the protocol's messages:
 * gRPC sends them as they are, REST writes them as JSON with the same field names (Triton's REST
 * answers are its messages in JSON).
 */
final class TritonModels {
  /** The protocol extensions Berth speaks, for the server metadata of both fronts. */
  static final List<String> EXTENSIONS =
      List.of("model_repository", "binary_tensor_data", "model_configuration", "statistics");

  private TritonModels() {}

  /**
   * A model's configuration as Triton describes one: with {@code max_batch_size} > 0 the tensors'
   * {@code dims} leave out the batch dimension, which Triton's clients then add.
   */
  static ModelConfig config(ModelConfiguration c) {
    boolean batched = c.maxBatchSize() > 0;
    ModelConfig.Builder b =
        ModelConfig.newBuilder()
            .setName(c.name())
            .setPlatform(c.platform())
            .setBackend(c.backend())
            .setMaxBatchSize(c.maxBatchSize());
    for (TensorSpec t : c.inputs()) {
      b.addInput(
          ModelInput.newBuilder()
              .setName(t.name())
              .setDataType(dataType(t.datatype()))
              .addAllDims(dims(t, batched)));
    }
    for (TensorSpec t : c.outputs()) {
      b.addOutput(
          ModelOutput.newBuilder()
              .setName(t.name())
              .setDataType(dataType(t.datatype()))
              .addAllDims(dims(t, batched)));
    }
    if (batched) {
      b.setDynamicBatching(
          ModelDynamicBatching.newBuilder()
              .setMaxQueueDelayMicroseconds(c.maxQueueDelay().toNanos() / 1000));
    }
    b.addInstanceGroup(
        ModelInstanceGroup.newBuilder()
            .setName(c.name())
            .setCount(c.instances())
            .setKind(ModelInstanceGroup.Kind.KIND_CPU));
    return b.build();
  }

  private static List<Long> dims(TensorSpec t, boolean batched) {
    long[] shape = t.shape();
    long[] dims = batched && shape.length > 0 ? Arrays.copyOfRange(shape, 1, shape.length) : shape;
    return Arrays.stream(dims).boxed().toList();
  }

  private static DataType dataType(dev.berth.api.DataType type) {
    return type == dev.berth.api.DataType.BYTES
        ? DataType.TYPE_STRING
        : DataType.valueOf("TYPE_" + type.name());
  }

  /** Models' cumulative figures as Triton reports them. */
  static ModelStatisticsResponse statistics(List<InferenceStatistics.Snapshot> snapshots) {
    ModelStatisticsResponse.Builder b = ModelStatisticsResponse.newBuilder();
    for (InferenceStatistics.Snapshot s : snapshots) {
      ModelStatistics.Builder m =
          ModelStatistics.newBuilder()
              .setName(s.model())
              .setVersion(s.version())
              .setLastInference(s.lastInferenceMillis())
              .setInferenceCount(s.inferenceCount())
              .setExecutionCount(s.executionCount())
              .setInferenceStats(
                  InferStatistics.newBuilder()
                      .setSuccess(duration(s.success()))
                      .setFail(duration(s.fail()))
                      .setQueue(duration(s.queue()))
                      .setComputeInput(duration(s.computeInput()))
                      .setComputeInfer(duration(s.computeInfer()))
                      .setComputeOutput(duration(s.computeOutput())));
      for (InferenceStatistics.Batch batch : s.batches()) {
        m.addBatchStats(
            InferBatchStatistics.newBuilder()
                .setBatchSize(batch.batchSize())
                .setComputeInput(duration(batch.computeInput()))
                .setComputeInfer(duration(batch.computeInfer()))
                .setComputeOutput(duration(batch.computeOutput())));
      }
      b.addModelStats(m);
    }
    return b.build();
  }

  private static StatisticDuration duration(InferenceStatistics.Duration d) {
    return StatisticDuration.newBuilder().setCount(d.count()).setNs(d.nanos()).build();
  }

  /**
   * A message as JSON, as Triton's REST front writes its messages: the fields' proto names, every
   * scalar and list (zero and empty included), sub-messages when set, enums by name, 64-bit numbers
   * as numbers.
   */
  static byte[] json(MessageOrBuilder message) {
    ByteArrayOutputStream out = new ByteArrayOutputStream(512);
    try (JsonGenerator g = OipJson.JSON.createGenerator(out)) {
      write(g, message);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
    return out.toByteArray();
  }

  private static void write(JsonGenerator g, MessageOrBuilder message) throws IOException {
    g.writeStartObject();
    for (FieldDescriptor f : message.getDescriptorForType().getFields()) {
      if (f.isRepeated()) {
        g.writeArrayFieldStart(f.getName());
        for (int i = 0; i < message.getRepeatedFieldCount(f); i++) {
          value(g, f, message.getRepeatedField(f, i));
        }
        g.writeEndArray();
      } else if (f.getJavaType() != FieldDescriptor.JavaType.MESSAGE || message.hasField(f)) {
        g.writeFieldName(f.getName());
        value(g, f, message.getField(f));
      }
    }
    g.writeEndObject();
  }

  private static void value(JsonGenerator g, FieldDescriptor f, Object v) throws IOException {
    switch (f.getJavaType()) {
      case MESSAGE -> write(g, (MessageOrBuilder) v);
      case ENUM -> g.writeString(((EnumValueDescriptor) v).getName());
      case INT -> g.writeNumber((Integer) v);
      case LONG -> g.writeNumber((Long) v);
      case FLOAT -> g.writeNumber((Float) v);
      case DOUBLE -> g.writeNumber((Double) v);
      case BOOLEAN -> g.writeBoolean((Boolean) v);
      case STRING -> g.writeString((String) v);
      case BYTE_STRING ->
          g.writeString(Base64.getEncoder().encodeToString(((ByteString) v).toByteArray()));
    }
  }
}
