package dev.berth.store;

import dev.berth.api.BerthException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.logging.Logger;

/**
 * Models served from registries and object stores: a local model repository whose entries are links
 * into the {@link ModelCache}, one per {@link ModelSource}. {@link #refresh} asks each source what
 * it holds now and, when that changed (a moved tag, a new object), pulls the new content (or finds
 * it cached) and switches the link in one rename; a source that cannot be fetched or does not
 * verify leaves the model it served in place and says why in {@link #problems()}.
 */
public final class RemoteModels implements AutoCloseable {
  private static final Logger LOG = Logger.getLogger(RemoteModels.class.getName());

  private final Map<String, ModelSource> sources = new LinkedHashMap<>();
  private final Map<String, ModelCache.Entry> serving = new LinkedHashMap<>();
  private final Map<String, String> problems = new java.util.concurrent.ConcurrentHashMap<>();
  private final ModelCache cache;
  private final Path repository;
  // model.yaml keys a service file sets over each model's own; empty: the models are linked as is
  private volatile Map<String, Object> overrides = Map.of();

  /**
   * @param models the sources, each serving one model under its name
   * @param repository an empty directory to hold the links: the repository to serve
   */
  public RemoteModels(List<ModelSource> models, ModelCache cache, Path repository) {
    this(cache, repository);
    setSources(models);
  }

  /**
   * Without sources yet: {@link #serveCached} serves what the cache holds until {@link #setSources}
   * says where the models come from.
   */
  public RemoteModels(ModelCache cache, Path repository) {
    this.cache = cache;
    this.repository = repository;
  }

  /**
   * Serves every model with these model.yaml keys set over its own ({@code instances}, {@code
   * batching} of a service file's entry): each model is then a directory of its own in the
   * repository, holding the merged model.yaml and links to the cached version folders.
   */
  public void setOverrides(Map<String, Object> overrides) {
    this.overrides = Map.copyOf(overrides);
  }

  /**
   * Where the models come from, each under its name. A model served before whose source is gone (a
   * folder removed from an S3 prefix, a model dropped from a repository index) is unlinked.
   *
   * @return the models unlinked
   */
  public synchronized List<String> setSources(List<ModelSource> models) {
    Map<String, ModelSource> byName = new LinkedHashMap<>();
    for (ModelSource source : models) {
      ModelSource other = byName.putIfAbsent(source.name(), source);
      if (other != null) {
        throw new BerthException(
            other.location()
                + " and "
                + source.location()
                + " would both serve as model '"
                + source.name()
                + "'; serve them separately");
      }
    }
    sources.clear();
    sources.putAll(byName);
    List<String> gone = new ArrayList<>();
    for (String name : new ArrayList<>(serving.keySet())) {
      if (!byName.containsKey(name)) {
        try {
          Files.deleteIfExists(repository.resolve(name));
        } catch (IOException e) {
          LOG.warning(
              "cannot unlink model '" + name + "' from " + repository + ": " + e.getMessage());
          continue;
        }
        serving.remove(name).close();
        problems.remove(name);
        gone.add(name);
      }
    }
    return gone;
  }

  /**
   * Serves what the cache holds for each model, without asking any source: a restart serves at once
   * what it served before, and {@link #refresh} then brings it up to date.
   *
   * @param digests by model name; each must be in the cache
   */
  public synchronized void serveCached(Map<String, String> digests) {
    for (Map.Entry<String, String> d : digests.entrySet()) {
      ModelCache.Entry entry =
          cache.open(
              d.getValue(),
              tree -> {
                throw new BerthException(d.getValue() + " left the model cache");
              });
      link(d.getKey(), entry);
    }
  }

  /** What each model serves now, by name: the digests to remember for the next start. */
  public synchronized Map<String, String> digests() {
    Map<String, String> out = new LinkedHashMap<>();
    serving.forEach((name, e) -> out.put(name, "sha256:" + e.dir().getFileName()));
    return out;
  }

  /** Records why every model could not be refreshed (its sources could not even be reached). */
  public void problem(String why) {
    for (String name : digests().keySet()) {
      problems.put(name, why);
    }
  }

  /** The local repository to serve. */
  public Path repository() {
    return repository;
  }

  /** Where each model comes from. */
  public Map<String, ModelSource> sources() {
    return java.util.Collections.unmodifiableMap(sources);
  }

  /** Why a model's source could not be refreshed, by model; empty when all were. */
  public Map<String, String> problems() {
    return java.util.Collections.unmodifiableMap(problems);
  }

  /**
   * Pulls every source whose tag moved since the last call (all of them the first time).
   *
   * @param failFast throw on the first source that cannot be fetched (at start: nothing would be
   *     served) rather than keep what is served and record the problem
   * @return the models whose content changed
   */
  public synchronized List<String> refresh(boolean failFast) {
    List<String> changed = new ArrayList<>();
    for (Map.Entry<String, ModelSource> s : sources.entrySet()) {
      String name = s.getKey();
      try {
        if (refresh(name, s.getValue())) {
          changed.add(name);
        }
        problems.remove(name);
      } catch (BerthException e) {
        if (failFast) {
          throw e;
        }
        String previous = problems.put(name, e.getMessage());
        if (!e.getMessage().equals(previous)) {
          LOG.warning(
              "model '"
                  + name
                  + "' keeps serving what it served: "
                  + s.getValue().location()
                  + " could not be refreshed: "
                  + e.getMessage());
        }
      }
    }
    return changed;
  }

