package dev.berth.runtime;

import dev.berth.api.DeadlineExceededException;
import dev.berth.api.InferenceRequest;
import dev.berth.api.InferenceResponse;
import dev.berth.api.InvalidInputException;
import dev.berth.api.ModelMetadata;
import dev.berth.api.ModelNotFoundException;
import dev.berth.api.ModelNotReadyException;
import dev.berth.api.Tensor;
import dev.berth.api.TensorSpec;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The data plane: everything a protocol adapter needs, and nothing about any transport. REST (and
 * later gRPC) handlers decode a request into an {@link InferenceRequest}, call {@link #infer}, and
 * encode what comes back.
 */
public final class InferenceService implements AutoCloseable {
  private volatile java.util.function.Supplier<Map<String, String>> sourceProblems = Map::of;
  private final ModelRegistry registry;
  private final ServingMetrics metrics;
  private static final Logger LOG = Logger.getLogger(InferenceService.class.getName());

  private final InflightTracker inflight = new InflightTracker();
  private ScheduledExecutorService poller; // guarded by this
  private volatile boolean ready;
  private volatile boolean draining;
  private volatile boolean strictReadiness = true;

  InferenceService(ModelRegistry registry, ServingMetrics metrics) {
    this.registry = registry;
    this.metrics = metrics;
  }

  /**
   * Loads every model of a repository with the engines found on the class path and returns a
   * service that is ready to answer.
   */
  public static InferenceService load(Path repository, ServingMetrics metrics) {
    InferenceService service = create(repository, metrics);
    service.loadModels();
    return service;
  }

  /** Loads every model of a repository with the given engines. */
  public static InferenceService load(
      ModelRepository repository, List<EngineProvider> engines, ServingMetrics metrics) {
    InferenceService service = create(repository, engines, metrics);
    service.loadModels();
    return service;
  }

  /** A service whose models are not loaded yet, with the given engines. */
  public static InferenceService create(
      ModelRepository repository, List<EngineProvider> engines, ServingMetrics metrics) {
    return new InferenceService(new ModelRegistry(repository, engines, metrics), metrics);
  }

  /**
   * A service over a repository whose models are not loaded yet: not ready, every model "not ready"
   * until {@link #loadModels()} has run. Lets a server open its ports while models load.
   */
  public static InferenceService create(Path repository, ServingMetrics metrics) {
    return create(repository, metrics, ModelIntegrity.pinsOnly());
  }

  /**
   * A service over a repository whose models are not loaded yet, each version's files checked by
   * {@code integrity} before its engine loads them.
   */
  public static InferenceService create(
      Path repository, ServingMetrics metrics, ModelIntegrity integrity) {
    return create(repository, metrics, integrity, ModelContext.DEFAULT_EXECUTION_PROVIDER);
  }

  /**
   * A service as {@link #create(Path, ServingMetrics, ModelIntegrity)} makes, whose engines run
   * models that name no execution provider on {@code executionProvider} ({@code cpu}, {@code
   * cuda}).
   */
  public static InferenceService create(
      Path repository, ServingMetrics metrics, ModelIntegrity integrity, String executionProvider) {
    List<EngineProvider> engines = new ArrayList<>();
    ServiceLoader.load(EngineProvider.class).forEach(engines::add);
    ModelRegistry registry =
        new ModelRegistry(new ModelRepository(repository), engines, metrics, integrity);
    registry.executionProvider(executionProvider);
    return new InferenceService(registry, metrics);
  }

  /** Loads every model of the repository, then turns ready. */
  public void loadModels() {
    registry.loadAll();
    ready = true;
  }

  public ServingMetrics metrics() {
    return metrics;
  }

  /** The process is up (OIP {@code /v2/health/live}). */
  public boolean live() {
    return true;
  }

  /**
   * The server takes inference requests (OIP {@code /v2/health/ready}): its models have loaded, it
   * is not draining, and with strict readiness (the default, as Triton's) every served model has a
   * ready version, so that an orchestrator sends no traffic to a replica whose model failed to
   * load.
   */
  public boolean ready() {
    return serving() && (!strictReadiness || registry.unreadyModels().isEmpty());
  }

  /** Whether a graceful stop has begun. */
  public boolean draining() {
    return draining;
  }

  /** Whether the models have loaded and the server is not stopping, whatever they loaded to. */
  public boolean serving() {
    return ready && !draining;
  }

  /**
   * With {@code false}, readiness ignores models that failed to load: the server turns ready once
   * loading is over and stays so while it serves.
   */
  public void strictReadiness(boolean strict) {
    this.strictReadiness = strict;
  }

  /** Whether model.yaml gates apply on load ({@link ModelRegistry#gating(boolean)}). */
  public void gating(boolean on) {
    registry.gating(on);
  }

  /** The served models without a ready version ({@link ModelRegistry#unreadyModels()}). */
  public List<String> unreadyModels() {
    return registry.unreadyModels();
  }

  /** Whether a model (version) can answer now. */
  public boolean modelReady(String model, String version) {
    try {
      registry.resolve(model, version);
      return !draining;
    } catch (ModelNotReadyException e) {
      return false;
    }
  }

  /**
   * Loads or reloads a model from the repository (model-repository extension {@code load}); see
   * {@link ModelRegistry#load(String)}.
   */
  public List<ModelStatus> loadModel(String model) {
    return registry.load(model);
  }

  /**
   * Unloads a model once its in-flight requests finish (model-repository extension {@code unload});
   * see {@link ModelRegistry#unload(String)}.
   */
  public List<ModelStatus> unloadModel(String model) {
    return registry.unload(model);
  }

  /** Rescans the repository once; see {@link ModelRegistry#poll()}. */
  public void pollRepository() {
    registry.poll();
  }

  /**
   * Rescans the repository every {@code interval} in the background, until {@link #close()}: new
   * models and versions load, removed ones unload, each model's version policy applies.
   */
  public synchronized void pollRepositoryEvery(Duration interval) {
    if (interval.isZero() || interval.isNegative()) {
      throw new IllegalArgumentException("the poll interval must be longer than 0");
    }
    if (poller != null) {
      throw new IllegalStateException("the repository is polled already");
    }
    poller =
        Executors.newSingleThreadScheduledExecutor(
            r -> Thread.ofPlatform().name("berth-repository-poll").daemon().unstarted(r));
    long millis = Math.max(1, interval.toMillis());
    poller.scheduleWithFixedDelay(
        () -> {
          try {
            registry.poll();
          } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "repository poll failed; trying again in " + interval, e);
          }
        },
        millis,
        millis,
        TimeUnit.MILLISECONDS);
  }

  /**
   * Every model version and where it stands; a model whose source could not be refreshed (see
   * {@link #sourceProblems}) says why in each of its versions' reasons.
   */
  public List<ModelStatus> index() {
    Map<String, String> problems = sourceProblems.get();
    if (problems.isEmpty()) {
      return registry.index();
    }
    List<ModelStatus> out = new ArrayList<>();
    for (ModelStatus s : registry.index()) {
      String problem = problems.get(s.name());
      out.add(
          problem == null
              ? s
              : new ModelStatus(
                  s.name(),
                  s.version(),
                  s.state(),
                  (s.reason().isEmpty() ? "" : s.reason() + "; ")
                      + "its source could not be refreshed, so it serves what it had: "
                      + problem));
    }
    return out;
  }

  /**
   * Where the index learns of models whose remote source (a registry, a store) could not be
   * refreshed: by model name, the reason.
   */
  public void sourceProblems(java.util.function.Supplier<Map<String, String>> problems) {
    this.sourceProblems = java.util.Objects.requireNonNull(problems);
  }

  /** Every ready model version. */
  public List<LoadedModel> loadedModels() {
    return registry.loaded();
  }

  /** The versions of one model and where each stands. */
  public List<ModelStatus> statuses(String model) {
    return registry.statuses(model);
  }

  /** Metadata of a model: the version asked for, or the highest ready one. */
  public ModelMetadata metadata(String model, String version) {
    LoadedModel m = registry.resolve(model, version);
    ModelSignature s = m.signature();
    List<String> versions =
        version != null
            ? List.of(m.version())
            : registry.statuses(model).stream()
                .filter(st -> st.state() == ServingMetrics.ModelState.READY)
                .map(ModelStatus::version)
                .toList();
    return new ModelMetadata(
        model, versions, s.platform(), s.inputs(), s.outputs(), m.config().labels());
  }

  /**
   * How a model version is served (Triton's model configuration extension): the version that would
   * answer, or the one given.
   */
  public ModelConfiguration configuration(String model, String version) {
    LoadedModel m = registry.resolve(model, version);
    ModelSignature s = m.signature();
    BatchingConfig batching = m.config().batching();
    boolean batched = s.batchable() && !m.generatesText();
    return new ModelConfiguration(
        m.name(),
        m.version(),
        s.platform(),
        batched ? batching.maxBatchSize() : 0,
        s.inputs(),
        s.outputs(),
        batched ? batching.maxQueueDelay() : null,
        m.generatesText() ? 1 : m.config().instances());
  }

  /**
   * Cumulative figures of the loaded versions of a model (Triton's statistics extension), of every
   * model when {@code model} is null, of one version when {@code version} is given.
   *
   * @throws ModelNotFoundException for a model or version that is not loaded
   */
  public List<InferenceStatistics.Snapshot> statistics(String model, String version) {
    List<InferenceStatistics.Snapshot> out = new java.util.ArrayList<>();
    List<String> models =
        model == null
            ? registry.index().stream().map(ModelStatus::name).distinct().sorted().toList()
            : List.of(model);
    for (String name : models) {
      for (ModelStatus st : registry.statuses(name)) {
        if (st.state() == ServingMetrics.ModelState.READY
            && (version == null || version.equals(st.version()))) {
          out.add(metrics.statistics(name, st.version()).snapshot());
        }
      }
    }
    if (model != null && out.isEmpty()) {
      throw new ModelNotFoundException(model, version);
    }
    return out;
  }

  /** The signature of the version that would answer, for adapters that decode by it. */
  public ModelSignature signature(String model, String version) {
    return registry.resolve(model, version).signature();
  }

  /**
   * Runs one request. Validation errors and overload are thrown at once; everything after the
   * request is queued arrives through the future.
   *
   * @throws ModelNotFoundException unknown model or version
   * @throws ModelNotReadyException model not ready, or the server drains
   * @throws InvalidInputException inputs that do not match the model
   * @throws dev.berth.api.OverloadedException the model's queue is full
   * @return the answer; cancelling it takes a request still queued out of the queue unrun
   */
  public CompletableFuture<InferenceResponse> infer(InferenceRequest request) {
    return infer(request, null, null);
  }

  /**
   * Runs one request with a deadline of its caller's: the earlier of the model's {@code
   * request-timeout} and {@code timeout} applies (a server-wide cap, or a gRPC client's deadline).
   *
   * @param timeout the caller's longest wait, or null for the model's own
   * @param timeoutSource what set {@code timeout}, for the message when it passes (e.g. "the
   *     client's gRPC deadline")
   */
  public CompletableFuture<InferenceResponse> infer(
      InferenceRequest request, Duration timeout, String timeoutSource) {
    return infer(request, timeout, timeoutSource, version -> {});
  }

  /**
   * Runs one request as {@link #infer(InferenceRequest, Duration, String)} does, and says which
   * version answers it as soon as that is known, before it runs: what labels the metrics and logs
   * of a request that fails or is given up after that.
   *
   * @param resolved told the version that answers the request
   */
  public CompletableFuture<InferenceResponse> infer(
      InferenceRequest request,
      Duration timeout,
      String timeoutSource,
      java.util.function.Consumer<String> resolved) {
    return infer(request, timeout, timeoutSource, resolved, null);
  }

  /**
   * Runs one request as {@link #infer(InferenceRequest, Duration, String,
   * java.util.function.Consumer)} does, reporting the steps it goes through (queue wait,
   * pre-processing, the engine call, post-processing) into {@code trace}.
   *
   * @param trace the request's trace, or null when it is not traced
   */
  public CompletableFuture<InferenceResponse> infer(
      InferenceRequest request,
      Duration timeout,
      String timeoutSource,
      java.util.function.Consumer<String> resolved,
      RequestTrace trace) {
    long start = System.nanoTime();
    if (draining) {
      throw new ModelNotReadyException(
          "server is shutting down; send the request to another replica");
    }
    LoadedModel model = hold(request.model(), request.version());
    resolved.accept(model.version());
    InferenceStatistics statistics = metrics.statistics(model.name(), model.version());
    Duration modelTimeout = model.config().requestTimeout();
    boolean callers = timeout != null && timeout.compareTo(modelTimeout) < 0;
    long timeoutNanos = Math.max(0, (callers ? timeout : modelTimeout).toNanos());
    String limit = callers ? timeoutSource : "request-timeout in model.yaml";
    CompletableFuture<List<Tensor>> result;
    int rows;
    inflight.begin();
    metrics.inflight(model.name(), 1);
    try {
      if (model.generatesText()) {
        throw new InvalidInputException(
            "model '"
                + model.name()
                + "' is a language model; send it POST /v1/chat/completions or /v1/completions");
      }
      ModelSignature signature = model.signature();
      rows = validateInputs(request, signature);
      List<String> outputs = selectOutputs(request, signature);
      long deadline = System.nanoTime() + timeoutNanos;
      result = model.batcher().submit(request.inputs(), outputs, rows, deadline, trace);
    } catch (RuntimeException e) {
      finished(model);
      statistics.failed(System.nanoTime() - start);
      throw e;
    }
    // The hold and the in-flight slot end once, before the answer is handed on, or when the caller
    // cancels the answer.
    AtomicBoolean ended = new AtomicBoolean();
    Runnable end =
        () -> {
          if (ended.compareAndSet(false, true)) {
            finished(model);
          }
        };
    CompletableFuture<InferenceResponse> response =
        result
            .orTimeout(timeoutNanos, TimeUnit.NANOSECONDS)
            .handle(
                (tensors, error) -> {
                  end.run();
                  if (error == null) {
                    statistics.succeeded(rows, System.nanoTime() - start);
                  } else if (!(unwrap(error)
                      instanceof java.util.concurrent.CancellationException)) {
                    statistics.failed(System.nanoTime() - start);
                  }
                  if (error != null) {
                    Throwable cause = unwrap(error);
                    if (cause instanceof TimeoutException) {
                      throw new DeadlineExceededException(
                          "model '"
                              + model.name()
                              + "' did not answer within "
                              + TimeUnit.NANOSECONDS.toMillis(timeoutNanos)
                              + " ms ("
                              + limit
                              + ")");
                    }
                    throw cause instanceof RuntimeException re ? re : new RuntimeException(cause);
                  }
                  return new InferenceResponse(
                      request.id(), model.name(), model.version(), tensors);
                });
    // A caller that gives up (a gRPC client cancels or disconnects) cancels the answer: the
    // request then leaves the queue unrun, and its hold and in-flight slot are freed at once.
    response.whenComplete(
        (r, e) -> {
          if (response.isCancelled()) {
            result.cancel(false);
            end.run();
          }
        });
    return response;
  }

  /**
   * Runs one request on a given loaded version, outside the table requests resolve against: how a
   * gate evaluates a version before it takes traffic. Its inputs are checked as for {@link
   * #infer(InferenceRequest)}, the model's {@code request-timeout} applies, and nothing is counted
   * in the request metrics.
   *
   * @throws ModelNotReadyException when the version has been retired
   * @throws InvalidInputException inputs that do not match the model
   */
  public static CompletableFuture<InferenceResponse> inferOn(
      LoadedModel model, InferenceRequest request) {
    if (model.generatesText()) {
      throw new InvalidInputException(
          "model '" + model.name() + "' is a language model; it takes no tensors");
    }
    if (!model.acquire()) {
      throw new ModelNotReadyException(model + " has been unloaded");
    }
    CompletableFuture<List<Tensor>> result;
    try {
      ModelSignature signature = model.signature();
      int rows = validateInputs(request, signature);
      List<String> outputs = selectOutputs(request, signature);
      long timeout = model.config().requestTimeout().toNanos();
      result = model.batcher().submit(request.inputs(), outputs, rows, System.nanoTime() + timeout);
      result = result.orTimeout(timeout, TimeUnit.NANOSECONDS);
    } catch (RuntimeException e) {
      model.release();
      throw e;
    }
    return result.handle(
        (tensors, error) -> {
          model.release();
          if (error != null) {
            Throwable cause = unwrap(error);
            if (cause instanceof TimeoutException) {
              throw new DeadlineExceededException(
                  model + " did not answer within its request-timeout in model.yaml");
            }
            throw cause instanceof RuntimeException re ? re : new RuntimeException(cause);
          }
          return new InferenceResponse(request.id(), model.name(), model.version(), tensors);
        });
  }

  /**
   * Starts generating text with a language model. The future completes once a sequence is free and
   * the generation has started; cancelling it before then takes the request out of the queue. The
   * generation holds the model (and counts as in flight) until it is closed, so close it in every
   * case.
   *
   * @param version a version, or null for the highest ready one
   * @throws dev.berth.api.InvalidInputException when the model is not a language model or the
   *     prompt does not fit
   * @throws dev.berth.api.OverloadedException when too many requests wait already
   */
  public CompletableFuture<Generation> generate(
      String model, String version, GenerationRequest request) {
    return generate(model, version, request, null);
  }

  /**
   * Starts generating text as {@link #generate(String, String, GenerationRequest)} does, reporting
   * the wait for a sequence and the generation (its tokens, the time to the first) into {@code
   * trace}.
   *
   * @param trace the request's trace, or null when it is not traced
   */
  public CompletableFuture<Generation> generate(
      String model, String version, GenerationRequest request, RequestTrace trace) {
    if (draining) {
      throw new ModelNotReadyException(
          "server is shutting down; send the request to another replica");
    }
    LoadedModel loaded = hold(model, version);
    inflight.begin();
    metrics.inflight(loaded.name(), 1);
    AtomicBoolean ended = new AtomicBoolean();
    Runnable end =
        () -> {
          if (ended.compareAndSet(false, true)) {
            finished(loaded);
          }
        };
    try {
      if (!loaded.generatesText()) {
        throw new dev.berth.api.InvalidInputException(
            "model '"
                + loaded.name()
                + "' is not a language model; send it tensors at /v2/models/"
                + loaded.name()
                + "/infer");
      }
      CompletableFuture<Generation> started = loaded.generations().submit(request, end, trace);
      started.whenComplete(
          (g, e) -> {
            if (e != null) {
              end.run();
            }
          });
      return started;
    } catch (RuntimeException e) {
      end.run();
      throw e;
    }
  }

  /**
   * Tokens the texts take for a model that tokenizes text itself, or empty when it does not.
   *
   * @param version a version, or null for the highest ready one
   */
  public java.util.OptionalInt countTokens(String model, String version, List<String> texts) {
    LoadedModel loaded = hold(model, version);
    try {
      return loaded.countTokens(texts);
    } finally {
      loaded.release();
    }
  }

  private static Throwable unwrap(Throwable t) {
    while ((t instanceof java.util.concurrent.CompletionException
            || t instanceof java.util.concurrent.ExecutionException)
        && t.getCause() != null) {
      t = t.getCause();
    }
    return t;
  }

  /**
   * Resolves the model version that answers a request and holds it until the request finishes. A
   * version being replaced or unloaded takes no new holders; resolving again then finds its
   * successor (or says it is unloaded), so a switch fails no request.
   */
  private LoadedModel hold(String model, String version) {
    for (int attempt = 0; ; attempt++) {
      LoadedModel resolved = registry.resolve(model, version);
      if (resolved.acquire()) {
        return resolved;
      }
      if (attempt == 1_000) { // the table changes far less often than this
        throw new ModelNotReadyException(
            "model '" + model + "' is being switched to another version; retry shortly");
      }
      Thread.onSpinWait();
    }
  }

  private void finished(LoadedModel model) {
    model.release();
    metrics.inflight(model.name(), -1);
    inflight.end();
  }

  private static int validateInputs(InferenceRequest request, ModelSignature signature) {
    String model = request.model();
    if (request.inputs().isEmpty()) {
      throw new InvalidInputException(
          "request has no inputs; model '" + model + "' takes " + describe(signature.inputs()));
    }
    Set<String> seen = new HashSet<>();
    long rows = -1;
    for (Tensor t : request.inputs()) {
      TensorSpec spec =
          signature
              .input(t.name())
              .orElseThrow(
                  () ->
                      new InvalidInputException(
                          "model '"
                              + model
                              + "' has no input '"
                              + t.name()
                              + "'; it takes "
                              + describe(signature.inputs())));
      if (!seen.add(t.name())) {
        throw new InvalidInputException("input '" + t.name() + "' appears twice; send it once");
      }
      if (spec.datatype() != t.datatype()) {
        throw new InvalidInputException(
            "input '" + t.name() + "' must be " + spec.datatype() + ", got " + t.datatype());
      }
      if (!spec.accepts(t.shape())) {
        throw new InvalidInputException(
            "input '"
                + t.name()
                + "' must have shape "
                + Arrays.toString(spec.shape())
                + " (-1 = any size), got "
                + Arrays.toString(t.shape()));
      }
      if (signature.batchable()) {
        if (rows >= 0 && t.dim(0) != rows) {
          throw new InvalidInputException(
              "inputs disagree on the batch (first) dimension: '"
                  + t.name()
                  + "' has "
                  + t.dim(0)
                  + ", earlier inputs have "
                  + rows);
        }
        rows = t.dim(0);
      }
    }
    if (rows > Integer.MAX_VALUE) {
      throw new InvalidInputException("batch of " + rows + " rows is too large");
    }
    return signature.batchable() ? (int) Math.max(rows, 1) : 1;
  }

  private static List<String> selectOutputs(InferenceRequest request, ModelSignature signature) {
    if (request.outputs().isEmpty()) {
      return signature.outputNames();
    }
    Set<String> seen = new HashSet<>();
    for (String name : request.outputs()) {
      if (signature.output(name).isEmpty()) {
        throw new InvalidInputException(
            "model '"
                + request.model()
                + "' has no output '"
                + name
                + "'; it gives "
                + describe(signature.outputs()));
      }
      if (!seen.add(name)) {
        throw new InvalidInputException("output '" + name + "' is asked for twice; ask once");
      }
    }
    return request.outputs();
  }

  private static String describe(List<TensorSpec> specs) {
    return specs.stream().map(TensorSpec::toString).toList().toString();
  }

  /** Requests accepted and not yet answered. */
  public int inflight() {
    return inflight.count();
  }

  /**
   * Turns readiness off, refuses new requests, and waits until every accepted request has been
   * answered or the timeout passes.
   *
   * @return whether every in-flight request finished in time
   */
  public boolean drain(Duration timeout) {
    draining = true;
    return inflight.awaitIdle(timeout);
  }

  @Override
  public void close() {
    draining = true;
    synchronized (this) {
      if (poller != null) {
        poller.shutdownNow();
      }
    }
    registry.close();
  }
}
