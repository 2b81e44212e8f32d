package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.http.HttpClient;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** berth bench against a real Berth server serving the bundled MiniLM, for short steps. */
class BenchCommandIT {
  @TempDir static Path shared;
  @TempDir Path work;

  private static BerthProcess server;
  private static String url;
  private static String grpcPort;
  private static HttpClient http;

  @BeforeAll
  static void serve() throws Exception {
    server =
        BerthProcess.start(
            shared,
            "serve",
            BerthProcess.examples().toString(),
            "--port",
            "0",
            "--grpc-port",
            "0",
            "--log-format",
            "json");
    url = server.awaitServing();
    Matcher grpc =
        Pattern.compile("\"grpc\":\"[^\"]*:(\\d+)\"").matcher(Files.readString(server.stderr));
    assertTrue(grpc.find(), "no gRPC address in the serving line");
    grpcPort = grpc.group(1);
    http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
  }

  @AfterAll
  static void stop() {
    if (server != null) {
      server.close();
    }
    if (http != null) {
      http.close();
    }
  }

  private BerthProcess.Finished bench(String... args) throws Exception {
    String[] all = new String[args.length + 1];
    all[0] = "bench";
    System.arraycopy(args, 0, all, 1, args.length);
    return BerthProcess.run(work, Duration.ofSeconds(180), all);
  }

  /** The server's count of answered inference requests of minilm with this protocol and code. */
  private static double served(String protocol, String code) throws Exception {
    String metrics = BerthProcess.get(http, url + "/metrics").body();
    double n = 0;
    for (String line : metrics.split("\n")) {
      if (line.startsWith("berth_requests_total{")
          && line.contains("model=\"minilm\"")
          && line.contains("protocol=\"" + protocol + "\"")
          && line.contains("code=\"" + code + "\"")) {
        n += Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
      }
    }
    return n;
  }

  private static JsonNode results(Path report) throws Exception {
    return new ObjectMapper().readTree(report.resolve("results.json").toFile());
  }

  @Test
  void closedLoopStepsAgreeWithTheServer() throws Exception {
    Path report = work.resolve("report");
    double before = served("rest", "200");
    BerthProcess.Finished r =
        bench(
            url,
            "--model",
            "minilm",
            "-c",
            "1,4",
            "-d",
            "1s",
            "--warmup",
            "1s",
            "--report",
            report.toString());
    double after = served("rest", "200");
    assertEquals(0, r.code(), r.err());

    JsonNode steps = results(report);
    assertEquals(2, steps.size(), steps.toString());
    long requests = 0;
    for (int i = 0; i < 2; i++) {
      JsonNode s = steps.get(i);
      assertEquals(i == 0 ? 1 : 4, s.path("concurrency").asInt());
      assertTrue(s.path("requests").asLong() > 0, s.toString());
      assertEquals(0, s.path("errors").asLong(), s.toString());
      assertTrue(s.path("p50_ms").asDouble() > 0, s.toString());
      assertTrue(s.path("p50_ms").asDouble() <= s.path("p90_ms").asDouble(), s.toString());
      assertTrue(s.path("p90_ms").asDouble() <= s.path("p99_ms").asDouble(), s.toString());
      assertTrue(s.path("p99_ms").asDouble() <= s.path("max_ms").asDouble(), s.toString());
      assertEquals(
          s.path("requests").asDouble() / s.path("duration_s").asDouble(),
          s.path("throughput_per_s").asDouble(),
          0.01,
          s.toString());
      assertTrue(s.path("server_compute_ms").asDouble() > 0, s.toString());
      assertTrue(s.path("server_queue_ms").isNumber(), s.toString());
      requests += s.path("requests").asLong();
    }
    // one caller: never two requests at once, so every engine call had one row
    assertEquals(1.0, steps.get(0).path("server_batch_size").asDouble(), 1e-9, steps.toString());
    double batch4 = steps.get(1).path("server_batch_size").asDouble();
    assertTrue(batch4 >= 1 && batch4 <= 4, steps.toString());
    // the server answered at least what was counted (and the first request and warm-ups besides)
    assertTrue(
        after - before >= requests + 1, (after - before) + " served, " + requests + " counted");

    assertTrue(
        r.out().contains("c=1 ") && r.out().contains("c=4 ") && r.out().contains("p99 ms"),
        r.out());
    assertTrue(r.err().contains("c=4: 1s/1s"), "progress:\n" + r.err());
    assertEquals(3, Files.readAllLines(report.resolve("results.csv")).size());
    String html = Files.readString(report.resolve("index.html"));
    assertTrue(html.contains("<svg") && html.contains("berth bench " + url), html);
  }

