package dev.berth.client.bench;

import dev.berth.api.BerthException;
import dev.berth.api.ModelMetadata;
import dev.berth.api.TensorSpec;
import dev.berth.client.grpc.GRPCInferenceServiceGrpc;
import dev.berth.client.grpc.ModelInferRequest;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.stream.Collectors;

/**
 * {@code berth bench}: load and latency against a running server. Checks the server and model,
 * builds the requests (from the model's metadata or a data file), sends one to see it is accepted,
 * then runs each step of the plan and reads the server's own split of the time from its {@code
 * /metrics} before and after.
 *
 * <pre>{@code
 * BenchResults r = Bench.run(
 *     BenchPlan.builder(URI.create("http://127.0.0.1:8080"), "minilm")
 *         .steps(List.of(LoadStep.closed(16)))
 *         .duration(Duration.ofSeconds(10))
 *         .build(),
 *     System.err::println);
 * }</pre>
 */
public final class Bench {
  private final BenchPlan plan;
  private final Consumer<String> progress;
  private boolean metricsAbsent;

  private Bench(BenchPlan plan, Consumer<String> progress) {
    this.plan = plan;
    this.progress = progress;
  }

  /**
   * Runs the plan.
   *
   * @param progress receives a line when each step starts and one per second while it runs
   * @throws BerthException when the server cannot be reached, does not serve the model, or refuses
   *     the first request: with a message that says what to change
   */
  public static BenchResults run(BenchPlan plan, Consumer<String> progress) {
    return new Bench(plan, progress).run();
  }

  private BenchResults run() {
    Prepared prepared = prepare();
    progress.accept(
        "benching model '"
            + plan.model()
            + "' at "
            + plan.url()
            + " over "
            + plan.protocol().id()
            + (plan.protocol() == Protocol.GRPC
                ? " (gRPC at " + plan.host() + ":" + plan.grpcPort() + ")"
                : "")
            + "; requests: "
            + prepared.summary());
    LoadLoop.Drivers drivers =
        plan.protocol() == Protocol.GRPC ? grpc(prepared.bodies()) : http(prepared.bodies());
    boolean metrics = scrape() != null;
    if (!metrics) {
      progress.accept(
          "note: "
              + plan.url()
              + "/metrics has no Berth metrics for model '"
              + plan.model()
              + "': the server-side columns (queue, compute, batch) stay empty");
    }
    LoadLoop loop = new LoadLoop(plan, drivers, progress, metrics ? this::scrape : () -> null);
    List<StepResult> results = new ArrayList<>();
    for (LoadStep step : plan.steps()) {
      results.add(loop.run(step));
    }
    return new BenchResults(plan, prepared.summary(), metrics, results);
  }

  /** HTTP requests, encoded once, and the first one sent to see that it is accepted. */
  private LoadLoop.Drivers http(List<byte[]> bodies) {
    List<byte[]> requests = new ArrayList<>();
    for (byte[] body : bodies) {
      if (plan.protocol() == Protocol.REST_BINARY) {
        BinaryRequests.Body binary = BinaryRequests.of(body);
        requests.add(
            HttpConnection.request(
                "POST",
                plan.authority(),
                inferPath(),
                BinaryRequests.CONTENT_TYPE,
                binary.content(),
                Map.of(BinaryRequests.HEADER_LENGTH, Integer.toString(binary.headerLength()))));
      } else {
        requests.add(
            HttpConnection.request(
                "POST", plan.authority(), inferPath(), "application/json", body));
      }
    }
    probe(requests.get(0));
    return LoadLoop.http(plan, requests);
  }

  /** gRPC calls, built once, and the first one made to see that it is accepted. */
  private LoadLoop.Drivers grpc(List<byte[]> bodies) {
    ModelInferRequest[] calls = new ModelInferRequest[bodies.size()];
    for (int i = 0; i < calls.length; i++) {
      calls[i] = GrpcRequests.of(bodies.get(i), plan.model());
    }
    String address = plan.host() + ":" + plan.grpcPort();
    ManagedChannel channel =
        Grpc.newChannelBuilderForAddress(
                plan.host(), plan.grpcPort(), InsecureChannelCredentials.create())
            .maxInboundMessageSize(Integer.MAX_VALUE)
            .build();
    try {
      GRPCInferenceServiceGrpc.newBlockingStub(channel)
          .withDeadlineAfter(plan.timeout().toNanos(), TimeUnit.NANOSECONDS)
          .modelInfer(calls[0]);
    } catch (StatusRuntimeException e) {
      Status s = e.getStatus();
      String said = s.getCode() + (s.getDescription() == null ? "" : ": " + s.getDescription());
      if (s.getCode() == Status.Code.UNAVAILABLE || s.getCode() == Status.Code.DEADLINE_EXCEEDED) {
        throw new BerthException(
            "cannot reach the gRPC service at "
                + address
                + " ("
                + said
                + "); give the server's gRPC port with --grpc-port",
            e);
      }
      throw new BerthException(
          "the server refused the first request: gRPC ModelInfer at "
              + address
              + " answered "
              + said
              + (plan.data().isPresent()
                  ? "; check the request bodies in " + plan.data().get()
                  : "; choose the inputs with --input NAME, or give the requests with --data FILE"),
          e);
    } finally {
      channel.shutdownNow();
    }
    return (w, open, connections, first) ->
        new GrpcDriver(w, plan.host(), plan.grpcPort(), calls, open, connections, first);
  }

  private record Prepared(List<byte[]> bodies, String summary) {}

