package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.client.grpc.GRPCInferenceServiceGrpc;
import dev.berth.client.grpc.ModelReadyRequest;
import dev.berth.onnx.testing.OnnxModelWriter;
import dev.berth.onnx.testing.OnnxModelWriter.ElemType;
import dev.berth.server.TestCertificates;
import dev.berth.server.TestCertificates.Issued;
import io.grpc.ChannelCredentials;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.TlsChannelCredentials;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.SSLContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code berth serve --tls-cert --tls-key [--tls-client-ca]} as a user runs it: HTTPS with HTTP/2,
 * gRPC over TLS, mutual TLS, {@code berth eval --cacert}, and the options' errors.
 */
class TlsServeIT {
  private static final Pattern GRPC = Pattern.compile("\"grpc\":\"127\\.0\\.0\\.1:(\\d+)\"");
  private static final String BODY =
      """
      {"inputs":[{"name":"x","shape":[2,1],"datatype":"FP32","data":[0.25,0.75]}]}""";

  @TempDir static Path dir;
  @TempDir static Path tlsWork;
  @TempDir static Path mtlsWork;
  @TempDir Path work;
  private static Issued ca;
  private static Issued otherCa;
  private static TestCertificates.PemFiles serverFiles;
  private static Path caFile;
  private static BerthProcess tls;
  private static BerthProcess mtls;

  @BeforeAll
  static void serve() throws IOException {
    Path repo = dir.resolve("repo");
    OnnxModelWriter.identity(ElemType.FLOAT, -1, 1).write(repo.resolve("probability/1/model.onnx"));
    ca = TestCertificates.rsaCa("CN=Berth Test CA");
    otherCa = TestCertificates.rsaCa("CN=Someone Else");
    serverFiles = TestCertificates.server(ca).write(dir, "server");
    caFile = TestCertificates.writeString(dir.resolve("ca.pem"), ca.certificatePem());
    String[] common = {
      "serve",
      repo.toString(),
      "--port",
      "0",
      "--grpc-port",
      "0",
      "--log-format",
      "json",
      "--tls-cert",
      serverFiles.certificate().toString(),
      "--tls-key",
      serverFiles.key().toString()
    };
    tls = BerthProcess.start(tlsWork, common);
    String[] withCa = java.util.Arrays.copyOf(common, common.length + 2);
    withCa[common.length] = "--tls-client-ca";
    withCa[common.length + 1] = caFile.toString();
    mtls = BerthProcess.start(mtlsWork, withCa);
    tls.awaitServing();
    mtls.awaitServing();
  }

  @AfterAll
  static void stop() {
    for (BerthProcess p : new BerthProcess[] {tls, mtls}) {
      if (p != null) {
        p.close();
      }
    }
  }

  private static HttpResponse<String> infer(String url, HttpClient.Version v, SSLContext ssl)
      throws IOException, InterruptedException {
    HttpClient http =
        HttpClient.newBuilder()
            .version(v)
            .sslContext(ssl)
            .connectTimeout(Duration.ofSeconds(10))
            .build();
    return http.send(
        HttpRequest.newBuilder(URI.create(url + "/v2/models/probability/infer"))
            .timeout(Duration.ofSeconds(30))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(BODY))
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }

  private static int grpcPort(BerthProcess p) throws IOException {
    Matcher m = GRPC.matcher(Files.readString(p.stderr));
    assertTrue(m.find(), "no gRPC address in the serving line");
    return Integer.parseInt(m.group(1));
  }

