package dev.berth.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.onnx.testing.OnnxModelWriter;
import dev.berth.onnx.testing.OnnxModelWriter.ElemType;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.ServingMetrics;
import dev.berth.server.grpcclient.GRPCInferenceServiceGrpc;
import dev.berth.server.grpcclient.InferTensorContents;
import dev.berth.server.grpcclient.ModelInferRequest;
import dev.berth.server.grpcclient.ModelInferResponse;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * A real REST and gRPC server over real ONNX models (MiniLM with its tokenizer, and small identity
 * models), with tight limits, and clients that send whatever bytes a test hands them: for the
 * bad-input corpus and the fuzz run.
 */
final class HostileClientServer implements AutoCloseable {
  static final ObjectMapper JSON = new ObjectMapper();
  static final int MAX_BODY_BYTES = 256 << 10;
  static final ServerLimits LIMITS =
      ServerLimits.builder()
          .maxTensorElements(10_000)
          .maxRequestRows(64)
          .maxStringBytes(1024)
          .maxHeaderBytes(4096)
          .maxConcurrentRequests(64)
          .build();

  /** A good request to the FP32 identity model {@code vec}, x: FP32[-1, 4]. */
  static final String VEC_OK =
      "{\"inputs\":[{\"name\":\"x\",\"shape\":[2,4],\"datatype\":\"FP32\","
          + "\"data\":[1,2,3,4,5,6,7,8]}]}";

  final BerthServer rest;
  final GrpcServer grpc;
  final ManagedChannel channel;
  final GRPCInferenceServiceGrpc.GRPCInferenceServiceBlockingStub stub;

  private HostileClientServer(BerthServer rest, GrpcServer grpc) {
    this.rest = rest;
    this.grpc = grpc;
    this.channel =
        ManagedChannelBuilder.forAddress("127.0.0.1", grpc.port())
            .usePlaintext()
            .maxInboundMessageSize(16 << 20)
            .build();
    this.stub = GRPCInferenceServiceGrpc.newBlockingStub(channel);
  }

  /** Models {@code minilm} (text in), {@code vec} (FP32[-1,4]) and {@code ids} (INT64[-1,2]). */
  static HostileClientServer start(Path dir) {
    Path repo = MiniLmServer.repository(dir);
    OnnxModelWriter.identity(ElemType.FLOAT, -1, 4).write(model(repo, "vec"));
    OnnxModelWriter.identity(ElemType.INT64, -1, 2).write(model(repo, "ids"));
    InferenceService service = InferenceService.load(repo, new ServingMetrics());
    BerthServer rest =
        BerthServer.builder(service)
            .port(0)
            .maxBodyBytes(MAX_BODY_BYTES)
            .limits(LIMITS)
            .build()
            .start();
    GrpcServer grpc = GrpcServer.start(service, "127.0.0.1", 0, MAX_BODY_BYTES, LIMITS, "test");
    return new HostileClientServer(rest, grpc);
  }

