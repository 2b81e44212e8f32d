package dev.berth.client.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.berth.api.BerthException;
import dev.berth.api.DataType;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * OIP v2 JSON requests in the binary tensor extension (as Triton's clients send them): each input's
 * {@code data} becomes raw little-endian elements after the JSON header (BYTES elements as a 4-byte
 * length and the bytes), its size in {@code parameters.binary_data_size}; the request asks for
 * binary outputs ({@code parameters.binary_data_output: true}). The header's length goes in the
 * {@code Inference-Header-Content-Length} HTTP header.
 */
final class BinaryRequests {
  static final String HEADER_LENGTH = "Inference-Header-Content-Length";
  static final String CONTENT_TYPE = "application/octet-stream";

  private static final ObjectMapper JSON = new ObjectMapper();

  private BinaryRequests() {}

  /** A request body in the binary extension, and the length of its JSON header. */
  record Body(byte[] content, int headerLength) {}

  /** The binary form of an OIP v2 JSON request body. */
  static Body of(byte[] oipJson) {
    ObjectNode root;
    try {
      JsonNode node = JSON.readTree(oipJson);
      if (node == null || !node.isObject() || !node.path("inputs").isArray()) {
        throw new BerthException(
            "--protocol rest-binary needs OIP v2 request bodies ({\"inputs\": [...]}), not '"
                + abbreviate(new String(oipJson, StandardCharsets.UTF_8))
                + "'");
      }
      root = (ObjectNode) node;
    } catch (IOException e) {
      throw new BerthException("a request body is not JSON: " + e.getMessage(), e);
    }
    ByteArrayOutputStream raw = new ByteArrayOutputStream();
    for (JsonNode input : root.path("inputs")) {
      if (!input.isObject() || !input.has("data")) {
        continue; // already binary, or malformed: the server says which
      }
      ObjectNode in = (ObjectNode) input;
      String name = in.path("name").asText("?");
      DataType type = DataType.fromName(in.path("datatype").asText());
      List<JsonNode> values = new ArrayList<>();
      flatten(in.remove("data"), values);
      byte[] bytes = encode(name, type, values);
      raw.writeBytes(bytes);
      in.withObjectProperty("parameters").put("binary_data_size", bytes.length);
    }
    root.withObjectProperty("parameters").put("binary_data_output", true);
    byte[] header;
    try {
      header = JSON.writeValueAsBytes(root);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
    byte[] content = new byte[header.length + raw.size()];
    System.arraycopy(header, 0, content, 0, header.length);
    System.arraycopy(raw.toByteArray(), 0, content, header.length, raw.size());
    return new Body(content, header.length);
  }

  private static void flatten(JsonNode data, List<JsonNode> out) {
    if (data != null && data.isArray()) {
      for (JsonNode d : data) {
        flatten(d, out);
      }
    } else if (data != null) {
      out.add(data);
    }
  }

  static byte[] encode(String name, DataType type, List<JsonNode> values) {
    if (type == DataType.BYTES) {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      ByteBuffer length = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
      for (JsonNode v : values) {
        byte[] s = v.asText().getBytes(StandardCharsets.UTF_8);
        out.writeBytes(length.clear().putInt(s.length).array());
        out.writeBytes(s);
      }
      return out.toByteArray();
    }
    ByteBuffer b =
        ByteBuffer.allocate(values.size() * type.byteSize()).order(ByteOrder.LITTLE_ENDIAN);
    for (JsonNode v : values) {
      if (!(v.isNumber() || v.isBoolean())) {
        throw new BerthException(
            "input '" + name + "' is " + type + " but holds " + abbreviate(v.toString()));
      }
      switch (type) {
        case BOOL -> b.put((byte) (v.asBoolean() || v.asDouble() != 0 ? 1 : 0));
        case UINT8, INT8 -> b.put((byte) v.asLong());
        case UINT16, INT16 -> b.putShort((short) v.asLong());
        case UINT32, INT32 -> b.putInt((int) v.asLong());
        case UINT64 -> b.putLong(v.bigIntegerValue().longValue());
        case INT64 -> b.putLong(v.asLong());
        case FP16 -> b.putShort(Float.floatToFloat16((float) v.asDouble()));
        case FP32 -> b.putFloat((float) v.asDouble());
        case FP64 -> b.putDouble(v.asDouble());
        default -> throw new IllegalStateException(type.name());
      }
    }
    return b.array();
  }

  private static String abbreviate(String s) {
    return s.length() > 80 ? s.substring(0, 80) + "..." : s;
  }
}
