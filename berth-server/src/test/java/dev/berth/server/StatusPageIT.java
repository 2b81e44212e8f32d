package dev.berth.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.onnx.testing.OnnxModelWriter;
import dev.berth.onnx.testing.OnnxModelWriter.ElemType;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.ModelStatus;
import dev.berth.runtime.ServingMetrics;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The status page over a real socket: what its files are served with (a strict
 * Content-Security-Policy, nothing that names another host), the figures its data endpoint gives
 * for the requests of its window, and who may open it when API keys are on.
 */
class StatusPageIT {
  private static final String KEY = "key-of-the-status-page-reader";
  private static final String MANAGE_ONLY_KEY = "key-that-may-only-manage";
  private static final String INFER_BODY =
      "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2],\"datatype\":\"FP32\",\"data\":[1,2]}]}";
  private static final List<String> PAGE_ROUTES =
      List.of("/", "/status/page.js", "/status/page.css", "/status/models");
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final HttpClient HTTP = HttpClient.newHttpClient();

  @TempDir static Path dir;
  private static Path repo;
  private static Access access;
  private static BerthServer open;
  private static BerthServer guarded;

  @BeforeAll
  static void start() throws Exception {
    repo = dir.resolve("repo");
    OnnxModelWriter.identity(ElemType.FLOAT, -1, 2)
        .write(repo.resolve("m").resolve("1").resolve("model.onnx"));
    Path broken = Files.createDirectories(repo.resolve("broken").resolve("1"));
    Files.writeString(broken.resolve("model.onnx"), "not an ONNX graph");
    Path keys = dir.resolve("keys.yaml");
    Files.writeString(
        keys,
        """
        keys:
          - {name: reader, key: %s, roles: [infer]}
          - {name: janitor, key: %s, roles: [manage]}
        """
            .formatted(KEY, MANAGE_ONLY_KEY));
    access = Access.of(null, Access.ApiKeys.load(keys));
    open = serve(Access.open());
    guarded = serve(access);
  }

  private static BerthServer serve(Access access) {
    return BerthServer.builder(InferenceService.load(repo, new ServingMetrics()))
        .port(0)
        .access(access)
        .build()
        .start();
  }

  @AfterAll
  static void stop() {
    guarded.close();
    open.close();
  }

