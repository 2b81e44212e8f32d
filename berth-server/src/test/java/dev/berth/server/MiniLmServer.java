package dev.berth.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.ServingMetrics;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpHeaders;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.FloatBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.function.UnaryOperator;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The MiniLM example model served by a real {@link BerthServer} on a free local port, with a small
 * HTTP client for the integration tests of this package, and an ONNX Runtime reference that
 * computes the expected embeddings without Berth.
 */
final class MiniLmServer implements AutoCloseable {
  static final String MODEL = "minilm";
  static final int DIMENSIONS = 384;
  static final ObjectMapper JSON = new ObjectMapper();

  /**
   * Largest element-wise difference allowed between a sentence's embedding computed in a batch with
   * other sentences and computed alone. The model is int8 with dynamic quantization: the
   * activations' quantization scale is taken over the whole input tensor, so the padding and the
   * other rows of a batch shift every sentence's numbers a little. ONNX Runtime itself, without
   * Berth, gives the same shift (a sentence padded from its own length to 200 tokens moved by up to
   * 0.028), and Berth's batched answers equalled a direct ONNX Runtime run of the same padded batch
   * exactly. Measured maximum, batched vs alone: 0.029 over 67 sentences of 7..152 tokens in one
   * request and in requests of 8; 0.037 over 10 rounds of 64 concurrent clients (cosine to the
   * alone embedding at least 0.978). 0.06 leaves headroom for other batch compositions, and stays
   * far below the gap between different sentences.
   */
  static final double BATCHED_TOLERANCE = 0.06;

  private static final HttpClient CLIENT =
      HttpClient.newBuilder()
          .version(HttpClient.Version.HTTP_1_1)
          .connectTimeout(Duration.ofSeconds(10))
          .build();

  /** One label of a Prometheus sample: name="value" with \" and \\ escapes. */
  private static final Pattern LABEL =
      Pattern.compile("([a-zA-Z_][a-zA-Z0-9_]*)=\"((?:[^\"\\\\]|\\\\.)*)\"");

  private final BerthServer server;
  private final URI base;

  private MiniLmServer(BerthServer server) {
    this.server = server;
    this.base = URI.create("http://" + server.host() + ":" + server.port());
  }

  /** The example's version directory: model.onnx and tokenizer.json. */
  static Path versionDir() {
    String examples = System.getProperty("berth.examples");
    assertTrue(
        examples != null,
        "system property berth.examples is not set; run the ITs through Maven's failsafe plugin");
    Path dir = Path.of(examples, "models", MODEL, "1");
    assertTrue(
        Files.isRegularFile(dir.resolve("model.onnx"))
            && Files.isRegularFile(dir.resolve("tokenizer.json")),
        "no model.onnx + tokenizer.json in " + dir + "; build the examples module first");
    return dir;
  }

