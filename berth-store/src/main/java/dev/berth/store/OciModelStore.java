package dev.berth.store;

import dev.berth.api.BerthException;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelManifest;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.http.HttpRequest;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
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
      OciReference reference, String digest, int layers, long bytes, long uploaded) {}

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
    Path dir = modelDir.toAbsolutePath().normalize();
    if (!Files.isRegularFile(dir.resolve("model.yaml"))) {
      throw new BerthException(
          dir + " has no model.yaml; give a model directory (model.yaml and version folders)");
    }
    ModelConfig.load(dir); // a model that cannot be served is not worth pushing
    if (ref.tag() == null) {
      throw new BerthException("push to a tag, not a digest alone: " + ref + " names no tag");
    }
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
      String digest = registry.putManifest(ref.tag(), manifest, RegistryClient.OCI_MANIFEST);
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
      return new Pushed(ref, digest, layers.size(), total, uploaded);
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
    RegistryClient.Manifest manifest =
        registry
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
    return new Resolved(ref, registry, manifest, ModelArtifact.parse(ref, manifest));
  }

  /**
   * Pulls a model into a directory that does not exist yet (or is empty).
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
    Resolved resolved = resolve(ref);
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
      ModelManifest files = download(resolved, tree);
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
          ref.withDigest(resolved.digest()),
          resolved.digest(),
          dir,
          files.files().size(),
          bytes,
          resolved.annotations());
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
      for (Future<?> f : downloads) {
        get(f);
      }
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
    long[] shown = {t0};
    registry.fetchBlob(
        layer.digest(),
        layer.size(),
        got -> {
          long now = System.nanoTime();
          if (now - shown[0] > 2_000_000_000L && got < layer.size()) {
            shown[0] = now;
            progress.accept(
                String.format(Locale.ROOT, "  %s: %s of %s", what, size(got), size(layer.size())));
          }
        },
        in -> ModelArtifact.unpack(ref, layer, in, tree, hashes));
    progress.accept(
        String.format(
            Locale.ROOT,
            "  %s (%s): downloaded and verified in %.1f s",
            what,
            size(layer.size()),
            (System.nanoTime() - t0) / 1e9));
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
    if (!Files.exists(root)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(root)) {
      for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    } catch (IOException e) {
      // a leftover temporary directory is harmless
    }
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
