package dev.berth.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.berth.api.DataType;
import dev.berth.api.Tensor;
import dev.berth.api.TensorSpec;
import dev.berth.runtime.Engine;
import dev.berth.runtime.EngineProvider;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.ModelContext;
import dev.berth.runtime.ModelRepository;
import dev.berth.runtime.ModelSignature;
import dev.berth.runtime.ServeSettings;
import dev.berth.runtime.ServingMetrics;
import dev.berth.runtime.TensorEngine;
import dev.berth.server.grpcclient.GRPCInferenceServiceGrpc;
import dev.berth.server.grpcclient.ModelInferRequest;
import dev.berth.server.grpcclient.ServerReadyRequest;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.stub.MetadataUtils;
import io.opentelemetry.proto.trace.v1.Span.SpanKind;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Traces over OTLP, received by a real OTLP receiver (OpenTelemetry's protobuf definitions): REST
 * and gRPC requests that carry a client's {@code traceparent} continue its trace with a server
 * span; the queue wait, pre-processing, the request's part in the engine call ({@code
 * berth.engine}) and post-processing are that span's children; one engine call is one {@code
 * berth.batch} span linked to every request it ran, and each request's {@code berth.engine} links
 * to it; the access log names the trace and span. Once over http/protobuf, once over grpc. A
 * request that times out in the queue still has its wait.
 */
class TracingIT {
  private static final HexFormat HEX = HexFormat.of();
  private static final HttpClient HTTP = HttpClient.newHttpClient();
  private static final Metadata.Key<String> TRACEPARENT =
      Metadata.Key.of("traceparent", Metadata.ASCII_STRING_MARSHALLER);
  private static final Metadata.Key<String> REQUEST_ID =
      Metadata.Key.of("x-request-id", Metadata.ASCII_STRING_MARSHALLER);
  private static final String INFER = "POST /v2/models/{model}/infer";
  private static final String MODEL_INFER = "inference.GRPCInferenceService/ModelInfer";

  @TempDir static Path dir;
  private static final List<Map<String, Object>> access = new ArrayList<>();
  private static final Logger ACCESS = Logger.getLogger(AccessLog.LOGGER);
  private static final Handler CAPTURE =
      new Handler() {
        @Override
        @SuppressWarnings("unchecked")
        public void publish(LogRecord r) {
          synchronized (access) {
            access.add((Map<String, Object>) r.getParameters()[0]);
          }
        }

        @Override
        public void flush() {}

        @Override
        public void close() {}
      };

  /** One server pair (REST and gRPC) exporting to one receiver. */
  private record Fronts(
      OtlpReceiver receiver,
      Tracing tracing,
      MiniLmServer rest,
      GrpcServer grpc,
      ManagedChannel channel) {
    void close() throws Exception {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      grpc.close();
      rest.close();
      tracing.close();
      receiver.close();
    }
  }

  private static Fronts overHttp;
  private static Fronts overGrpc;

  @BeforeAll
  static void start() throws Exception {
    ACCESS.addHandler(CAPTURE);
    overHttp = fronts(OtlpReceiver.http(), "http/protobuf", "http");
    overGrpc = fronts(OtlpReceiver.grpc(), "grpc", "grpc");
  }

  /**
   * MiniLM behind REST and gRPC, tracing to {@code receiver}: batches of up to 4 rows, whose first
   * request waits up to 10 s for more (a batch leaves as soon as it holds 4), so that 4 requests
   * sent together run as one engine call however slowly the machine lets them arrive.
   */
  private static Fronts fronts(OtlpReceiver receiver, String protocol, String name)
      throws Exception {
    Tracing tracing =
        Tracing.configure(
            ServeSettings.of(
                Map.of(
                    ServeSettings.TRACING_ENDPOINT,
                    receiver.endpoint(),
                    ServeSettings.TRACING_PROTOCOL,
                    protocol)),
            Map.of("OTEL_SERVICE_NAME", "berth-it", "OTEL_BSP_SCHEDULE_DELAY", "50"),
            "berth");
    assertTrue(tracing.enabled(), tracing.description());
    Path repository = Files.createDirectories(dir.resolve(name));
    MiniLmServer rest =
        MiniLmServer.start(
            MiniLmServer.repository(
                repository,
                MiniLmServer.modelYaml("{max-batch-size: 4, max-queue-delay: 10s}", "60s")),
            b -> b.tracing(tracing));
    GrpcServer grpc =
        GrpcServer.start(
            rest.server().service(),
            "127.0.0.1",
            0,
            1 << 20,
            ServerLimits.DEFAULTS,
            "test",
            Access.open(),
            null,
            tracing);
    ManagedChannel channel =
        ManagedChannelBuilder.forAddress("127.0.0.1", grpc.port()).usePlaintext().build();
    return new Fronts(receiver, tracing, rest, grpc, channel);
  }

