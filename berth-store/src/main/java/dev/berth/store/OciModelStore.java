package dev.berth.store;

import dev.berth.api.BerthException;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelManifest;
import dev.berth.runtime.ServiceSpec;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.http.HttpRequest;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * Pushes model directories to OCI registries as {@link ModelArtifact}s and pulls them back, several
 * layers at a time, with progress. A pull checks every layer's digest as it streams and the
 * unpacked files against the model's sha256 manifest before the directory appears, all at once: a
 * failed pull leaves nothing behind.
 */
public final class OciModelStore {
  private static final int PARALLEL = 4;

  private final DockerCredentials credentials;
  private final Consumer<String> progress;
  // one client (connections, token) per repository and access, reused by every poll
  private final Map<String, RegistryClient> clients =
      new java.util.concurrent.ConcurrentHashMap<>();

  /**
   * @param credentials where registry credentials come from
   * @param progress told one line at a time what is happening (layers, sizes, rates)
   */
  public OciModelStore(DockerCredentials credentials, Consumer<String> progress) {
    this.credentials = credentials;
    this.progress = progress;
  }

  /** What a push stored. */
  public record Pushed(
      OciReference reference,
      String digest,
      int layers,
      long bytes,
      long uploaded,
      long manifestSize) {}

  /** What a pull wrote. */
  public record Pulled(
      OciReference reference,
      String digest,
      Path dir,
      int files,
      long bytes,
      Map<String, String> annotations) {}

  /**
   * Pushes a model directory.
   *
   * @param name the model's name (annotation only: a model is named by where it is served)
   * @param engine the engine that serves it, or null when unknown
   */
  public Pushed push(Path modelDir, String name, String engine, OciReference ref) {
    if (ref.tag() == null) {
      throw new BerthException("push to a tag, not a digest alone: " + ref + " names no tag");
    }
    return pushModel(modelDir, name, engine, ref, ref.tag());
  }

  /**
   * Pushes every model of a repository directory (one folder a model) as one OCI image index of
   * artifact type {@value ModelArtifact#REPOSITORY_TYPE}: each model its own manifest, as {@link
   * #push} stores one, listed in the index under its name.
   *
   * @param engineOf the engine that serves a model directory of a name, or null when unknown
   */
  public Pushed pushRepository(
      Path repositoryDir,
      OciReference ref,
      java.util.function.BiFunction<Path, String, String> engineOf) {
    if (ref.tag() == null) {
      throw new BerthException("push to a tag, not a digest alone: " + ref + " names no tag");
    }
    Path dir = repositoryDir.toAbsolutePath().normalize();
    List<Path> models = ModelArtifact.modelDirs(dir);
    if (models.isEmpty()) {
      throw new BerthException(
          dir
              + " holds no model: give a model directory (model.yaml and version folders) or a"
              + " repository of them (one folder a model)");
    }
    List<ModelArtifact.Member> members = new ArrayList<>();
    long total = 0;
    long uploaded = 0;
    int layers = 0;
    for (Path model : models) {
      String name = model.getFileName().toString();
      Pushed one = pushModel(model, name, engineOf.apply(model, name), ref, null);
      members.add(new ModelArtifact.Member(name, one.digest(), one.manifestSize()));
      total += one.bytes();
      uploaded += one.uploaded();
      layers += one.layers();
    }
    byte[] index = ModelArtifact.index(members);
    String digest = client(ref, true).putManifest(ref.tag(), index, RegistryClient.OCI_INDEX);
    progress.accept(
        String.format(
            Locale.ROOT,
            "pushed %s@%s: %d models (%s)",
            ref,
            digest,
            members.size(),
            String.join(", ", members.stream().map(ModelArtifact.Member::name).toList())));
    return new Pushed(ref, digest, layers, total, uploaded, index.length);
  }

