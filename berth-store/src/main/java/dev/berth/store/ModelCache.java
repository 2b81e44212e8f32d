package dev.berth.store;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.berth.api.BerthException;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;
import java.util.logging.Logger;
import java.util.stream.Stream;

/**
 * Pulled models on local disk, keyed by the digest of what was pulled (an OCI manifest's digest, or
 * the digest of an object store listing: every key with its size and ETag), so that a restart or a
 * second server on the same cache downloads nothing. Safe for several servers at once: an entry is
 * filled under an exclusive file lock (a second server waits for the first instead of downloading
 * the same model) into a temporary directory and renamed into place in one step, so nobody sees
 * half an entry; a server holds a shared lock on each entry it serves, and the size bound evicts
 * the least recently used entries that nobody holds.
 *
 * <p>Layout: {@code ROOT/sources/HEX.json} what a source served last, by model; {@code
 * ROOT/sha256/HEX/} a model directory, {@code ROOT/sha256/HEX.lock} its lock and last use (the
 * file's modification time), {@code ROOT/tmp/} entries being filled.
 */
public final class ModelCache {
  private static final Logger LOG = Logger.getLogger(ModelCache.class.getName());
  private static final ObjectMapper JSON = new ObjectMapper();

  // file locks belong to the process: threads of one process take turns here first
  private static final ConcurrentHashMap<Path, ReentrantLock> LOCAL = new ConcurrentHashMap<>();

  private final Path root;
  private final long maxBytes;
  // entries used this recently are never evicted: their server may be between fill and lock
  private final java.time.Duration recent;

  /** Fills an empty directory with a model; throws when it cannot. */
  @FunctionalInterface
  public interface Filler {
    void fill(Path emptyDir);
  }

  /**
   * @param root the cache directory (created when missing)
   * @param maxBytes the most the entries may take together; the entry just filled is kept even when
   *     it alone is larger
   */
  public ModelCache(Path root, long maxBytes) {
    this(root, maxBytes, java.time.Duration.ofMinutes(1));
  }

  ModelCache(Path root, long maxBytes, java.time.Duration recent) {
    this.root = root.toAbsolutePath().normalize();
    this.maxBytes = maxBytes;
    this.recent = recent;
    try {
      Files.createDirectories(this.root.resolve("sha256"));
      Files.createDirectories(this.root.resolve("tmp"));
    } catch (IOException e) {
      throw new BerthException(
          "cannot use " + this.root + " as the model cache: " + e.getMessage(), e);
    }
    sweep();
  }

  /**
   * Deletes what a server that stopped mid-fill left in tmp/: a fill's directory is named after its
   * entry, whose lock its filler holds exclusively while it lives.
   */
  private void sweep() {
    try (Stream<Path> s = Files.list(root.resolve("tmp"))) {
      for (Path leftover : s.toList()) {
        String name = leftover.getFileName().toString();
        int dash = name.indexOf('-');
        if (dash != 64 || !name.substring(0, 64).matches("[0-9a-f]{64}")) {
          // an eviction's or a source record's leftover: finished in seconds unless its server died
          if ((name.startsWith("evicted-") || name.startsWith("source-"))
              && Files.getLastModifiedTime(leftover).toMillis()
                  < System.currentTimeMillis() - java.time.Duration.ofMinutes(10).toMillis()) {
            OciModelStore.deleteTree(leftover);
          }
          continue;
        }
        Path lockFile = root.resolve("sha256").resolve(name.substring(0, 64) + ".lock");
        ReentrantLock local = LOCAL.computeIfAbsent(lockFile, k -> new ReentrantLock());
        if (!local.tryLock()) {
          continue;
        }
        if (held(lockFile) != null) {
          local.unlock();
          continue;
        }
        try (FileChannel channel =
            FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
          FileLock lock = channel.tryLock();
          if (lock != null) {
            OciModelStore.deleteTree(leftover); // its filler is gone
          }
        } catch (IOException e) {
          // not ours to judge
        } finally {
          local.unlock();
        }
      }
    } catch (IOException e) {
      LOG.fine("model cache: cannot sweep " + root.resolve("tmp") + ": " + e.getMessage());
    }
  }

  /** {@code $BERTH_CACHE/models}, else {@code ~/.cache/berth/models}. */
  public static Path defaultRoot() {
    String cache = System.getenv("BERTH_CACHE");
    return cache != null && !cache.isBlank()
        ? Path.of(cache, "models")
        : Path.of(System.getProperty("user.home"), ".cache", "berth", "models");
  }

  public Path root() {
    return root;
  }

  /** An entry in use: its model directory, held against eviction until closed. */
  public static final class Entry implements AutoCloseable {
    private final Path dir;
    private final Held held;
    private final boolean filled;
    private boolean closed;

    Entry(Path dir, Held held, boolean filled) {
      this.dir = dir;
      this.held = held;
      this.filled = filled;
    }

    /** The model directory. */
    public Path dir() {
      return dir;
    }

    /** Whether this call downloaded it (false: it was in the cache). */
    public boolean filled() {
      return filled;
    }

