package dev.berth.server;

import com.fasterxml.jackson.core.JsonGenerator;
import com.fasterxml.jackson.core.exc.StreamConstraintsException;
import com.fasterxml.jackson.core.exc.StreamReadException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.berth.api.InvalidInputException;
import dev.berth.runtime.Generation;
import dev.berth.runtime.GenerationRequest;
import dev.berth.runtime.TextGenerator.ChatMessage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * OpenAI's JSON: chat and text completion requests and answers (whole or as stream chunks),
 * embeddings and model lists, and its error shape {@code {"error": {"message", "type", "param",
 * "code"}}}. Parameters Berth does not support are refused by name, never ignored.
 */
final class OpenAiJson {
  static final ObjectMapper MAPPER = new ObjectMapper(OipJson.JSON);

  private static final Set<String> COMMON =
      Set.of(
          "model",
          "max_tokens",
          "temperature",
          "top_p",
          "seed",
          "stop",
          "n",
          "stream",
          "stream_options",
          "user");
  private static final Set<String> CHAT =
      union(COMMON, Set.of("messages", "max_completion_tokens"));
  private static final Set<String> COMPLETION = union(COMMON, Set.of("prompt"));
  private static final Set<String> EMBEDDING = Set.of("model", "input", "encoding_format", "user");
  private static final Set<String> ROLES = Set.of("system", "developer", "user", "assistant");

  private OpenAiJson() {}

  /** A parameter the client got wrong, named in OpenAI's {@code param}. */
  static final class ParameterException extends InvalidInputException {
    private static final long serialVersionUID = 1L;
    final String param;
    final String code;

    ParameterException(String param, String code, String message) {
      super(message);
      this.param = param;
      this.code = code;
    }
  }

  /**
   * A generation call.
   *
   * @param includeUsage whether a stream ends with a usage chunk ({@code stream_options})
   */
  record GenerationCall(
      String model, GenerationRequest request, boolean stream, boolean includeUsage) {}

  /** An embeddings call. */
  record EmbeddingCall(String model, List<String> input, boolean base64) {}

  static GenerationCall readChat(byte[] body) {
    ObjectNode root = object(body);
    allowOnly(root, CHAT);
    JsonNode messages = root.get("messages");
    if (messages == null || !messages.isArray() || messages.isEmpty()) {
      throw new ParameterException(
          "messages",
          "invalid_value",
          "'messages' must be a non-empty array of {\"role\", \"content\"} objects");
    }
    List<ChatMessage> chat = new ArrayList<>();
    for (int i = 0; i < messages.size(); i++) {
      chat.add(message(messages.get(i), "messages[" + i + "]"));
    }
    Integer maxTokens = integer(root, "max_completion_tokens", 1);
    if (maxTokens == null) {
      maxTokens = integer(root, "max_tokens", 1);
    }
    return call(root, new GenerationRequestParts(null, chat, maxTokens));
  }

  static GenerationCall readCompletion(byte[] body) {
    ObjectNode root = object(body);
    allowOnly(root, COMPLETION);
    JsonNode prompt = root.get("prompt");
    if (prompt != null && prompt.isArray() && prompt.size() == 1 && prompt.get(0).isTextual()) {
      prompt = prompt.get(0);
    }
    if (prompt == null || !prompt.isTextual()) {
      throw new ParameterException(
          "prompt",
          "invalid_value",
          "'prompt' must be a string (or an array of one string); token arrays and several"
              + " prompts per request are not supported");
    }
    return call(
        root, new GenerationRequestParts(prompt.textValue(), null, integer(root, "max_tokens", 1)));
  }

  private record GenerationRequestParts(
      String prompt, List<ChatMessage> messages, Integer maxTokens) {}