  @AfterAll
  static void stop() throws Exception {
    ACCESS.removeHandler(CAPTURE);
    overHttp.close();
    overGrpc.close();
  }

  /** A client's span: a new trace id and span id, sampled. */
  private record ClientSpan(String traceId, String spanId) {
    static ClientSpan next() {
      ThreadLocalRandom r = ThreadLocalRandom.current();
      return new ClientSpan(
          HEX.toHexDigits(r.nextLong() | 1) + HEX.toHexDigits(r.nextLong()),
          HEX.toHexDigits(r.nextLong() | 1));
    }

    String traceparent() {
      return "00-" + traceId + "-" + spanId + "-01";
    }
  }

  private static CompletableFuture<HttpResponse<String>> rest(
      Fronts f, ClientSpan client, String requestId) {
    return HTTP.sendAsync(
        HttpRequest.newBuilder(
                URI.create(
                    "http://127.0.0.1:" + f.rest().server().port() + "/v2/models/minilm/infer"))
            .header("traceparent", client.traceparent())
            .header("X-Request-Id", requestId)
            .POST(
                HttpRequest.BodyPublishers.ofString(
                    MiniLmServer.textRequest(List.of("Traced over REST: " + requestId)).toString()))
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }

  private static CompletableFuture<Void> grpc(Fronts f, ClientSpan client, String requestId) {
    Metadata headers = new Metadata();
    headers.put(TRACEPARENT, client.traceparent());
    headers.put(REQUEST_ID, requestId);
    var stub =
        GRPCInferenceServiceGrpc.newFutureStub(f.channel())
            .withDeadlineAfter(60, TimeUnit.SECONDS)
            .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(headers));
    byte[] sentence = ("Traced over gRPC: " + requestId).getBytes(StandardCharsets.UTF_8);
    ByteBuffer raw = ByteBuffer.allocate(4 + sentence.length).order(ByteOrder.LITTLE_ENDIAN);
    raw.putInt(sentence.length).put(sentence);
    var answer =
        stub.modelInfer(
            ModelInferRequest.newBuilder()
                .setModelName("minilm")
                .addInputs(
                    ModelInferRequest.InferInputTensor.newBuilder()
                        .setName("text")
                        .setDatatype("BYTES")
                        .addShape(1))
                .addRawInputContents(ByteString.copyFrom(raw.array()))
                .build());
    return CompletableFuture.runAsync(
        () -> {
          try {
            answer.get(60, TimeUnit.SECONDS);
          } catch (Exception e) {
            throw new AssertionError("the gRPC call failed", e);
          }
        });
  }

  /** The server span of a client's trace: its one SERVER span, whose parent is the client's. */
  private static OtlpReceiver.Received serverSpan(
      List<OtlpReceiver.Received> spans, ClientSpan client) {
    List<OtlpReceiver.Received> servers =
        spans.stream()
            .filter(s -> s.traceId().equals(client.traceId()))
            .filter(s -> s.span().getKind() == SpanKind.SPAN_KIND_SERVER)
            .toList();
    assertEquals(1, servers.size(), "one server span in trace " + client.traceId());
    OtlpReceiver.Received server = servers.get(0);
    assertEquals(client.spanId(), server.parentId(), "the server span's parent is the client's");
    assertEquals("berth-it", server.service());
    assertEquals("minilm", server.string("berth.model"));
    assertEquals("1", server.string("berth.model.version"));
    return server;
  }

