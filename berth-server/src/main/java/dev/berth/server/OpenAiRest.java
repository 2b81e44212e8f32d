package dev.berth.server;

import dev.berth.api.DataType;
import dev.berth.api.InferenceRequest;
import dev.berth.api.InferenceResponse;
import dev.berth.api.InvalidInputException;
import dev.berth.api.Tensor;
import dev.berth.api.TensorSpec;
import dev.berth.runtime.Generation;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.LoadedModel;
import dev.berth.runtime.ModelSignature;
import io.helidon.http.HeaderNames;
import io.helidon.webserver.http.ServerResponse;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ThreadLocalRandom;

/**
 * The OpenAI-compatible API: {@code POST /v1/chat/completions} and {@code /v1/completions} by the
 * repository's language models (whole answers, or Server-Sent Events with {@code stream: true}),
 * {@code POST /v1/embeddings} by its text-embedding models, and {@code GET /v1/models}.
 *
 * <p>A client that goes away frees its sequence at once: while it waits for one (the request leaves
 * the queue), while a whole answer is generated (its connection is watched), and mid-stream (the
 * next chunk fails to send).
 */
final class OpenAiRest {
  private static final byte[] DATA = "data: ".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] END_OF_EVENT = "\n\n".getBytes(StandardCharsets.US_ASCII);
  private static final byte[] DONE = "data: [DONE]\n\n".getBytes(StandardCharsets.US_ASCII);

  private static final java.util.logging.Logger LOG =
      java.util.logging.Logger.getLogger(OpenAiRest.class.getName());

  private static final Access.Role INFER = Access.Role.INFER;

  private final InferenceService service;
  private final long started = System.currentTimeMillis() / 1000;

  OpenAiRest(InferenceService service) {
    this.service = service;
  }

  /** The routes, whose errors take OpenAI's shape: {@code {"error": {"message", "type", ...}}}. */
  List<Route> routes() {
    return List.of(
            Route.post("/v1/chat/completions", INFER, "Chat completion", x -> generate(true, x))
                .inference("openai"),
            Route.post("/v1/completions", INFER, "Text completion", x -> generate(false, x))
                .inference("openai"),
            Route.post("/v1/embeddings", INFER, "Embeddings of texts", this::embeddings)
                .inference("openai"),
            Route.get("/v1/models", INFER, "The models ready to answer", this::models))
        .stream()
        .map(r -> r.errors(OpenAiRest::errorBody))
        .toList();
  }

  private static byte[] errorBody(CallPolicy.Failure f) {
    OpenAiJson.ParameterException bad =
        f.error() instanceof OpenAiJson.ParameterException p ? p : null;
    return OpenAiJson.writeError(
        f.http().status(),
        f.http().message(),
        bad == null ? null : bad.param,
        bad != null
            ? bad.code
            : f.error() instanceof dev.berth.api.ModelNotFoundException ? "model_not_found" : null);
  }

  /** {@code GET /v1/models}: the models ready to answer. */
  private int models(RestExchange x) {
    TreeSet<String> names = new TreeSet<>();
    for (LoadedModel m : service.loadedModels()) {
      names.add(m.name());
    }
    List<OpenAiJson.ModelEntry> entries = new ArrayList<>();
    for (String name : names) {
      entries.add(new OpenAiJson.ModelEntry(name, started));
    }
    return x.send(200, OpenAiJson.writeModels(entries));
  }

  /**
   * A chat ({@code chat}) or text completion.
   *
   * @return the status answered; {@link CallPolicy#CLIENT_CLOSED_REQUEST} when the client left
   *     mid-stream
   */
  private int generate(boolean chat, RestExchange x) throws IOException {
    byte[] body = x.body();
    ServerResponse res = x.response();
    Call call = x.call();
    OpenAiJson.GenerationCall request =
        chat ? OpenAiJson.readChat(body) : OpenAiJson.readCompletion(body);
    call.target(request.model(), null);
    Generation generation =
        ClientConnections.await(
            service.generate(request.model(), null, request.request(), call.trace()));
    try (generation) {
      call.target(generation.model(), generation.version());
      String id = (chat ? "chatcmpl-" : "cmpl-") + newId();
      long created = System.currentTimeMillis() / 1000;
      if (!request.stream()) {
        CompletableFuture<String> text = new CompletableFuture<>();
        Thread.ofVirtual()
            .name("berth-generate")
            .start(
                () -> {
                  try {
                    text.complete(all(generation));
                  } catch (Throwable t) {
                    text.completeExceptionally(t);
                  }
                });
        String answer = ClientConnections.await(text);
        byte[] json = OpenAiJson.writeCompletion(chat, id, created, generation, answer);
        res.status(200);
        res.header(HeaderNames.CONTENT_TYPE, "application/json");
        res.send(json);
        return 200;
      }
      return stream(chat, id, created, generation, request.includeUsage(), res);
    }
  }

  private static String all(Generation generation) throws InterruptedException {
    StringBuilder text = new StringBuilder();
    for (String piece; (piece = generation.next()) != null; ) {
      text.append(piece);
    }
    return text.toString();
  }

  private static int stream(
      boolean chat,
      String id,
      long created,
      Generation generation,
      boolean includeUsage,
      ServerResponse res) {
    res.status(200);
    res.header(HeaderNames.CONTENT_TYPE, "text/event-stream");
    res.header(HeaderNames.CACHE_CONTROL, "no-cache");
    String model = generation.model();
    try (OutputStream out = res.outputStream()) {
      if (chat) {
        event(out, OpenAiJson.writeChunk(true, id, created, model, true, null, null));
      }
      while (true) {
        String piece;
        try {
          piece = generation.next();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          return CallPolicy.CLIENT_CLOSED_REQUEST;
        } catch (RuntimeException e) {
          // the answer has begun: the failure goes out as an event, which clients raise as errors
          LOG.log(java.util.logging.Level.SEVERE, "generation by '" + model + "' failed", e);
          event(
              out,
              OpenAiJson.writeError(
                  500, "generation failed: " + e.getMessage(), null, "generation_failed"));
          return 500;
        }
        if (piece == null) {
          break;
        }
        event(out, OpenAiJson.writeChunk(chat, id, created, model, false, piece, null));
      }
      event(
          out,
          OpenAiJson.writeChunk(
              chat, id, created, model, false, null, OpenAiJson.finishReason(generation)));
      if (includeUsage) {
        event(out, OpenAiJson.writeUsageChunk(chat, id, created, generation));
      }
      try {
        out.write(DONE);
        out.flush();
      } catch (RuntimeException e) {
        throw new IOException("the client closed the stream", e);
      }
      return 200;
    } catch (IOException | UncheckedIOException | io.helidon.webserver.CloseConnectionException e) {
      // the client went away: closing the generation (by the caller) frees its sequence
      return CallPolicy.CLIENT_CLOSED_REQUEST;
    }
  }

  /** Sends one event; a client that has gone away shows as an IOException. */
  private static void event(OutputStream out, byte[] json) throws IOException {
    try {
      out.write(DATA);
      out.write(json);
      out.write(END_OF_EVENT);
      out.flush();
    } catch (RuntimeException e) { // the web server's own exception for a closed connection
      throw new IOException("the client closed the stream", e);
    }
  }

  /** {@code POST /v1/embeddings}, by a model that turns text into one vector per text. */
  private int embeddings(RestExchange x) throws IOException {
    OpenAiJson.EmbeddingCall request = OpenAiJson.readEmbeddings(x.body());
    x.call().target(request.model(), null);
    ModelSignature signature = service.signature(request.model(), null);
    TensorSpec text = null;
    for (TensorSpec in : signature.inputs()) {
      if (in.datatype() == DataType.BYTES && in.shape().length == 1) {
        text = in;
        break;
      }
    }
    TensorSpec vector = null;
    for (TensorSpec out : signature.outputs()) {
      if (out.datatype() == DataType.FP32 && out.shape().length == 2) {
        vector = out;
        break;
      }
    }
    if (text == null || vector == null) {
      throw new InvalidInputException(
          "model '"
              + request.model()
              + "' does not embed text: an embedding model takes a BYTES input of shape [-1]"
              + " and gives an FP32 output of shape [-1, dimensions]");
    }
    InferenceResponse response =
        x.infer(
            new InferenceRequest(
                newId(),
                request.model(),
                null,
                List.of(Tensor.ofStrings(text.name(), request.input())),
                List.of(vector.name())));
    Tensor out = response.outputs().get(0);
    int rows = (int) out.shape()[0];
    int dims = (int) out.shape()[1];
    float[] all = out.floats();
    float[][] vectors = new float[rows][];
    for (int i = 0; i < rows; i++) {
      vectors[i] = java.util.Arrays.copyOfRange(all, i * dims, (i + 1) * dims);
    }
    int tokens =
        service.countTokens(response.model(), response.version(), request.input()).orElse(0);
    return x.send(
        200, OpenAiJson.writeEmbeddings(response.model(), vectors, request.base64(), tokens));
  }

  private static String newId() {
    return HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextLong());
  }
}
