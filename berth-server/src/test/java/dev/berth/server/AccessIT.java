package dev.berth.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.onnx.testing.OnnxModelWriter;
import dev.berth.onnx.testing.OnnxModelWriter.ElemType;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.ServingMetrics;
import dev.berth.server.grpcclient.GRPCInferenceServiceGrpc;
import dev.berth.server.grpcclient.InferTensorContents;
import dev.berth.server.grpcclient.ModelInferRequest;
import dev.berth.server.grpcclient.ServerLiveRequest;
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
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The management token and API keys over real sockets, REST and gRPC: who gets 401, who 403, what
 * stays open, and what the audit log says.
 */
class AccessIT {
  private static final String TOKEN = "a-management-token-for-tests";
  private static final String INFER_KEY = "key-of-the-web-frontend";
  private static final String OPS_KEY = "key-of-the-operations-team";
  private static final String MANAGE_ONLY_KEY = "key-that-may-only-manage";
  private static final String INFER_BODY =
      "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2],\"datatype\":\"FP32\",\"data\":[1,2]}]}";

  @TempDir static Path dir;
  private static BerthServer open;
  private static BerthServer guarded;
  private static GrpcServer grpc;
  private static ManagedChannel channel;
  private static final HttpClient HTTP = HttpClient.newHttpClient();
  private static final Logger AUDIT = Logger.getLogger(Audit.LOGGER);
  private static final List<LogRecord> audit = new ArrayList<>();
  private static final Handler CAPTURE =
      new Handler() {
        @Override
        public void publish(LogRecord r) {
          synchronized (audit) {
            audit.add(r);
          }
        }

        @Override
        public void flush() {}

        @Override
        public void close() {}
      };

  @BeforeAll
  static void start() throws Exception {
    Path repo = dir.resolve("repo");
    OnnxModelWriter.identity(ElemType.FLOAT, -1, 2)
        .write(repo.resolve("m").resolve("1").resolve("model.onnx"));
    Path keys = dir.resolve("keys.yaml");
    Files.writeString(
        keys,
        """
        keys:
          - name: web-frontend
            sha256: %s
            roles: [infer]
          - name: ops
            key: %s
            roles: [infer, manage]
          - name: janitor
            key: %s
            roles: [manage]
        """
            .formatted(
                java.util.HexFormat.of().formatHex(Access.sha256(INFER_KEY)),
                OPS_KEY,
                MANAGE_ONLY_KEY));
    Access access = Access.of(TOKEN, Access.ApiKeys.load(keys));

    open =
        BerthServer.builder(InferenceService.load(repo, new ServingMetrics()))
            .port(0)
            .build()
            .start();
    InferenceService service = InferenceService.load(repo, new ServingMetrics());
    guarded = BerthServer.builder(service).port(0).access(access).build().start();
    grpc = GrpcServer.start(service, "127.0.0.1", 0, 1 << 20, "test", access);
    channel = ManagedChannelBuilder.forAddress("127.0.0.1", grpc.port()).usePlaintext().build();
    AUDIT.addHandler(CAPTURE);
    AUDIT.setLevel(Level.INFO);
  }

  @AfterAll
  static void stop() throws Exception {
    AUDIT.removeHandler(CAPTURE);
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    grpc.close();
    guarded.close();
    open.close();
  }

  @BeforeEach
  void clearAudit() {
    synchronized (audit) {
      audit.clear();
    }
  }

  private static HttpResponse<String> call(
      BerthServer server, String method, String path, String body, String credential)
      throws Exception {
    return call(server, method, path, body, credential, new String[0]);
  }

