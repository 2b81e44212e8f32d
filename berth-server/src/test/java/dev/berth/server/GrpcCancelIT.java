package dev.berth.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import com.google.protobuf.ByteString;
import dev.berth.server.grpcclient.GRPCInferenceServiceGrpc;
import dev.berth.server.grpcclient.InferTensorContents;
import dev.berth.server.grpcclient.ModelInferRequest;
import dev.berth.server.grpcclient.ModelInferResponse;
import io.grpc.Context;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.stub.StreamObserver;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A gRPC client that gives up frees its slot at once: its request, queued behind a long one, leaves
 * the queue unrun and is counted as CANCELLED, while the long one carries on.
 */
class GrpcCancelIT {
  private static final Map<String, String> MINILM = Map.of("model", MiniLmServer.MODEL);

  @TempDir static Path dir;
  private static MiniLmServer rest;
  private static GrpcServer grpc;
  private static ManagedChannel channel;

  @BeforeAll
  static void start() {
    // one engine instance, so that a second request waits in the queue behind the first
    rest =
        MiniLmServer.start(
            MiniLmServer.repository(dir, MiniLmServer.modelYaml("{max-batch-size: 256}", "120s")));
    grpc = GrpcServer.start(rest.server().service(), "127.0.0.1", 0, 64 << 20, "test");
    channel = ManagedChannelBuilder.forAddress("127.0.0.1", grpc.port()).usePlaintext().build();
  }

  @AfterAll
  static void stop() throws Exception {
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    grpc.close();
    rest.server().close();
  }

  private static double metric(String name, Map<String, String> labels) {
    return MiniLmServer.value(rest.metrics(), name, labels);
  }

  @Test
  void aCancelledCallLeavesTheQueueUnrunAndFreesItsSlot() throws Exception {
    // a long request: 128 sentences of about 250 tokens keep the engine busy for seconds
    List<String> long_ = new ArrayList<>();
    for (int i = 0; i < 128; i++) {
      long_.add(("sentence " + i + " keeps the engine busy for a while; ").repeat(25));
    }
    CompletableFuture<MiniLmServer.Response> busy =
        rest.postAsync("/v2/models/minilm/infer", MiniLmServer.textRequest(long_).toString());
    await()
        .atMost(Duration.ofSeconds(30))
        .until(() -> metric("berth_inflight_requests", MINILM) == 1);

    Context.CancellableContext context = Context.current().withCancellation();
    CompletableFuture<Throwable> outcome = new CompletableFuture<>();
    context.run(
        () ->
            GRPCInferenceServiceGrpc.newStub(channel)
                .modelInfer(
                    ModelInferRequest.newBuilder()
                        .setModelName("minilm")
                        .addInputs(
                            ModelInferRequest.InferInputTensor.newBuilder()
                                .setName("text")
                                .setDatatype("BYTES")
                                .addShape(1)
                                .setContents(
                                    InferTensorContents.newBuilder()
                                        .addBytesContents(ByteString.copyFromUtf8("given up on"))))
                        .build(),
                    new StreamObserver<ModelInferResponse>() {
                      @Override
                      public void onNext(ModelInferResponse value) {}

                      @Override
                      public void onError(Throwable t) {
                        outcome.complete(t);
                      }

                      @Override
                      public void onCompleted() {
                        outcome.complete(null);
                      }
                    }));
    // the call is in: queued behind the long request
    await()
        .atMost(Duration.ofSeconds(30))
        .until(() -> metric("berth_inflight_requests", MINILM) == 2);

    context.cancel(null);
    await()
        .atMost(Duration.ofSeconds(30))
        .until(() -> metric("berth_inflight_requests", MINILM) == 1);
    await()
        .atMost(Duration.ofSeconds(30))
        .until(
            () ->
                metric(
                        "berth_requests_total",
                        Map.of("model", "minilm", "protocol", "grpc", "code", "CANCELLED"))
                    == 1);
    assertFalse(busy.isDone(), "the slot must be freed while the long request still runs");
    assertEquals(
        io.grpc.Status.Code.CANCELLED,
        io.grpc.Status.fromThrowable(outcome.get(10, TimeUnit.SECONDS)).getCode());

    assertEquals(200, busy.get(120, TimeUnit.SECONDS).status());
    // only the long request reached the engine
    assertEquals(1, metric("berth_batch_size_count", MINILM));
    assertEquals(0, metric("berth_inflight_requests", MINILM));
  }
}
