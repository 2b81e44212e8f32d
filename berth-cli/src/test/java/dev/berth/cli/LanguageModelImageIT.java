package dev.berth.cli;

import static dev.berth.cli.ContainerTestEnv.berth;
import static dev.berth.cli.ContainerTestEnv.docker;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.net.http.HttpClient;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * A language-model service, built into an image by {@code berth build} and run by the Docker
 * engine: on a base with the OpenMP runtime it chats through the OpenAI API; on one without (like
 * eclipse-temurin's images) its model does not load, the log says what to install, and the replica
 * is not ready.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class LanguageModelImageIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String CHAT =
      "{\"model\":\"tiny\",\"max_tokens\":6,\"temperature\":0,"
          + "\"messages\":[{\"role\":\"user\",\"content\":\"ship it\"}]%s}";

  private Path work;
  private ContainerTestEnv env;
  private Path service;
  private final List<String> containers = new ArrayList<>();
  private final HttpClient http = HttpClient.newHttpClient();

  @BeforeAll
  void setUp() throws Exception {
    env = ContainerTestEnv.require();
    work = Files.createTempDirectory(Path.of("target").toAbsolutePath(), "llm-image-it-");
    service = TinyLlmService.write(work, "");
  }

  @AfterAll
  void removeContainers() throws Exception {
    for (String c : containers) {
      docker(work, "rm", "-f", c);
    }
  }

  @Test
  void anImageOnAPlainJavaBaseChatsThroughTheOpenAiApi() throws Exception {
    // the Java base has no OpenMP runtime: llama.cpp's CPU backends need only the C++ runtime
    String ref = env.registry + "/it/tiny-llm:1";
    ContainerTestEnv.Result built = build(service, ref, env.baseJava);
    assertTrue(
        built.err().matches("(?s).*layer \\d+/\\d+ +model tiny/1 weights +1 file .*"), built.err());

    String name = start(ref);
    String url = url(name);
    await()
        .atMost(Duration.ofSeconds(120))
        .pollInterval(Duration.ofMillis(100))
        .ignoreExceptions()
        .until(() -> BerthProcess.get(http, url + "/v2/models/tiny/ready").statusCode() == 200);

    HttpResponse<String> r = BerthProcess.post(http, url + "/v1/chat/completions", chat(""));
    assertEquals(200, r.statusCode(), r.body());
    JsonNode answer = JSON.readTree(r.body());
    assertEquals("chat.completion", answer.path("object").asText());
    assertEquals("assistant", answer.path("choices").get(0).path("message").path("role").asText());
    int completion = answer.path("usage").path("completion_tokens").asInt();
    assertTrue(completion >= 1 && completion <= 6, r.body());

    HttpResponse<String> streamed =
        BerthProcess.post(http, url + "/v1/chat/completions", chat(",\"stream\":true"));
    assertEquals(200, streamed.statusCode(), streamed.body());
    assertTrue(
        streamed.headers().firstValue("content-type").orElse("").startsWith("text/event-stream"),
        streamed.headers().toString());
    assertTrue(streamed.body().startsWith("data: {"), streamed.body());
    assertTrue(streamed.body().endsWith("data: [DONE]\n\n"), streamed.body());

    docker(work, "stop", "-t", "30", name).ok();
    String exit = docker(work, "inspect", "-f", "{{.State.ExitCode}}", name).ok().out().trim();
    assertEquals("0", exit, docker(work, "logs", name).err());
  }

  @Test
  void aModelThatDoesNotLoadLeavesTheReplicaNotReadyAndTheLogSaysWhy() throws Exception {
    Path broken = Files.createDirectories(work.resolve("broken"));
    Path brokenService = TinyLlmService.write(broken, "");
    Path gguf = broken.resolve("models/tiny/1/model.gguf");
    byte[] whole = Files.readAllBytes(gguf);
    Files.write(gguf, java.util.Arrays.copyOf(whole, whole.length / 2)); // cut short: no weights
    String ref = env.registry + "/it/tiny-llm:broken";
    ContainerTestEnv.Result built = build(brokenService, ref, env.baseJava);
    assertTrue(built.err().contains("note: this service has a language model"), built.err());
    docker(work, "pull", ref).ok();

    // berth run stops waiting as soon as loading is over with a model that failed
    String name = "berth-tiny-llm";
    containers.add(name);
    long started = System.nanoTime();
    ContainerTestEnv.Result run =
        berth(work, "run", brokenService.toString(), "--image", ref, "-p", "0", "--grpc-port", "0");
    assertEquals(2, run.code(), run.out() + run.err());
    assertTrue(System.nanoTime() - started < Duration.ofSeconds(100).toNanos());
    assertTrue(
        run.err().contains("a model did not load")
            && run.err().contains("llama.cpp could not load"),
        run.err());

    String url = url(name);
    assertEquals(200, BerthProcess.get(http, url + "/v2/health/live").statusCode());
    assertEquals(503, BerthProcess.get(http, url + "/v2/models/tiny/ready").statusCode());
    // strict readiness: Kubernetes would send this replica no traffic
    HttpResponse<String> ready = BerthProcess.get(http, url + "/v2/health/ready");
    assertEquals(503, ready.statusCode());
    assertTrue(ready.body().contains("no ready version"), ready.body());
    assertTrue(!ready.body().contains("tiny"), "an open endpoint names no model: " + ready.body());
    HttpResponse<String> r = BerthProcess.post(http, url + "/v1/chat/completions", chat(""));
    assertTrue(r.statusCode() >= 400 && r.statusCode() < 600, r.statusCode() + " " + r.body());
    assertTrue(JSON.readTree(r.body()).path("error").path("message").isTextual(), r.body());
  }

  private ContainerTestEnv.Result build(Path service, String ref, String base) throws Exception {
    return berth(
            work,
            "build",
            service.toString(),
            "--to",
            ref,
            "--base",
            base,
            "--cache-dir",
            work.resolve("cache").toString())
        .ok();
  }

  private String start(String image) throws Exception {
    String name = "berth-llm-it-" + Long.toHexString(System.nanoTime());
    containers.add(name);
    docker(work, "run", "-d", "--name", name, "-p", "127.0.0.1:0:8080", image).ok();
    return name;
  }

  private String url(String container) throws Exception {
    String port = docker(work, "port", container, "8080/tcp").ok().out().trim();
    return "http://" + port.substring(port.lastIndexOf('\n') + 1).trim();
  }

  private static String chat(String more) {
    return CHAT.formatted(more);
  }
}