  private static Path model(Path repo, String name) {
    try {
      return Files.createDirectories(repo.resolve(name).resolve("1")).resolve("model.onnx");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** A unary call of the inference service's {@code method} with these bytes as its message. */
  byte[] rawCall(String method, byte[] message) {
    io.grpc.MethodDescriptor.Marshaller<byte[]> bytes =
        new io.grpc.MethodDescriptor.Marshaller<>() {
          @Override
          public java.io.InputStream stream(byte[] value) {
            return new java.io.ByteArrayInputStream(value);
          }

          @Override
          public byte[] parse(java.io.InputStream stream) {
            try {
              return stream.readAllBytes();
            } catch (java.io.IOException e) {
              throw new java.io.UncheckedIOException(e);
            }
          }
        };
    return io.grpc.stub.ClientCalls.blockingUnaryCall(
        channel,
        io.grpc.MethodDescriptor.<byte[], byte[]>newBuilder()
            .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
            .setFullMethodName(
                io.grpc.MethodDescriptor.generateFullMethodName(
                    GRPCInferenceServiceGrpc.SERVICE_NAME, method))
            .setRequestMarshaller(bytes)
            .setResponseMarshaller(bytes)
            .build(),
        io.grpc.CallOptions.DEFAULT.withDeadlineAfter(30, java.util.concurrent.TimeUnit.SECONDS),
        message);
  }

  GRPCInferenceServiceGrpc.GRPCInferenceServiceBlockingStub stub() {
    return stub.withDeadlineAfter(30, TimeUnit.SECONDS);
  }

  /** One HTTP answer as it came off the socket. */
  record Answer(int status, Map<String, String> headers, byte[] body) {
    String text() {
      return new String(body, StandardCharsets.UTF_8);
    }

    /** The {@code error} of a JSON error body, or an assertion failure saying what came. */
    String error() {
      String type = headers.getOrDefault("content-type", "");
      assertTrue(
          type.startsWith("application/json"),
          "status " + status + " with content type '" + type + "', not JSON: " + text());
      try {
        JsonNode node = JSON.readTree(body);
        assertTrue(node.path("error").isTextual(), "no {\"error\": ...} in " + text());
        return node.path("error").asText();
      } catch (IOException e) {
        throw new AssertionError("status " + status + " with a body that is not JSON: " + text());
      }
    }
  }

  /** A plain HTTP/1.1 request with a Content-Length, the connection closed after the answer. */
  static byte[] request(String method, String path, Map<String, String> headers, byte[] body) {
    StringBuilder head = new StringBuilder();
    head.append(method).append(' ').append(path).append(" HTTP/1.1\r\n");
    head.append("Host: 127.0.0.1\r\nConnection: close\r\n");
    boolean typed = false;
    for (Map.Entry<String, String> h : headers.entrySet()) {
      head.append(h.getKey()).append(": ").append(h.getValue()).append("\r\n");
      typed |= h.getKey().equalsIgnoreCase("content-type");
    }
    if (!typed && body != null) {
      head.append("Content-Type: application/json\r\n");
    }
    if (body != null) {
      head.append("Content-Length: ").append(body.length).append("\r\n");
    }
    head.append("\r\n");
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.writeBytes(head.toString().getBytes(StandardCharsets.ISO_8859_1));
    if (body != null) {
      out.writeBytes(body);
    }
    return out.toByteArray();
  }

  /** Sends raw bytes on a fresh connection and reads the answer (30 s at most). */
  Answer exchange(byte[] raw) {
    try (Socket s = connect()) {
      try {
        s.getOutputStream().write(raw);
        s.getOutputStream().flush();
      } catch (java.net.SocketException e) {
        // The server answered (413, 431) before it read the whole request and closed: its answer
        // is waiting to be read.
      }
      return read(s.getInputStream());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  Socket connect() throws IOException {
    Socket s = new Socket();
    s.connect(new InetSocketAddress("127.0.0.1", rest.port()), 5000);
    s.setSoTimeout(30_000);
    return s;
  }

  static Answer read(InputStream in) throws IOException {
    ByteArrayOutputStream head = new ByteArrayOutputStream();
    int state = 0;
    while (state < 4) {
      int b = in.read();
      if (b < 0) {
        throw new IOException("the server closed the connection without a complete answer");
      }
      head.write(b);
      state =
          (b == '\r' && (state == 0 || state == 2)) || (b == '\n' && (state == 1 || state == 3))
              ? state + 1
              : b == '\r' ? 1 : 0;
    }
    String[] lines = head.toString(StandardCharsets.ISO_8859_1).split("\r\n");
    int status = Integer.parseInt(lines[0].split(" ")[1]);
    Map<String, String> headers = new LinkedHashMap<>();
    for (int i = 1; i < lines.length; i++) {
      int colon = lines[i].indexOf(':');
      if (colon > 0) {
        headers.put(
            lines[i].substring(0, colon).trim().toLowerCase(Locale.ROOT),
            lines[i].substring(colon + 1).trim());
      }
    }
    byte[] body;
    if (headers.containsKey("content-length")) {
      body = in.readNBytes(Integer.parseInt(headers.get("content-length")));
    } else if ("chunked".equalsIgnoreCase(headers.get("transfer-encoding"))) {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      while (true) {
        String size = line(in);
        int n = Integer.parseInt(size.split(";")[0].trim(), 16);
        if (n == 0) {
          break;
        }
        out.writeBytes(in.readNBytes(n));
        line(in);
      }
      body = out.toByteArray();
    } else {
      body = in.readAllBytes();
    }
    return new Answer(status, headers, body);
  }

  private static String line(InputStream in) throws IOException {
    StringBuilder sb = new StringBuilder();
    int b;
    while ((b = in.read()) >= 0 && b != '\n') {
      if (b != '\r') {
        sb.append((char) b);
      }
    }
    return sb.toString();
  }

  Answer post(String path, String json) {
    return exchange(request("POST", path, Map.of(), json.getBytes(StandardCharsets.UTF_8)));
  }

  /**
   * The server is ready and still answers a good request correctly, over REST and gRPC; with {@code
   * text}, MiniLM's tokenizing path too.
   */
  void assertServing(boolean text) {
    Answer ready = exchange(request("GET", "/v2/health/ready", Map.of(), null));
    assertEquals(200, ready.status(), "not ready after a bad request: " + ready.text());
    Answer ok = post("/v2/models/vec/infer", VEC_OK);
    assertEquals(200, ok.status(), ok.text());
    try {
      JsonNode data = JSON.readTree(ok.body()).path("outputs").path(0).path("data");
      assertEquals("[1.0,2.0,3.0,4.0,5.0,6.0,7.0,8.0]", data.toString());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    ModelInferResponse g =
        stub()
            .modelInfer(
                ModelInferRequest.newBuilder()
                    .setModelName("ids")
                    .addInputs(
                        ModelInferRequest.InferInputTensor.newBuilder()
                            .setName("x")
                            .setDatatype("INT64")
                            .addShape(1)
                            .addShape(2)
                            .setContents(
                                InferTensorContents.newBuilder()
                                    .addInt64Contents(7)
                                    .addInt64Contents(-9)))
                    .build());
    java.nio.LongBuffer echoed =
        g.getRawOutputContents(0)
            .asReadOnlyByteBuffer()
            .order(java.nio.ByteOrder.LITTLE_ENDIAN)
            .asLongBuffer();
    assertEquals(2, echoed.remaining());
    assertEquals(java.util.List.of(7L, -9L), java.util.List.of(echoed.get(0), echoed.get(1)));
    if (text) {
      Answer embedding =
          post(
              "/v2/models/minilm/infer",
              "{\"inputs\":[{\"name\":\"text\",\"shape\":[1],\"datatype\":\"BYTES\","
                  + "\"data\":[\"Berth keeps serving\"]}]}");
      assertEquals(200, embedding.status(), embedding.text());
      try {
        assertEquals(
            MiniLmServer.DIMENSIONS,
            JSON.readTree(embedding.body()).path("outputs").path(0).path("data").size());
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  }

  @Override
  public void close() {
    channel.shutdownNow();
    try {
      channel.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    grpc.shutdown(Duration.ofSeconds(5));
    rest.shutdown(Duration.ofSeconds(5));
  }
}