  private static boolean grpcReady(BerthProcess p, Issued identity) throws Exception {
    TlsChannelCredentials.Builder b =
        TlsChannelCredentials.newBuilder().trustManager(pem(ca.certificatePem()));
    if (identity != null) {
      b.keyManager(pem(identity.certificatePem()), pem(identity.pkcs8Pem()));
    }
    ChannelCredentials credentials = b.build();
    ManagedChannel channel =
        Grpc.newChannelBuilderForAddress("127.0.0.1", grpcPort(p), credentials).build();
    try {
      return GRPCInferenceServiceGrpc.newBlockingStub(channel)
          .withDeadlineAfter(30, TimeUnit.SECONDS)
          .modelReady(ModelReadyRequest.newBuilder().setName("probability").build())
          .getReady();
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  private static ByteArrayInputStream pem(String text) {
    return new ByteArrayInputStream(text.getBytes(StandardCharsets.US_ASCII));
  }

  @Test
  void servesHttpsWithHttp2AndGrpcOverTls() throws Exception {
    String url = tls.url();
    assertTrue(url.startsWith("https://127.0.0.1:"), url);
    assertTrue(Files.readString(tls.stderr).contains("\"tls\":true"));
    HttpResponse<String> r =
        infer(url, HttpClient.Version.HTTP_2, TestCertificates.clientContext(ca, null));
    assertEquals(200, r.statusCode(), r.body());
    assertEquals(HttpClient.Version.HTTP_2, r.version());
    assertTrue(r.body().contains("[0.25,0.75]"), r.body());
    HttpResponse<String> h1 =
        infer(url, HttpClient.Version.HTTP_1_1, TestCertificates.clientContext(ca, null));
    assertEquals(200, h1.statusCode(), h1.body());
    assertEquals(HttpClient.Version.HTTP_1_1, h1.version());
    assertTrue(grpcReady(tls, null));
    // plain HTTP to the TLS port gets no answer
    assertThrows(
        IOException.class,
        () ->
            HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .build()
                .send(
                    HttpRequest.newBuilder(URI.create(url.replace("https:", "http:") + "/v2"))
                        .timeout(Duration.ofSeconds(30))
                        .build(),
                    HttpResponse.BodyHandlers.ofString()));
  }

  @Test
  void mutualTlsRefusesClientsWithoutACertificateFromTheCa() throws Exception {
    String url = mtls.url();
    assertThrows(
        IOException.class,
        () -> infer(url, HttpClient.Version.HTTP_2, TestCertificates.clientContext(ca, null)));
    Issued stranger = TestCertificates.client(otherCa, "stranger");
    assertThrows(
        IOException.class,
        () -> infer(url, HttpClient.Version.HTTP_2, TestCertificates.clientContext(ca, stranger)));
    Issued alice = TestCertificates.client(ca, "alice");
    HttpResponse<String> r =
        infer(url, HttpClient.Version.HTTP_2, TestCertificates.clientContext(ca, alice));
    assertEquals(200, r.statusCode(), r.body());
    assertThrows(StatusRuntimeException.class, () -> grpcReady(mtls, null));
    assertTrue(grpcReady(mtls, alice));
  }

  @Test
  void evalTrustsTheServerThroughCacert() throws Exception {
    Path data = Files.writeString(work.resolve("p.csv"), "f0,label\n0.9,1\n0.1,0\n0.8,1\n0.3,0\n");
    BerthProcess.Finished ok =
        BerthProcess.run(
            work,
            Duration.ofSeconds(120),
            "eval",
            tls.url(),
            "-m",
            "probability",
            "-d",
            data.toString(),
            "--cacert",
            caFile.toString());
    assertEquals(0, ok.code(), ok.err());
    assertTrue(ok.out().contains("accuracy"), ok.out());
    BerthProcess.Finished untrusted =
        BerthProcess.run(
            work,
            Duration.ofSeconds(120),
            "eval",
            tls.url(),
            "-m",
            "probability",
            "-d",
            data.toString());
    assertEquals(2, untrusted.code(), untrusted.err());
    assertTrue(untrusted.err().contains("--cacert"), untrusted.err());
  }

  private BerthProcess.Finished serveWith(String... tlsArgs) throws Exception {
    String[] all = new String[tlsArgs.length + 6];
    System.arraycopy(
        new String[] {"serve", dir.resolve("repo").toString(), "--port", "0", "--grpc-port", "0"},
        0,
        all,
        0,
        6);
    System.arraycopy(tlsArgs, 0, all, 6, tlsArgs.length);
    return BerthProcess.run(work, Duration.ofSeconds(60), all);
  }

  private static void assertUsageError(BerthProcess.Finished r, String message) {
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains(message), r.err());
  }

  @Test
  void badTlsOptionsExitWith2AndSayWhy() throws Exception {
    String cert = serverFiles.certificate().toString();
    String key = serverFiles.key().toString();
    assertUsageError(serveWith("--tls-cert", cert), "--tls-cert needs --tls-key");
    assertUsageError(serveWith("--tls-key", key), "--tls-key needs --tls-cert");
    assertUsageError(
        serveWith("--tls-client-ca", caFile.toString()), "--tls-client-ca needs --tls-cert");
    Path garbage = Files.writeString(work.resolve("garbage.pem"), "not a certificate\n");
    assertUsageError(serveWith("--tls-cert", garbage.toString(), "--tls-key", key), "no PEM block");
    Path otherKey =
        TestCertificates.writeString(
            work.resolve("other.key"), TestCertificates.server(ca).pkcs8Pem());
    assertUsageError(
        serveWith("--tls-cert", cert, "--tls-key", otherKey.toString()),
        "does not belong to the certificate");
    assertUsageError(
        serveWith("--tls-cert", work.resolve("missing.pem").toString(), "--tls-key", key),
        "does not exist");
  }
}
