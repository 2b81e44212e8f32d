package dev.berth.client.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import dev.berth.api.BerthException;
import dev.berth.api.DataType;
import dev.berth.client.grpc.ModelInferRequest;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * OIP v2 JSON requests as gRPC {@code ModelInferRequest}s: each input's values as one {@code
 * raw_input_contents} entry, in the binary extension's layout ({@link BinaryRequests#encode}).
 */
final class GrpcRequests {
  private static final ObjectMapper JSON = new ObjectMapper();

  private GrpcRequests() {}

  static ModelInferRequest of(byte[] oipJson, String model) {
    JsonNode root;
    try {
      root = JSON.readTree(oipJson);
    } catch (IOException e) {
      throw new BerthException("a request body is not JSON: " + e.getMessage(), e);
    }
    if (root == null || !root.path("inputs").isArray()) {
      throw new BerthException(
          "--protocol grpc needs OIP v2 request bodies ({\"inputs\": [...]}), not '"
              + abbreviate(new String(oipJson, StandardCharsets.UTF_8))
              + "'");
    }
    ModelInferRequest.Builder request = ModelInferRequest.newBuilder().setModelName(model);
    if (root.hasNonNull("id")) {
      request.setId(root.get("id").asText());
    }
    for (JsonNode in : root.path("inputs")) {
      String name = in.path("name").asText();
      DataType type = DataType.fromName(in.path("datatype").asText());
      ModelInferRequest.InferInputTensor.Builder t =
          ModelInferRequest.InferInputTensor.newBuilder().setName(name).setDatatype(type.name());
      in.path("shape").forEach(d -> t.addShape(d.asLong()));
      request.addInputs(t);
      List<JsonNode> values = new ArrayList<>();
      flatten(in.path("data"), values);
      request.addRawInputContents(ByteString.copyFrom(BinaryRequests.encode(name, type, values)));
    }
    for (JsonNode out : root.path("outputs")) {
      request.addOutputs(
          ModelInferRequest.InferRequestedOutputTensor.newBuilder()
              .setName(out.path("name").asText()));
    }
    return request.build();
  }

  private static void flatten(JsonNode data, List<JsonNode> out) {
    if (data.isArray()) {
      for (JsonNode d : data) {
        flatten(d, out);
      }
    } else if (!data.isMissingNode()) {
      out.add(data);
    }
  }

  private static String abbreviate(String s) {
    return s.length() > 80 ? s.substring(0, 80) + "..." : s;
  }
}
