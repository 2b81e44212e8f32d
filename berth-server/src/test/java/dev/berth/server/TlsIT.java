package dev.berth.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.JsonNode;
import com.google.protobuf.ByteString;
import dev.berth.server.TestCertificates.Issued;
import dev.berth.server.grpcclient.GRPCInferenceServiceGrpc;
import dev.berth.server.grpcclient.InferTensorContents;
import dev.berth.server.grpcclient.ModelInferRequest;
import dev.berth.server.grpcclient.ModelInferResponse;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Both fronts over TLS with real handshakes: HTTPS over HTTP/1.1 and HTTP/2 (ALPN), gRPC over TLS,
 * and with a client CA, client certificates required on both.
 */
class TlsIT {
  @TempDir static Path dir;
  private static Issued ca;
  private static Issued otherCa;
  private static BerthServer tlsServer;
  private static GrpcServer tlsGrpc;
  private static BerthServer mtlsServer;
  private static GrpcServer mtlsGrpc;
  private static final String BODY =
      MiniLmServer.textRequest(List.of("Berth serves models")).toString();

  @BeforeAll
  static void start() {
    ca = TestCertificates.rsaCa("CN=Berth Test CA");
    otherCa = TestCertificates.rsaCa("CN=Someone Else");
    TestCertificates.PemFiles files = TestCertificates.server(ca).write(dir, "server");
    Path clientCa = TestCertificates.writeString(dir.resolve("client-ca.pem"), ca.certificatePem());
    TlsCredentials tls = TlsCredentials.load(files.certificate(), files.key(), Optional.empty());
    TlsCredentials mtls =
        TlsCredentials.load(files.certificate(), files.key(), Optional.of(clientCa));
    Path repo = MiniLmServer.repository(dir.resolve("repo"));
    tlsServer = MiniLmServer.start(repo, b -> b.tls(tls)).server();
    tlsGrpc = GrpcServer.start(tlsServer.service(), "127.0.0.1", 0, 1 << 20, "test", tls);
    mtlsServer = MiniLmServer.start(repo, b -> b.tls(mtls)).server();
    mtlsGrpc = GrpcServer.start(mtlsServer.service(), "127.0.0.1", 0, 1 << 20, "test", mtls);
  }

  @AfterAll
  static void stop() {
    for (AutoCloseable c : new AutoCloseable[] {tlsGrpc, tlsServer, mtlsGrpc, mtlsServer}) {
      try {
        if (c != null) {
          c.close();
        }
      } catch (Exception e) {
        throw new AssertionError(e);
      }
    }
  }

  private static HttpClient client(HttpClient.Version version, SSLContext ssl) {
    return HttpClient.newBuilder()
        .version(version)
        .sslContext(ssl)
        .connectTimeout(Duration.ofSeconds(10))
        .build();
  }

  private static HttpResponse<String> infer(HttpClient http, String scheme, BerthServer server)
      throws IOException, InterruptedException {
    return http.send(
        HttpRequest.newBuilder(
                URI.create(scheme + "://127.0.0.1:" + server.port() + "/v2/models/minilm/infer"))
            .timeout(Duration.ofSeconds(60))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(BODY))
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }

  private static void assertEmbedding(HttpResponse<String> r) throws IOException {
    assertEquals(200, r.statusCode(), r.body());
    JsonNode answer = MiniLmServer.JSON.readTree(r.body());
    assertEquals(384, MiniLmServer.embeddings(answer)[0].length);
  }

  @Test
  void httpsOverHttp11() throws Exception {
    HttpResponse<String> r =
        infer(
            client(HttpClient.Version.HTTP_1_1, TestCertificates.clientContext(ca, null)),
            "https",
            tlsServer);
    assertEquals(HttpClient.Version.HTTP_1_1, r.version());
    assertEmbedding(r);
    assertEquals("https", tlsServer.scheme());
  }

  @Test
  void httpsNegotiatesHttp2WithAlpn() throws Exception {
    HttpResponse<String> r =
        infer(
            client(HttpClient.Version.HTTP_2, TestCertificates.clientContext(ca, null)),
            "https",
            tlsServer);
    assertEquals(HttpClient.Version.HTTP_2, r.version());
    assertEmbedding(r);
  }

