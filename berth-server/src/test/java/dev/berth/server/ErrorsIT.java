package dev.berth.server;

import static dev.berth.server.MiniLmServer.textRequest;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Bad requests and overload get the right status and a JSON {@code {"error": "..."}} that tells the
 * client what to fix, never a stack trace, and the server keeps serving after each.
 */
class ErrorsIT {
  private static final int MAX_BODY_BYTES = 1024;
  private static final String INFER = "/v2/models/minilm/infer";
  private static final String VALID = textRequest(List.of("A man is playing a guitar.")).toString();

  @TempDir static Path dir;
  private static MiniLmServer server;

  @BeforeAll
  static void start() throws Exception {
    server =
        MiniLmServer.start(
            MiniLmServer.repository(Files.createDirectory(dir.resolve("default"))),
            b -> b.maxBodyBytes(MAX_BODY_BYTES));
  }

  @AfterAll
  static void stop() {
    server.close();
  }

  /**
   * One bad request.
   *
   * @param mentions text the error message must contain, so the client learns what to fix
   */
  record Case(String what, String method, String path, String body, int status, String mentions) {
    @Override
    public String toString() {
      return what;
    }
  }

  static Stream<Case> badRequests() {
    return Stream.of(
        new Case("unknown model", "POST", "/v2/models/nope/infer", VALID, 404, "nope"),
        new Case("unknown model metadata", "GET", "/v2/models/nope", null, 404, "nope"),
        new Case("unknown version", "POST", "/v2/models/minilm/versions/7/infer", VALID, 404, "7"),
        new Case(
            "wrong input name",
            "POST",
            INFER,
            tensor("sentence", "BYTES", "[1]", "[\"hello\"]"),
            400,
            "text"),
        new Case(
            "wrong datatype", "POST", INFER, tensor("text", "FP32", "[1]", "[1.5]"), 400, "BYTES"),
        new Case(
            "wrong shape",
            "POST",
            INFER,
            tensor("text", "BYTES", "[1, 1]", "[\"hello\"]"),
            400,
            "shape"),
        new Case(
            "shape and data disagree",
            "POST",
            INFER,
            tensor("text", "BYTES", "[2]", "[\"hello\"]"),
            400,
            "shape"),
        new Case("malformed JSON", "POST", INFER, "{\"inputs\": [}", 400, "line 1, column 12"),
        new Case(
            "malformed TF-Serving JSON",
            "POST",
            "/v1/models/minilm:predict",
            "{\"instances\": [\"a\"",
            400,
            "malformed JSON"),
        new Case(
            "truncated JSON",
            "POST",
            INFER,
            VALID.substring(0, VALID.length() / 2),
            400,
            "malformed JSON"),
        new Case("body over the limit", "POST", INFER, oversized(), 413, "" + MAX_BODY_BYTES),
        new Case("wrong method", "GET", INFER, null, 405, "POST"),
        new Case("wrong method on health", "DELETE", "/v2/health/ready", null, 405, "GET"),
        new Case("unknown path", "GET", "/v3/anything", null, 404, "/v3/anything"),
        new Case(
            "unknown model action",
            "POST",
            "/v2/models/minilm/explain",
            VALID,
            404,
            "no such endpoint"));
  }

  private static String tensor(String name, String datatype, String shape, String data) {
    return "{\"inputs\": [{\"name\": \"%s\", \"datatype\": \"%s\", \"shape\": %s, \"data\": %s}]}"
        .formatted(name, datatype, shape, data);
  }