  private static GenerationCall call(ObjectNode root, GenerationRequestParts parts) {
    String model = model(root);
    Integer n = integer(root, "n", 1);
    if (n != null && n != 1) {
      throw new ParameterException(
          "n", "unsupported_value", "'n' must be 1: Berth generates one choice per request");
    }
    Double temperature = number(root, "temperature", 0, 2);
    Double topP = number(root, "top_p", 0, 1);
    if (topP != null && topP == 0) {
      throw new ParameterException("top_p", "invalid_value", "'top_p' must be above 0");
    }
    Integer seed = null;
    JsonNode s = present(root, "seed");
    if (s != null) {
      if (!s.canConvertToInt() || !s.isIntegralNumber()) {
        throw new ParameterException(
            "seed", "invalid_type", "'seed' must be a whole number in 32 bits");
      }
      seed = s.intValue();
    }
    boolean stream = bool(root, "stream");
    boolean includeUsage = false;
    JsonNode options = present(root, "stream_options");
    if (options != null) {
      if (!stream) {
        throw new ParameterException(
            "stream_options",
            "invalid_value",
            "'stream_options' is only allowed with stream: true");
      }
      if (!options.isObject()) {
        throw new ParameterException(
            "stream_options", "invalid_type", "'stream_options' must be an object");
      }
      for (Iterator<String> it = options.fieldNames(); it.hasNext(); ) {
        String name = it.next();
        if (!name.equals("include_usage")) {
          throw new ParameterException(
              "stream_options." + name,
              "unsupported_parameter",
              "'stream_options." + name + "' is not supported; Berth supports include_usage");
        }
      }
      includeUsage = options.path("include_usage").asBoolean(false);
    }
    return new GenerationCall(
        model,
        new GenerationRequest(
            parts.prompt(),
            parts.messages(),
            parts.maxTokens(),
            temperature,
            topP,
            seed,
            stop(root)),
        stream,
        includeUsage);
  }

  static EmbeddingCall readEmbeddings(byte[] body) {
    ObjectNode root = object(body);
    allowOnly(root, EMBEDDING);
    String model = model(root);
    JsonNode input = root.get("input");
    List<String> texts = new ArrayList<>();
    if (input != null && input.isTextual()) {
      texts.add(input.textValue());
    } else if (input != null && input.isArray() && !input.isEmpty()) {
      for (JsonNode t : input) {
        if (!t.isTextual()) {
          throw new ParameterException(
              "input",
              "invalid_type",
              "'input' must be a string or an array of strings; token arrays are not supported");
        }
        texts.add(t.textValue());
      }
    } else {
      throw new ParameterException(
          "input", "invalid_value", "'input' must be a string or a non-empty array of strings");
    }
    for (String t : texts) {
      if (t.isEmpty()) {
        throw new ParameterException(
            "input", "invalid_value", "'input' must not hold empty strings");
      }
    }
    String format = "float";
    JsonNode f = present(root, "encoding_format");
    if (f != null) {
      format = f.asText();
      if (!format.equals("float") && !format.equals("base64")) {
        throw new ParameterException(
            "encoding_format", "invalid_value", "'encoding_format' must be float or base64");
      }
    }
    return new EmbeddingCall(model, texts, format.equals("base64"));
  }

