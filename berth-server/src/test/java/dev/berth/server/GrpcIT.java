package dev.berth.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.berth.server.grpcclient.GRPCInferenceServiceGrpc;
import dev.berth.server.grpcclient.InferTensorContents;
import dev.berth.server.grpcclient.ModelInferRequest;
import dev.berth.server.grpcclient.ModelInferResponse;
import dev.berth.server.grpcclient.ModelMetadataRequest;
import dev.berth.server.grpcclient.ModelMetadataResponse;
import dev.berth.server.grpcclient.ModelReadyRequest;
import dev.berth.server.grpcclient.ServerLiveRequest;
import dev.berth.server.grpcclient.ServerMetadataRequest;
import dev.berth.server.grpcclient.ServerReadyRequest;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * inference.GRPCInferenceService over a real socket with MiniLM, driven by stubs generated from a
 * separate copy of the published proto; answers are checked against the REST JSON path's.
 */
class GrpcIT {
  @TempDir static Path dir;
  private static MiniLmServer rest;
  private static GrpcServer grpc;
  private static ManagedChannel channel;
  private static GRPCInferenceServiceGrpc.GRPCInferenceServiceBlockingStub stub;

  @BeforeAll
  static void start() {
    rest = MiniLmServer.start(MiniLmServer.repository(dir));
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

  private static ModelInferRequest.InferInputTensor.Builder text(int n) {
    return ModelInferRequest.InferInputTensor.newBuilder()
        .setName("text")
        .setDatatype("BYTES")
        .addShape(n);
  }

  @Test
  void healthAndMetadata() {
    assertTrue(stub.serverLive(ServerLiveRequest.getDefaultInstance()).getLive());
    assertTrue(stub.serverReady(ServerReadyRequest.getDefaultInstance()).getReady());
    assertTrue(
        stub.serverMetadata(ServerMetadataRequest.getDefaultInstance())
            .getExtensionsList()
            .contains("binary_tensor_data"));
    assertTrue(
        stub.modelReady(ModelReadyRequest.newBuilder().setName("minilm").build()).getReady());
    assertTrue(
        stub.modelReady(ModelReadyRequest.newBuilder().setName("minilm").setVersion("1").build())
            .getReady());
    ModelMetadataResponse meta =
        stub.modelMetadata(ModelMetadataRequest.newBuilder().setName("minilm").build());
    assertEquals(List.of("1"), meta.getVersionsList());
    assertEquals("onnxruntime_onnx", meta.getPlatform());
    assertEquals("text", meta.getInputs(0).getName());
    assertEquals("BYTES", meta.getInputs(0).getDatatype());
    assertEquals("embedding", meta.getOutputs(0).getName());
    assertEquals(List.of(-1L, 384L), meta.getOutputs(0).getShapeList());
  }

  @Test
  void typedContentsAnswerAsRestDoes() {
    List<String> sentences = List.of("Berth serves models", "A cat sat on the mat");
    ModelInferResponse r =
        stub.modelInfer(
            ModelInferRequest.newBuilder()
                .setModelName("minilm")
                .setId("req-7")
                .addInputs(
                    text(2)
                        .setContents(
                            InferTensorContents.newBuilder()
                                .addBytesContents(ByteString.copyFromUtf8(sentences.get(0)))
                                .addBytesContents(ByteString.copyFromUtf8(sentences.get(1)))))
                .build());
    assertEquals("req-7", r.getId());
    assertEquals("1", r.getModelVersion());
    assertEquals(List.of(2L, 384L), r.getOutputs(0).getShapeList());
    float[][] json =
        MiniLmServer.embeddings(
            rest.post("/v2/models/minilm/infer", MiniLmServer.textRequest(sentences)).json(200));
    // answered in raw contents, as Triton answers, though the request sent typed ones
    assertFalse(r.getOutputs(0).hasContents(), "no typed contents in the answer");
    assertEquals(1, r.getRawOutputContentsCount());
    java.nio.FloatBuffer values =
        r.getRawOutputContents(0)
            .asReadOnlyByteBuffer()
            .order(ByteOrder.LITTLE_ENDIAN)
            .asFloatBuffer();
    assertEquals(2 * 384, values.remaining());
    for (int row = 0; row < 2; row++) {
      for (int k = 0; k < 384; k++) {
        assertEquals(json[row][k], values.get(row * 384 + k));
      }
    }
  }

  @Test
  void rawContentsInAndOut() {
    ByteArrayOutputStream raw = new ByteArrayOutputStream();
    byte[] s = "hello world".getBytes(StandardCharsets.UTF_8);
    raw.writeBytes(ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(s.length).array());
    raw.writeBytes(s);
    ModelInferResponse r =
        stub.modelInfer(
            ModelInferRequest.newBuilder()
                .setModelName("minilm")
                .addInputs(text(1))
                .addRawInputContents(ByteString.copyFrom(raw.toByteArray()))
                .build());
    assertEquals(1, r.getRawOutputContentsCount());
    ByteBuffer floats =
        r.getRawOutputContents(0).asReadOnlyByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    float[] grpcVector = new float[384];
    floats.asFloatBuffer().get(grpcVector);
    float[] json =
        MiniLmServer.embeddings(
            rest.post("/v2/models/minilm/infer", MiniLmServer.textRequest(List.of("hello world")))
                .json(200))[0];
    assertArrayEquals(json, grpcVector);
  }

  @Test
  void errorsMapToTheStatusCodesRestUses() {
    StatusRuntimeException unknown =
        assertThrows(
            StatusRuntimeException.class,
            () ->
                stub.modelInfer(
                    ModelInferRequest.newBuilder()
                        .setModelName("nope")
                        .addInputs(text(0).setContents(InferTensorContents.getDefaultInstance()))
                        .build()));
    assertEquals(Status.Code.NOT_FOUND, unknown.getStatus().getCode());
    StatusRuntimeException badInput =
        assertThrows(
            StatusRuntimeException.class,
            () ->
                stub.modelInfer(
                    ModelInferRequest.newBuilder()
                        .setModelName("minilm")
                        .addInputs(
                            ModelInferRequest.InferInputTensor.newBuilder()
                                .setName("pixels")
                                .setDatatype("FP32")
                                .addShape(1)
                                .setContents(InferTensorContents.newBuilder().addFp32Contents(1)))
                        .build()));
    assertEquals(Status.Code.INVALID_ARGUMENT, badInput.getStatus().getCode());
    assertTrue(badInput.getStatus().getDescription().contains("no input 'pixels'"));
    StatusRuntimeException count =
        assertThrows(
            StatusRuntimeException.class,
            () ->
                stub.modelInfer(
                    ModelInferRequest.newBuilder()
                        .setModelName("minilm")
                        .addInputs(text(2))
                        .addRawInputContents(ByteString.copyFrom(new byte[] {1, 0, 0, 0, 'a'}))
                        .build()));
    assertEquals(Status.Code.INVALID_ARGUMENT, count.getStatus().getCode());
    StatusRuntimeException notFound =
        assertThrows(
            StatusRuntimeException.class,
            () -> stub.modelMetadata(ModelMetadataRequest.newBuilder().setName("nope").build()));
    assertEquals(Status.Code.NOT_FOUND, notFound.getStatus().getCode());
    assertTrue(stub.serverReady(ServerReadyRequest.getDefaultInstance()).getReady());
  }

  @Test
  void grpcRequestsAreCountedUnderTheirOwnProtocol() {
    stub.modelInfer(
        ModelInferRequest.newBuilder()
            .setModelName("minilm")
            .addInputs(
                text(1)
                    .setContents(
                        InferTensorContents.newBuilder()
                            .addBytesContents(ByteString.copyFromUtf8("x"))))
            .build());
    String metrics = rest.get("/metrics").body();
    assertTrue(
        metrics.contains("protocol=\"grpc\"") && metrics.contains("code=\"OK\""),
        "no gRPC series in:\n" + metrics);
    assertFalse(metrics.isEmpty());
  }
}