  @Test
  void anOpenLoopStepSendsItsRate() throws Exception {
    Path report = work.resolve("report");
    BerthProcess.Finished r =
        bench(
            url,
            "-m",
            "minilm",
            "--rate",
            "20",
            "-d",
            "2s",
            "--warmup",
            "0s",
            "--report",
            report.toString());
    assertEquals(0, r.code(), r.err());
    JsonNode s = results(report).get(0);
    assertEquals(20.0, s.path("rate").asDouble());
    assertTrue(s.path("concurrency").isNull());
    assertEquals(40, s.path("requests").asLong(), s.toString());
    assertEquals(0, s.path("errors").asLong(), s.toString());
    assertEquals(20.0, s.path("throughput_per_s").asDouble(), 1.0, s.toString());
  }

  @Test
  void tfServingAndADataFile() throws Exception {
    Path report = work.resolve("report");
    double before = served("tfserving", "200");
    BerthProcess.Finished r =
        bench(
            url,
            "-m",
            "minilm",
            "--protocol",
            "tfserving",
            "-c",
            "2",
            "-d",
            "1s",
            "--warmup",
            "0s",
            "--report",
            report.toString());
    assertEquals(0, r.code(), r.err());
    JsonNode s = results(report).get(0);
    assertEquals(0, s.path("errors").asLong(), s.toString());
    assertTrue(
        served("tfserving", "200") - before >= s.path("requests").asLong() + 1, s.toString());

    Path data = work.resolve("requests.jsonl");
    Files.writeString(
        data,
        "{\"inputs\":[{\"name\":\"text\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"one sentence\"]}]}\n"
            + "{\"inputs\":[{\"name\":\"text\",\"shape\":[2],\"datatype\":\"BYTES\",\"data\":[\"two\",\"more\"]}]}\n");
    r =
        bench(
            url,
            "-m",
            "minilm",
            "--data",
            data.toString(),
            "-c",
            "2",
            "-d",
            "1s",
            "--warmup",
            "0s",
            "--report",
            report.toString());
    assertEquals(0, r.code(), r.err());
    s = results(report).get(0);
    assertEquals(0, s.path("errors").asLong(), s.toString());
    assertTrue(s.path("requests").asLong() > 0, s.toString());
    assertTrue(r.err().contains("2 request bodies"), r.err());
  }

  @Test
  void theBinaryTensorExtension() throws Exception {
    Path report = work.resolve("report");
    double before = served("rest", "200");
    BerthProcess.Finished r =
        bench(
            url,
            "-m",
            "minilm",
            "--protocol",
            "rest-binary",
            "-c",
            "2",
            "-d",
            "1s",
            "--warmup",
            "0s",
            "--report",
            report.toString());
    assertEquals(0, r.code(), r.err());
    JsonNode s = results(report).get(0);
    assertEquals(0, s.path("errors").asLong(), s.toString());
    assertTrue(s.path("requests").asLong() > 0, s.toString());
    assertTrue(served("rest", "200") - before >= s.path("requests").asLong() + 1, s.toString());
    assertTrue(r.err().contains("over rest-binary"), r.err());
  }

  @Test
  void grpc() throws Exception {
    Path report = work.resolve("report");
    double before = served("grpc", "OK");
    BerthProcess.Finished r =
        bench(
            url,
            "-m",
            "minilm",
            "--protocol",
            "grpc",
            "--grpc-port",
            grpcPort,
            "-c",
            "2",
            "-d",
            "1s",
            "--warmup",
            "0s",
            "--report",
            report.toString());
    assertEquals(0, r.code(), r.err());
    JsonNode s = results(report).get(0);
    assertEquals(0, s.path("errors").asLong(), s.toString());
    assertTrue(s.path("requests").asLong() > 0, s.toString());
    assertTrue(served("grpc", "OK") - before >= s.path("requests").asLong() + 1, s.toString());
    assertTrue(s.path("server_batch_size").asDouble() >= 1, s.toString());
  }

  @Test
  void anUnknownModelOrARefusedRequestIsExitCodeTwo() throws Exception {
    BerthProcess.Finished r = bench(url, "-m", "nope", "-c", "1", "-d", "1s");
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains("model 'nope' is not served at " + url), r.err());
    assertFalse(r.out().contains("p99"), r.out());