  /** The names of the spans whose parent is {@code parent}. */
  private static Set<String> children(
      List<OtlpReceiver.Received> spans, OtlpReceiver.Received parent) {
    return spans.stream()
        .filter(s -> s.traceId().equals(parent.traceId()))
        .filter(s -> s.parentId().equals(parent.spanId()))
        .map(OtlpReceiver.Received::name)
        .collect(Collectors.toSet());
  }

  /** Whether the receiver holds, for each client span, its server span with its four steps. */
  private static boolean complete(List<OtlpReceiver.Received> spans, List<ClientSpan> clients) {
    for (ClientSpan c : clients) {
      long steps =
          spans.stream()
              .filter(s -> s.traceId().equals(c.traceId()))
              .filter(
                  s ->
                      s.span().getKind() == SpanKind.SPAN_KIND_SERVER
                          || Set.of(
                                  "berth.queue",
                                  "berth.preprocess",
                                  "berth.engine",
                                  "berth.postprocess")
                              .contains(s.name()))
              .count();
      if (steps < 5) {
        return false;
      }
    }
    return spans.stream().anyMatch(s -> s.name().equals("berth.batch"));
  }

  /** The access log line of a request id. */
  private static Map<String, Object> logged(String requestId) {
    org.awaitility.Awaitility.await()
        .atMost(Duration.ofSeconds(10))
        .until(() -> line(requestId) != null);
    return line(requestId);
  }

  private static Map<String, Object> line(String requestId) {
    synchronized (access) {
      return access.stream()
          .filter(l -> requestId.equals(l.get("request_id")))
          .findFirst()
          .orElse(null);
    }
  }

  /**
   * Sends 3 REST and 1 gRPC request together, then checks every trace and the batch they shared.
   */
  private static void restAndGrpcShareABatch(Fronts f, String tag) throws Exception {
    List<ClientSpan> clients = List.of(ClientSpan.next(), ClientSpan.next(), ClientSpan.next());
    ClientSpan grpcClient = ClientSpan.next();
    // what probes, scrapers and the status page poll is not traced, even when asked to be
    ClientSpan probe = ClientSpan.next();
    for (String path : List.of("/v2/health/ready", "/metrics", "/status/models")) {
      HttpResponse<String> polled =
          HTTP.send(
              HttpRequest.newBuilder(
                      URI.create("http://127.0.0.1:" + f.rest().server().port() + path))
                  .header("traceparent", probe.traceparent())
                  .build(),
              HttpResponse.BodyHandlers.ofString());
      assertEquals(200, polled.statusCode(), path + ": " + polled.body());
    }
    Metadata probing = new Metadata();
    probing.put(TRACEPARENT, probe.traceparent());
    assertTrue(
        GRPCInferenceServiceGrpc.newBlockingStub(f.channel())
            .withDeadlineAfter(60, TimeUnit.SECONDS)
            .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(probing))
            .serverReady(ServerReadyRequest.getDefaultInstance())
            .getReady());
    List<CompletableFuture<HttpResponse<String>>> answers = new ArrayList<>();
    for (int i = 0; i < clients.size(); i++) {
      answers.add(rest(f, clients.get(i), tag + "-rest-" + i));
    }
    CompletableFuture<Void> grpcAnswer = grpc(f, grpcClient, tag + "-grpc");
    for (CompletableFuture<HttpResponse<String>> answer : answers) {
      HttpResponse<String> r = answer.get(60, TimeUnit.SECONDS);
      assertEquals(200, r.statusCode(), r.body());
    }
    grpcAnswer.get(60, TimeUnit.SECONDS);

    List<ClientSpan> all = new ArrayList<>(clients);
    all.add(grpcClient);
    List<OtlpReceiver.Received> spans = f.receiver().await(s -> complete(s, all));
    // their spans would have ended, and been exported, before the inference requests' spans
    assertEquals(
        List.of(), f.receiver().trace(probe.traceId()), "health (REST and gRPC), metrics, status");