  private static ObjectNode object(byte[] body) {
    JsonNode root;
    try {
      root = MAPPER.readTree(body);
    } catch (StreamConstraintsException e) {
      throw OipJson.tooComplex(e);
    } catch (StreamReadException e) {
      throw OipJson.malformed(e);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    if (root == null || !root.isObject()) {
      throw new InvalidInputException("the request body must be a JSON object");
    }
    return (ObjectNode) root;
  }

  private static void allowOnly(ObjectNode root, Set<String> known) {
    for (Iterator<String> it = root.fieldNames(); it.hasNext(); ) {
      String name = it.next();
      if (!known.contains(name) && !root.get(name).isNull()) {
        throw new ParameterException(
            name,
            "unsupported_parameter",
            "'"
                + name
                + "' is not supported by this server; supported: "
                + String.join(", ", known.stream().sorted().toList()));
      }
    }
  }

  private static JsonNode present(ObjectNode root, String name) {
    JsonNode value = root.get(name);
    return value == null || value.isNull() ? null : value;
  }

  private static String model(ObjectNode root) {
    JsonNode model = present(root, "model");
    if (model == null || !model.isTextual() || model.textValue().isEmpty()) {
      throw new ParameterException(
          "model", "invalid_value", "'model' must name a model; GET /v1/models lists them");
    }
    return model.textValue();
  }

  private static ChatMessage message(JsonNode m, String where) {
    if (!m.isObject()) {
      throw new ParameterException(where, "invalid_type", where + " must be an object");
    }
    for (Iterator<String> it = m.fieldNames(); it.hasNext(); ) {
      String name = it.next();
      if (!Set.of("role", "content", "name").contains(name) && !m.get(name).isNull()) {
        throw new ParameterException(
            where + "." + name,
            "unsupported_parameter",
            where + "." + name + " is not supported; give role and content");
      }
    }
    String role = m.path("role").asText("");
    if (!ROLES.contains(role)) {
      throw new ParameterException(
          where + ".role",
          "invalid_value",
          where + ".role must be one of system, developer, user, assistant; got '" + role + "'");
    }
    JsonNode content = m.get("content");
    String text;
    if (content != null && content.isTextual()) {
      text = content.textValue();
    } else if (content != null && content.isArray()) {
      StringBuilder b = new StringBuilder();
      for (JsonNode part : content) {
        if (!part.path("type").asText().equals("text") || !part.path("text").isTextual()) {
          throw new ParameterException(
              where + ".content",
              "unsupported_value",
              where
                  + ".content parts must be {\"type\": \"text\", \"text\": ...}; this model takes"
                  + " text only");
        }
        b.append(part.get("text").textValue());
      }
      text = b.toString();
    } else {
      throw new ParameterException(
          where + ".content", "invalid_type", where + ".content must be a string");
    }
    return new ChatMessage(role.equals("developer") ? "system" : role, text);
  }

  private static Integer integer(ObjectNode root, String name, int min) {
    JsonNode v = present(root, name);
    if (v == null) {
      return null;
    }
    if (!v.isIntegralNumber() || !v.canConvertToInt() || v.intValue() < min) {
      throw new ParameterException(
          name, "invalid_value", "'" + name + "' must be a whole number >= " + min);
    }
    return v.intValue();
  }

  private static Double number(ObjectNode root, String name, double min, double max) {
    JsonNode v = present(root, name);
    if (v == null) {
      return null;
    }
    if (!v.isNumber() || v.doubleValue() < min || v.doubleValue() > max) {
      throw new ParameterException(
          name, "invalid_value", "'" + name + "' must be a number from " + min + " to " + max);
    }
    return v.doubleValue();
  }

  private static boolean bool(ObjectNode root, String name) {
    JsonNode v = present(root, name);
    if (v == null) {
      return false;
    }
    if (!v.isBoolean()) {
      throw new ParameterException(name, "invalid_type", "'" + name + "' must be true or false");
    }
    return v.booleanValue();
  }

  private static List<String> stop(ObjectNode root) {
    JsonNode v = present(root, "stop");
    if (v == null) {
      return List.of();
    }
    List<String> stop = new ArrayList<>();
    if (v.isTextual()) {
      stop.add(v.textValue());
    } else if (v.isArray() && v.size() <= 4) {
      for (JsonNode s : v) {
        if (!s.isTextual()) {
          stop.clear();
          break;
        }
        stop.add(s.textValue());
      }
    }
    if (stop.isEmpty() || stop.contains("")) {
      throw new ParameterException(
          "stop", "invalid_value", "'stop' must be a non-empty string or up to 4 of them");
    }
    return stop;
  }

  private static Set<String> union(Set<String> a, Set<String> b) {
    java.util.HashSet<String> all = new java.util.HashSet<>(a);
    all.addAll(b);
    return Set.copyOf(all);
  }

  // ---- answers

  static String finishReason(Generation g) {
    Generation.FinishReason reason = g.finishReason();
    return reason == null ? null : reason.name().toLowerCase(Locale.ROOT);
  }

  /** A whole chat or text completion. */
  static byte[] writeCompletion(boolean chat, String id, long created, Generation g, String text) {
    return write(
        out -> {
          out.writeStartObject();
          header(out, id, chat ? "chat.completion" : "text_completion", created, g.model());
          out.writeArrayFieldStart("choices");
          out.writeStartObject();
          out.writeNumberField("index", 0);
          if (chat) {
            out.writeObjectFieldStart("message");
            out.writeStringField("role", "assistant");
            out.writeStringField("content", text);
            out.writeEndObject();
          } else {
            out.writeStringField("text", text);
          }
          out.writeNullField("logprobs");
          out.writeStringField("finish_reason", finishReason(g));
          out.writeEndObject();
          out.writeEndArray();
          usage(out, g);
          out.writeEndObject();
        });
  }

  /**
   * One stream chunk: the assistant role first ({@code role}), a piece of text, or the end ({@code
   * finish} set, no text).
   */
  static byte[] writeChunk(
      boolean chat,
      String id,
      long created,
      String model,
      boolean role,
      String text,
      String finish) {
    return write(
        out -> {
          out.writeStartObject();
          header(out, id, chat ? "chat.completion.chunk" : "text_completion", created, model);
          out.writeArrayFieldStart("choices");
          out.writeStartObject();
          out.writeNumberField("index", 0);
          if (chat) {
            out.writeObjectFieldStart("delta");
            if (role) {
              out.writeStringField("role", "assistant");
              out.writeStringField("content", "");
            } else if (text != null) {
              out.writeStringField("content", text);
            }
            out.writeEndObject();
          } else {
            out.writeStringField("text", text == null ? "" : text);
          }
          out.writeNullField("logprobs");
          if (finish == null) {
            out.writeNullField("finish_reason");
          } else {
            out.writeStringField("finish_reason", finish);
          }
          out.writeEndObject();
          out.writeEndArray();
          out.writeEndObject();
        });
  }

  /** The last chunk of a stream that asked for usage: no choices, the counts. */
  static byte[] writeUsageChunk(boolean chat, String id, long created, Generation g) {
    return write(
        out -> {
          out.writeStartObject();
          header(out, id, chat ? "chat.completion.chunk" : "text_completion", created, g.model());
          out.writeArrayFieldStart("choices");
          out.writeEndArray();
          usage(out, g);
          out.writeEndObject();
        });
  }

  private static void header(JsonGenerator out, String id, String object, long created, String m)
      throws IOException {
    out.writeStringField("id", id);
    out.writeStringField("object", object);
    out.writeNumberField("created", created);
    out.writeStringField("model", m);
  }

  private static void usage(JsonGenerator out, Generation g) throws IOException {
    out.writeObjectFieldStart("usage");
    out.writeNumberField("prompt_tokens", g.promptTokens());
    out.writeNumberField("completion_tokens", g.completionTokens());
    out.writeNumberField("total_tokens", g.promptTokens() + g.completionTokens());
    out.writeEndObject();
  }

  static byte[] writeEmbeddings(String model, float[][] vectors, boolean base64, int tokens) {
    return write(
        out -> {
          out.writeStartObject();
          out.writeStringField("object", "list");
          out.writeArrayFieldStart("data");
          for (int i = 0; i < vectors.length; i++) {
            out.writeStartObject();
            out.writeStringField("object", "embedding");
            out.writeNumberField("index", i);
            if (base64) {
              java.nio.ByteBuffer le =
                  java.nio.ByteBuffer.allocate(vectors[i].length * 4)
                      .order(java.nio.ByteOrder.LITTLE_ENDIAN);
              le.asFloatBuffer().put(vectors[i]);
              out.writeStringField(
                  "embedding", java.util.Base64.getEncoder().encodeToString(le.array()));
            } else {
              out.writeArrayFieldStart("embedding");
              for (float f : vectors[i]) {
                out.writeNumber(f);
              }
              out.writeEndArray();
            }
            out.writeEndObject();
          }
          out.writeEndArray();
          out.writeStringField("model", model);
          out.writeObjectFieldStart("usage");
          out.writeNumberField("prompt_tokens", tokens);
          out.writeNumberField("total_tokens", tokens);
          out.writeEndObject();
          out.writeEndObject();
        });
  }

  /** A model list entry. */
  record ModelEntry(String id, long created) {}

  static byte[] writeModels(List<ModelEntry> models) {
    return write(
        out -> {
          out.writeStartObject();
          out.writeStringField("object", "list");
          out.writeArrayFieldStart("data");
          for (ModelEntry m : models) {
            out.writeStartObject();
            out.writeStringField("id", m.id());
            out.writeStringField("object", "model");
            out.writeNumberField("created", m.created());
            out.writeStringField("owned_by", "berth");
            out.writeEndObject();
          }
          out.writeEndArray();
          out.writeEndObject();
        });
  }

  /** OpenAI's error shape. */
  static byte[] writeError(int status, String message, String param, String code) {
    return write(
        out -> {
          out.writeStartObject();
          out.writeObjectFieldStart("error");
          out.writeStringField("message", message);
          out.writeStringField("type", errorType(status));
          if (param == null) {
            out.writeNullField("param");
          } else {
            out.writeStringField("param", param);
          }
          if (code == null) {
            out.writeNullField("code");
          } else {
            out.writeStringField("code", code);
          }
          out.writeEndObject();
          out.writeEndObject();
        });
  }

  private static String errorType(int status) {
    return switch (status) {
      case 401 -> "authentication_error";
      case 403 -> "permission_error";
      case 404 -> "not_found_error";
      case 429 -> "rate_limit_error";
      default -> status >= 500 ? "server_error" : "invalid_request_error";
    };
  }

  private interface Writer {
    void write(JsonGenerator out) throws IOException;
  }

  private static byte[] write(Writer writer) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream(256);
    try (JsonGenerator out = OipJson.JSON.createGenerator(bytes)) {
      writer.write(out);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return bytes.toByteArray();
  }
}
