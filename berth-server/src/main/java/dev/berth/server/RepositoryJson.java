package dev.berth.server;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.exc.StreamReadException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.api.InvalidInputException;
import dev.berth.runtime.ModelStatus;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.util.List;

/**
 * JSON of the model-repository extension (as Triton and KServe define it): the index request and
 * answer, load and unload requests, and Berth's answer to them (the model's versions afterwards).
 */
final class RepositoryJson {
  private static final ObjectMapper MAPPER = new ObjectMapper(OipJson.JSON);

  private RepositoryJson() {}

  /** Whether an index request ({@code {"ready": true}}) asks for ready models only. */
  static boolean readyOnly(byte[] body) throws IOException {
    JsonNode root = object(body, "index");
    if (root == null || !root.has("ready")) {
      return false;
    }
    if (!root.get("ready").isBoolean()) {
      throw new InvalidInputException("'ready' must be true or false, got " + root.get("ready"));
    }
    return root.get("ready").booleanValue();
  }

  /**
   * Checks a load or unload request: an empty body, {@code {}} or empty {@code parameters}. Berth
   * loads models from its repository directory only; it takes no configuration or files over HTTP.
   */
  static void checkNoParameters(byte[] body, String action) throws IOException {
    JsonNode root = object(body, action);
    if (root == null) {
      return;
    }
    JsonNode parameters = root.get("parameters");
    if (parameters != null && !(parameters.isObject() && parameters.isEmpty())) {
      throw new InvalidInputException(
          "Berth "
              + action
              + "s models from its repository directory only and takes no 'parameters'"
              + " (no configuration or files over HTTP); change model.yaml or the version"
              + " directories on disk, then "
              + action
              + " again");
    }
  }

  private static JsonNode object(byte[] body, String request) throws IOException {
    if (body.length == 0) {
      return null;
    }
    JsonNode root;
    try {
      root = MAPPER.readTree(body);
    } catch (StreamReadException e) {
      throw OipJson.malformed(e);
    }
    if (root == null || root.isMissingNode()) {
      return null;
    }
    if (!root.isObject()) {
      throw new InvalidInputException("a repository " + request + " request is a JSON object");
    }
    return root;
  }

  /** The index: one object per model version, {@code name, version, state, reason}. */
  static byte[] writeIndex(List<ModelStatus> index) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (JsonGenerator g = OipJson.JSON.createGenerator(out)) {
      g.writeStartArray();
      for (ModelStatus s : index) {
        g.writeStartObject();
        g.writeStringField("name", s.name());
        writeVersion(g, s);
        g.writeEndObject();
      }
      g.writeEndArray();
    }
    return out.toByteArray();
  }

  /** A model after a load or unload: {@code {"name", "versions": [{version, state, reason}]}}. */
  static byte[] writeModel(String model, List<ModelStatus> versions) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    try (JsonGenerator g = OipJson.JSON.createGenerator(out)) {
      g.writeStartObject();
      g.writeStringField("name", model);
      g.writeArrayFieldStart("versions");
      for (ModelStatus s : versions) {
        g.writeStartObject();
        writeVersion(g, s);
        g.writeEndObject();
      }
      g.writeEndArray();
      g.writeEndObject();
    }
    return out.toByteArray();
  }

  private static void writeVersion(JsonGenerator g, ModelStatus s) throws IOException {
    g.writeStringField("version", s.version());
    g.writeStringField("state", s.state().name());
    g.writeStringField("reason", s.reason());
  }
}
