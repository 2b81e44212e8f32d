package dev.berth.server;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.berth.runtime.ModelStatus;
import java.io.IOException;
import java.io.UncheckedIOException;
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
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicReference;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The status page in a real browser: headless Chromium (Debian's {@code chromium}) opens it on a
 * live server serving MiniLM and a model that fails to load, behind API keys (the key given as the
 * browser's login, the password in the address); the test reads the model table and its figures as
 * rendered, and sends the test request through the form. Nothing the page loads comes from
 * elsewhere, and its Content-Security-Policy refuses nothing it does.
 *
 * <p>With {@code -Dberth.status.screenshot=FILE} it also writes a screenshot of the page (the
 * README's picture).
 */
class StatusPageBrowserIT {
  private static final String KEY = "key-of-the-status-page-browser";
  private static final String SENTENCE = "The quick brown fox jumps over the lazy dog.";
  private static final int REQUESTS = 24;
  private static final Duration WAIT = Duration.ofSeconds(30);
  private static final HttpClient HTTP = HttpClient.newHttpClient();
  private static final Pattern WINDOW = Pattern.compile("over the last ([0-9.]+) s");

  @TempDir static Path shared;
  private static HeadlessChromium browser;

  @TempDir Path dir;
  private MiniLmServer server;
  private String origin;

  @BeforeAll
  static void startBrowser() {
    browser = HeadlessChromium.start(HeadlessChromium.require(), shared.resolve("profile"));
    browser.call("Network.enable", Map.of());
    browser.call("Page.enable", Map.of());
    // record what the Content-Security-Policy refuses, from before the page's own script runs
    browser.call(
        "Page.addScriptToEvaluateOnNewDocument",
        Map.of(
            "source",
            "window.cspViolations = []; document.addEventListener('securitypolicyviolation',"
                + " e => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));"));
  }

  @AfterAll
  static void stopBrowser() {
    if (browser != null) {
      browser.close();
    }
  }

  @BeforeEach
  void startServer() throws IOException {
    Path repo = MiniLmServer.repository(dir.resolve("repo"));
    Path broken = Files.createDirectories(repo.resolve("broken").resolve("1"));
    Files.writeString(broken.resolve("model.onnx"), "not an ONNX graph");
    Path keys = dir.resolve("keys.yaml");
    Files.writeString(keys, "keys: [{name: status-reader, key: " + KEY + ", roles: [infer]}]\n");
    Access access = Access.of(null, Access.ApiKeys.load(keys));
    server = MiniLmServer.start(repo, b -> b.access(access));
    origin = "http://127.0.0.1:" + server.server().port();
  }

  @AfterEach
  void stopServer() {
    if (server != null) {
      server.close();
    }
  }

  /** Opens the status page with the API key as the login's password, as a user would type it. */
  private void open() {
    browser.call(
        "Page.navigate", Map.of("url", "http://status:" + KEY + "@127.0.0.1:" + port() + "/"));
    await("the status page's first update")
        .atMost(WAIT)
        .until(
            () ->
                browser
                    .evaluate(
                        "location.origin === '"
                            + origin
                            + "' && document.readyState === 'complete'"
                            + " && Number(document.getElementById('models').dataset.updates) >= 1")
                    .asBoolean());
  }

  private int port() {
    return server.server().port();
  }

  /** The model table as rendered: per row, the model, the version and each column's text. */
  private List<Row> table() {
    JsonNode rows =
        browser.evaluate(
            "Array.from(document.querySelectorAll('#models tbody tr[data-model]'), tr => ({"
                + " model: tr.dataset.model, version: tr.dataset.version,"
                + " cells: Object.fromEntries(Array.from(tr.cells,"
                + " td => [td.classList[0], td.textContent])) }))");
    List<Row> out = new ArrayList<>();
    for (JsonNode r : rows) {
      Map<String, String> cells = new java.util.LinkedHashMap<>();
      r.path("cells").properties().forEach(c -> cells.put(c.getKey(), c.getValue().asText()));
      out.add(new Row(r.path("model").asText(), r.path("version").asText(), cells));
    }
    return out;
  }

  /** One row of the model table. */
  private record Row(String model, String version, Map<String, String> cells) {
    String cell(String column) {
      return cells.get(column);
    }
  }

  private Row row(String model) {
    return table().stream()
        .filter(r -> r.model().equals(model))
        .findFirst()
        .orElseThrow(() -> new AssertionError("no row for " + model + " in " + table()));
  }

  private String text(String id) {
    return browser.evaluate("document.getElementById('" + id + "').textContent").asText();
  }

  @Test
  void theModelTableShowsEachVersionsStateAndTheLiveFiguresOfItsRequests() throws Exception {
    open();
    List<Row> rows = table();
    assertEquals(List.of("broken", "minilm"), rows.stream().map(Row::model).toList(), "" + rows);
    Row minilm = row("minilm");
    assertEquals("1", minilm.version());
    assertEquals("READY", minilm.cell("state"));
    Row broken = row("broken");
    assertEquals("UNAVAILABLE", broken.cell("state"));
    String reason =
        server.server().service().index().stream()
            .filter(s -> s.name().equals("broken"))
            .map(ModelStatus::reason)
            .findFirst()
            .orElseThrow();
    assertTrue(reason.contains("broken"), reason);
    assertEquals(reason, broken.cell("reason"), "the repository index's reason, as it is");
    assertTrue(text("window").startsWith("Measuring"), text("window"));
    assertEquals("not ready", text("server-state"), "strict readiness: a model failed to load");

    // requests after the page's first look, which started the window: 8 clients at once, so that
    // some are batched together
    List<CompletableFuture<HttpResponse<String>>> sent = new ArrayList<>();
    for (int i = 0; i < REQUESTS; i++) {
      sent.add(
          HTTP.sendAsync(
              HttpRequest.newBuilder(URI.create(origin + "/v2/models/minilm/infer"))
                  .header("Authorization", "Bearer " + KEY)
                  .POST(
                      HttpRequest.BodyPublishers.ofString(
                          MiniLmServer.textRequest(List.of("sentence number " + i)).toString()))
                  .build(),
              HttpResponse.BodyHandlers.ofString()));
      if (sent.size() % 8 == 0) {
        CompletableFuture.allOf(sent.toArray(CompletableFuture[]::new)).join();
      }
    }
    for (CompletableFuture<HttpResponse<String>> r : sent) {
      assertEquals(200, r.join().statusCode(), r.join().body());
    }

    // the page shows them once it has looked again: requests/s times the window is their number
    AtomicReference<String> shown = new AtomicReference<>();
    AtomicReference<Row> matched = new AtomicReference<>();
    await("the page's figures of " + REQUESTS + " requests")
        .atMost(WAIT)
        .until(
            () -> {
              Row r = row("minilm");
              Matcher w = WINDOW.matcher(text("window"));
              shown.set(r + " " + text("window"));
              if (!w.find() || r.cell("rps").equals("\u2014")) {
                return false;
              }
              double requests = Double.parseDouble(r.cell("rps")) * Double.parseDouble(w.group(1));
              matched.set(r);
              return Math.abs(requests - REQUESTS) <= 0.05 * REQUESTS;
            });
    minilm = matched.get(); // the row as it was when it matched, not a later update of it
    List<MiniLmServer.Sample> metrics = server.metrics();
    Map<String, String> v1 = Map.of("model", "minilm", "version", "1");
    // the server's own figures: every minilm request so far is in the page's window
    assertEquals(
        REQUESTS, MiniLmServer.value(metrics, "berth_requests_total", v1), 0.0, shown.get());
    double p99 = seconds(minilm.cell("p99"));
    double[] bucket = p99Bucket(metrics, v1);
    assertTrue(
        p99 > bucket[0] * 0.99 && p99 <= bucket[1] * 1.01,
        "p99 " + minilm.cell("p99") + " outside the bucket (" + bucket[0] + ", " + bucket[1] + "]");
    double batch =
        MiniLmServer.value(metrics, "berth_batch_size_sum", v1)
            / MiniLmServer.value(metrics, "berth_batch_size_count", v1);
    assertEquals(String.format(java.util.Locale.ROOT, "%.1f", batch), minilm.cell("batch"));
    assertEquals("0.00", minilm.cell("errors"));
    assertEquals("\u2014", minilm.cell("tokens"), "not a language model");
    Row idle = row("broken");
    assertEquals("0.00", idle.cell("rps"));
    assertEquals("\u2014", idle.cell("p99"), "no request, no p99");

    screenshotIfAsked();
    assertNothingRefusedAndNothingFromElsewhere();
  }

  @Test
  void theFormSendsAValidExampleRequestAndShowsTheModelsAnswer() throws Exception {
    open();
    await("the form's example request")
        .atMost(WAIT)
        .until(
            () ->
                browser
                    .evaluate(
                        "document.getElementById('try').dataset.model === 'minilm'"
                            + " && document.getElementById('try-body').value.length > 0")
                    .asBoolean());
    assertEquals("POST /v2/models/minilm/infer", text("try-path"));
    JsonNode example =
        MiniLmServer.JSON.readTree(
            browser.evaluate("document.getElementById('try-body').value").asText());
    // built from the metadata: the text input alone (not the token tensors it stands for), its -1
    // dimension as 1
    assertEquals(MiniLmServer.textRequest(List.of(SENTENCE)), example);

    JsonNode answer = send();
    assertEquals("minilm", answer.path("model_name").asText());
    float[][] embedding = MiniLmServer.embeddings(answer);
    try (MiniLmServer.ReferenceEmbedder reference = new MiniLmServer.ReferenceEmbedder()) {
      float[] expected = reference.embed(SENTENCE);
      assertTrue(
          MiniLmServer.maxAbsDiff(expected, embedding[0]) < 1e-5,
          "the form's answer is not MiniLM's embedding of the sentence");
    }

    // what the user types goes as typed; the server's error comes back to the page
    browser.evaluate(
        "document.getElementById('try-body').value = '{\"inputs\": [{\"name\": \"text\","
            + " \"shape\": [2], \"datatype\": \"BYTES\", \"data\": [\"one\"]}]}'");
    browser.evaluate("document.getElementById('try-send').click()");
    awaitAnswer();
    assertEquals(
        "400", browser.evaluate("document.getElementById('try-status').dataset.status").asText());
    assertTrue(text("try-answer").contains("\"error\""), text("try-answer"));
    assertNothingRefusedAndNothingFromElsewhere();
  }

  /** Clicks Send and returns the answer the page shows, after checking it shows 200. */
  private JsonNode send() throws IOException {
    browser.evaluate("document.getElementById('try-send').click()");
    awaitAnswer();
    assertEquals(
        "200",
        browser.evaluate("document.getElementById('try-status').dataset.status").asText(),
        text("try-status") + ": " + text("try-answer"));
    assertTrue(text("try-status").startsWith("200 "), text("try-status"));
    return MiniLmServer.JSON.readTree(text("try-answer"));
  }

  private void awaitAnswer() {
    await("the form's answer")
        .atMost(WAIT)
        .until(
            () ->
                browser
                    .evaluate("'status' in document.getElementById('try-status').dataset")
                    .asBoolean());
  }

  /** The page's Content-Security-Policy refused nothing, and it asked nothing of another host. */
  private void assertNothingRefusedAndNothingFromElsewhere() {
    assertEquals("[]", browser.evaluate("window.cspViolations").toString());
    List<String> urls = new ArrayList<>();
    for (JsonNode e : browser.events()) {
      if (e.path("method").asText().equals("Network.requestWillBeSent")) {
        urls.add(e.path("params").path("request").path("url").asText());
      }
    }
    assertTrue(urls.size() >= 4, "the page, its script and style, its data: " + urls);
    for (String url : urls) {
      URI u = URI.create(url);
      assertTrue(
          "data".equals(u.getScheme())
              || "about".equals(u.getScheme())
              || ("127.0.0.1".equals(u.getHost()) && u.getPort() > 0),
          "the page asked for " + url);
    }
  }

  /** "12.3 ms" or "1.20 s" in seconds. */
  private static double seconds(String shown) {
    String[] parts = shown.split(" ");
    double value = Double.parseDouble(parts[0]);
    return parts[1].equals("ms") ? value / 1000 : value;
  }

  /**
   * The bounds of the latency bucket that holds the 99th percentile of the requests counted, from
   * the server's {@code /metrics}: the page's estimate must lie in it.
   */
  private static double[] p99Bucket(List<MiniLmServer.Sample> metrics, Map<String, String> labels) {
    java.util.TreeMap<Double, Double> cumulative = new java.util.TreeMap<>();
    for (MiniLmServer.Sample s : metrics) {
      if (s.name().equals("berth_request_duration_seconds_bucket") && s.has(labels)) {
        String le = s.labels().get("le");
        double bound = le.equals("+Inf") ? Double.POSITIVE_INFINITY : Double.parseDouble(le);
        cumulative.merge(bound, s.value(), Double::sum);
      }
    }
    double total = cumulative.lastEntry().getValue();
    double lower = 0;
    for (Map.Entry<Double, Double> e : cumulative.entrySet()) {
      if (e.getValue() >= 0.99 * total) {
        return new double[] {lower, e.getKey()};
      }
      lower = e.getKey();
    }
    throw new AssertionError("no bucket holds the 99th percentile: " + cumulative);
  }

  /** With -Dberth.status.screenshot=FILE: the page, after a test request, as a PNG. */
  private void screenshotIfAsked() throws IOException {
    String file = System.getProperty("berth.status.screenshot");
    if (file == null || file.isBlank()) {
      return;
    }
    await().atMost(WAIT).until(() -> !text("try-path").isEmpty());
    browser.evaluate("document.getElementById('try-send').click()");
    awaitAnswer();
    try {
      Path png = Path.of(file).toAbsolutePath();
      Files.createDirectories(png.getParent());
      Files.write(png, browser.screenshot());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