  private static HttpResponse<String> get(BerthServer server, String path, String authorization)
      throws Exception {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + server.port() + path))
            .timeout(Duration.ofSeconds(30));
    if (authorization != null) {
      b.header("Authorization", authorization);
    }
    return HTTP.send(b.build(), HttpResponse.BodyHandlers.ofString());
  }

  private static HttpResponse<String> infer(BerthServer server, String body) throws Exception {
    return HTTP.send(
        HttpRequest.newBuilder(
                URI.create("http://127.0.0.1:" + server.port() + "/v2/models/m/infer"))
            .timeout(Duration.ofSeconds(30))
            .POST(HttpRequest.BodyPublishers.ofString(body))
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }

  private static String basic(String user, String password) {
    return "Basic "
        + Base64.getEncoder()
            .encodeToString((user + ":" + password).getBytes(StandardCharsets.UTF_8));
  }

  private static String header(HttpResponse<?> r, String name) {
    return r.headers().firstValue(name).orElse(null);
  }

  @Test
  void thePageAndItsFilesComeFromThisServerUnderAStrictPolicy() throws Exception {
    HttpResponse<String> page = get(open, "/", null);
    assertEquals(200, page.statusCode(), page.body());
    assertEquals("text/html; charset=utf-8", header(page, "Content-Type"));
    assertEquals(
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';"
            + " img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        header(page, "Content-Security-Policy"));
    assertEquals("nosniff", header(page, "X-Content-Type-Options"));
    assertEquals("no-referrer", header(page, "Referrer-Policy"));
    assertEquals("no-cache", header(page, "Cache-Control"));

    // every file the page names is this server's, and is served with its own type
    Matcher refs = Pattern.compile("(?:src|href)=\"([^\"]*)\"").matcher(page.body());
    List<String> named = new ArrayList<>();
    while (refs.find()) {
      named.add(refs.group(1));
    }
    assertTrue(named.containsAll(List.of("/status/page.js", "/status/page.css")), "" + named);
    for (String ref : named) {
      assertTrue(
          ref.equals("data:,") || (ref.startsWith("/") && !ref.startsWith("//")),
          "the page names " + ref);
    }
    assertFalse(page.body().contains("<script>"), "no inline script");
    assertFalse(page.body().contains("style="), "no inline style");
    HttpResponse<String> script = get(open, "/status/page.js", null);
    assertEquals(200, script.statusCode());
    assertEquals("text/javascript; charset=utf-8", header(script, "Content-Type"));
    assertEquals("nosniff", header(script, "X-Content-Type-Options"));
    HttpResponse<String> style = get(open, "/status/page.css", null);
    assertEquals(200, style.statusCode());
    assertEquals("text/css; charset=utf-8", header(style, "Content-Type"));
    for (HttpResponse<String> file : List.of(page, script, style)) {
      for (String elsewhere : List.of("http:", "https:", "@import", "url(", "eval(", "innerHTML")) {
        assertFalse(file.body().contains(elsewhere), file.uri() + " holds '" + elsewhere + "'");
      }
    }
    HttpResponse<String> models = get(open, "/status/models", null);
    assertEquals("application/json", header(models, "Content-Type"));
    assertEquals("no-store", header(models, "Cache-Control"));
    assertEquals("nosniff", header(models, "X-Content-Type-Options"));
  }

  @Test
  void theFiguresAreThoseOfTheRequestsInTheWindow() throws Exception {
    try (BerthServer fresh = serve(access)) { // no one has looked at its figures yet
      figuresOfTheRequestsInTheWindow(fresh);
    }
  }

  private void figuresOfTheRequestsInTheWindow(BerthServer server) throws Exception {
    JsonNode first = JSON.readTree(get(server, "/status/models", "Bearer " + KEY).body());
    assertTrue(first.path("window_seconds").isNull(), "the first look starts the window");
    assertFalse(first.path("server").path("ready").asBoolean(), "a model failed to load");
    JsonNode broken = first.path("models").get(0);
    assertEquals("broken", broken.path("name").asText());
    JsonNode brokenV1 = broken.path("versions").get(0);
    assertEquals("UNAVAILABLE", brokenV1.path("state").asText());
    String reason =
        server.service().index().stream()
            .filter(s -> s.name().equals("broken"))
            .map(ModelStatus::reason)
            .findFirst()
            .orElseThrow();
    assertEquals(reason, brokenV1.path("reason").asText());
    JsonNode m = first.path("models").get(1);
    assertEquals("m", m.path("name").asText());
    assertFalse(m.path("generates_text").asBoolean());
    assertEquals("READY", m.path("versions").get(0).path("state").asText());
    assertTrue(m.path("versions").get(0).path("requests_per_second").isNull());

    for (int i = 0; i < 5; i++) {
      assertEquals(401, infer(server, INFER_BODY).statusCode(), "no key");
    }
    int sent = 0;
    for (int i = 0; i < 5; i++) {
      HttpResponse<String> ok =
          HTTP.send(
              HttpRequest.newBuilder(
                      URI.create("http://127.0.0.1:" + server.port() + "/v2/models/m/infer"))
                  .header("Authorization", "Bearer " + KEY)
                  .POST(HttpRequest.BodyPublishers.ofString(INFER_BODY))
                  .build(),
              HttpResponse.BodyHandlers.ofString());
      assertEquals(200, ok.statusCode(), ok.body());
      sent++;
    }

    // the next look a second or more after the first has figures over the span between them
    AtomicReference<JsonNode> seen = new AtomicReference<>();
    await()
        .atMost(Duration.ofSeconds(10))
        .pollInterval(Duration.ofMillis(200))
        .until(
            () -> {
              seen.set(JSON.readTree(get(server, "/status/models", "Bearer " + KEY).body()));
              return !seen.get().path("window_seconds").isNull();
            });
    JsonNode status = seen.get();
    double window = status.path("window_seconds").asDouble();
    assertTrue(window >= 1 && window < 10, "window " + window);
    JsonNode v1 = status.path("models").get(1).path("versions").get(0);
    // the refused calls name no version, so they are no version's figures
    assertEquals(sent, v1.path("requests_per_second").asDouble() * window, 1e-6, "" + v1);
    assertEquals(0.0, v1.path("server_errors_per_second").asDouble());
    double p99 = v1.path("p99_latency_seconds").asDouble();
    assertTrue(p99 > 0 && p99 <= 30, "" + v1);
    assertEquals(1.0, v1.path("mean_batch_size").asDouble(), "one request at a time");
    assertTrue(v1.path("tokens_per_second").isNull(), "not a language model");
    JsonNode idle = status.path("models").get(0).path("versions").get(0);
    assertEquals(0.0, idle.path("requests_per_second").asDouble());
    assertTrue(idle.path("p99_latency_seconds").isNull(), "no request, no p99");
  }

  @Test
  void behindTheKeysABrowserIsAskedForOneAsItsLoginPassword() throws Exception {
    for (String path : PAGE_ROUTES) {
      HttpResponse<String> none = get(guarded, path, null);
      assertEquals(401, none.statusCode(), path);
      assertEquals(
          "Basic realm=\"berth\", charset=\"UTF-8\"", header(none, "WWW-Authenticate"), path);
      assertTrue(none.body().contains("API key with the infer role"), none.body());
      assertEquals(401, get(guarded, path, basic("me", KEY + "x")).statusCode(), path);
      assertEquals(401, get(guarded, path, basic(KEY, "")).statusCode(), path);
      HttpResponse<String> janitor = get(guarded, path, basic("janitor", MANAGE_ONLY_KEY));
      assertEquals(403, janitor.statusCode(), path);
      assertTrue(janitor.body().contains("lacks the infer role"), janitor.body());
      assertEquals(200, get(guarded, path, basic("anyone", KEY)).statusCode(), path);
      assertEquals(200, get(guarded, path, "Bearer " + KEY).statusCode(), path);
    }
    // an API client is still asked for a bearer credential
    assertEquals(
        "Bearer realm=\"berth\"", header(get(guarded, "/v2/models/m", null), "WWW-Authenticate"));
    // what the page links to for scrapers and readers of the API stays open
    for (String open : List.of("/metrics", "/openapi.json", "/v2/health/live")) {
      assertEquals(200, get(guarded, open, null).statusCode(), open);
    }
  }
}
