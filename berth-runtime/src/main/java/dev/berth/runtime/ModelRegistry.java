package dev.berth.runtime;

import dev.berth.api.BerthException;
import dev.berth.api.ModelLoadException;
import dev.berth.api.ModelNotFoundException;
import dev.berth.api.ModelNotReadyException;
import dev.berth.runtime.ServingMetrics.ModelState;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The model versions of one repository and where each stands. A version that fails to load is
 * recorded with its reason and the others keep serving.
 */
public final class ModelRegistry implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(ModelRegistry.class.getName());

  private record Entry(ModelStatus status, LoadedModel loaded) {}

  private final ModelRepository repository;
  private final List<EngineProvider> engines;
  private final ServingMetrics metrics;
  private final ModelIntegrity integrity;
  private final Map<String, NavigableMap<Long, Entry>> models = new ConcurrentHashMap<>();

  public ModelRegistry(
      ModelRepository repository, List<EngineProvider> engines, ServingMetrics metrics) {
    this(repository, engines, metrics, ModelIntegrity.pinsOnly());
  }

  /** A registry that checks each version's files with {@code integrity} before it loads. */
  public ModelRegistry(
      ModelRepository repository,
      List<EngineProvider> engines,
      ServingMetrics metrics,
      ModelIntegrity integrity) {
    this.repository = repository;
    this.engines = List.copyOf(engines);
    this.metrics = metrics;
    this.integrity = integrity;
  }

  public ModelRepository repository() {
    return repository;
  }

  /**
   * Scans the repository and loads every version of every model it finds. Every version is listed
   * (as loading) before the first one loads, so requests meanwhile get "not ready", not "not
   * found".
   */
  public void loadAll() {
    List<Runnable> loads = new ArrayList<>();
    for (ModelRepository.ModelSource source : repository.scan()) {
      NavigableMap<Long, Entry> versions = new ConcurrentSkipListMap<>();
      models.put(source.name(), versions);
      if (source.configError() != null) {
        LOG.log(
            Level.SEVERE,
            "model '" + source.name() + "' not loaded: " + source.configError().getMessage());
        for (ModelRepository.Version v : source.versions()) {
          versions.put(
              v.number(), failed(source.name(), v.label(), source.configError().getMessage()));
        }
        if (source.versions().isEmpty()) {
          versions.put(0L, failed(source.name(), "", source.configError().getMessage()));
        }
        continue;
      }
      if (source.versions().isEmpty()) {
        String reason =
            "no version directories in "
                + source.dir()
                + "; put the model file in "
                + source.dir().resolve("1");
        LOG.warning("model '" + source.name() + "' not loaded: " + reason);
        versions.put(0L, failed(source.name(), "", reason));
        continue;
      }
      for (ModelRepository.Version v : source.versions()) {
        metrics.state(source.name(), v.label(), ModelState.LOADING);
        versions.put(
            v.number(),
            new Entry(
                new ModelStatus(source.name(), v.label(), ModelState.LOADING, "loading"), null));
        loads.add(() -> versions.put(v.number(), load(source, v)));
      }
    }
    loads.forEach(Runnable::run);
  }

  private Entry failed(String name, String version, String reason) {
    if (!version.isEmpty()) {
      metrics.state(name, version, ModelState.UNAVAILABLE);
    }
    return new Entry(new ModelStatus(name, version, ModelState.UNAVAILABLE, reason), null);
  }

  private Entry load(ModelRepository.ModelSource source, ModelRepository.Version v) {
    String name = source.name();
    String version = v.label();
    metrics.state(name, version, ModelState.LOADING);
    long start = System.nanoTime();
    ModelContext context = new ModelContext(name, version, v.dir(), source.config());
    try {
      integrity.verify(source.dir(), source.config(), version);
      EngineProvider provider = pickEngine(context);
      Engine engine = provider.load(context);
      ModelSignature signature = engine.signature();
      try {
        source.config().checkLabels(signature.outputs());
      } catch (RuntimeException e) {
        engine.close();
        throw e;
      }
      BatchingConfig batching =
          signature.batchable()
              ? source.config().batching()
              : source.config().batching().unbatched();
      DynamicBatcher batcher =
          new DynamicBatcher(
              name, version, batching, source.config().instances(), engine::infer, metrics);
      long nanos = System.nanoTime() - start;
      metrics.loaded(name, version, nanos);
      metrics.state(name, version, ModelState.READY);
      LOG.info(
          String.format(
              "loaded model '%s' version %s (%s, %d ms, max-batch-size %d, instances %d)",
              name,
              version,
              provider.name(),
              nanos / 1_000_000,
              batching.maxBatchSize(),
              source.config().instances()));
      return new Entry(
          new ModelStatus(name, version, ModelState.READY, ""),
          new LoadedModel(name, version, source.config(), engine, batcher));
    } catch (BerthException e) {
      LOG.log(
          Level.SEVERE,
          "model '" + name + "' version " + version + " not loaded: " + e.getMessage());
      return failed(name, version, e.getMessage());
    } catch (RuntimeException | LinkageError e) {
      LOG.log(Level.SEVERE, "model '" + name + "' version " + version + " not loaded", e);
      return failed(name, version, "engine failed to load it: " + e);
    }
  }

  private EngineProvider pickEngine(ModelContext context) {
    ModelConfig config = context.config();
    if (config.hasEngine()) {
      return engines.stream()
          .filter(e -> e.name().equals(config.engine()))
          .findFirst()
          .orElseThrow(
              () ->
                  config.error(
                      "engine",
                      "no engine named '"
                          + config.engine()
                          + "'; available: "
                          + engines.stream().map(EngineProvider::name).toList()));
    }
    return engines.stream()
        .filter(e -> e.canLoad(context))
        .findFirst()
        .orElseThrow(
            () ->
                new ModelLoadException(
                    "no engine recognises the files in "
                        + context.versionDir()
                        + "; put a model.onnx there (engines: "
                        + engines.stream().map(EngineProvider::name).toList()
                        + ")"));
  }

  /**
   * The ready version that answers a request.
   *
   * @param version a version, or null for the highest ready one
   * @throws ModelNotFoundException if the model or version is not in the repository
   * @throws ModelNotReadyException if it is there but not ready
   */
  public LoadedModel resolve(String model, String version) {
    NavigableMap<Long, Entry> versions = models.get(model);
    if (versions == null) {
      throw new ModelNotFoundException(model, null);
    }
    if (version == null) {
      for (Entry e : versions.descendingMap().values()) {
        if (e.loaded() != null) {
          return e.loaded();
        }
      }
      Entry any = versions.lastEntry().getValue();
      throw new ModelNotReadyException(
          "model '" + model + "' has no ready version: " + any.status().reason());
    }
    Entry entry =
        ModelRepository.isValidVersion(version) ? versions.get(Long.parseLong(version)) : null;
    if (entry == null) {
      throw new ModelNotFoundException(model, version);
    }
    if (entry.loaded() == null) {
      throw new ModelNotReadyException(
          "model '" + model + "' version " + version + " is not ready: " + entry.status().reason());
    }
    return entry.loaded();
  }

  /**
   * The versions of one model and where each stands.
   *
   * @throws ModelNotFoundException if the repository has no such model
   */
  public List<ModelStatus> statuses(String model) {
    NavigableMap<Long, Entry> versions = models.get(model);
    if (versions == null) {
      throw new ModelNotFoundException(model, null);
    }
    return versions.values().stream().map(Entry::status).toList();
  }

  /** Every model version and where it stands, sorted by name then version. */
  public List<ModelStatus> index() {
    List<ModelStatus> out = new ArrayList<>();
    new TreeMap<>(models).values().forEach(v -> v.values().forEach(e -> out.add(e.status())));
    return out;
  }

  /** Every ready model version. */
  public List<LoadedModel> loaded() {
    List<LoadedModel> out = new ArrayList<>();
    new TreeMap<>(models)
        .values()
        .forEach(
            v ->
                v.values().stream()
                    .filter(e -> e.loaded() != null)
                    .forEach(e -> out.add(e.loaded())));
    return out;
  }

  /** Finishes queued requests and frees every engine. */
  public void close(Duration drainTimeout) {
    for (LoadedModel model : loaded()) {
      model.close(drainTimeout);
      metrics.state(model.name(), model.version(), ModelState.UNLOADED);
    }
    models.clear();
  }

  @Override
  public void close() {
    close(Duration.ofSeconds(30));
  }
}