  /** A valid request, but larger than the server's body limit. */
  private static String oversized() {
    String body = textRequest(List.of("word ".repeat(MAX_BODY_BYTES / 4))).toString();
    assertTrue(body.length() > MAX_BODY_BYTES);
    return body;
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("badRequests")
  void badRequestGetsJsonErrorAndServerKeepsServing(Case c) {
    MiniLmServer.Response r = server.send(c.method(), c.path(), c.body());
    assertEquals(c.status(), r.status(), () -> c.what() + ": " + r.body());
    String error = assertCleanError(r);
    assertTrue(
        error.contains(c.mentions()), () -> c.what() + ": '" + c.mentions() + "' not in " + error);
    assertStillServing(server);
  }

  @Test
  void streamedBodyOverTheLimitGets413() {
    // No Content-Length: the server finds out while reading.
    MiniLmServer.Response r = server.postStreamed(INFER, oversized());
    assertEquals(413, r.status(), r.body());
    assertTrue(assertCleanError(r).contains("" + MAX_BODY_BYTES));
    assertStillServing(server);
  }

  /** The body is {"error": "..."} with a message and no Java internals; returns the message. */
  private static String assertCleanError(MiniLmServer.Response r) {
    assertTrue(
        r.headers().firstValue("Content-Type").orElse("").startsWith("application/json"),
        () -> "Content-Type " + r.headers().firstValue("Content-Type"));
    JsonNode json = r.json();
    assertEquals(1, json.size(), () -> "only 'error' expected: " + r.body());
    assertTrue(json.path("error").isTextual(), r::body);
    String error = json.get("error").asText();
    assertFalse(error.isBlank());
    List<String> internals =
        List.of(
            "Exception", "\tat ", "dev.berth.", "com.fasterxml", "io.helidon", "StreamReadFeature");
    for (String internal : internals) {
      assertFalse(error.contains(internal), () -> "'" + internal + "' in the error: " + error);
    }
    return error;
  }

  private static void assertStillServing(MiniLmServer s) {
    assertEquals(200, s.get("/v2/health/ready").status());
    assertEquals(1, MiniLmServer.embeddings(s.post(INFER, VALID).json(200)).length);
  }

  /** A request of 8 sentences of 256 tokens (the tokenizer's max-length): slow enough to queue. */
  private static String longRequest() {
    String sentence = String.join(" ", Collections.nCopies(60, "the quick brown fox jumps over"));
    return textRequest(Collections.nCopies(8, sentence)).toString();
  }

  /** Sends the same request from many clients at once and returns every answer. */
  private static List<MiniLmServer.Response> concurrently(
      MiniLmServer s, int clients, String body) {
    List<CompletableFuture<MiniLmServer.Response>> answers = new ArrayList<>();
    for (int i = 0; i < clients; i++) {
      answers.add(s.postAsync(INFER, body));
    }
    return answers.stream().map(CompletableFuture::join).toList();
  }

  @Test
  void fullQueueGets429WithRetryAfter() throws Exception {
    Path repo =
        MiniLmServer.repository(
            Files.createDirectory(dir.resolve("queue")),
            MiniLmServer.modelYaml("{max-queue-size: 1, max-batch-size: 1}", "30s"));
    try (MiniLmServer small = MiniLmServer.start(repo)) {
      List<MiniLmServer.Response> answers = concurrently(small, 16, longRequest());
      List<MiniLmServer.Response> refused =
          answers.stream().filter(r -> r.status() == 429).toList();
      assertFalse(refused.isEmpty(), "no request was refused with one queue slot for 16 clients");
      for (MiniLmServer.Response r : refused) {
        assertEquals("1", r.headers().firstValue("Retry-After").orElse(null), "Retry-After");
        assertTrue(assertCleanError(r).contains("max-queue-size"));
      }
      for (MiniLmServer.Response r : answers) {
        assertTrue(r.status() == 200 || r.status() == 429, () -> r.status() + ": " + r.body());
      }
      assertStillServing(small);
    }
  }

  @Test
  void missedDeadlineGets504() throws Exception {
    Path repo =
        MiniLmServer.repository(
            Files.createDirectory(dir.resolve("deadline")),
            MiniLmServer.modelYaml("{max-batch-size: 32}", "1ms"));
    try (MiniLmServer hurried = MiniLmServer.start(repo)) {
      List<MiniLmServer.Response> answers = concurrently(hurried, 8, longRequest());
      List<MiniLmServer.Response> late = answers.stream().filter(r -> r.status() == 504).toList();
      assertFalse(late.isEmpty(), "no request missed a 1 ms deadline");
      for (MiniLmServer.Response r : late) {
        assertTrue(assertCleanError(r).contains("request-timeout"));
      }
      for (MiniLmServer.Response r : answers) {
        assertTrue(r.status() == 200 || r.status() == 504, () -> r.status() + ": " + r.body());
      }
      assertEquals(200, hurried.get("/v2/health/ready").status());
    }
  }
}