  private boolean refresh(String name, ModelSource source) {
    ModelSource.Version version = source.resolve();
    ModelCache.Entry current = serving.get(name);
    String digest = version.digest();
    if (current != null && current.dir().getFileName().toString().equals(digest.substring(7))) {
      return false;
    }
    ModelCache.Entry entry = cache.open(digest, tree -> source.download(version, tree));
    if (!entry.filled()) {
      LOG.info(
          "model '" + name + "': " + source.location() + " (" + digest + ") is in the model cache");
    }
    link(name, entry);
    return true;
  }

  /** Points a model's link at a cache entry in one rename, releasing the entry it served. */
  private void link(String name, ModelCache.Entry entry) {
    try {
      link(repository, name, entry.dir(), overrides);
    } catch (IOException | RuntimeException e) {
      entry.close();
      throw new BerthException(
          "cannot link model '" + name + "' into " + repository + ": " + e.getMessage(), e);
    }
    ModelCache.Entry current = serving.put(name, entry);
    if (current != null) {
      current.close(); // the engine read its files at load; the old entry may now be evicted
    }
  }

  /**
   * Makes {@code repository/name} serve the model directory {@code dir}, switched in one rename: a
   * link to it, or with {@code overrides}, a directory of its own holding the merged model.yaml and
   * links to everything else of {@code dir}. The directory it served before is removed.
   *
   * @throws IOException when the repository cannot be written
   * @throws dev.berth.api.ConfigException when the model's model.yaml with the overrides is not
   *     valid
   */
  public static void link(Path repository, String name, Path dir, Map<String, Object> overrides)
      throws IOException {
    Path link = repository.resolve(name);
    Path target = dir;
    Path single = singleModelFile(dir);
    if (single != null) {
      // one model file, as KServe's storage initializer leaves an https:// storageUri: served as
      // version 1, named so that its engine recognises it
      target = repository.resolve("." + name + "." + Long.toHexString(System.nanoTime()));
      Path version = Files.createDirectories(target.resolve("1"));
      String fileName = single.getFileName().toString();
      String extension = fileName.substring(fileName.lastIndexOf('.') + 1).toLowerCase(Locale.ROOT);
      Files.createSymbolicLink(version.resolve("model." + extension), single.toAbsolutePath());
      dev.berth.runtime.ServiceSpec.writeYaml(
          target.resolve(dev.berth.runtime.ModelConfig.FILE_NAME),
          dev.berth.runtime.ServiceSpec.modelYamlWith(target, overrides));
    } else if (!overrides.isEmpty()) {
      Map<String, Object> yaml = dev.berth.runtime.ServiceSpec.modelYamlWith(dir, overrides);
      target = repository.resolve("." + name + "." + Long.toHexString(System.nanoTime()));
      Files.createDirectory(target);
      dev.berth.runtime.ServiceSpec.writeYaml(
          target.resolve(dev.berth.runtime.ModelConfig.FILE_NAME), yaml);
      try (var children = Files.list(dir)) {
        for (Path child : children.toList()) {
          String file = child.getFileName().toString();
          // the merged model.yaml replaces the model's own, which its signature no longer covers
          if (!file.equals(dev.berth.runtime.ModelConfig.FILE_NAME)
              && !file.equals(dev.berth.runtime.ModelManifest.SIGNATURE_FILE)) {
            Files.createSymbolicLink(target.resolve(file), child.toAbsolutePath());
          }
        }
      }
    }
    Path before = Files.isSymbolicLink(link) ? Files.readSymbolicLink(link) : null;
    Path next = repository.resolve("." + name + ".next");
    Files.deleteIfExists(next);
    Files.createSymbolicLink(next, target);
    Files.move(next, link, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    if (before != null
        && !before.equals(target)
        && before.getParent() != null
        && before.getParent().equals(repository)) {
      dev.berth.runtime.ServiceSpec.deleteTree(before); // an earlier overlay of this model
    }
  }

  /**
   * The model file a directory holds when it holds nothing else (no model.yaml, no version
   * folders): one file ending in a model file's extension; else null.
   */
  static Path singleModelFile(Path dir) throws IOException {
    try (var children = Files.list(dir)) {
      List<Path> all = children.filter(p -> !p.getFileName().toString().startsWith(".")).toList();
      if (all.size() != 1 || !Files.isRegularFile(all.get(0))) {
        return null;
      }
      String fileName = all.get(0).getFileName().toString();
      String extension = fileName.substring(fileName.lastIndexOf('.') + 1).toLowerCase(Locale.ROOT);
      return fileName.contains(".")
              && !fileName.equals(dev.berth.runtime.ModelConfig.FILE_NAME)
              && dev.berth.runtime.ServiceSpec.RemoteModel.FILE_EXTENSIONS.contains(extension)
          ? all.get(0)
          : null;
    }
  }

  /** The digest a model serves now, if any. */
  public Optional<String> digest(String name) {
    ModelCache.Entry e = serving.get(name);
    return e == null ? Optional.empty() : Optional.of("sha256:" + e.dir().getFileName());
  }

  @Override
  public synchronized void close() {
    serving.values().forEach(ModelCache.Entry::close);
    serving.clear();
  }
}