  /** Pushes one model; its manifest under {@code manifestRef}, or by its digest when null. */
  private Pushed pushModel(
      Path modelDir, String name, String engine, OciReference ref, String manifestRef) {
    Path dir = modelDir.toAbsolutePath().normalize();
    if (!Files.isDirectory(dir)) {
      throw new BerthException(
          dir + " is not a directory; give a model directory (model.yaml and version folders)");
    }
    ModelConfig.load(dir); // a model that cannot be served is not worth pushing
    List<String> parts = ModelArtifact.parts(dir);
    ModelManifest files = ModelManifest.of(dir);
    Path work = tempDir(null, "berth-push-");
    ExecutorService pool =
        Executors.newFixedThreadPool(PARALLEL, Thread.ofPlatform().daemon().factory());
    try {
      RegistryClient registry = client(ref, true);
      long start = System.nanoTime();
      List<Future<ModelArtifact.Layer>> packing = new ArrayList<>();
      for (int i = 0; i < parts.size(); i++) {
        String version = parts.get(i);
        Path tar = work.resolve("layer-" + i + ".tar");
        packing.add(pool.submit(() -> ModelArtifact.writeLayer(dir, version, tar)));
      }
      List<ModelArtifact.Layer> layers = new ArrayList<>();
      for (Future<ModelArtifact.Layer> f : packing) {
        layers.add(get(f));
      }
      long total = layers.stream().mapToLong(ModelArtifact.Layer::size).sum();
      progress.accept(
          String.format(
              Locale.ROOT,
              "pushing %s (%d layers, %s) to %s",
              dir,
              layers.size(),
              size(total),
              ref));
      List<Future<Long>> uploads = new ArrayList<>();
      for (ModelArtifact.Layer layer : layers) {
        uploads.add(pool.submit(() -> upload(registry, layer)));
      }
      long uploaded = 0;
      for (Future<Long> f : uploads) {
        uploaded += get(f);
      }
      Map<String, String> annotations = new LinkedHashMap<>();
      annotations.put(ModelArtifact.NAME, name);
      annotations.put(ModelArtifact.VERSIONS, String.join(",", parts.subList(1, parts.size())));
      if (engine != null) {
        annotations.put(ModelArtifact.ENGINE, engine);
      }
      annotations.put(ModelArtifact.FILES_MANIFEST, files.digest());
      annotations.put(
          ModelArtifact.SIGNED,
          Boolean.toString(Files.isRegularFile(dir.resolve(ModelManifest.SIGNATURE_FILE))));
      annotations.put(ModelArtifact.TITLE, name);
      byte[] config = ModelArtifact.config(layers, annotations);
      String configDigest = RegistryClient.sha256(config);
      if (!registry.hasBlob(configDigest)) {
        registry.pushBlob(
            configDigest, config.length, () -> HttpRequest.BodyPublishers.ofByteArray(config));
      }
      byte[] manifest = ModelArtifact.manifest(config, layers, annotations);
      String digest =
          registry.putManifest(
              manifestRef != null ? manifestRef : RegistryClient.sha256(manifest),
              manifest,
              RegistryClient.OCI_MANIFEST);
      double seconds = (System.nanoTime() - start) / 1e9;
      progress.accept(
          String.format(
              Locale.ROOT,
              "pushed %s@%s: %s uploaded, %s already there, in %.1f s",
              ref,
              digest,
              size(uploaded),
              size(total - uploaded),
              seconds));
      return new Pushed(ref, digest, layers.size(), total, uploaded, manifest.length);
    } finally {
      pool.shutdownNow();
      deleteTree(work);
    }
  }

