package dev.berth.client.bench;

import dev.berth.api.BerthException;
import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** How {@code berth bench} sends its requests. */
public enum Protocol {
  /** Open Inference Protocol v2 over REST with JSON bodies: {@code POST /v2/models/M/infer}. */
  REST_JSON("rest-json"),
  /**
   * Open Inference Protocol v2 over REST with the binary tensor extension (Triton's): a JSON header
   * of {@code Inference-Header-Content-Length} bytes, then raw little-endian tensor data.
   */
  REST_BINARY("rest-binary"),
  /** TensorFlow Serving's REST predict API: {@code POST /v1/models/M:predict}. */
  TFSERVING("tfserving"),
  /**
   * Open Inference Protocol v2 over gRPC: {@code inference.GRPCInferenceService/ModelInfer}, inputs
   * as raw contents, on the server's gRPC port.
   */
  GRPC("grpc"),
  /**
   * The OpenAI-compatible API of a language model: {@code POST /v1/completions}, whole answers (not
   * streamed); latency is the whole generation's.
   */
  OPENAI("openai");

  private final String id;

  Protocol(String id) {
    this.id = id;
  }

  /** The name on the command line and in reports, e.g. {@code rest-json}. */
  public String id() {
    return id;
  }

  /** The protocol with this name (case-insensitive), or a message listing the names. */
  public static Protocol parse(String name) {
    for (Protocol p : values()) {
      if (p.id.equalsIgnoreCase(name.trim())) {
        return p;
      }
    }
    throw new BerthException(
        "--protocol must be one of "
            + Arrays.stream(values()).map(Protocol::id).collect(Collectors.joining(", "))
            + ", not '"
            + name.toLowerCase(Locale.ROOT)
            + "'");
  }
}
