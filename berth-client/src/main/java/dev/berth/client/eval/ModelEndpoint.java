package dev.berth.client.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;

/**
 * Where an {@link Evaluation} sends its requests: one model version that answers Open Inference
 * Protocol v2 inference requests. A server over HTTP is one; a version loaded in the same process
 * (what a gate evaluates before the version takes traffic) is another.
 */
public interface ModelEndpoint extends AutoCloseable {
  /** The server, or for a model in process its directory, as the result names it. */
  URI url();

  /** Where inference requests go, for messages. */
  String modelPath();

  /**
   * The model's metadata.
   *
   * @throws dev.berth.api.BerthException when it cannot be had, naming why
   */
  ModelSignature metadata() throws InterruptedException;

  /**
   * Sends an inference request.
   *
   * @param body the request body: JSON, or a JSON header and raw tensor data
   * @param jsonLength the JSON header's length when binary data follows it, else -1
   * @throws IOException when no answer came
   */
  Answer infer(byte[] body, int jsonLength) throws IOException, InterruptedException;

  @Override
  default void close() {}

  /**
   * The answer to one request: its status (as HTTP gives it) and body (an OIP v2 inference
   * response, or {@code {"error": ...}}).
   */
  record Answer(int status, byte[] body) {
    private static final ObjectMapper JSON = new ObjectMapper();

    String text() {
      return new String(body, StandardCharsets.UTF_8);
    }

    /** The server's {@code error} message, or the start of the body when it sent none. */
    String error() {
      try {
        JsonNode json = JSON.readTree(body);
        if (json != null && json.path("error").isTextual()) {
          return json.get("error").asText();
        }
      } catch (IOException e) {
        // not JSON: show the text
      }
      String text = text().strip();
      return text.isEmpty() ? "(no message)" : ModelSignature.abbreviate(text);
    }
  }
}