    @Override
    public synchronized void close() {
      if (!closed) {
        closed = true;
        held.release();
      }
    }
  }

  /**
   * This process's one channel on an entry's lock file, with its shared lock, and how many entries
   * use it. A POSIX lock belongs to the process: closing any other channel on the same file would
   * drop it, so this process opens no other channel on a file it holds.
   */
  private static final class Held {
    final Path lockFile;
    final FileChannel channel;
    final FileLock shared;
    int uses = 1;

    Held(Path lockFile, FileChannel channel, FileLock shared) {
      this.lockFile = lockFile;
      this.channel = channel;
      this.shared = shared;
    }

    void release() {
      synchronized (HELD) {
        if (--uses > 0) {
          return;
        }
        HELD.remove(lockFile);
      }
      try {
        shared.release();
        channel.close();
      } catch (IOException e) {
        // the lock goes with the channel
      }
    }
  }

  private static final Map<Path, Held> HELD = new java.util.HashMap<>();

  private static Held held(Path lockFile) {
    synchronized (HELD) {
      return HELD.get(lockFile);
    }
  }

  /**
   * Remembers what a source (a serve argument: {@code oci://...}, {@code s3://...}) served, by
   * model name, so that a restart can serve it at once and check the source meanwhile.
   */
  public void remember(String source, Map<String, String> digests) {
    Path file = sourceFile(source);
    try {
      Files.createDirectories(file.getParent());
      Path tmp = Files.createTempFile(root.resolve("tmp"), "source-", ".json");
      ObjectNode node = JSON.createObjectNode();
      node.put("source", shown(source)); // never a presigned URL's signature at rest
      ObjectNode models = node.putObject("models");
      digests.forEach(models::put);
      JSON.writeValue(tmp.toFile(), node);
      Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException e) {
      LOG.warning(
          "model cache: cannot remember what " + shown(source) + " served: " + e.getMessage());
    }
  }

  /** What a source served last, by model name, when the cache still holds all of it; else empty. */
  public Map<String, String> remembered(String source) {
    Path file = sourceFile(source);
    if (!Files.isRegularFile(file)) {
      return Map.of();
    }
    try {
      JsonNode node = JSON.readTree(file.toFile());
      if (!shown(source).equals(node.path("source").asText())) {
        return Map.of();
      }
      Map<String, String> out = new java.util.LinkedHashMap<>();
      for (Map.Entry<String, JsonNode> m : node.path("models").properties()) {
        String digest = m.getValue().asText();
        if (!digest.matches("sha256:[0-9a-f]{64}") || !has(digest)) {
          return Map.of();
        }
        out.put(m.getKey(), digest);
      }
      return out;
    } catch (IOException e) {
      return Map.of();
    }
  }

  private static String shown(String source) {
    return HttpModel.isHttp(source) ? HttpModel.redact(java.net.URI.create(source)) : source;
  }

  private Path sourceFile(String source) {
    String hex =
        RegistryClient.sha256(source.getBytes(java.nio.charset.StandardCharsets.UTF_8))
            .substring("sha256:".length());
    return root.resolve("sources").resolve(hex + ".json");
  }

  /** Whether the cache holds a digest's entry. */
  public boolean has(String digest) {
    return Files.isDirectory(entryDir(digest));
  }

  /**
   * The entry of a digest, filled with {@code filler} first when the cache lacks it; held (shared)
   * until the returned entry is closed.
   */
  public Entry open(String digest, Filler filler) {
    Path dir = entryDir(digest);
    Path lockFile = dir.resolveSibling(dir.getFileName() + ".lock");
    ReentrantLock local = LOCAL.computeIfAbsent(lockFile, k -> new ReentrantLock());
    local.lock();
    FileChannel channel = null;
    boolean handedOver = false;
    try {
      synchronized (HELD) {
        Held mine = HELD.get(lockFile);
        if (mine != null && Files.isDirectory(dir)) {
          mine.uses++; // this process serves it already (another model with the same files)
          touch(mine.channel);
          handedOver = true;
          return new Entry(dir, mine, false);
        }
      }
      channel =
          FileChannel.open(
              lockFile,
              StandardOpenOption.CREATE,
              StandardOpenOption.READ,
              StandardOpenOption.WRITE);
      // an entry that is there is shared at once, whoever else serves it
      FileLock shared = channel.lock(0, Long.MAX_VALUE, true);
      boolean filled = false;
      if (!Files.isDirectory(dir)) {
        shared.release();
        // missing: filled under an exclusive lock, so a second server waits here and then finds it
        FileLock exclusive = channel.lock();
        try {
          if (!Files.isDirectory(dir)) {
            fill(dir, filler);
            filled = true;
          }
        } finally {
          exclusive.release();
        }
        shared = channel.lock(0, Long.MAX_VALUE, true);
        if (!Files.isDirectory(dir)) {
          throw new BerthException(
              "the model cache "
                  + root
                  + " lost "
                  + digest
                  + " to another server's eviction as it was filled; start again, or raise"
                  + " --model-cache-size");
        }
      }
      touch(channel);
      Held mine = new Held(lockFile, channel, shared);
      synchronized (HELD) {
        HELD.put(lockFile, mine);
      }
      handedOver = true;
      if (filled) {
        evict(dir);
      }
      return new Entry(dir, mine, filled);
    } catch (IOException e) {
      throw new BerthException("cannot use the model cache " + root + ": " + e.getMessage(), e);
    } finally {
      if (!handedOver && channel != null) {
        try {
          channel.close(); // no other channel of this process is on this file: HELD had none
        } catch (IOException e) {
          // nothing more to release
        }
      }
      local.unlock();
    }
  }