    List<OtlpReceiver.Received> servers = new ArrayList<>();
    for (int i = 0; i < clients.size(); i++) {
      OtlpReceiver.Received server = serverSpan(spans, clients.get(i));
      assertEquals(INFER, server.name());
      assertEquals("/v2/models/{model}/infer", server.string("http.route"));
      assertEquals("POST", server.string("http.request.method"));
      assertEquals(200, server.integer("http.response.status_code"));
      servers.add(server);
      Map<String, Object> line = logged(tag + "-rest-" + i);
      assertEquals(clients.get(i).traceId(), line.get("trace_id"));
      assertEquals(server.spanId(), line.get("span_id"));
    }
    OtlpReceiver.Received grpcServer = serverSpan(spans, grpcClient);
    assertEquals(MODEL_INFER, grpcServer.name());
    assertEquals("grpc", grpcServer.string("rpc.system"));
    assertEquals("inference.GRPCInferenceService", grpcServer.string("rpc.service"));
    assertEquals("ModelInfer", grpcServer.string("rpc.method"));
    assertEquals(0, grpcServer.integer("rpc.grpc.status_code"));
    servers.add(grpcServer);
    Map<String, Object> grpcLine = logged(tag + "-grpc");
    assertEquals(grpcClient.traceId(), grpcLine.get("trace_id"));
    assertEquals(grpcServer.spanId(), grpcLine.get("span_id"));

    for (OtlpReceiver.Received server : servers) {
      assertTrue(
          children(spans, server)
              .containsAll(
                  Set.of("berth.queue", "berth.preprocess", "berth.engine", "berth.postprocess")),
          server.name()
              + " has the queue wait, pre-processing, its engine call and post-processing as"
              + " children: "
              + children(spans, server));
    }

    // one engine call ran the four requests: one batch span, a child of one of them, linked to all
    Set<String> serverIds =
        servers.stream().map(s -> s.traceId() + "/" + s.spanId()).collect(Collectors.toSet());
    List<OtlpReceiver.Received> batches =
        spans.stream()
            .filter(s -> s.name().equals("berth.batch"))
            .filter(s -> serverIds.containsAll(s.links()) && !s.links().isEmpty())
            .toList();
    assertEquals(1, batches.size(), "one engine call for the four requests: " + batches);
    OtlpReceiver.Received batch = batches.get(0);
    assertEquals(serverIds, Set.copyOf(batch.links()), "the batch is linked to every request");
    assertEquals(4, batch.integer("berth.batch.size"));
    assertEquals(4, batch.integer("berth.batch.requests"));
    assertEquals("minilm", batch.string("berth.model"));
    assertTrue(
        serverIds.contains(batch.traceId() + "/" + batch.parentId()),
        "the batch span is a child of a request it ran");

