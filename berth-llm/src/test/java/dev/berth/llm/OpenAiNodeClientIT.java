package dev.berth.llm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.ServingMetrics;
import dev.berth.server.BerthServer;
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
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The official OpenAI client for Node.js (npm {@code openai}, pinned in src/test/node and installed
 * by bin/test), unchanged, against a server with a language model and MiniLM: a chat completion,
 * the same chat streamed, embeddings (which the client asks for as base64) and the model list.
 */
class OpenAiNodeClientIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Path CLIENT_DIR = Path.of("src", "test", "node");

  @TempDir static Path repo;
  private static BerthServer server;

  @BeforeAll
  static void start() throws IOException {
    Path lm = Files.createDirectories(repo.resolve("tiny/1"));
    GgufWriter.tiny().write(lm.resolve("model.gguf"));
    Files.writeString(
        repo.resolve("tiny/model.yaml"),
        "apiVersion: berth.dev/v1\nkind: Model\nllm: {context-size: 256, parallel: 2, threads: 2}\n");
    Path examples = Path.of(System.getProperty("berth.examples"), "models", "minilm");
    Path minilm = Files.createDirectories(repo.resolve("minilm/1"));
    for (String file : new String[] {"model.onnx", "tokenizer.json"}) {
      Files.copy(examples.resolve("1").resolve(file), minilm.resolve(file));
    }
    Files.copy(examples.resolve("model.yaml"), repo.resolve("minilm/model.yaml"));
    server =
        BerthServer.builder(InferenceService.load(repo, new ServingMetrics()))
            .host("127.0.0.1")
            .port(0)
            .build()
            .start();
  }

  @AfterAll
  static void stop() {
    if (server != null) {
      server.close();
    }
  }

  private static JsonNode runClient() throws Exception {
    assertTrue(
        Files.isDirectory(CLIENT_DIR.resolve("node_modules").resolve("openai")),
        "the openai npm client is not installed in "
            + CLIENT_DIR.toAbsolutePath()
            + "; bin/test installs it (npm ci there)");
    Path output = Files.createTempFile(repo, "client", ".json");
    Path errors = Files.createTempFile(repo, "client", ".err");
    Process node =
        new ProcessBuilder(
                "node",
                "openai-client.mjs",
                "http://127.0.0.1:" + server.port() + "/v1",
                "tiny",
                "minilm")
            .directory(CLIENT_DIR.toFile())
            .redirectOutput(output.toFile())
            .redirectError(errors.toFile())
            .start();
    assertTrue(node.waitFor(120, TimeUnit.SECONDS), "the client did not finish in 120 s");
    assertEquals(0, node.exitValue(), () -> "the client failed: " + read(errors));
    return JSON.readTree(output.toFile());
  }

  private static String read(Path file) {
    try {
      return Files.readString(file);
    } catch (IOException e) {
      return e.toString();
    }
  }

  @Test
  void theOfficialClientWorksUnchanged() throws Exception {
    JsonNode got = runClient();

    JsonNode chat = got.get("chat");
    assertEquals("chat.completion", chat.get("object").asText());
    assertEquals("assistant", chat.get("role").asText());
    int completion = chat.get("usage").get("completion_tokens").asInt();
    assertTrue(completion >= 1 && completion <= 12, chat.toString());
    assertEquals(completion == 12 ? "length" : "stop", chat.get("finish").asText());

    // the stream, greedy like the whole answer, says the same in chunks, and its usage chunk agrees
    JsonNode stream = got.get("stream");
    assertEquals(chat.get("content").asText(), stream.get("text").asText());
    assertEquals(chat.get("finish").asText(), stream.get("finish").asText());
    assertEquals(chat.get("usage"), stream.get("usage"));
    assertTrue(stream.get("chunks").asInt() >= 3, stream.toString());

    // embeddings: decoded from base64 by the client, equal to the server's own floats for the same
    // request (the int8 model's vectors move slightly with the rest of their batch)
    JsonNode embeddings = got.get("embeddings");
    assertEquals(2, embeddings.get("count").asInt());
    assertEquals(384, embeddings.get("dimensions").asInt());
    JsonNode direct =
        JSON.readTree(
            HttpClient.newHttpClient()
                .send(
                    HttpRequest.newBuilder(
                            URI.create("http://127.0.0.1:" + server.port() + "/v1/embeddings"))
                        .timeout(Duration.ofSeconds(60))
                        .POST(
                            HttpRequest.BodyPublishers.ofString(
                                "{\"model\":\"minilm\",\"input\":[\"A cat sits on the mat.\","
                                    + "\"hello\"]}"))
                        .build(),
                    HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8))
                .body());
    JsonNode expected = direct.get("data").get(0).get("embedding");
    for (int i = 0; i < 384; i++) {
      assertEquals(
          expected.get(i).floatValue(),
          embeddings.get("first").get(i).floatValue(),
          "element " + i);
    }
    // "[CLS] a cat sits on the mat . [SEP]" and "[CLS] hello [SEP]"
    assertEquals(9 + 3, embeddings.get("usage").get("prompt_tokens").asInt());
    assertEquals(direct.get("usage"), embeddings.get("usage"));

    assertEquals("[\"minilm\",\"tiny\"]", got.get("models").toString());
  }
}