  /**
   * Marks an entry used now: a write through the channel that holds its lock updates the lock
   * file's modification time, which eviction reads. (Files.setLastModifiedTime would open and close
   * the file, and closing any descriptor of a file drops the process's POSIX locks on it.)
   */
  private static void touch(FileChannel channel) throws IOException {
    channel.write(
        java.nio.ByteBuffer.wrap(
            Long.toString(System.currentTimeMillis())
                .getBytes(java.nio.charset.StandardCharsets.US_ASCII)),
        0);
  }

  private void fill(Path dir, Filler filler) throws IOException {
    Path tmp = Files.createTempDirectory(root.resolve("tmp"), dir.getFileName() + "-");
    try {
      Path tree = tmp.resolve("model");
      Files.createDirectories(tree);
      filler.fill(tree);
      try {
        Files.move(tree, dir, StandardCopyOption.ATOMIC_MOVE);
      } catch (FileAlreadyExistsException | AtomicMoveNotSupportedException e) {
        throw new BerthException(
            "cannot move a pulled model into the cache at " + dir + ": " + e.getMessage(), e);
      }
    } finally {
      OciModelStore.deleteTree(tmp);
    }
  }

  /**
   * Deletes least recently used entries, other than {@code keep} and those a server holds, until
   * the cache is within its bound.
   */
  void evict(Path keep) throws IOException {
    List<Path> entries = new ArrayList<>();
    try (Stream<Path> s = Files.list(root.resolve("sha256"))) {
      s.filter(Files::isDirectory).forEach(entries::add);
    }
    long total = 0;
    for (Path e : entries) {
      total += size(e);
    }
    if (total <= maxBytes) {
      return;
    }
    entries.sort(Comparator.comparing(ModelCache::lastUsed));
    for (Path e : entries) {
      if (total <= maxBytes) {
        break;
      }
      if (e.equals(keep)
          || lastUsed(e).toMillis() > System.currentTimeMillis() - recent.toMillis()) {
        continue; // just opened: its server may be between its fill and its shared lock
      }
      Path lockFile = e.resolveSibling(e.getFileName() + ".lock");
      ReentrantLock local = LOCAL.computeIfAbsent(lockFile, k -> new ReentrantLock());
      if (!local.tryLock()) {
        continue;
      }
      if (held(lockFile) != null) {
        local.unlock();
        continue; // this process serves it (and must open no second channel on its lock file)
      }
      try (FileChannel channel =
          FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
        FileLock lock = channel.tryLock();
        if (lock == null) {
          continue; // another server uses it
        }
        try {
          long size = size(e);
          Path doomed = Files.createTempDirectory(root.resolve("tmp"), "evicted-");
          try {
            Files.move(e, doomed.resolve("model"), StandardCopyOption.ATOMIC_MOVE);
          } catch (java.nio.file.NoSuchFileException gone) {
            OciModelStore.deleteTree(doomed);
            continue; // another server evicted it first
          }
          OciModelStore.deleteTree(doomed);
          total -= size;
          LOG.info(
              "model cache: evicted "
                  + e.getFileName()
                  + " ("
                  + OciModelStore.size(size)
                  + ") to stay within "
                  + OciModelStore.size(maxBytes));
        } finally {
          lock.release();
        }
      } finally {
        local.unlock();
      }
    }
    if (total > maxBytes) {
      LOG.warning(
          "model cache "
              + root
              + " holds "
              + OciModelStore.size(total)
              + ", more than its bound of "
              + OciModelStore.size(maxBytes)
              + ", in models being served; raise --model-cache-size");
    }
  }

  private static FileTime lastUsed(Path entry) {
    try {
      return Files.getLastModifiedTime(entry.resolveSibling(entry.getFileName() + ".lock"));
    } catch (IOException e) {
      return FileTime.fromMillis(0);
    }
  }

  /** The bytes under an entry; 0 for one another server removes meanwhile. */
  private static long size(Path dir) {
    try (Stream<Path> walk = Files.walk(dir)) {
      long total = 0;
      for (Path p : walk.filter(Files::isRegularFile).toList()) {
        total += Files.size(p);
      }
      return total;
    } catch (IOException | java.io.UncheckedIOException e) {
      return 0;
    }
  }

  private Path entryDir(String digest) {
    if (!digest.matches("sha256:[0-9a-f]{64}")) {
      throw new IllegalArgumentException("not a sha256 digest: " + digest);
    }
    return root.resolve("sha256").resolve(digest.substring("sha256:".length()));
  }
}
