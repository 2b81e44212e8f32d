package dev.berth.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.berth.server.grpcclient.GRPCInferenceServiceGrpc;
import dev.berth.server.grpcclient.ModelInferRequest;
import dev.berth.server.grpcclient.ModelMetadataRequest;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.MetadataUtils;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.logging.Handler;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * One call policy for both protocols: the request id comes from the client or is made, goes back to
 * the client and into the access log on REST and gRPC alike; the OpenAPI document is served.
 */
class CallPolicyIT {
  private static final Metadata.Key<String> REQUEST_ID =
      Metadata.Key.of("x-request-id", Metadata.ASCII_STRING_MARSHALLER);
  private static final HttpClient HTTP = HttpClient.newHttpClient();

  @TempDir static Path dir;
  private static MiniLmServer rest;
  private static GrpcServer grpc;
  private static ManagedChannel channel;
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

  @BeforeAll
  static void start() {
    ACCESS.addHandler(CAPTURE);
    rest = MiniLmServer.start(MiniLmServer.repository(dir));
    grpc = GrpcServer.start(rest.server().service(), "127.0.0.1", 0, 1 << 20, "test");
    channel = ManagedChannelBuilder.forAddress("127.0.0.1", grpc.port()).usePlaintext().build();
  }

  @AfterAll
  static void stop() throws Exception {
    ACCESS.removeHandler(CAPTURE);
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    grpc.close();
    rest.close();
  }

  /** The access log line of the request with this id, waited for (it follows the answer). */
  private static Map<String, Object> logged(String requestId) {
    AtomicReference<Map<String, Object>> found = new AtomicReference<>();
    await()
        .atMost(Duration.ofSeconds(10))
        .until(
            () -> {
              synchronized (access) {
                for (Map<String, Object> line : access) {
                  if (requestId.equals(line.get("request_id"))) {
                    found.set(line);
                    return true;
                  }
                }
              }
              return false;
            });
    return found.get();
  }

  private static HttpResponse<String> post(String path, String body, String requestId)
      throws Exception {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + rest.server().port() + path))
            .POST(HttpRequest.BodyPublishers.ofString(body));
    if (requestId != null) {
      b.header("X-Request-Id", requestId);
    }
    return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  @Test
  void restTakesTheClientsRequestIdAndLogsItWithTheCall() throws Exception {
    String body = MiniLmServer.textRequest(List.of("A request with an id.")).toString();
    HttpResponse<String> answer = post("/v2/models/minilm/infer", body, "client-id-42");
    assertEquals(200, answer.statusCode(), answer.body());
    assertEquals("client-id-42", answer.headers().firstValue("X-Request-Id").orElseThrow());
    Map<String, Object> line = logged("client-id-42");
    assertEquals("POST", line.get("method"));
    assertEquals("/v2/models/minilm/infer", line.get("path"));
    assertEquals("minilm", line.get("model"));
    assertEquals("1", line.get("version"));
    assertEquals(200, line.get("status"));

    // none, or one that is not safe to log and echo: a new id, logged as well
    for (String offered : new String[] {null, "two words", "x".repeat(129)}) {
      HttpResponse<String> made = post("/v2/models/minilm/infer", body, offered);
      String id = made.headers().firstValue("X-Request-Id").orElseThrow();
      assertNotEquals(offered, id);
      assertTrue(id.matches("[0-9a-f]{16}"), id);
      assertEquals(200, logged(id).get("status"));
    }
  }

  @Test
  void grpcTakesTheClientsRequestIdSendsItBackAndLogsTheCall() {
    Metadata sent = new Metadata();
    sent.put(REQUEST_ID, "grpc-client-7");
    AtomicReference<Metadata> headers = new AtomicReference<>();
    AtomicReference<Metadata> trailers = new AtomicReference<>();
    var stub =
        GRPCInferenceServiceGrpc.newBlockingStub(channel)
            .withDeadlineAfter(60, TimeUnit.SECONDS)
            .withInterceptors(
                MetadataUtils.newAttachHeadersInterceptor(sent),
                MetadataUtils.newCaptureMetadataInterceptor(headers, trailers));
    byte[] sentence = "A gRPC call with an id.".getBytes(StandardCharsets.UTF_8);
    ByteBuffer raw = ByteBuffer.allocate(4 + sentence.length).order(ByteOrder.LITTLE_ENDIAN);
    raw.putInt(sentence.length).put(sentence);
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
    assertEquals("grpc-client-7", headers.get().get(REQUEST_ID));
    Map<String, Object> line = logged("grpc-client-7");
    assertEquals("grpc", line.get("protocol"));
    assertEquals("/inference.GRPCInferenceService/ModelInfer", line.get("path"));
    assertEquals("minilm", line.get("model"));
    assertEquals("1", line.get("version"));
    assertEquals("OK", line.get("grpc_status"));

    // an error answered before any header: the id rides in its trailers
    sent.removeAll(REQUEST_ID);
    sent.put(REQUEST_ID, "grpc-client-8");
    StatusRuntimeException missing =
        assertThrows(
            StatusRuntimeException.class,
            () -> stub.modelMetadata(ModelMetadataRequest.newBuilder().setName("nope").build()));
    assertEquals(Status.Code.NOT_FOUND, missing.getStatus().getCode());
    assertEquals("grpc-client-8", missing.getTrailers().get(REQUEST_ID));
    assertEquals("NOT_FOUND", logged("grpc-client-8").get("grpc_status"));
  }

  @Test
  void theOpenApiDocumentIsServed() throws Exception {
    HttpResponse<byte[]> doc =
        HTTP.send(
            HttpRequest.newBuilder(
                    URI.create("http://127.0.0.1:" + rest.server().port() + "/openapi.json"))
                .build(),
            HttpResponse.BodyHandlers.ofByteArray());
    assertEquals(200, doc.statusCode());
    assertEquals("application/json", doc.headers().firstValue("Content-Type").orElseThrow());
    assertArrayEquals(OpenApi.document(), doc.body());
  }
}