  private long upload(RegistryClient registry, ModelArtifact.Layer layer) {
    String what = layer.version() == null ? "the model's own files" : "version " + layer.version();
    if (registry.hasBlob(layer.digest())) {
      progress.accept(
          String.format(
              Locale.ROOT, "  %s (%s): already in the registry", what, size(layer.size())));
      return 0;
    }
    long start = System.nanoTime();
    registry.pushBlob(
        layer.digest(),
        layer.size(),
        () -> {
          try {
            return HttpRequest.BodyPublishers.ofFile(layer.file());
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
        });
    progress.accept(
        String.format(
            Locale.ROOT,
            "  %s (%s): uploaded in %.1f s",
            what,
            size(layer.size()),
            (System.nanoTime() - start) / 1e9));
    return layer.size();
  }

  /** A model's manifest as the registry holds it now, checked to be a Berth model. */
  public record Resolved(
      OciReference reference,
      RegistryClient registry,
      RegistryClient.Manifest manifest,
      ModelArtifact.Parsed parsed) {
    /** The manifest's digest: what the model cache keys it by. */
    public String digest() {
      return manifest.digest();
    }

    /** The manifest's annotations (name, versions, engine, ...). */
    public Map<String, String> annotations() {
      return parsed.annotations();
    }

    long size() {
      return parsed.layers().stream().mapToLong(ModelArtifact.Descriptor::size).sum();
    }
  }

  /**
   * Reads a reference's manifest: one small request, to learn whether a tag moved before pulling.
   *
   * @throws BerthException when it does not exist or is not a Berth model
   */
  public Resolved resolve(OciReference ref) {
    RegistryClient registry = client(ref, false);
    RegistryClient.Manifest manifest = manifestOf(registry, ref);
    return new Resolved(ref, registry, manifest, ModelArtifact.parse(ref, manifest));
  }

  /**
   * The model a reference names, or empty when the registry has no such tag or digest (a model not
   * pushed yet).
   *
   * @throws BerthException when the registry cannot be asked, or the reference is not one Berth
   *     model
   */
  public java.util.Optional<Resolved> find(OciReference ref) {
    RegistryClient registry = client(ref, false);
    return registry
        .manifest(ref.manifestReference())
        .map(m -> new Resolved(ref, registry, m, ModelArtifact.parse(ref, m)));
  }

  /** The manifest at a reference, or a refusal naming what the registry lacks. */
  private static RegistryClient.Manifest manifestOf(RegistryClient registry, OciReference ref) {
    return registry
        .manifest(ref.manifestReference())
        .orElseThrow(
            () ->
                new BerthException(
                    ref
                        + " does not exist: the registry has no "
                        + (ref.digest() != null
                            ? "manifest " + ref.digest()
                            : "tag '" + ref.tag() + "'")
                        + " in "
                        + ref.repository()));
  }

  /**
   * The models of a repository index, or empty when the reference is one model's manifest: one
   * request either way.
   */
  public java.util.Optional<List<ModelArtifact.Member>> indexMembers(OciReference ref) {
    return java.util.Optional.ofNullable(
        ModelArtifact.members(ref, manifestOf(client(ref, false), ref)));
  }

  /** Whether a reference names a repository index rather than one model. */
  public boolean isIndex(OciReference ref) {
    return indexMembers(ref).isPresent();
  }

  /**
   * The models a reference holds: the members of a repository index, or the one model its manifest
   * is (named by the last part of the repository path), each with its manifest's digest.
   */
  public List<ModelArtifact.Member> members(OciReference ref) {
    RegistryClient registry = client(ref, false);
    RegistryClient.Manifest manifest = manifestOf(registry, ref);
    List<ModelArtifact.Member> members = ModelArtifact.members(ref, manifest);
    if (members != null) {
      return members;
    }
    ModelArtifact.parse(ref, manifest); // a Berth model, or a clear refusal
    return List.of(
        new ModelArtifact.Member(
            ref.repository().substring(ref.repository().lastIndexOf('/') + 1),
            manifest.digest(),
            manifest.bytes().length));
  }

  /**
   * Pulls a model into a directory that does not exist yet (or is empty); a repository index
   * becomes a repository directory, one folder a model.
   *
   * @throws BerthException naming the reference and what failed: not found, not a model, a layer
   *     that does not match its digest, files that do not match the model's manifest
   */
  public Pulled pull(OciReference ref, Path target) {
    Path dir = target.toAbsolutePath().normalize();
    if (Files.exists(dir) && !isEmptyDirectory(dir)) {
      throw new BerthException(
          dir + " exists and is not empty; pull into a new directory (berth pull " + ref + " DIR)");
    }
    RegistryClient registry = client(ref, false);
    RegistryClient.Manifest top = manifestOf(registry, ref);
    List<ModelArtifact.Member> members = ModelArtifact.members(ref, top);
    Path parent = dir.getParent();
    try {
      Files.createDirectories(parent);
    } catch (IOException e) {
      throw new BerthException("cannot create " + parent + ": " + e.getMessage(), e);
    }
    Path work = tempDir(parent, ".berth-pull-");
    try {
      long start = System.nanoTime();
      Path tree = work.resolve("model");
      Files.createDirectories(tree);
      Map<String, String> annotations;
      ModelManifest files;
      if (members == null) {
        Resolved resolved = new Resolved(ref, registry, top, ModelArtifact.parse(ref, top));
        files = download(resolved, tree);
        annotations = resolved.annotations();
      } else {
        Map<String, String> all = new java.util.TreeMap<>();
        for (ModelArtifact.Member m : members) {
          Path model = Files.createDirectories(tree.resolve(m.name()));
          download(resolve(ref.withDigest(m.digest())), model)
              .files()
              .forEach((f, sha) -> all.put(m.name() + "/" + f, sha));
        }
        files = new ModelManifest(all);
        annotations =
            Map.of(
                "dev.berth.repository.models",
                String.join(",", members.stream().map(ModelArtifact.Member::name).toList()));
      }
      if (isEmptyDirectory(dir)) {
        Files.delete(dir);
      }
      try {
        Files.move(tree, dir, StandardCopyOption.ATOMIC_MOVE);
      } catch (AtomicMoveNotSupportedException | FileAlreadyExistsException e) {
        throw new BerthException(
            "cannot move the pulled model into " + dir + " (" + e.getMessage() + ")", e);
      }
      long bytes = 0;
      for (String f : files.files().keySet()) {
        bytes += Files.size(dir.resolve(f));
      }
      progress.accept(
          String.format(
              Locale.ROOT,
              "pulled %s into %s: %d files, %s in %.1f s",
              ref,
              dir,
              files.files().size(),
              size(bytes),
              (System.nanoTime() - start) / 1e9));
      return new Pulled(
          ref.withDigest(top.digest()),
          top.digest(),
          dir,
          files.files().size(),
          bytes,
          annotations);
    } catch (IOException e) {
      throw new BerthException(
          "cannot write the pulled model into " + dir + ": " + e.getMessage(), e);
    } finally {
      deleteTree(work);
    }
  }

  /**
   * Downloads a resolved model into an empty directory: its layers several at a time, each checked
   * against its digest as it streams, unpacked in order, and the files checked against the manifest
   * the model was pushed with.
   *
   * @return the sha256 of every file written
   */
  public ModelManifest download(Resolved resolved, Path tree) {
    OciReference ref = resolved.reference();
    List<ModelArtifact.Descriptor> layers = resolved.parsed().layers();
    progress.accept(
        String.format(
            Locale.ROOT,
            "pulling %s@%s (%d layers, %s)",
            ref,
            resolved.digest(),
            layers.size(),
            size(resolved.size())));
    ExecutorService pool =
        Executors.newFixedThreadPool(PARALLEL, Thread.ofPlatform().daemon().factory());
    try {
      // each layer streams from the registry through its digest check into its own part of the
      // tree (the parts are disjoint), each file hashed as it is written: one pass over the bytes
      Map<String, String> hashes = new java.util.concurrent.ConcurrentHashMap<>();
      List<Future<?>> downloads = new ArrayList<>();
      for (ModelArtifact.Descriptor layer : layers) {
        downloads.add(pool.submit(() -> fetch(resolved.registry(), ref, layer, tree, hashes)));
      }
      awaitAll(downloads);
      hashes.remove(ModelManifest.SIGNATURE_FILE); // never part of the manifest it signs
      ModelManifest files = new ModelManifest(hashes);
      String expected = resolved.annotations().get(ModelArtifact.FILES_MANIFEST);
      if (expected != null && !expected.equals(files.digest())) {
        throw new BerthException(
            ref
                + "'s files do not match the manifest it was pushed with ("
                + expected
                + ", unpacked "
                + files.digest()
                + "); push the model again");
      }
      return files;
    } finally {
      pool.shutdownNow();
    }
  }

  private void fetch(
      RegistryClient registry,
      OciReference ref,
      ModelArtifact.Descriptor layer,
      Path tree,
      Map<String, String> hashes) {
    String what = layer.version() == null ? "the model's own files" : "version " + layer.version();
    long t0 = System.nanoTime();
    registry.fetchBlob(
        layer.digest(),
        layer.size(),
        new Progress(what, layer.size(), progress),
        in -> ModelArtifact.unpack(ref, layer, in, tree, hashes));
    progress.accept(
        String.format(
            Locale.ROOT,
            "  %s (%s): downloaded and verified in %.1f s",
            what,
            size(layer.size()),
            (System.nanoTime() - t0) / 1e9));
  }

  /**
   * Waits for every task, then throws the first failure: the caller deletes what the tasks wrote,
   * which it can only do once none is still writing.
   */
  static void awaitAll(List<? extends Future<?>> tasks) {
    RuntimeException first = null;
    for (Future<?> f : tasks) {
      try {
        get(f);
      } catch (RuntimeException e) {
        if (first == null) {
          first = e;
        }
      }
    }
    if (first != null) {
      throw first;
    }
  }

  private RegistryClient client(OciReference ref, boolean push) {
    return clients.computeIfAbsent(
        ref.registry() + "/" + ref.repository() + (push ? " push" : " pull"),
        k -> new RegistryClient(ref, push, credentials));
  }

  private static <T> T get(Future<T> f) {
    try {
      return f.get();
    } catch (ExecutionException e) {
      Throwable cause = e.getCause();
      if (cause instanceof RuntimeException r) {
        throw r;
      }
      throw new BerthException(String.valueOf(cause.getMessage()), cause);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new BerthException("interrupted", e);
    }
  }

  private static boolean isEmptyDirectory(Path dir) {
    if (!Files.isDirectory(dir)) {
      return false;
    }
    try (Stream<Path> s = Files.list(dir)) {
      return s.findAny().isEmpty();
    } catch (IOException e) {
      return false;
    }
  }

  private static Path tempDir(Path parent, String prefix) {
    try {
      return parent == null
          ? Files.createTempDirectory(prefix)
          : Files.createTempDirectory(parent, prefix);
    } catch (IOException e) {
      throw new BerthException(
          "cannot create a working directory"
              + (parent == null ? "" : " in " + parent)
              + ": "
              + e.getMessage(),
          e);
    }
  }

  static void deleteTree(Path root) {
    ServiceSpec.deleteTree(root);
  }

  static String size(long bytes) {
    if (bytes < 1024 * 1024) {
      return String.format(Locale.ROOT, "%.1f kB", bytes / 1024.0);
    }
    if (bytes < 1024L * 1024 * 1024) {
      return String.format(Locale.ROOT, "%.1f MB", bytes / 1024.0 / 1024);
    }
    return String.format(Locale.ROOT, "%.2f GB", bytes / 1024.0 / 1024 / 1024);
  }
}
