package dev.berth.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.grpc.Contexts;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import io.opentelemetry.exporter.otlp.trace.OtlpGrpcSpanExporter;
import io.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
import io.opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse;
import io.opentelemetry.proto.collector.trace.v1.TraceServiceGrpc;
import io.opentelemetry.sdk.common.CompletableResultCode;
import io.opentelemetry.sdk.common.export.RetryPolicy;
import io.opentelemetry.sdk.trace.SdkTracerProvider;
import io.opentelemetry.sdk.trace.export.SimpleSpanProcessor;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * Berth's OTLP gRPC sender, found by OpenTelemetry's exporter through ServiceLoader, against a
 * TraceService on loopback: the spans arrive as OTLP protobuf, with the exporter's headers as
 * metadata and gzip when asked for, and an UNAVAILABLE answer is retried as the retry policy says.
 */
class OtlpGrpcSenderTest {
  private static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
  private static final Metadata.Key<String> ENCODING =
      Metadata.Key.of("grpc-encoding", Metadata.ASCII_STRING_MARSHALLER);

  @Test
  void exportsRetriesAndSendsHeaders() throws Exception {
    AtomicInteger attempts = new AtomicInteger();
    List<ExportTraceServiceRequest> received = new CopyOnWriteArrayList<>();
    List<Metadata> headers = new CopyOnWriteArrayList<>();
    ServerInterceptor capture =
        new ServerInterceptor() {
          @Override
          public <Q, A> ServerCall.Listener<Q> interceptCall(
              ServerCall<Q, A> call, Metadata h, ServerCallHandler<Q, A> next) {
            headers.add(h);
            return Contexts.interceptCall(io.grpc.Context.current(), call, h, next);
          }
        };
    Server collector =
        NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
            .addService(
                ServerInterceptors.intercept(
                    new TraceServiceGrpc.TraceServiceImplBase() {
                      @Override
                      public void export(
                          ExportTraceServiceRequest request,
                          StreamObserver<ExportTraceServiceResponse> out) {
                        if (attempts.incrementAndGet() == 1) {
                          out.onError(
                              Status.UNAVAILABLE.withDescription("warming up").asException());
                          return;
                        }
                        received.add(request);
                        out.onNext(ExportTraceServiceResponse.getDefaultInstance());
                        out.onCompleted();
                      }
                    },
                    capture))
            .build()
            .start();
    try {
      OtlpGrpcSpanExporter exporter =
          OtlpGrpcSpanExporter.builder()
              .setEndpoint("http://127.0.0.1:" + collector.getPort())
              .addHeader("authorization", "Bearer collector-token")
              .setCompression("gzip")
              .setRetryPolicy(
                  RetryPolicy.builder()
                      .setMaxAttempts(3)
                      .setInitialBackoff(Duration.ofMillis(10))
                      .setMaxBackoff(Duration.ofMillis(50))
                      .build())
              .build();
      try (SdkTracerProvider provider =
          SdkTracerProvider.builder()
              .addSpanProcessor(SimpleSpanProcessor.create(exporter))
              .build()) {
        provider.get("test").spanBuilder("sent over grpc").startSpan().end();
        CompletableResultCode flushed = provider.forceFlush().join(10, TimeUnit.SECONDS);
        assertTrue(flushed.isSuccess(), "the export succeeded in the end");
      }
      assertEquals(2, attempts.get(), "UNAVAILABLE once, then retried");
      assertEquals(1, received.size());
      assertEquals(
          "sent over grpc",
          received.get(0).getResourceSpans(0).getScopeSpans(0).getSpans(0).getName());
      assertEquals("Bearer collector-token", headers.get(1).get(AUTHORIZATION));
      assertEquals("gzip", headers.get(1).get(ENCODING));
    } finally {
      collector.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  /** The retry policy's backoffs go into gRPC's service config, which takes plain decimals only. */
  @Test
  void backoffsAreWrittenAsPlainDecimalSeconds() {
    assertEquals("0.0001s", OtlpGrpcSender.seconds(Duration.ofNanos(100_000)));
    assertEquals("0.01s", OtlpGrpcSender.seconds(Duration.ofMillis(10)));
    assertEquals("5s", OtlpGrpcSender.seconds(Duration.ofSeconds(5)));
    assertEquals("1.000000001s", OtlpGrpcSender.seconds(Duration.ofSeconds(1, 1)));
    assertEquals("0s", OtlpGrpcSender.seconds(Duration.ZERO));
  }
}
