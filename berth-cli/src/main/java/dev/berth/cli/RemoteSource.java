package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.ModelStatus;
import dev.berth.runtime.ServeSettings;
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
import java.util.List;
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

  private final RemoteModels models;
  private final Path repository;
  private final AutoCloseable client;
  private ScheduledExecutorService poller;

  private RemoteSource(RemoteModels models, Path repository, AutoCloseable client) {
    this.models = models;
    this.repository = repository;
    this.client = client;
  }

  /**
   * Pulls the source (or finds it in the cache) and links it into a repository of its own.
   *
   * @throws BerthException naming the source and what failed
   */
  static RemoteSource open(String argument, ServeSettings settings) {
    Path cacheDir = settings.path(ServeSettings.MODEL_CACHE);
    ModelCache cache =
        new ModelCache(
            cacheDir != null ? cacheDir : ModelCache.defaultRoot(),
            settings.size(ServeSettings.MODEL_CACHE_SIZE));
    Path repository;
    try {
      repository = Files.createTempDirectory("berth-serve-remote-");
    } catch (IOException e) {
      throw new BerthException("cannot create a repository directory: " + e.getMessage(), e);
    }
    Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteLinks(repository)));
    List<ModelSource> sources;
    AutoCloseable client = null;
    if (argument.startsWith(S3Models.SCHEME)) {
      S3Models s3 = S3Models.connect(settings.text(ServeSettings.S3_ENDPOINT), LOG::info);
      client = s3;
      sources = s3.sources(S3Models.Location.parse(argument));
    } else if (HttpModel.isHttp(argument)) {
      sources = List.of(HttpModel.parse(argument, LOG::info));
    } else {
      OciReference ref = OciReference.parse(argument);
      sources =
          List.of(
              ModelSource.oci(
                  ref, new OciModelStore(DockerCredentials.fromEnvironment(), LOG::info)));
    }
    RemoteModels models = new RemoteModels(sources, cache, repository);
    models.refresh(true);
    for (ModelSource s : sources) {
      LOG.info(
          "serving "
              + s.location()
              + " as model '"
              + s.name()
              + "' from the model cache "
              + cache.root());
    }
    return new RemoteSource(models, repository, client);
  }

  /** The repository to serve: links into the model cache. */
  Path repository() {
    return repository;
  }

  /**
   * Asks the registry every {@code interval} whether the source moved, and reloads a model whose
   * content changed; a source that cannot be refreshed keeps its model serving and tells the index
   * why.
   */
  synchronized void watch(InferenceService inference, Duration interval) {
    inference.sourceProblems(models::problems);
    poller =
        Executors.newSingleThreadScheduledExecutor(
            r -> Thread.ofPlatform().name("berth-source-poll").daemon().unstarted(r));
    long millis = Math.max(1, interval.toMillis());
    poller.scheduleWithFixedDelay(
        () -> {
          try {
            for (String name : models.refresh(false)) {
              LOG.info(
                  "model '"
                      + name
                      + "': its source moved to "
                      + models.digest(name).orElse("?")
                      + "; reloading it");
              for (ModelStatus s : inference.loadModel(name)) {
                if (!s.reason().isEmpty()) {
                  LOG.warning("model '" + name + "' version " + s.version() + ": " + s.reason());
                }
              }
            }
          } catch (RuntimeException e) {
            LOG.log(Level.WARNING, "refreshing the served models failed; trying again", e);
          }
        },
        millis,
        millis,
        TimeUnit.MILLISECONDS);
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
  public synchronized void close() {
    if (poller != null) {
      poller.shutdownNow();
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
