package dev.berth.runtime;

import dev.berth.api.BerthException;
import dev.berth.api.ModelLoadException;
import dev.berth.api.ModelNotFoundException;
import dev.berth.api.ModelNotReadyException;
import dev.berth.runtime.ServingMetrics.ModelState;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.locks.ReentrantLock;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * The model versions of one repository and where each stands. A version that fails to load is
 * recorded with its reason and the others keep serving.
 *
 * <p>Models are loaded, reloaded and unloaded while requests flow: a new engine is loaded first,
 * then it replaces the old one in the table that requests resolve against, and only then is the old
 * one retired, which waits for the requests holding it (see {@link LoadedModel}). Changes to the
 * table are made one at a time; resolving a request takes no lock.
 */
public final class ModelRegistry implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(ModelRegistry.class.getName());
  private static final Duration RETIRE_GRACE = Duration.ofSeconds(5);

  /**
   * One version's place in the table.
   *
   * @param status where it stands
   * @param loaded the model answering for it, or null
   * @param fingerprint what its directory held when it last failed to load, or null
   */
  private record Entry(ModelStatus status, LoadedModel loaded, String fingerprint) {
    Entry(ModelStatus status, LoadedModel loaded) {
      this(status, loaded, null);
    }
  }

  private final ModelRepository repository;
  private final List<EngineProvider> engines;
  private final List<StageProvider> stages;
  private final ServingMetrics metrics;
  private final ModelIntegrity integrity;
  private final GateEvaluator gateEvaluator;
  private volatile boolean gating = true;
  private final Map<String, NavigableMap<Long, Entry>> models = new ConcurrentHashMap<>();
  // models unloaded through the repository API: a poll leaves them unloaded
  private final Set<String> unloadedOnRequest = ConcurrentHashMap.newKeySet();
  // the model.yaml error last logged per model, so a poll does not repeat it
  private final Map<String, String> reportedConfigErrors = new ConcurrentHashMap<>();
  private final ReentrantLock changes = new ReentrantLock();
  private volatile boolean scanned;
  private volatile boolean closed;

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
    List<StageProvider> found = new java.util.ArrayList<>();
    java.util.ServiceLoader.load(StageProvider.class).forEach(found::add);
    this.stages = List.copyOf(found);
    this.metrics = metrics;
    this.integrity = integrity;
    this.gateEvaluator = GateEvaluator.find().orElse(null);
  }

  /**
   * Whether versions of a model with a model.yaml {@code gate} must pass it before they take
   * traffic (default true). A caller that evaluates the gate itself ({@code berth train}) turns it
   * off before loading.
   */
  public void gating(boolean on) {
    this.gating = on;
  }

  private volatile String executionProvider = ModelContext.DEFAULT_EXECUTION_PROVIDER;

  /**
   * The execution provider engines use for models whose model.yaml names none ({@code berth serve
   * --execution-provider}); set before loading.
   */
  public void executionProvider(String provider) {
    this.executionProvider = java.util.Objects.requireNonNull(provider);
  }

  public ModelRepository repository() {
    return repository;
  }

  /**
   * Scans the repository and loads the versions of every model it finds that their version policy
   * selects. Every version is listed (as loading) before the first one loads, so requests meanwhile
   * get "not ready", not "not found".
   */
  public void loadAll() {
    changes.lock();
    try {
      List<Runnable> loads = new ArrayList<>();
      for (ModelRepository.ModelSource source : repository.scan()) {
        NavigableMap<Long, Entry> versions = new ConcurrentSkipListMap<>();
        models.put(source.name(), versions);
        if (source.configError() != null) {
          reportConfigError(source, versions);
          continue;
        }
        if (source.versions().isEmpty()) {
          reportNoVersions(source, versions);
          continue;
        }
        Set<Long> wanted = wanted(source);
        boolean gated = gating && source.config().gate() != null;
        for (ModelRepository.Version v : source.versions()) {
          if (!wanted.contains(v.number())) {
            versions.put(v.number(), notSelected(source, v.number()));
            continue;
          }
          versions.put(v.number(), loading(source.name(), v.label()));
          if (!gated) {
            loads.add(() -> versions.put(v.number(), load(source, v)));
          }
        }
        if (gated) {
          loads.add(() -> startGated(source, versions, wanted));
        }
      }
      scanned = true;
      loads.forEach(Runnable::run);
    } finally {
      changes.unlock();
    }
  }

  /**
   * Loads or reloads one model from disk: reads its model.yaml and version directories again, loads
   * a fresh engine for every version its policy selects, switches each over when it is ready, and
   * unloads the versions no longer selected or no longer there. A version that fails to load keeps
   * the engine it had, if any.
   *
   * @return the model's versions afterwards
   * @throws ModelNotFoundException when the repository has no directory of that name
   * @throws dev.berth.api.ConfigException when its model.yaml is unusable
   * @throws ModelLoadException when a version it selects failed to load
   */
  public List<ModelStatus> load(String model) {
    changes.lock();
    try {
      checkOpen();
      ModelRepository.ModelSource source =
          repository.find(model).orElseThrow(() -> new ModelNotFoundException(model, null));
      unloadedOnRequest.remove(model);
      reportedConfigErrors.remove(model);
      NavigableMap<Long, Entry> versions =
          models.computeIfAbsent(model, k -> new ConcurrentSkipListMap<>());
      if (source.configError() != null) {
        reportConfigError(source, versions);
        throw source.configError();
      }
      List<String> failures = apply(source, versions, true);
      if (source.versions().isEmpty()) {
        throw new ModelLoadException(reportNoVersions(source, versions));
      }
      if (!failures.isEmpty()) {
        throw new ModelLoadException(
            "model '" + model + "' did not load completely: " + String.join("; ", failures));
      }
      return statuses(model);
    } finally {
      changes.unlock();
    }
  }

  /**
   * Unloads every version of a model: requests stop resolving to it at once, those already holding
   * it finish, then its engines are freed. It stays unloaded (also across polls) until loaded
   * again.
   *
   * @return the model's versions afterwards
   * @throws ModelNotFoundException when the model is neither served nor in the repository
   */
  public List<ModelStatus> unload(String model) {
    changes.lock();
    try {
      checkOpen();
      NavigableMap<Long, Entry> versions = models.get(model);
      if (versions == null) {
        if (repository.find(model).isEmpty()) {
          throw new ModelNotFoundException(model, null);
        }
        versions = new ConcurrentSkipListMap<>();
        models.put(model, versions);
      }
      unloadedOnRequest.add(model);
      String reason =
          "unloaded on request; load it again with POST /v2/repository/models/"
              + model
              + "/load (berth models load "
              + model
              + ")";
      List<LoadedModel> retiring = new ArrayList<>();
      for (Map.Entry<Long, Entry> e : versions.entrySet()) {
        if (e.getValue().loaded() != null) {
          retiring.add(e.getValue().loaded());
        }
        versions.put(
            e.getKey(),
            new Entry(
                new ModelStatus(model, label(e.getKey()), ModelState.UNLOADED, reason), null));
      }
      if (versions.isEmpty()) {
        versions.put(0L, new Entry(new ModelStatus(model, "", ModelState.UNLOADED, reason), null));
      }
      for (LoadedModel m : retiring) {
        retire(m, "unloaded on request", true);
      }
      LOG.info("model '" + model + "' unloaded on request");
      return statuses(model);
    } finally {
      changes.unlock();
    }
  }

  /**
   * Brings the served models in line with the repository on disk: loads new model directories and
   * new version directories, retries a version that failed to load once its files change, and
   * unloads versions and models that are gone or that their policy no longer selects. Versions that
   * stay are not reloaded (use {@link #load(String)} for that), and models unloaded on request stay
   * unloaded.
   */
  public void poll() {
    changes.lock();
    try {
      if (closed || !scanned) {
        return;
      }
      List<ModelRepository.ModelSource> sources;
      try {
        sources = repository.scan();
      } catch (BerthException e) {
        LOG.warning("repository poll skipped: " + e.getMessage());
        return;
      }
      Set<String> present = new HashSet<>();
      sources.forEach(s -> present.add(s.name()));
      for (String name : new ArrayList<>(models.keySet())) {
        if (!present.contains(name)) {
          NavigableMap<Long, Entry> gone = models.remove(name);
          unloadedOnRequest.remove(name);
          reportedConfigErrors.remove(name);
          LOG.info("model '" + name + "' is no longer in the repository; unloading it");
          for (Entry e : gone.values()) {
            if (e.loaded() != null) {
              retire(e.loaded(), "its directory was removed", true);
            }
          }
        }
      }
      for (ModelRepository.ModelSource source : sources) {
        String name = source.name();
        if (unloadedOnRequest.contains(name)) {
          continue;
        }
        NavigableMap<Long, Entry> versions = models.get(name);
        if (versions == null) {
          LOG.info("found model '" + name + "' in the repository");
          versions = new ConcurrentSkipListMap<>();
          models.put(name, versions);
        }
        if (source.configError() != null) {
          if (!source.configError().getMessage().equals(reportedConfigErrors.get(name))) {
            reportConfigError(source, versions);
          }
          continue;
        }
        reportedConfigErrors.remove(name);
        apply(source, versions, false);
        if (source.versions().isEmpty() && !versions.containsKey(0L)) {
          reportNoVersions(source, versions);
        }
      }
    } finally {
      changes.unlock();
    }
  }

  /**
   * Loads the versions a model's policy selects and retires the others. With {@code reload}, a
   * version that is serving gets a fresh engine too; without, only versions not serving load, and a
   * version that failed before only once its files changed.
   *
   * @return why each version that failed did
   */
  private List<String> apply(
      ModelRepository.ModelSource source, NavigableMap<Long, Entry> versions, boolean reload) {
    String name = source.name();
    Map<Long, ModelRepository.Version> onDisk = new TreeMap<>();
    source.versions().forEach(v -> onDisk.put(v.number(), v));
    Set<Long> wanted = wanted(source);
    List<ModelRepository.Version> toLoad = new ArrayList<>();
    for (long n : wanted) {
      ModelRepository.Version v = onDisk.get(n);
      Entry current = versions.get(n);
      boolean serving = current != null && current.loaded() != null;
      if (!reload
          && (serving
              || (current != null
                  && current.fingerprint() != null
                  && current.fingerprint().equals(ModelRepository.fingerprint(v.dir()))))) {
        continue;
      }
      toLoad.add(v);
      if (!serving) {
        versions.put(n, loading(name, v.label()));
      }
    }
    if (!onDisk.isEmpty()) {
      versions.remove(0L); // the "no version" placeholder
    }
    List<String> failures = new ArrayList<>();
    for (ModelRepository.Version v : toLoad) {
      Entry current = versions.get(v.number());
      LoadedModel previous = current == null ? null : current.loaded();
      Entry next = gated(source, v, load(source, v), versions);
      if (next.loaded() != null) {
        versions.put(v.number(), next);
        if (previous != null) {
          retire(previous, "replaced by a fresh load", false);
        }
        continue;
      }
      failures.add("version " + v.label() + ": " + next.status().reason());
      if (previous == null) {
        versions.put(v.number(), next);
      } else {
        LOG.warning(
            "model '"
                + name
                + "' version "
                + v.label()
                + " keeps serving the engine it had: the reload failed");
        metrics.state(name, v.label(), ModelState.READY);
        versions.put(
            v.number(),
            new Entry(
                new ModelStatus(
                    name,
                    v.label(),
                    ModelState.READY,
                    "reload failed, the engine loaded before keeps serving: "
                        + next.status().reason()),
                previous,
                next.fingerprint()));
      }
    }
    // Versions no longer selected give way only once every selected one serves: a new version
    // that fails to load leaves the one serving before in place.
    boolean allWantedServing =
        wanted.stream().allMatch(n -> versions.get(n) != null && versions.get(n).loaded() != null);
    for (Map.Entry<Long, Entry> e : new ArrayList<>(versions.entrySet())) {
      long n = e.getKey();
      if (n == 0 || wanted.contains(n)) {
        continue;
      }
      Entry old = e.getValue();
      String why;
      if (onDisk.containsKey(n) && old.loaded() != null && !allWantedServing) {
        versions.put(
            n,
            new Entry(
                new ModelStatus(
                    name,
                    old.status().version(),
                    ModelState.READY,
                    "kept serving: version-policy "
                        + source.config().versionPolicy()
                        + " no longer selects it, but a version it selects did not load"),
                old.loaded()));
        continue;
      }
      if (onDisk.containsKey(n)) {
        why = "version-policy " + source.config().versionPolicy() + " no longer selects it";
        versions.put(n, notSelected(source, n));
      } else {
        why = "its directory was removed";
        versions.remove(n);
      }
      if (old.loaded() != null) {
        retire(old.loaded(), why, true);
      }
    }
    for (long n : onDisk.keySet()) {
      if (!wanted.contains(n)) {
        versions.computeIfAbsent(n, k -> notSelected(source, k));
      }
    }
    return failures;
  }

  /**
   * Starts a gated model. When its version-policy leaves out versions below those it selects (a
   * {@code latest} policy), the highest of them loads and is gated first, as if it had been serving
   * before the start: the selected versions are then gated against it ({@code max-drop}), and it
   * keeps serving when one of them is refused, as it would have had the server not restarted.
   */
  private void startGated(
      ModelRepository.ModelSource source, NavigableMap<Long, Entry> versions, Set<Long> wanted) {
    long lowestWanted = wanted.isEmpty() ? Long.MAX_VALUE : wanted.iterator().next();
    ModelRepository.Version below = null;
    for (ModelRepository.Version v : source.versions()) {
      if (v.number() < lowestWanted && !wanted.contains(v.number())) {
        below = v;
      }
    }
    if (below != null && !wanted.isEmpty()) {
      versions.put(below.number(), loading(source.name(), below.label()));
      versions.put(below.number(), gated(source, below, load(source, below), versions));
    }
    apply(source, versions, false);
  }

  /**
   * Runs the model's gate, if it has one, on a version that just loaded, before it takes traffic.
   * The version now serving (the highest one with an engine, which may be this version's own engine
   * before a reload) is what a {@code max-drop} compares with. A version that passes keeps its
   * entry, with the verdict as its status's reason; one that is refused, or that cannot be
   * evaluated, is freed and recorded as unavailable with the verdict, keeping its files'
   * fingerprint so that a poll tries it again only once they change.
   */
  private Entry gated(
      ModelRepository.ModelSource source,
      ModelRepository.Version v,
      Entry next,
      NavigableMap<Long, Entry> versions) {
    ModelGate gate = source.config().gate();
    LoadedModel candidate = next.loaded();
    if (gate == null || candidate == null || !gating || candidate.generatesText()) {
      if (gate != null && candidate != null && candidate.generatesText()) {
        LOG.warning("model '" + source.name() + "' has a gate, but language models are not gated");
      }
      return next;
    }
    String name = source.name();
    String version = v.label();
    String fingerprint = next.fingerprint();
    LoadedModel serving = null;
    for (Entry e : versions.descendingMap().values()) {
      if (e.loaded() != null && e.loaded() != candidate) {
        serving = e.loaded();
        break;
      }
    }
    metrics.state(name, version, ModelState.LOADING);
    ModelGate.Verdict verdict;
    try {
      if (gateEvaluator == null) {
        throw new BerthException(
            "this Berth has no gate evaluator on its class path (the berth-server module); it"
                + " cannot evaluate the gate in model.yaml");
      }
      LOG.info(
          "model '"
              + name
              + "' version "
              + version
              + ": evaluating its gate ("
              + gate.metricName()
              + " on "
              + gate.data()
              + ") before it takes traffic");
      double figure = gateEvaluator.measure(gate, candidate);
      candidate.gateFigure(gate, figure);
      double servingFigure = Double.NaN;
      if (serving != null && gate.comparesWithServing()) {
        servingFigure = serving.gateFigure(gate);
        if (Double.isNaN(servingFigure)) {
          try {
            servingFigure = gateEvaluator.measure(gate, serving);
          } catch (RuntimeException e) {
            throw new BerthException(
                "it cannot be compared with version "
                    + serving.version()
                    + ", which serves now, as gate.max-drop asks: measuring that version failed ("
                    + e.getMessage()
                    + ")",
                e);
          }
          serving.gateFigure(gate, servingFigure);
        }
      }
      verdict = gate.judge(figure, servingFigure, serving == null ? null : serving.version());
      metrics.gate(name, version, gate.metricName(), verdict);
    } catch (RuntimeException | LinkageError e) {
      candidate.close(Duration.ZERO);
      metrics.gateUnmeasured(name, version);
      String reason =
          "the gate in model.yaml could not evaluate it, so it takes no traffic: "
              + e.getMessage()
              + "; a poll tries it again once its files change, berth models load "
              + name
              + " at once";
      LOG.severe("model '" + name + "' version " + version + ": " + reason);
      return failed(name, version, reason, fingerprint);
    }
    if (!verdict.passed()) {
      candidate.close(Duration.ZERO);
      String reason =
          "refused by the gate in model.yaml: "
              + verdict.summary()
              + "; it stays out of service until its files change or it is loaded again (berth"
              + " models load "
              + name
              + ")";
      LOG.severe("model '" + name + "' version " + version + " " + reason);
      return failed(name, version, reason, fingerprint);
    }
    LOG.info("model '" + name + "' version " + version + " passed its gate: " + verdict.summary());
    metrics.state(name, version, ModelState.READY);
    return new Entry(
        new ModelStatus(name, version, ModelState.READY, "passed the gate: " + verdict.summary()),
        candidate,
        fingerprint);
  }

  private Set<Long> wanted(ModelRepository.ModelSource source) {
    VersionPolicy policy = source.config().versionPolicy();
    Set<Long> wanted =
        policy.select(source.versions().stream().map(ModelRepository.Version::number).toList());
    if (wanted.isEmpty() && !source.versions().isEmpty()) {
      LOG.warning(
          "model '"
              + source.name()
              + "': version-policy "
              + policy
              + " selects none of its versions "
              + source.versions().stream().map(ModelRepository.Version::label).toList());
    }
    return wanted;
  }

  /**
   * Lets the last holders of a model finish, then frees it. Holders are requests, each bounded by
   * the model's request-timeout.
   */
  private void retire(LoadedModel model, String why, boolean gone) {
    boolean idle = model.retire(model.config().requestTimeout().plus(RETIRE_GRACE));
    if (gone) {
      metrics.state(model.name(), model.version(), ModelState.UNLOADED);
    }
    LOG.info(
        "retired an engine of model '"
            + model.name()
            + "' version "
            + model.version()
            + " ("
            + why
            + ")"
            + (idle ? "" : "; requests still held it when its request-timeout had passed"));
  }

  /**
   * A served version's engine failed at run time for a reason other than a request's inputs: the
   * version turns unavailable, with the reason, until it is loaded again (repository API, or a poll
   * once its files change); the other models keep serving. Runs off the batcher's thread: retiring
   * waits for the version's requests, which that thread may still be answering.
   */
  private void engineFailed(LoadedModel model, long number, String fingerprint, Throwable error) {
    Thread.ofVirtual()
        .name("berth-engine-failure")
        .start(
            () -> {
              changes.lock();
              try {
                NavigableMap<Long, Entry> versions = models.get(model.name());
                Entry current = versions == null ? null : versions.get(number);
                if (current == null || current.loaded() != model) {
                  return; // already replaced, unloaded or failed
                }
                String reason =
                    "its engine failed at run time ("
                        + error
                        + "); fix the model or its device, then load it again with POST"
                        + " /v2/repository/models/"
                        + model.name()
                        + "/load";
                LOG.severe(
                    "model '"
                        + model.name()
                        + "' version "
                        + model.version()
                        + " taken out of service: "
                        + reason);
                versions.put(number, failed(model.name(), model.version(), reason, fingerprint));
              } finally {
                changes.unlock();
              }
              retire(model, "its engine failed at run time", false);
            });
  }

  /** The names of the models in the registry, sorted, for "not found" messages. */
  private List<String> servedNames() {
    return new TreeMap<>(models).keySet().stream().toList();
  }

  private void checkOpen() {
    if (closed) {
      throw new ModelNotReadyException(
          "the server is shutting down; models are neither loaded nor unloaded now");
    }
  }

  private void reportConfigError(
      ModelRepository.ModelSource source, NavigableMap<Long, Entry> versions) {
    String name = source.name();
    String message = source.configError().getMessage();
    reportedConfigErrors.put(name, message);
    boolean serving = versions.values().stream().anyMatch(e -> e.loaded() != null);
    if (serving) {
      LOG.severe(
          "model '"
              + name
              + "': model.yaml not applied, the versions loaded before keep serving: "
              + message);
      for (Map.Entry<Long, Entry> e : versions.entrySet()) {
        Entry old = e.getValue();
        if (old.loaded() != null) {
          versions.put(
              e.getKey(),
              new Entry(
                  new ModelStatus(
                      name,
                      old.status().version(),
                      ModelState.READY,
                      "model.yaml not applied, this version keeps its settings: " + message),
                  old.loaded()));
        }
      }
      return;
    }
    LOG.log(Level.SEVERE, "model '" + name + "' not loaded: " + message);
    versions.clear();
    for (ModelRepository.Version v : source.versions()) {
      versions.put(v.number(), failed(name, v.label(), message));
    }
    if (source.versions().isEmpty()) {
      versions.put(0L, failed(name, "", message));
    }
  }

  /** Records a model without version directories; returns why it is not served. */
  private String reportNoVersions(
      ModelRepository.ModelSource source, NavigableMap<Long, Entry> versions) {
    String reason =
        "no version directories in "
            + source.dir()
            + "; put the model file in "
            + source.dir().resolve("1");
    LOG.warning("model '" + source.name() + "' not loaded: " + reason);
    if (versions.isEmpty()) {
      versions.put(0L, failed(source.name(), "", reason));
    }
    return reason;
  }

  private static String label(long version) {
    return version == 0 ? "" : Long.toString(version);
  }

  private Entry loading(String name, String version) {
    metrics.state(name, version, ModelState.LOADING);
    return new Entry(new ModelStatus(name, version, ModelState.LOADING, "loading"), null);
  }

  private static Entry notSelected(ModelRepository.ModelSource source, long version) {
    return new Entry(
        new ModelStatus(
            source.name(),
            Long.toString(version),
            ModelState.UNLOADED,
            "not served: version-policy "
                + source.config().versionPolicy()
                + " in model.yaml does not select it"),
        null);
  }

  private Entry failed(String name, String version, String reason) {
    return failed(name, version, reason, null);
  }

  private Entry failed(String name, String version, String reason, String fingerprint) {
    if (!version.isEmpty()) {
      metrics.state(name, version, ModelState.UNAVAILABLE);
    }
    return new Entry(
        new ModelStatus(name, version, ModelState.UNAVAILABLE, reason), null, fingerprint);
  }

  private Entry load(ModelRepository.ModelSource source, ModelRepository.Version v) {
    String name = source.name();
    String version = v.label();
    String fingerprint = ModelRepository.fingerprint(v.dir());
    metrics.state(name, version, ModelState.LOADING);
    long start = System.nanoTime();
    ModelContext context =
        new ModelContext(name, version, v.dir(), source.config(), executionProvider);
    try {
      integrity.verify(source.dir(), source.config(), version);
      EngineProvider provider = pickEngine(context);
      Engine engine = provider.load(context);
      if (engine instanceof TextGenerator generator) {
        long nanos = System.nanoTime() - start;
        metrics.loaded(name, version, nanos);
        metrics.state(name, version, ModelState.READY);
        LOG.info(
            String.format(
                "loaded model '%s' version %s (%s, %d ms, parallel %d)",
                name, version, provider.name(), nanos / 1_000_000, generator.parallel()));
        LoadedModel loaded =
            LoadedModel.ofGenerator(name, version, source.config(), generator, metrics);
        return new Entry(new ModelStatus(name, version, ModelState.READY, ""), loaded, fingerprint);
      }
      TensorPipeline pipeline = TensorPipeline.load(context, (TensorEngine) engine, stages);
      ModelSignature signature = pipeline.signature();
      try {
        source.config().checkLabels(signature.outputs());
      } catch (RuntimeException e) {
        pipeline.close();
        throw e;
      }
      BatchingConfig batching =
          signature.batchable()
              ? source.config().batching()
              : source.config().batching().unbatched();
      DynamicBatcher batcher =
          new DynamicBatcher(
              name, version, batching, source.config().instances(), pipeline, metrics);
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
      LoadedModel loaded = LoadedModel.ofTensors(name, version, source.config(), pipeline, batcher);
      batcher.onEngineFailure(e -> engineFailed(loaded, v.number(), fingerprint, e));
      return new Entry(new ModelStatus(name, version, ModelState.READY, ""), loaded, fingerprint);
    } catch (BerthException e) {
      LOG.log(
          Level.SEVERE,
          "model '" + name + "' version " + version + " not loaded: " + e.getMessage());
      return failed(name, version, e.getMessage(), fingerprint);
    } catch (RuntimeException | LinkageError e) {
      LOG.log(Level.SEVERE, "model '" + name + "' version " + version + " not loaded", e);
      return failed(name, version, "engine failed to load it: " + e, fingerprint);
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
                        + "; put one of "
                        + engines.stream().map(EngineProvider::files).toList()
                        + " there, or name the engine in model.yaml's 'engine' key"));
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
      throw new ModelNotFoundException(model, null, servedNames());
    }
    if (version == null) {
      for (Entry e : versions.descendingMap().values()) {
        if (e.loaded() != null) {
          return e.loaded();
        }
      }
      Map.Entry<Long, Entry> any = versions.lastEntry();
      throw new ModelNotReadyException(
          "model '"
              + model
              + "' has no ready version: "
              + (any == null ? "it has no version" : any.getValue().status().reason()));
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
      throw new ModelNotFoundException(model, null, servedNames());
    }
    return versions.values().stream().map(Entry::status).toList();
  }

  /**
   * The served models that cannot answer: every model but those unloaded on request that has no
   * ready version (it failed to load, its model.yaml is unusable, or it has no version), sorted.
   */
  public List<String> unreadyModels() {
    List<String> out = new ArrayList<>();
    models.forEach(
        (name, versions) -> {
          if (!unloadedOnRequest.contains(name)
              && versions.values().stream()
                  .noneMatch(e -> e.status().state() == ModelState.READY)) {
            out.add(name);
          }
        });
    out.sort(null);
    return out;
  }

  /**
   * Every model version and where it stands, sorted by name then version, and the model directories
   * of the repository that are not loaded (state UNLOADED, no version).
   */
  public List<ModelStatus> index() {
    Map<String, List<ModelStatus>> byName = new TreeMap<>();
    models.forEach(
        (name, versions) ->
            byName.put(name, versions.values().stream().map(Entry::status).toList()));
    if (scanned) {
      try {
        for (String name : repository.modelNames()) {
          byName.computeIfAbsent(
              name,
              n ->
                  List.of(
                      new ModelStatus(
                          n,
                          "",
                          ModelState.UNLOADED,
                          "in the repository, not loaded; load it with POST /v2/repository/models/"
                              + n
                              + "/load (berth models load "
                              + n
                              + ")")));
        }
      } catch (BerthException e) {
        LOG.warning("cannot list the repository: " + e.getMessage());
      }
    }
    List<ModelStatus> out = new ArrayList<>();
    byName.values().forEach(out::addAll);
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
    changes.lock();
    try {
      closed = true;
      for (LoadedModel model : loaded()) {
        model.close(drainTimeout);
        metrics.state(model.name(), model.version(), ModelState.UNLOADED);
      }
      models.clear();
    } finally {
      changes.unlock();
    }
  }

  @Override
  public void close() {
    close(Duration.ofSeconds(30));
  }
}