  private Prepared prepare() {
    if (plan.protocol() == Protocol.OPENAI) {
      return prepareCompletions();
    }
    String modelPath = "/v2/models/" + plan.model();
    Answer metadata = get(modelPath);
    if (plan.protocol() == Protocol.TFSERVING) {
      Answer status = get("/v1/models/" + plan.model());
      if (status.status() == 404) {
        throw unknownModel(status);
      }
    } else if (metadata.status() == 404) {
      throw unknownModel(metadata);
    }
    if (plan.data().isPresent()) {
      List<byte[]> bodies = RequestBodies.read(plan.data().get());
      return new Prepared(
          bodies,
          "--data " + plan.data().get() + " (" + bodies.size() + " request bodies, round-robin)");
    }
    if (metadata.status() != 200) {
      throw new BerthException(
          "GET "
              + plan.url()
              + modelPath
              + " answered "
              + metadata.describe()
              + "; without the model's OIP v2 metadata berth bench cannot make requests: give them"
              + " with --data FILE");
    }
    ModelMetadata m = RequestBodies.parseMetadata(metadata.body());
    List<TensorSpec> inputs = RequestBodies.chooseInputs(m, plan.inputs());
    List<byte[]> bodies =
        RequestBodies.generate(inputs, plan.protocol(), plan.batchSize(), plan.seed());
    String summary =
        inputs.stream()
            .map(
                t ->
                    t.name()
                        + " "
                        + t.datatype()
                        + Arrays.toString(RequestBodies.shapeOf(t, plan.batchSize())))
            .collect(Collectors.joining(", "));
    return new Prepared(bodies, summary + " (generated from the model's metadata)");
  }

  /** Completion requests, once {@code GET /v1/models} has listed the model. */
  private Prepared prepareCompletions() {
    Answer models = get("/v1/models");
    if (models.status() != 200) {
      throw new BerthException(
          "GET "
              + plan.url()
              + "/v1/models answered "
              + models.describe()
              + "; --protocol openai needs a server with the OpenAI-compatible API");
    }
    if (!RequestBodies.listsModel(models.body(), plan.model())) {
      throw unknownModel(models);
    }
    if (plan.data().isPresent()) {
      List<byte[]> bodies = RequestBodies.read(plan.data().get());
      return new Prepared(
          bodies,
          "--data "
              + plan.data().get()
              + " ("
              + bodies.size()
              + " completion bodies, round-robin)");
    }
    List<byte[]> bodies =
        RequestBodies.completions(plan.model(), plan.promptWords(), plan.maxTokens(), plan.seed());
    return new Prepared(
        bodies,
        "prompts of "
            + plan.promptWords()
            + " words, max_tokens "
            + plan.maxTokens()
            + ", temperature 0 ("
            + bodies.size()
            + " generated, each with its own start)");
  }

  private BerthException unknownModel(Answer answer) {
    return new BerthException(
        "model '"
            + plan.model()
            + "' is not served at "
            + plan.url()
            + " ("
            + answer.describe()
            + "); name one it serves with --model");
  }

  /** One request, before any step: a request the server refuses would make every step fail. */
  private void probe(byte[] request) {
    try (HttpConnection c = HttpConnection.open(plan.host(), plan.port(), plan.timeout())) {
      int status = c.exchange(request, false);
      if (status < 200 || status >= 300) {
        throw new BerthException(
            "the server refused the first request: POST "
                + inferPath()
                + " answered "
                + new Answer(status, c.body()).describe()
                + (plan.data().isPresent()
                    ? "; check the request bodies in " + plan.data().get()
                    : plan.protocol() == Protocol.OPENAI
                        ? "; --protocol openai sends completions: the model must be a language"
                            + " model"
                        : "; choose the inputs with --input NAME, or give the requests with"
                            + " --data FILE"));
      }
    } catch (IOException e) {
      throw unreachable(e);
    }
  }

  private String inferPath() {
    return switch (plan.protocol()) {
      case TFSERVING -> "/v1/models/" + plan.model() + ":predict";
      case OPENAI -> "/v1/completions";
      default -> "/v2/models/" + plan.model() + "/infer";
    };
  }

  /** The model's metric sums now; null (said once) when the server has none. */
  private ServerSplit.Snapshot scrape() {
    if (metricsAbsent) {
      return null;
    }
    try {
      Answer a = get("/metrics");
      if (a.status() == 200) {
        ServerSplit.Snapshot s =
            ServerSplit.Snapshot.of(
                PrometheusText.parse(new String(a.body(), StandardCharsets.UTF_8)), plan.model());
        if (s != null) {
          return s;
        }
      }
    } catch (BerthException e) {
      // the server went away mid-run: the step itself reports its errors
    }
    metricsAbsent = true;
    return null;
  }

  private record Answer(int status, byte[] body) {
    String describe() {
      String text = new String(body, StandardCharsets.UTF_8).strip().replaceAll("\\s+", " ");
      if (text.length() > 300) {
        text = text.substring(0, 300) + "...";
      }
      return "HTTP " + status + (text.isEmpty() ? "" : ": " + text);
    }
  }

  private Answer get(String path) {
    try (HttpConnection c = HttpConnection.open(plan.host(), plan.port(), plan.timeout())) {
      int status =
          c.exchange(HttpConnection.request("GET", plan.authority(), path, null, null), true);
      return new Answer(status, c.body());
    } catch (IOException e) {
      throw unreachable(e);
    }
  }

  private BerthException unreachable(IOException e) {
    return new BerthException(
        "cannot reach "
            + plan.url()
            + " ("
            + LoadLoop.kind(e)
            + ": "
            + (e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage())
            + "); is the server running there?",
        e);
  }
}
