package dev.berth.server;

import static org.junit.jupiter.api.Assertions.assertEquals;

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
  @TempDir static Path dir;
  private static MiniLmServer rest;
  private static GrpcServer grpc;
  private static ManagedChannel channel;

  @BeforeAll
  static void start() {
    rest = MiniLmServer.startOneSlot(dir);
    grpc = GrpcServer.start(rest.server().service(), "127.0.0.1", 0, 64 << 20, "test");
    channel = ManagedChannelBuilder.forAddress("127.0.0.1", grpc.port()).usePlaintext().build();
  }

  @AfterAll
  static void stop() throws Exception {
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    grpc.close();
    rest.server().close();
  }

  @Test
  void aCancelledCallLeavesTheQueueUnrunAndFreesItsSlot() throws Exception {
    CompletableFuture<MiniLmServer.Response> busy = rest.busy();

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
    rest.awaitInflight(2);

    context.cancel(null);
    rest.awaitGivenUp("grpc", "CANCELLED", busy);
    assertEquals(
        io.grpc.Status.Code.CANCELLED,
        io.grpc.Status.fromThrowable(outcome.get(10, TimeUnit.SECONDS)).getCode());

    assertEquals(200, busy.get(120, TimeUnit.SECONDS).status());
    // only the long request reached the engine
    assertEquals(1, rest.metric("berth_batch_size_count", Map.of()));
    assertEquals(0, rest.metric("berth_inflight_requests", Map.of()));
  }
}