  @Test
  void plainHttpToTheTlsPortFailsAndTheServerKeepsServing() throws Exception {
    HttpClient plain =
        HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10))
            .build();
    // no HTTP answer comes back: the server sees no TLS handshake and closes the connection
    assertThrows(IOException.class, () -> infer(plain, "http", tlsServer));
    assertEmbedding(
        infer(
            client(HttpClient.Version.HTTP_2, TestCertificates.clientContext(ca, null)),
            "https",
            tlsServer));
  }

  @Test
  void plainPortSpeaksHttp11Only() throws Exception {
    try (MiniLmServer plain = MiniLmServer.start(MiniLmServer.repository(dir.resolve("plain")))) {
      // a client that would take HTTP/2 gets HTTP/1.1: no cleartext h2c upgrade without TLS
      HttpResponse<String> r =
          infer(
              HttpClient.newBuilder().version(HttpClient.Version.HTTP_2).build(),
              "http",
              plain.server());
      assertEquals(HttpClient.Version.HTTP_1_1, r.version());
      assertEmbedding(r);
      assertEquals("http", plain.server().scheme());
    }
  }

  @Test
  void clientThatDoesNotTrustTheCaRefusesTheServer() {
    assertThrows(
        javax.net.ssl.SSLHandshakeException.class,
        () ->
            infer(
                client(HttpClient.Version.HTTP_1_1, TestCertificates.clientContext(otherCa, null)),
                "https",
                tlsServer));
  }

  private static ModelInferResponse grpcInfer(GrpcServer server, ChannelCredentials credentials)
      throws InterruptedException {
    ManagedChannel channel =
        Grpc.newChannelBuilderForAddress("127.0.0.1", server.port(), credentials).build();
    try {
      return GRPCInferenceServiceGrpc.newBlockingStub(channel)
          .withDeadlineAfter(60, TimeUnit.SECONDS)
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
                                  .addBytesContents(
                                      ByteString.copyFromUtf8("Berth serves models"))))
                  .build());
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  @Test
  void grpcOverTls() throws Exception {
    ModelInferResponse r = grpcInfer(tlsGrpc, grpcCredentials(ca, null));
    assertEquals(List.of(1L, 384L), r.getOutputs(0).getShapeList());
  }

  @Test
  void plaintextGrpcToTheTlsPortFails() throws Exception {
    StatusRuntimeException e =
        assertThrows(
            StatusRuntimeException.class,
            () -> grpcInfer(tlsGrpc, InsecureChannelCredentials.create()));
    assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
  }

  @Test
  void mutualTlsRestNeedsACertificateFromTheClientCa() throws Exception {
    HttpClient.Version v = HttpClient.Version.HTTP_2;
    assertThrows(
        IOException.class,
        () -> infer(client(v, TestCertificates.clientContext(ca, null)), "https", mtlsServer));
    Issued stranger = TestCertificates.client(otherCa, "stranger");
    assertThrows(
        IOException.class,
        () -> infer(client(v, TestCertificates.clientContext(ca, stranger)), "https", mtlsServer));
    Issued alice = TestCertificates.client(ca, "alice");
    HttpResponse<String> r =
        infer(client(v, TestCertificates.clientContext(ca, alice)), "https", mtlsServer);
    assertEquals(HttpClient.Version.HTTP_2, r.version());
    assertEmbedding(r);
    assertEmbedding(
        infer(
            client(HttpClient.Version.HTTP_1_1, TestCertificates.clientContext(ca, alice)),
            "https",
            mtlsServer));
  }

  @Test
  void mutualTlsGrpcNeedsACertificateFromTheClientCa() throws Exception {
    StatusRuntimeException e =
        assertThrows(
            StatusRuntimeException.class, () -> grpcInfer(mtlsGrpc, grpcCredentials(ca, null)));
    assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
    Issued stranger = TestCertificates.client(otherCa, "stranger");
    e =
        assertThrows(
            StatusRuntimeException.class, () -> grpcInfer(mtlsGrpc, grpcCredentials(ca, stranger)));
    assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
    Issued alice = TestCertificates.client(ca, "alice");
    assertEquals(
        List.of(1L, 384L),
        grpcInfer(mtlsGrpc, grpcCredentials(ca, alice)).getOutputs(0).getShapeList());
  }

  /** gRPC client credentials trusting {@code ca}, presenting {@code identity} when not null. */
  private static ChannelCredentials grpcCredentials(Issued ca, Issued identity) throws IOException {
    TlsChannelCredentials.Builder b =
        TlsChannelCredentials.newBuilder().trustManager(pemStream(ca.certificatePem()));
    if (identity != null) {
      b.keyManager(pemStream(identity.certificatePem()), pemStream(identity.pkcs8Pem()));
    }
    return b.build();
  }

  private static ByteArrayInputStream pemStream(String pem) {
    return new ByteArrayInputStream(pem.getBytes(StandardCharsets.US_ASCII));
  }
}