  /** The example's own model.yaml. */
  static String exampleModelYaml() {
    try {
      return Files.readString(versionDir().getParent().resolve("model.yaml"));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** A repository in {@code dir} holding only minilm, with the example's model.yaml. */
  static Path repository(Path dir) {
    return repository(dir, exampleModelYaml());
  }

  /**
   * A repository in {@code dir} holding only minilm: its version 1 is a link to the example's files
   * and its model.yaml is {@code modelYaml}.
   */
  static Path repository(Path dir, String modelYaml) {
    try {
      Path model = Files.createDirectories(dir.resolve(MODEL));
      Files.writeString(model.resolve("model.yaml"), modelYaml);
      Files.createSymbolicLink(model.resolve("1"), versionDir().toAbsolutePath());
      return dir;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** A model.yaml like the example's, with other batching settings and request timeout. */
  static String modelYaml(String batching, String requestTimeout) {
    return """
    apiVersion: berth.dev/v1
    kind: Model
    batching: %s
    request-timeout: %s
    preprocessing: {type: tokenize, tokenizer: tokenizer.json, input: text, max-length: 256}
    postprocessing: {type: mean-pool, source: last_hidden_state, output: embedding, normalize: true}
    """
        .formatted(batching, requestTimeout);
  }

  static MiniLmServer start(Path repository) {
    return start(repository, b -> b);
  }

  /**
   * One engine instance with a 120 s request timeout, so that a second request waits in the queue
   * behind a {@link #busy()} one: for the tests of clients that give up.
   */
  static MiniLmServer startOneSlot(Path dir) {
    return start(repository(dir, modelYaml("{max-batch-size: 256}", "120s")));
  }

  /** The value of a metric of this server's model with more labels ({@link #value}). */
  double metric(String name, Map<String, String> labels) {
    Map<String, String> all = new LinkedHashMap<>(labels);
    all.put("model", MODEL);
    return value(metrics(), name, all);
  }

  /**
   * Sends a request of 128 sentences of about 250 tokens, which keeps the engine busy for seconds,
   * and returns once it is in flight.
   */
  CompletableFuture<Response> busy() {
    List<String> sentences = new ArrayList<>();
    for (int i = 0; i < 128; i++) {
      sentences.add(("sentence " + i + " keeps the engine busy for a while; ").repeat(25));
    }
    CompletableFuture<Response> busy =
        postAsync("/v2/models/" + MODEL + "/infer", textRequest(sentences).toString());
    awaitInflight(1);
    return busy;
  }

  /** Waits (30 s at most) until this many requests of the model are in flight. */
  void awaitInflight(int n) {
    org.awaitility.Awaitility.await()
        .atMost(Duration.ofSeconds(30))
        .until(() -> metric("berth_inflight_requests", Map.of()) == n);
  }

  /**
   * Waits until a request that gave up behind {@code busy} has left: one request in flight again
   * and one counted with {@code code} on {@code protocol}, while {@code busy} still runs.
   */
  void awaitGivenUp(String protocol, String code, CompletableFuture<Response> busy) {
    awaitGivenUp(protocol, code, 1, busy);
  }

  /**
   * Waits until {@code n} requests that gave up behind {@code busy} have left: within a second, one
   * request in flight again, none in the queue (the long one runs), and {@code n} counted with
   * {@code code} on {@code protocol} under the version that would have answered them, while {@code
   * busy} still runs.
   */
  void awaitGivenUp(String protocol, String code, int n, CompletableFuture<Response> busy) {
    org.awaitility.Awaitility.await()
        .atMost(Duration.ofSeconds(1))
        .until(
            () ->
                metric("berth_inflight_requests", Map.of()) == 1
                    && metric("berth_queue_size", Map.of("version", "1")) == 0
                    && metric(
                            "berth_requests_total",
                            Map.of("protocol", protocol, "code", code, "version", "1"))
                        == n);
    org.junit.jupiter.api.Assertions.assertEquals(
        0.0,
        metric("berth_requests_total", Map.of("protocol", protocol, "code", code, "version", "")),
        "a request given up is counted under its model's version, not an empty one");
    org.junit.jupiter.api.Assertions.assertFalse(
        busy.isDone(), "the slot must be freed while the long request still runs");
  }

  /** Loads the repository and serves it on a free port with the given extra server settings. */
  static MiniLmServer start(Path repository, UnaryOperator<BerthServer.Builder> settings) {
    return serve(InferenceService.load(repository, new ServingMetrics()), settings);
  }

  /** Serves a service as it is, loaded or not, on a free port. */
  static MiniLmServer serve(InferenceService service) {
    return serve(service, b -> b);
  }

  private static MiniLmServer serve(
      InferenceService service, UnaryOperator<BerthServer.Builder> settings) {
    return new MiniLmServer(settings.apply(BerthServer.builder(service).port(0)).build().start());
  }

  BerthServer server() {
    return server;
  }

  URI url(String path) {
    return base.resolve(path);
  }

  /** One HTTP answer. */
  record Response(int status, HttpHeaders headers, String body) {
    JsonNode json() {
      try {
        return JSON.readTree(body);
      } catch (IOException e) {
        throw new AssertionError("the answer is not JSON (status " + status + "): " + body, e);
      }
    }

    /** The answer's JSON after checking its status. */
    JsonNode json(int expectedStatus) {
      assertEquals(expectedStatus, status, () -> "unexpected status; body: " + body);
      return json();
    }
  }

  Response get(String path) {
    return send(HttpRequest.newBuilder(url(path)).GET());
  }

  Response post(String path, String json) {
    return send(builder(path, json));
  }

  Response post(String path, JsonNode json) {
    return post(path, json.toString());
  }

  CompletableFuture<Response> postAsync(String path, String json) {
    return CLIENT
        .sendAsync(
            builder(path, json).build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8))
        .thenApply(r -> new Response(r.statusCode(), r.headers(), r.body()));
  }

  /** POSTs the body in chunks, without a Content-Length. */
  Response postStreamed(String path, String json) {
    byte[] bytes = json.getBytes(StandardCharsets.UTF_8);
    return send(
        HttpRequest.newBuilder(url(path))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofInputStream(() -> new ByteArrayInputStream(bytes))));
  }

  Response send(String method, String path, String body) {
    HttpRequest.BodyPublisher publisher =
        body == null
            ? HttpRequest.BodyPublishers.noBody()
            : HttpRequest.BodyPublishers.ofString(body, StandardCharsets.UTF_8);
    return send(
        HttpRequest.newBuilder(url(path))
            .header("Content-Type", "application/json")
            .method(method, publisher));
  }

  private HttpRequest.Builder builder(String path, String json) {
    return HttpRequest.newBuilder(url(path))
        .timeout(Duration.ofSeconds(60))
        .header("Content-Type", "application/json")
        .POST(HttpRequest.BodyPublishers.ofString(json, StandardCharsets.UTF_8));
  }

  private static Response send(HttpRequest.Builder request) {
    try {
      HttpResponse<String> r =
          CLIENT.send(
              request.timeout(Duration.ofSeconds(60)).build(),
              HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
      return new Response(r.statusCode(), r.headers(), r.body());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /** An OIP request with the strings as the BYTES input "text". */
  static ObjectNode textRequest(List<String> sentences) {
    ObjectNode root = JSON.createObjectNode();
    ObjectNode text = root.putArray("inputs").addObject();
    text.put("name", "text");
    text.put("datatype", "BYTES");
    text.putArray("shape").add(sentences.size());
    ArrayNode data = text.putArray("data");
    sentences.forEach(data::add);
    return root;
  }

  /** Sends the sentences to /v2/models/minilm/infer and returns one embedding per sentence. */
  float[][] embed(List<String> sentences) {
    return embeddings(post("/v2/models/minilm/infer", textRequest(sentences)).json(200));
  }

  /** The "embedding" output of an OIP answer, after checking its datatype and shape. */
  static float[][] embeddings(JsonNode answer) {
    JsonNode out = answer.get("outputs").get(0);
    assertEquals("embedding", out.get("name").asText());
    assertEquals("FP32", out.get("datatype").asText());
    int rows = out.get("shape").get(0).asInt();
    assertEquals(List.of(rows, DIMENSIONS), JSON.convertValue(out.get("shape"), List.class));
    JsonNode data = out.get("data");
    assertEquals(rows * DIMENSIONS, data.size());
    float[][] vectors = new float[rows][DIMENSIONS];
    for (int r = 0; r < rows; r++) {
      for (int k = 0; k < DIMENSIONS; k++) {
        vectors[r][k] = data.get(r * DIMENSIONS + k).floatValue();
      }
    }
    return vectors;
  }

  static float[] vector(JsonNode array) {
    float[] v = new float[array.size()];
    for (int i = 0; i < v.length; i++) {
      v[i] = array.get(i).floatValue();
    }
    return v;
  }

  static double maxAbsDiff(float[] a, float[] b) {
    assertEquals(a.length, b.length);
    double max = 0;
    for (int i = 0; i < a.length; i++) {
      max = Math.max(max, Math.abs(a[i] - b[i]));
    }
    return max;
  }

  static double cosine(float[] a, float[] b) {
    double dot = 0;
    double na = 0;
    double nb = 0;
    for (int i = 0; i < a.length; i++) {
      dot += (double) a[i] * b[i];
      na += (double) a[i] * a[i];
      nb += (double) b[i] * b[i];
    }
    return dot / Math.sqrt(na * nb);
  }

  static double norm(float[] v) {
    double sum = 0;
    for (float x : v) {
      sum += (double) x * x;
    }
    return Math.sqrt(sum);
  }

  /** One sample of the Prometheus text exposition. */
  record Sample(String name, Map<String, String> labels, double value) {
    boolean has(Map<String, String> wanted) {
      return labels.entrySet().containsAll(wanted.entrySet());
    }
  }

  /** GET /metrics, parsed into samples. */
  List<Sample> metrics() {
    Response r = get("/metrics");
    assertEquals(200, r.status(), r.body());
    return parseMetrics(r.body());
  }

  static List<Sample> parseMetrics(String text) {
    List<Sample> samples = new ArrayList<>();
    for (String line : text.split("\n")) {
      if (line.isBlank() || line.startsWith("#")) {
        continue;
      }
      int brace = line.indexOf('{');
      int space = line.lastIndexOf(' ');
      String name;
      Map<String, String> labels = new LinkedHashMap<>();
      if (brace >= 0 && brace < space) {
        name = line.substring(0, brace);
        Matcher m = LABEL.matcher(line.substring(brace + 1, line.lastIndexOf('}')));
        while (m.find()) {
          labels.put(m.group(1), m.group(2));
        }
      } else {
        name = line.substring(0, space);
      }
      samples.add(new Sample(name, labels, Double.parseDouble(line.substring(space + 1))));
    }
    return samples;
  }

  /** The sum of the values of every sample with this name and (at least) these labels. */
  static double value(List<Sample> samples, String name, Map<String, String> labels) {
    return samples.stream()
        .filter(s -> s.name().equals(name) && s.has(labels))
        .mapToDouble(Sample::value)
        .sum();
  }

  @Override
  public void close() {
    server.shutdown(Duration.ofSeconds(10));
  }

  /**
   * all-MiniLM-L6-v2 computed here with ONNX Runtime and the Hugging Face tokenizer directly, one
   * sentence at a time: tokens, the graph's last_hidden_state, the mean over the attention mask, L2
   * normalisation. What Berth should answer for a sentence sent on its own.
   */
  static final class ReferenceEmbedder implements AutoCloseable {
    private final HuggingFaceTokenizer tokenizer;
    private final OrtSession session;

    ReferenceEmbedder() {
      Path dir = versionDir();
      try (OrtSession.SessionOptions options = new OrtSession.SessionOptions()) {
        // tokenizer.json alone truncates at 128 tokens and pads to 128; the example's model.yaml
        // says max-length 256, and one sentence needs no padding.
        tokenizer =
            HuggingFaceTokenizer.newInstance(
                dir.resolve("tokenizer.json"),
                Map.of("maxLength", "256", "truncation", "true", "padding", "false"));
        session =
            OrtEnvironment.getEnvironment()
                .createSession(dir.resolve("model.onnx").toString(), options);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      } catch (OrtException e) {
        throw new IllegalStateException(e);
      }
    }

    /** The token tensors of one sentence: input_ids, attention_mask, token_type_ids. */
    Tokens tokens(String sentence) {
      Encoding e = tokenizer.encode(sentence);
      return new Tokens(e.getIds(), e.getAttentionMask(), e.getTypeIds());
    }

    record Tokens(long[] ids, long[] mask, long[] typeIds) {}

    float[] embed(String sentence) {
      Tokens t = tokens(sentence);
      OrtEnvironment env = OrtEnvironment.getEnvironment();
      try (OnnxTensor ids = OnnxTensor.createTensor(env, new long[][] {t.ids()});
          OnnxTensor mask = OnnxTensor.createTensor(env, new long[][] {t.mask()});
          OnnxTensor types = OnnxTensor.createTensor(env, new long[][] {t.typeIds()});
          OrtSession.Result result =
              session.run(
                  Map.of("input_ids", ids, "attention_mask", mask, "token_type_ids", types))) {
        OnnxTensor hidden = (OnnxTensor) result.get("last_hidden_state").orElseThrow();
        long[] shape = hidden.getInfo().getShape(); // [1, s, 384]
        int s = (int) shape[1];
        int h = (int) shape[2];
        FloatBuffer values = hidden.getFloatBuffer();
        double[] sum = new double[h];
        long count = 0;
        for (int tok = 0; tok < s; tok++) {
          if (t.mask()[tok] == 0) {
            continue;
          }
          count++;
          for (int k = 0; k < h; k++) {
            sum[k] += values.get(tok * h + k);
          }
        }
        double length = 0;
        for (int k = 0; k < h; k++) {
          sum[k] /= count;
          length += sum[k] * sum[k];
        }
        length = Math.sqrt(length);
        float[] out = new float[h];
        for (int k = 0; k < h; k++) {
          out[k] = (float) (sum[k] / length);
        }
        return out;
      } catch (OrtException e) {
        throw new IllegalStateException(e);
      }
    }

    @Override
    public void close() {
      try {
        session.close();
      } catch (OrtException e) {
        throw new IllegalStateException(e);
      }
      tokenizer.close();
    }
  }
}