    // and each of the four has the call in its own trace: a berth.engine child linked to the batch
    long batchNanos = batch.span().getEndTimeUnixNano() - batch.span().getStartTimeUnixNano();
    for (OtlpReceiver.Received server : servers) {
      List<OtlpReceiver.Received> engines =
          spans.stream()
              .filter(s -> s.name().equals("berth.engine"))
              .filter(s -> s.traceId().equals(server.traceId()))
              .filter(s -> s.parentId().equals(server.spanId()))
              .toList();
      assertEquals(1, engines.size(), server.name() + ": one engine call, " + engines);
      OtlpReceiver.Received engine = engines.get(0);
      assertEquals(
          List.of(batch.traceId() + "/" + batch.spanId()),
          engine.links(),
          "linked to the one batch span");
      assertEquals(4, engine.integer("berth.batch.size"));
      assertEquals(4, engine.integer("berth.batch.requests"));
      assertEquals(
          batchNanos,
          engine.span().getEndTimeUnixNano() - engine.span().getStartTimeUnixNano(),
          "the engine call's own moments");
    }
  }

  @Test
  void overHttpProtobuf() throws Exception {
    restAndGrpcShareABatch(overHttp, "http");
  }

  @Test
  void overGrpc() throws Exception {
    restAndGrpcShareABatch(overGrpc, "grpc");
  }

  /**
   * An engine that returns its input {@code x} as {@code y}, each call held until {@code release}
   * opens; {@code running} opens as a call starts. Loads directories holding a file "gated".
   */
  private record GatedEngines(CountDownLatch running, CountDownLatch release)
      implements EngineProvider {
    @Override
    public String name() {
      return "gated";
    }

    @Override
    public boolean canLoad(ModelContext context) {
      return Files.exists(context.versionDir().resolve("gated"));
    }

    @Override
    public Engine load(ModelContext context) {
      ModelSignature signature =
          new ModelSignature(
              "gated",
              List.of(new TensorSpec("x", DataType.FP32, new long[] {-1, 1})),
              List.of(new TensorSpec("y", DataType.FP32, new long[] {-1, 1})),
              true);
      return new TensorEngine() {
        @Override
        public ModelSignature signature() {
          return signature;
        }

        @Override
        public Map<String, Tensor> run(Map<String, Tensor> inputs, Set<String> outputs) {
          running.countDown();
          try {
            release.await();
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
          Tensor x = inputs.get("x");
          return Map.of("y", Tensor.ofFloats("y", x.shape(), x.floats()));
        }

        @Override
        public void close() {}
      };
    }
  }

  @Test
  void aRequestThatTimesOutInTheQueueHasItsWait() throws Exception {
    Path repository = dir.resolve("gated");
    Files.createDirectories(repository.resolve("gated/1"));
    Files.writeString(repository.resolve("gated/1/gated"), "");
    Files.writeString(
        repository.resolve("gated/model.yaml"),
        """
        apiVersion: berth.dev/v1
        kind: Model
        request-timeout: 300ms
        """);
    CountDownLatch running = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    try (OtlpReceiver receiver = OtlpReceiver.http();
        Tracing tracing =
            Tracing.configure(
                ServeSettings.of(Map.of(ServeSettings.TRACING_ENDPOINT, receiver.endpoint())),
                Map.of("OTEL_SERVICE_NAME", "berth-it", "OTEL_BSP_SCHEDULE_DELAY", "50"),
                "berth")) {
      BerthServer server =
          BerthServer.builder(
                  InferenceService.load(
                      new ModelRepository(repository),
                      List.of(new GatedEngines(running, release)),
                      new ServingMetrics()))
              .host("127.0.0.1")
              .port(0)
              .tracing(tracing)
              .build()
              .start();
      try {
        String body =
            "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,1],\"datatype\":\"FP32\",\"data\":[1]}]}";
        URI infer = URI.create("http://127.0.0.1:" + server.port() + "/v2/models/gated/infer");
        CompletableFuture<HttpResponse<String>> first =
            HTTP.sendAsync(
                HttpRequest.newBuilder(infer)
                    .POST(HttpRequest.BodyPublishers.ofString(body))
                    .build(),
                HttpResponse.BodyHandlers.ofString());
        assertTrue(running.await(30, TimeUnit.SECONDS), "the engine holds the first request");
        ClientSpan client = ClientSpan.next();
        HttpResponse<String> late =
            HTTP.send(
                HttpRequest.newBuilder(infer)
                    .header("traceparent", client.traceparent())
                    .POST(HttpRequest.BodyPublishers.ofString(body))
                    .build(),
                HttpResponse.BodyHandlers.ofString());
        assertEquals(504, late.statusCode(), late.body());
        release.countDown(); // a worker comes for the queued request, and finds it timed out
        first.get(30, TimeUnit.SECONDS);

        List<OtlpReceiver.Received> trace =
            receiver.await(
                s ->
                    s.stream()
                        .anyMatch(
                            x ->
                                x.traceId().equals(client.traceId())
                                    && x.name().equals("berth.queue")));
        OtlpReceiver.Received span =
            trace.stream()
                .filter(x -> x.traceId().equals(client.traceId()))
                .filter(x -> x.span().getKind() == SpanKind.SPAN_KIND_SERVER)
                .findFirst()
                .orElseThrow(() -> new AssertionError("no server span in " + trace));
        assertEquals(504, span.integer("http.response.status_code"));
        assertEquals(
            io.opentelemetry.proto.trace.v1.Status.StatusCode.STATUS_CODE_ERROR,
            span.span().getStatus().getCode());
        assertEquals(Set.of("berth.queue"), children(trace, span), "its wait, and nothing ran");
      } finally {
        release.countDown();
        server.close();
      }
    }
  }
}