    Path data = work.resolve("bad.json");
    Files.writeString(
        data,
        "{\"inputs\":[{\"name\":\"pixels\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[1]}]}");
    r = bench(url, "-m", "minilm", "--data", data.toString(), "-c", "1", "-d", "1s");
    assertEquals(2, r.code(), r.err());
    assertTrue(
        r.err().contains("refused the first request") && r.err().contains("HTTP 400"), r.err());
  }

  @Test
  void aServiceFileIsStartedBenchedAndStopped() throws Exception {
    Path service = BerthProcess.examples().resolveSibling("minilm").resolve("berth.yaml");
    Path report = work.resolve("report");
    BerthProcess.Finished r =
        bench(
            service.toString(),
            "-c",
            "2",
            "-d",
            "1s",
            "--warmup",
            "1s",
            "--report",
            report.toString());
    assertEquals(0, r.code(), r.err());
    assertTrue(r.err().contains("benching model 'minilm' at http://127.0.0.1:"), r.err());
    JsonNode s = results(report).get(0);
    assertEquals(0, s.path("errors").asLong(), s.toString());
    assertTrue(
        s.path("requests").asLong() > 0 && s.path("server_batch_size").asDouble() >= 1,
        s.toString());
    Matcher m =
        Pattern.compile("stopped the service \\(pid (\\d+), exit code 0\\)").matcher(r.err());
    assertTrue(m.find(), r.err());
    long pid = Long.parseLong(m.group(1));
    assertFalse(
        ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false),
        "berth serve (pid " + pid + ") outlived berth bench");
  }

  @Test
  void aServiceFileOverGrpcInAnOpenLoop() throws Exception {
    Path service = BerthProcess.examples().resolveSibling("minilm").resolve("berth.yaml");
    Path report = work.resolve("report");
    BerthProcess.Finished r =
        bench(
            service.toString(),
            "--protocol",
            "grpc",
            "--rate",
            "20",
            "-d",
            "1s",
            "--warmup",
            "0s",
            "--report",
            report.toString());
    assertEquals(0, r.code(), r.err());
    assertTrue(r.err().contains("over grpc (gRPC at 127.0.0.1:"), r.err());
    JsonNode s = results(report).get(0);
    assertEquals(20, s.path("requests").asLong(), s.toString());
    assertEquals(0, s.path("errors").asLong(), s.toString());
  }

  @Test
  void aLanguageModelIsBenchedOverItsOpenAiApiWithItsTokens() throws Exception {
    Path service = TinyLlmService.write(work.resolve("llm"), "");
    Path report = work.resolve("report");
    BerthProcess.Finished r =
        bench(
            service.toString(),
            "-c",
            "2",
            "-d",
            "2s",
            "--warmup",
            "1s",
            "--prompt-words",
            "8",
            "--max-tokens",
            "16",
            "--report",
            report.toString());
    assertEquals(0, r.code(), r.err());
    // a language model of a service file: its OpenAI-compatible API, without --protocol
    assertTrue(
        r.err().contains("over openai; requests: prompts of 8 words, max_tokens 16"), r.err());
    assertTrue(r.out().contains("tokens/s") && r.out().contains("first token ms"), r.out());
    JsonNode s = results(report).get(0);
    assertEquals(0, s.path("errors").asLong(), s.toString());
    // the answers' usage: at most max_tokens each, and the prompts' words and more
    double generated = s.path("completion_tokens").asDouble();
    assertTrue(generated > 0 && generated <= 16, s.toString());
    assertTrue(s.path("prompt_tokens").asDouble() > 8, s.toString());
    assertTrue(s.path("server_first_token_ms").asDouble() > 0, s.toString());
    assertEquals(
        s.path("throughput_per_s").asDouble() * generated,
        s.path("tokens_per_s").asDouble(),
        0.01 * s.path("tokens_per_s").asDouble() + 0.01);

    // the options that shape completions go with openai only, checked before a service starts
    BerthProcess.Finished wrong =
        bench(
            BerthProcess.examples().resolveSibling("minilm").resolve("berth.yaml").toString(),
            "--max-tokens",
            "8");
    assertEquals(2, wrong.code(), wrong.err());
    assertFalse(wrong.err().contains("starting service"), wrong.err());
    assertTrue(
        wrong.err().contains("--max-tokens shapes generated completion requests"), wrong.err());
    wrong = bench(service.toString(), "--batch-size", "4");
    assertEquals(2, wrong.code(), wrong.err());
    assertTrue(wrong.err().contains("--batch-size shapes a tensor model's requests"), wrong.err());
    wrong = bench(url, "-m", "minilm", "--max-tokens", "8", "-d", "1s");
    assertEquals(2, wrong.code(), wrong.err());
    assertTrue(
        wrong.err().contains("--max-tokens shapes generated completion requests"), wrong.err());
    // and openai asks for a language model
    BerthProcess.Finished tensor =
        bench(url, "-m", "minilm", "--protocol", "openai", "-c", "1", "-d", "1s");
    assertEquals(2, tensor.code(), tensor.err());
    assertTrue(tensor.err().contains("the model must be a language model"), tensor.err());
  }
}
