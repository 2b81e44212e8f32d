package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.ModelStatus;
import dev.berth.runtime.ServeSettings;
import dev.berth.runtime.ServiceSpec;
import dev.berth.store.DockerCredentials;
import dev.berth.store.HttpModel;
import dev.berth.store.ModelCache;
import dev.berth.store.ModelSource;
import dev.berth.store.OciModelStore;
import dev.berth.store.OciReference;
import dev.berth.store.RemoteModels;
import dev.berth.store.S3Models;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * {@code berth serve oci://...}, {@code s3://...} and {@code https://...}: the models pulled into
 * the model cache and served from a repository of links to it, refreshed on each repository poll.
 * Its own class, so that serving a directory never loads the model store's classes (an image may
 * not carry them).
 */
final class RemoteSource implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger("berth.serve");

  private final String argument;
  // the argument as logs show it: a presigned URL's signature stays out
  private final String shown;
  private final ServeSettings settings;
  private final ModelCache cache;
  private final RemoteModels models;
  private final Path repository;
  // the name a service file serves the source's one model under, or null for the source's own
  private final String rename;
  private volatile boolean connected;
  // whether the source lists its models (an S3 prefix, a repository index): they may come and go
  private volatile boolean listing;
  private AutoCloseable client;
  private OciModelStore store;
  private ScheduledExecutorService poller;

  private RemoteSource(
      String argument,
      ServeSettings settings,
      ModelCache cache,
      RemoteModels models,
      Path repository,
      String rename) {
    this.argument = argument;
    this.rename = rename;
    this.shown =
        HttpModel.isHttp(argument) ? HttpModel.redact(java.net.URI.create(argument)) : argument;
    this.settings = settings;
    this.cache = cache;
    this.models = models;
    this.repository = repository;
  }

  /** The model cache the settings name (--model-cache, --model-cache-size). */
  static ModelCache cache(ServeSettings settings) {
    Path cacheDir = settings.path(ServeSettings.MODEL_CACHE);
    return new ModelCache(
        cacheDir != null ? cacheDir : ModelCache.defaultRoot(),
        settings.size(ServeSettings.MODEL_CACHE_SIZE));
  }

  /**
   * Links the source's models into a repository of their own: at once from the cache when it holds
   * what the source served last (the source is then asked in the background, by {@link #start}),
   * else pulled now.
   *
   * @throws BerthException naming the source and what failed
   */
  static RemoteSource open(String argument, ServeSettings settings) {
    Path repository;
    try {
      repository = Files.createTempDirectory("berth-serve-remote-");
    } catch (IOException e) {
      throw new BerthException("cannot create a repository directory: " + e.getMessage(), e);
    }
    Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteLinks(repository)));
    return open(argument, settings, cache(settings), repository, null, Map.of());
  }

  /**
   * Links one service file model's source into a repository shared with the service's other models.
   *
   * @param name the name to serve it under, or null for the source's own; the source must then hold
   *     one model
   * @param overrides model.yaml keys the service sets over the model's own
   */
  static RemoteSource open(
      String argument,
      ServeSettings settings,
      ModelCache cache,
      Path repository,
      String name,
      Map<String, Object> overrides) {
    RemoteModels models = new RemoteModels(cache, repository);
    models.setOverrides(overrides);
    RemoteSource source = new RemoteSource(argument, settings, cache, models, repository, name);
    // what a service file's entry served is remembered under its name too: the same source served
    // under another name (or on its own) is another record
    String record = name == null ? argument : argument + " as " + name;
    Map<String, String> remembered = cache.remembered(record);
    if (!remembered.isEmpty() && (name == null || remembered.keySet().equals(Set.of(name)))) {
      try {
        models.serveCached(remembered);
        LOG.info(
            "serving "
                + source.shown
                + " from the model cache "
                + cache.root()
                + " as it was last pulled ("
                + remembered
                + "); asking the source for changes in the background");
        return source;
      } catch (BerthException e) {
        LOG.info("the model cache no longer holds what " + source.shown + " served; pulling it");
      }
    }
    source.connect();
    models.refresh(true);
    cache.remember(record, models.digests());
    LOG.info(
        "serving "
            + source.shown
            + " as "
            + models.digests().keySet()
            + " from the model cache "
            + cache.root());
    return source;
  }

  /**
   * Brings the service file's remote models into its staged repository: those mounted
   * (--model-mount) linked from their mounts, the rest fetched from their sources into the model
   * cache.
   */
  static List<RemoteSource> openService(
      ServiceSpec service, ServeSettings settings, Path repo, Map<String, Path> mounts) {
    List<RemoteSource> out = new ArrayList<>();
    ModelCache cache = null; // made once, and only when something is fetched
    try {
      for (ServiceSpec.RemoteModel model : service.remoteModels()) {
        Path mount = mounts.get(model.name());
        if (mount != null) {
          LOG.info(
              "model '" + model.name() + "': serving " + model.shown() + " as mounted at " + mount);
          try {
            RemoteModels.link(repo, model.name(), mount, model.overrides());
          } catch (IOException e) {
            throw new BerthException(
                "cannot link model '" + model.name() + "' into " + repo + ": " + e.getMessage(), e);
          }
          continue;
        }
        if (cache == null) {
          cache = cache(settings);
        }
        out.add(open(model.source(), settings, cache, repo, model.name(), model.overrides()));
      }
    } catch (RuntimeException e) {
      out.forEach(RemoteSource::close);
      throw e;
    }
    return out;
  }

  /** Finds the source's models (for S3, by listing): where refresh asks from now on. */
  private synchronized void connect() {
    if (!connected) {
      models.setSources(named(discover()));
      connected = true;
    }
  }

  /** The sources under the service file's name for them, when it gives one. */
  private List<ModelSource> named(List<ModelSource> sources) {
    if (rename == null) {
      return sources;
    }
    if (sources.size() != 1) {
      throw new BerthException(
          shown
              + " holds "
              + sources.size()
              + " models ("
              + sources.stream().map(ModelSource::name).toList()
              + "), where the service file's entry for model '"
              + rename
              + "' needs one; list each as its own entry (a path under the prefix, a tag per"
              + " model)");
    }
    return List.of(ModelSource.renamed(sources.get(0), rename));
  }

  /**
   * The source's models as they are now: for an S3 prefix or a repository index, what it lists
   * (models come and go); otherwise the one model.
   */
  private synchronized List<ModelSource> discover() {
    if (argument.startsWith(S3Models.SCHEME)) {
      if (client == null) { // made once: a failed listing is tried again with the same client
        client = S3Models.connect(settings.text(ServeSettings.S3_ENDPOINT), LOG::info);
      }
      listing = true;
      return ((S3Models) client).sources(S3Models.Location.parse(argument));
    }
    if (HttpModel.isHttp(argument)) {
      return List.of(HttpModel.parse(argument, LOG::info));
    }
    if (store == null) {
      store = new OciModelStore(DockerCredentials.fromEnvironment(), LOG::info);
    }
    OciReference ref = OciReference.parse(argument);
    var index = store.indexMembers(ref);
    listing = index.isPresent();
    return ModelSource.ociAll(ref, store, index);
  }

  /** Why a model's source could not be refreshed, by model; empty when all were. */
  Map<String, String> problems() {
    return models.problems();
  }

  /** The repository to serve: links into the model cache. */
  Path repository() {
    return repository;
  }

  /**
   * Brings the models up to date in the background: once now when they were served from the cache
   * without asking the source, and every {@code interval} when one is given (null: never again). A
   * model whose content changed reloads; a source that cannot be refreshed keeps its model serving
   * and tells the index why.
   */
  synchronized void start(InferenceService inference, Duration interval) {
    poller =
        Executors.newSingleThreadScheduledExecutor(
            r -> Thread.ofPlatform().name("berth-source-poll").daemon().unstarted(r));
    if (!connected) {
      poller.execute(() -> refresh(inference));
    }
    if (interval != null) {
      long millis = Math.max(1, interval.toMillis());
      poller.scheduleWithFixedDelay(
          () -> refresh(inference), millis, millis, TimeUnit.MILLISECONDS);
    }
  }

  private void refresh(InferenceService inference) {
    boolean first = !connected;
    try {
      connect();
    } catch (RuntimeException e) {
      models.problem(e.getMessage());
      LOG.warning("serving what the model cache holds; " + e.getMessage());
      return;
    }
    try {
      if (!first && listing) {
        // an S3 prefix or a repository index: models may have come or gone since
        for (String name : models.setSources(named(discover()))) {
          LOG.info("model '" + name + "' is no longer in " + shown + "; unloading it");
          inference.unloadModel(name);
        }
      }
      for (String name : models.refresh(false)) {
        LOG.info(
            "model '"
                + name
                + "': its source now holds "
                + models.digest(name).orElse("?")
                + "; reloading it");
        for (ModelStatus s : inference.loadModel(name)) {
          if (!s.reason().isEmpty()) {
            LOG.warning("model '" + name + "' version " + s.version() + ": " + s.reason());
          }
        }
      }
      cache.remember(rename == null ? argument : argument + " as " + rename, models.digests());
    } catch (RuntimeException e) {
      LOG.log(Level.WARNING, "refreshing the served models failed; trying again", e);
    }
  }

  private static void deleteLinks(Path repository) {
    try (var s = Files.list(repository)) {
      for (Path p : s.toList()) {
        Files.deleteIfExists(p); // links: what they point at stays in the cache
      }
      Files.deleteIfExists(repository);
    } catch (IOException e) {
      // a leftover directory of links in the temporary directory is harmless
    }
  }

  @Override
  public void close() {
    ScheduledExecutorService p;
    synchronized (this) {
      p = poller;
    }
    if (p != null) {
      p.shutdownNow();
    }
    models.close();
    if (client != null) {
      try {
        client.close();
      } catch (Exception e) {
        // closing an idle client
      }
    }
  }
}
