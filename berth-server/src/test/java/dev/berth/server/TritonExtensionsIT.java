package dev.berth.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.berth.server.grpcclient.DataType;
import dev.berth.server.grpcclient.GRPCInferenceServiceGrpc;
import dev.berth.server.grpcclient.ModelConfig;
import dev.berth.server.grpcclient.ModelConfigRequest;
import dev.berth.server.grpcclient.ModelInstanceGroup;
import dev.berth.server.grpcclient.ModelStatistics;
import dev.berth.server.grpcclient.ModelStatisticsRequest;
import dev.berth.server.grpcclient.ServerMetadataRequest;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Triton's model configuration and statistics extensions, over REST and through stubs generated
 * from the protocol's messages, as Triton's own tools (perf_analyzer, the model analyzer, the
 * clients' get_model_config and get_inference_statistics) call them.
 */
class TritonExtensionsIT {
  @TempDir static Path dir;
  private static MiniLmServer rest;
  private static GrpcServer grpc;
  private static ManagedChannel channel;
  private static GRPCInferenceServiceGrpc.GRPCInferenceServiceBlockingStub stub;

  @BeforeAll
  static void start() {
    rest =
        MiniLmServer.start(
            MiniLmServer.repository(
                dir, MiniLmServer.modelYaml("{max-batch-size: 16, max-queue-delay: 2ms}", "30s")));
    grpc = GrpcServer.start(rest.server().service(), "127.0.0.1", 0, 1 << 20, "test");
    channel = ManagedChannelBuilder.forAddress("127.0.0.1", grpc.port()).usePlaintext().build();
    stub =
        GRPCInferenceServiceGrpc.newBlockingStub(channel).withDeadlineAfter(60, TimeUnit.SECONDS);
  }

  @AfterAll
  static void stop() throws Exception {
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    grpc.close();
    rest.server().close();
  }

  @Test
  void bothFrontsListTheExtensions() {
    List<String> expected =
        List.of("model_repository", "binary_tensor_data", "model_configuration", "statistics");
    JsonNode metadata = rest.get("/v2").json(200);
    List<String> listed = new java.util.ArrayList<>();
    metadata.get("extensions").forEach(e -> listed.add(e.asText()));
    assertEquals(expected, listed);
    assertEquals(
        expected,
        stub.serverMetadata(ServerMetadataRequest.getDefaultInstance()).getExtensionsList());
  }

  @Test
  void theConfigurationSaysHowTheModelIsServed() {
    for (String path : List.of("/v2/models/minilm/config", "/v2/models/minilm/versions/1/config")) {
      JsonNode c = rest.get(path).json(200);
      assertEquals("minilm", c.get("name").asText(), path);
      assertEquals("onnxruntime_onnx", c.get("platform").asText());
      assertEquals("onnxruntime", c.get("backend").asText());
      assertEquals(16, c.get("max_batch_size").asInt());
      // the batch dimension is left out of dims, as Triton's clients expect
      assertEquals("text", c.get("input").get(0).get("name").asText());
      assertEquals("TYPE_STRING", c.get("input").get(0).get("data_type").asText());
      assertEquals(0, c.get("input").get(0).get("dims").size());
      assertEquals("embedding", c.get("output").get(0).get("name").asText());
      assertEquals("TYPE_FP32", c.get("output").get(0).get("data_type").asText());
      assertEquals(List.of(384), ints(c.get("output").get(0).get("dims")));
      assertEquals(2000, c.get("dynamic_batching").get("max_queue_delay_microseconds").asLong());
      assertEquals("KIND_CPU", c.get("instance_group").get(0).get("kind").asText());
      assertEquals(1, c.get("instance_group").get(0).get("count").asInt());
    }

    ModelConfig g =
        stub.modelConfig(ModelConfigRequest.newBuilder().setName("minilm").build()).getConfig();
    assertEquals("minilm", g.getName());
    assertEquals("onnxruntime_onnx", g.getPlatform());
    assertEquals("onnxruntime", g.getBackend());
    assertEquals(16, g.getMaxBatchSize());
    assertEquals(DataType.TYPE_STRING, g.getInput(0).getDataType());
    assertEquals(0, g.getInput(0).getDimsCount());
    assertEquals(DataType.TYPE_FP32, g.getOutput(0).getDataType());
    assertEquals(List.of(384L), g.getOutput(0).getDimsList());
    assertEquals(2000, g.getDynamicBatching().getMaxQueueDelayMicroseconds());
    assertEquals(ModelInstanceGroup.Kind.KIND_CPU, g.getInstanceGroup(0).getKind());
  }

  @Test
  void unknownModelsAndVersionsAreNotFound() {
    assertEquals(404, rest.get("/v2/models/nope/config").status());
    assertEquals(404, rest.get("/v2/models/minilm/versions/9/config").status());
    assertEquals(404, rest.get("/v2/models/nope/stats").status());
    assertEquals(404, rest.get("/v2/models/minilm/versions/9/stats").status());
    StatusRuntimeException e =
        assertThrows(
            StatusRuntimeException.class,
            () -> stub.modelConfig(ModelConfigRequest.newBuilder().setName("nope").build()));
    assertEquals(Status.Code.NOT_FOUND, e.getStatus().getCode());
    e =
        assertThrows(
            StatusRuntimeException.class,
            () ->
                stub.modelStatistics(
                    ModelStatisticsRequest.newBuilder().setName("minilm").setVersion("9").build()));
    assertEquals(Status.Code.NOT_FOUND, e.getStatus().getCode());
  }

  @Test
  void statisticsCountWhatHappened() {
    ModelStatistics before = grpcStats();
    int requests = 6;
    for (int i = 0; i < requests; i++) {
      rest.post(
              "/v2/models/minilm/infer",
              MiniLmServer.textRequest(List.of("sentence " + i, "and its neighbour")))
          .json(200);
    }
    assertEquals(
        400,
        rest.post(
                "/v2/models/minilm/infer",
                "{\"inputs\":[{\"name\":\"text\",\"datatype\":\"FP32\",\"shape\":[1],"
                    + "\"data\":[1.0]}]}")
            .status());

    ModelStatistics after = grpcStats();
    var s = after.getInferenceStats();
    var b = before.getInferenceStats();
    assertEquals(requests, s.getSuccess().getCount() - b.getSuccess().getCount());
    assertTrue(s.getSuccess().getNs() > b.getSuccess().getNs());
    assertEquals(1, s.getFail().getCount() - b.getFail().getCount());
    assertEquals(2L * requests, after.getInferenceCount() - before.getInferenceCount());
    assertEquals(requests, s.getQueue().getCount() - b.getQueue().getCount());
    long executions = after.getExecutionCount() - before.getExecutionCount();
    assertTrue(executions >= 1 && executions <= requests, "executions: " + executions);
    assertEquals(after.getExecutionCount(), s.getComputeInfer().getCount());
    assertEquals(after.getExecutionCount(), s.getComputeInput().getCount());
    assertEquals(after.getExecutionCount(), s.getComputeOutput().getCount());
    assertTrue(s.getComputeInfer().getNs() > 0 && s.getComputeInput().getNs() > 0);
    assertTrue(after.getLastInference() >= System.currentTimeMillis() - 60_000);
    // per batch size: every engine call counted once, under the rows it ran
    long perSize =
        after.getBatchStatsList().stream().mapToLong(x -> x.getComputeInfer().getCount()).sum();
    assertEquals(after.getExecutionCount(), perSize);
    assertFalse(after.getBatchStatsList().isEmpty());
    after.getBatchStatsList().forEach(x -> assertTrue(x.getBatchSize() % 2 == 0, x.toString()));

    // REST reads the same figures, for one model and for all
    for (String path :
        List.of(
            "/v2/models/stats", "/v2/models/minilm/stats", "/v2/models/minilm/versions/1/stats")) {
      JsonNode m = rest.get(path).json(200).get("model_stats").get(0);
      assertEquals("minilm", m.get("name").asText(), path);
      assertEquals("1", m.get("version").asText());
      assertEquals(
          s.getSuccess().getCount(), m.get("inference_stats").get("success").get("count").asLong());
      assertEquals(after.getExecutionCount(), m.get("execution_count").asLong());
    }
  }

  private static ModelStatistics grpcStats() {
    List<ModelStatistics> all =
        stub.modelStatistics(ModelStatisticsRequest.newBuilder().setName("minilm").build())
            .getModelStatsList();
    assertEquals(1, all.size());
    assertEquals("1", all.get(0).getVersion());
    return all.get(0);
  }

  private static List<Integer> ints(JsonNode array) {
    List<Integer> out = new java.util.ArrayList<>();
    array.forEach(n -> out.add(n.asInt()));
    return out;
  }
}
