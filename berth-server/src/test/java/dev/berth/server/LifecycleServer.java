package dev.berth.server;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.onnx.testing.OnnxModelWriter;
import dev.berth.onnx.testing.OnnxModelWriter.ElemType;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.ServingMetrics;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * A real server over a repository of small ONNX models whose version N answers {@code y = x + N},
 * so every answer tells which version computed it; with helpers to change the repository on disk
 * and to call the server over HTTP.
 */
final class LifecycleServer implements AutoCloseable {
  static final ObjectMapper JSON = new ObjectMapper();
  private static final HttpClient CLIENT =
      HttpClient.newBuilder()
          .version(HttpClient.Version.HTTP_1_1)
          .connectTimeout(Duration.ofSeconds(10))
          .build();

  final Path repo;
  final BerthServer server;
  final URI base;

  private LifecycleServer(Path repo, BerthServer server) {
    this.repo = repo;
    this.server = server;
    this.base = URI.create("http://127.0.0.1:" + server.port());
  }

  /** The management token the repository API is served behind; every request here sends it. */
  static final String TOKEN = "lifecycle-test-management-token";

  static LifecycleServer start(Path repo) {
    InferenceService service = InferenceService.load(repo, new ServingMetrics());
    return new LifecycleServer(
        repo, BerthServer.builder(service).port(0).access(Access.of(TOKEN, null)).build().start());
  }

  InferenceService service() {
    return server.service();
  }

  /** Writes {@code REPO/model/version/model.onnx} computing {@code y = x + version}. */
  static void addVersion(Path repo, String model, int version) {
    OnnxModelWriter.graph("add_" + version)
        .input("x", ElemType.FLOAT, -1, 2)
        .output("y", ElemType.FLOAT, -1, 2)
        .initializer("c", new long[0], (float) version)
        .node("Add", List.of("x", "c"), List.of("y"))
        .write(modelFile(repo, model, version));
  }

  /** Writes bytes that are not an ONNX model as {@code REPO/model/version/model.onnx}. */
  static void addCorruptVersion(Path repo, String model, int version) {
    OnnxModelWriter.writeGarbage(modelFile(repo, model, version));
  }

  static Path modelFile(Path repo, String model, int version) {
    return repo.resolve(model).resolve(Integer.toString(version)).resolve("model.onnx");
  }

  static void modelYaml(Path repo, String model, String extra) {
    try {
      Files.createDirectories(repo.resolve(model));
      Files.writeString(
          repo.resolve(model).resolve("model.yaml"),
          "apiVersion: berth.dev/v1\nkind: Model\n" + extra + "\n");
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static void delete(Path dir) {
    try (Stream<Path> files = Files.walk(dir)) {
      for (Path f : files.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(f);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** One HTTP answer. */
  record Answer(int status, String body) {
    JsonNode json() {
      try {
        return JSON.readTree(body);
      } catch (IOException e) {
        throw new AssertionError("not JSON (status " + status + "): " + body, e);
      }
    }

    JsonNode json(int expected) {
      assertEquals(expected, status, body);
      return json();
    }
  }

  Answer post(String path, String body) {
    return send(
        HttpRequest.newBuilder(base.resolve(path))
            .header("Content-Type", "application/json")
            .header("Authorization", "Bearer " + TOKEN)
            .POST(HttpRequest.BodyPublishers.ofString(body, StandardCharsets.UTF_8)));
  }

  Answer get(String path) {
    return send(
        HttpRequest.newBuilder(base.resolve(path))
            .header("Authorization", "Bearer " + TOKEN)
            .GET());
  }

  /** Sends {@code x = [value, value]} to the model and returns the answer. */
  Answer infer(String model, float value) {
    return post(
        "/v2/models/" + model + "/infer",
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,2],\"datatype\":\"FP32\",\"data\":["
            + value
            + ","
            + value
            + "]}]}");
  }

  /** Sends {@code x = [1, 0, 0]} to a model of three inputs and returns the answer. */
  Answer infer3(String model) {
    return post(
        "/v2/models/" + model + "/infer",
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,3],\"datatype\":\"FP32\",\"data\":[1,0,0]}]}");
  }

  /** Which version computed an answer to {@link #infer(String, float)} with value 0. */
  static int versionOf(Answer a) {
    JsonNode json = a.json(200);
    float y = json.path("outputs").path(0).path("data").path(0).floatValue();
    assertEquals(json.path("model_version").asText(), Integer.toString((int) y), a.body());
    return (int) y;
  }

  /** {@code version -> state} of one model in the repository index. */
  java.util.Map<String, String> states(String model) {
    java.util.Map<String, String> out = new java.util.TreeMap<>();
    for (JsonNode s : post("/v2/repository/index", "").json(200)) {
      if (s.path("name").asText().equals(model)) {
        out.put(s.path("version").asText(), s.path("state").asText());
      }
    }
    return out;
  }

  /** The index entry of one model version. */
  JsonNode indexEntry(String model, String version) {
    for (JsonNode s : post("/v2/repository/index", "").json(200)) {
      if (s.path("name").asText().equals(model) && s.path("version").asText().equals(version)) {
        return s;
      }
    }
    throw new AssertionError("no " + model + " version '" + version + "' in the index");
  }

  private static Answer send(HttpRequest.Builder request) {
    try {
      HttpResponse<String> r =
          CLIENT.send(
              request.timeout(Duration.ofSeconds(60)).build(),
              HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
      return new Answer(r.statusCode(), r.body());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  @Override
  public void close() {
    server.shutdown(Duration.ofSeconds(10));
  }
}