  /** A call with more headers: name, value, name, value... */
  private static HttpResponse<String> call(
      BerthServer server,
      String method,
      String path,
      String body,
      String credential,
      String[] headers)
      throws Exception {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + path))
            .timeout(Duration.ofSeconds(30))
            .method(
                method,
                body == null
                    ? HttpRequest.BodyPublishers.noBody()
                    : HttpRequest.BodyPublishers.ofString(body));
    if (credential != null) {
      b.header("Authorization", credential.contains(" ") ? credential : "Bearer " + credential);
    }
    if (headers.length > 0) {
      b.headers(headers);
    }
    return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  /**
   * The next audit event, waited for: the server writes it after the answer, so it may come a
   * moment after the client has the answer. Calls from one test thread are audited in order.
   */
  @SuppressWarnings("unchecked")
  private static Map<String, Object> next(Level level) {
    await()
        .atMost(Duration.ofSeconds(10))
        .until(
            () -> {
              synchronized (audit) {
                return !audit.isEmpty();
              }
            });
    LogRecord r;
    synchronized (audit) {
      r = audit.remove(0);
    }
    assertEquals(level, r.getLevel(), r.getParameters()[0].toString());
    return (Map<String, Object>) r.getParameters()[0];
  }

  @Test
  void withoutOptionsInferenceIsOpenAndTheRepositoryApiIsOff() throws Exception {
    assertEquals(200, call(open, "POST", "/v2/models/m/infer", INFER_BODY, null).statusCode());
    HttpResponse<String> index = call(open, "POST", "/v2/repository/index", "{}", null);
    assertEquals(404, index.statusCode());
    assertTrue(index.body().contains("--management"), index.body());
    // a token is not a way in when management is off
    assertEquals(404, call(open, "POST", "/v2/repository/index", "{}", TOKEN).statusCode());
  }

  @Test
  void theRepositoryApiNeedsTheTokenOrAManageKey() throws Exception {
    HttpResponse<String> none = call(guarded, "POST", "/v2/repository/index", "{}", null);
    assertEquals(401, none.statusCode());
    assertEquals("Bearer realm=\"berth\"", none.headers().firstValue("WWW-Authenticate").get());
    assertTrue(none.body().contains("\"error\""), none.body());
    assertTrue(none.body().contains("management token"), none.body());
    Map<String, Object> refused = next(Level.WARNING);
    assertEquals("anonymous", refused.get("who"));
    assertEquals("401", refused.get("result"));
    assertEquals("POST /v2/repository/index", refused.get("action"));
    assertTrue(refused.get("remote").toString().contains("127.0.0.1"), refused.toString());

    assertEquals(
        401, call(guarded, "POST", "/v2/repository/index", "{}", TOKEN + "x").statusCode());
    assertEquals("unknown-credential", next(Level.WARNING).get("who"));
    assertEquals(
        401, call(guarded, "POST", "/v2/repository/index", "{}", "Basic " + TOKEN).statusCode());
    next(Level.WARNING);

    HttpResponse<String> frontend = call(guarded, "POST", "/v2/repository/index", "{}", INFER_KEY);
    assertEquals(403, frontend.statusCode());
    assertTrue(frontend.body().contains("'web-frontend' lacks the manage role"), frontend.body());
    assertEquals("web-frontend", next(Level.WARNING).get("who"));

    HttpResponse<String> ok = call(guarded, "POST", "/v2/repository/index", "{}", TOKEN);
    assertEquals(200, ok.statusCode(), ok.body());
    assertTrue(ok.body().contains("\"name\":\"m\""), ok.body());
    Map<String, Object> done = next(Level.INFO);
    assertEquals("management-token", done.get("who"));
    assertEquals("200", done.get("result"));

    assertEquals(200, call(guarded, "POST", "/v2/repository/index", "{}", OPS_KEY).statusCode());
    assertEquals("ops", next(Level.INFO).get("who"));

    // a management call that fails is audited with its outcome too
    assertEquals(404, call(guarded, "POST", "/v2/repository/nothing", "{}", OPS_KEY).statusCode());
    assertEquals("404", next(Level.INFO).get("result"));
  }

  @Test
  void inferenceNeedsAnInferKeyOnceKeysAreConfigured() throws Exception {
    HttpResponse<String> none = call(guarded, "POST", "/v2/models/m/infer", INFER_BODY, null);
    assertEquals(401, none.statusCode());
    assertTrue(none.body().contains("API key with the infer role"), none.body());
    assertEquals("anonymous", next(Level.WARNING).get("who"));
    assertEquals(401, call(guarded, "POST", "/v2/models/m/infer", INFER_BODY, TOKEN).statusCode());
    assertEquals("management-token", next(Level.WARNING).get("who"));
    HttpResponse<String> janitor =
        call(guarded, "POST", "/v2/models/m/infer", INFER_BODY, MANAGE_ONLY_KEY);
    assertEquals(403, janitor.statusCode());
    assertTrue(janitor.body().contains("'janitor' lacks the infer role"), janitor.body());
    assertEquals("janitor", next(Level.WARNING).get("who"));

    assertEquals(
        200, call(guarded, "POST", "/v2/models/m/infer", INFER_BODY, INFER_KEY).statusCode());
    assertEquals(200, call(guarded, "GET", "/v2/models/m", null, OPS_KEY).statusCode());
    assertEquals(401, call(guarded, "GET", "/v2/models/m", null, null).statusCode());
    assertEquals(401, call(guarded, "GET", "/v2", null, null).statusCode());
    assertEquals(
        401,
        call(guarded, "POST", "/v1/models/m:predict", "{\"instances\":[[1,2]]}", null)
            .statusCode());
    assertEquals(
        200,
        call(guarded, "POST", "/v1/models/m:predict", "{\"instances\":[[1,2]]}", INFER_KEY)
            .statusCode());
    // an unauthenticated caller learns nothing about which models exist
    assertEquals(401, call(guarded, "GET", "/v2/models/nope", null, null).statusCode());
    for (int i = 0; i < 4; i++) {
      next(Level.WARNING); // the four refusals above
    }
    // successful inference is the access log's business, not the audit log's: the next event is
    // the refusal that follows it
    call(guarded, "POST", "/v2/models/m/infer", INFER_BODY, INFER_KEY);
    call(guarded, "GET", "/v2/models/m", null, "not-a-key-of-this-server");
    assertEquals("unknown-credential", next(Level.WARNING).get("who"));
  }

  private static String basic(String user, String key) {
    return "Basic "
        + java.util.Base64.getEncoder()
            .encodeToString((user + ":" + key).getBytes(java.nio.charset.StandardCharsets.UTF_8));
  }

  @Test
  void aKeyMayComeAsTheBasicPasswordAsBrowsersSendIt() throws Exception {
    assertEquals(
        200,
        call(guarded, "POST", "/v2/models/m/infer", INFER_BODY, basic("anyone", INFER_KEY))
            .statusCode());
    assertEquals(200, call(guarded, "GET", "/v2/models/m", null, basic("", OPS_KEY)).statusCode());
    HttpResponse<String> management =
        call(guarded, "POST", "/v2/repository/index", "{}", basic("x", TOKEN));
    assertEquals(401, management.statusCode(), "the repository API takes Bearer only");
    assertTrue(management.body().contains("not as HTTP Basic"), management.body());
    next(Level.WARNING);

    HttpResponse<String> wrong =
        call(guarded, "GET", "/v2/models/m", null, basic("web", INFER_KEY + "x"));
    assertEquals(401, wrong.statusCode());
    assertEquals("unknown-credential", next(Level.WARNING).get("who"));
    HttpResponse<String> noPassword =
        call(guarded, "GET", "/v2/models/m", null, basic(INFER_KEY, ""));
    assertEquals(401, noPassword.statusCode());
    assertTrue(noPassword.body().contains("as the password"), noPassword.body());
    next(Level.WARNING);
    HttpResponse<String> janitor =
        call(guarded, "GET", "/v2/models/m", null, basic("j", MANAGE_ONLY_KEY));
    assertEquals(403, janitor.statusCode());
    assertEquals("janitor", next(Level.WARNING).get("who"));
  }

  /**
   * A browser sends Basic credentials it holds with any site's requests to this server: calls other
   * than GET with them are taken from this server's own pages only.
   */
  @Test
  void basicCredentialsDoNothingForAnotherSitesPage() throws Exception {
    String own = "http://127.0.0.1:" + guarded.port();
    String key = basic("web", INFER_KEY);
    for (String[] from :
        List.of(
            new String[] {"Sec-Fetch-Site", "cross-site"},
            new String[] {"Sec-Fetch-Site", "same-site"},
            new String[] {"Origin", "http://elsewhere.example"},
            new String[] {"Origin", "null"})) {
      HttpResponse<String> refused =
          call(guarded, "POST", "/v2/models/m/infer", INFER_BODY, key, from);
      assertEquals(403, refused.statusCode(), String.join(": ", from));
      assertTrue(refused.body().contains("own pages (same origin)"), refused.body());
      Map<String, Object> event = next(Level.WARNING);
      assertEquals("web-frontend", event.get("who"));
      assertEquals("403", event.get("result"));
    }
    // nor does the management API, which takes Bearer credentials only
    assertEquals(
        401,
        call(
                guarded,
                "POST",
                "/v2/repository/index",
                "{}",
                basic("ops", OPS_KEY),
                new String[] {"Sec-Fetch-Site", "cross-site"})
            .statusCode());
    // this server's own page, and clients that are not browsers (they say nothing of a site)
    for (String[] from :
        List.of(
            new String[] {"Sec-Fetch-Site", "same-origin"},
            new String[] {"Origin", own},
            new String[] {})) {
      assertEquals(
          200,
          call(guarded, "POST", "/v2/models/m/infer", INFER_BODY, key, from).statusCode(),
          String.join(": ", from));
    }
    // reading is harmless (another site cannot read the answer), and a bearer key is never sent
    // by a browser of its own accord
    String[] crossSite = {"Sec-Fetch-Site", "cross-site"};
    assertEquals(200, call(guarded, "GET", "/v2/models/m", null, key, crossSite).statusCode());
    assertEquals(
        200,
        call(guarded, "POST", "/v2/models/m/infer", INFER_BODY, INFER_KEY, crossSite).statusCode());
  }

  @Test
  void healthAndMetricsStayOpenForProbesAndScrapers() throws Exception {
    assertEquals(200, call(guarded, "GET", "/v2/health/live", null, null).statusCode());
    assertEquals(200, call(guarded, "GET", "/v2/health/ready", null, null).statusCode());
    assertEquals(200, call(guarded, "GET", "/metrics", null, null).statusCode());
  }

  @Test
  void grpcCallsNeedAnInferKeyExceptTheHealthChecks() {
    var stub = GRPCInferenceServiceGrpc.newBlockingStub(channel);
    assertTrue(stub.serverLive(ServerLiveRequest.getDefaultInstance()).getLive());
    ModelInferRequest request =
        ModelInferRequest.newBuilder()
            .setModelName("m")
            .addInputs(
                ModelInferRequest.InferInputTensor.newBuilder()
                    .setName("x")
                    .setDatatype("FP32")
                    .addShape(1)
                    .addShape(2)
                    .setContents(
                        InferTensorContents.newBuilder().addFp32Contents(1).addFp32Contents(2)))
            .build();

    StatusRuntimeException none =
        assertThrows(StatusRuntimeException.class, () -> stub.modelInfer(request));
    assertEquals(Status.Code.UNAUTHENTICATED, none.getStatus().getCode());
    Map<String, Object> refused = next(Level.WARNING);
    assertEquals("anonymous", refused.get("who"));
    assertEquals("UNAUTHENTICATED", refused.get("result"));
    assertEquals("gRPC inference.GRPCInferenceService/ModelInfer", refused.get("action"));

    StatusRuntimeException janitor =
        assertThrows(
            StatusRuntimeException.class, () -> withKey(stub, MANAGE_ONLY_KEY).modelInfer(request));
    assertEquals(Status.Code.PERMISSION_DENIED, janitor.getStatus().getCode());
    assertEquals("janitor", next(Level.WARNING).get("who"));

    java.nio.FloatBuffer answer =
        withKey(stub, INFER_KEY)
            .modelInfer(request)
            .getRawOutputContents(0)
            .asReadOnlyByteBuffer()
            .order(java.nio.ByteOrder.LITTLE_ENDIAN)
            .asFloatBuffer();
    assertEquals(List.of(1f, 2f), List.of(answer.get(0), answer.get(1)));
  }

  private static GRPCInferenceServiceGrpc.GRPCInferenceServiceBlockingStub withKey(
      GRPCInferenceServiceGrpc.GRPCInferenceServiceBlockingStub stub, String key) {
    Metadata m = new Metadata();
    m.put(Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER), "Bearer " + key);
    return stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(m));
  }
}
