package dev.berth.cli;

import static java.nio.charset.StandardCharsets.UTF_8;

import java.io.IOException;
import java.io.Reader;
import java.io.Writer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.HexFormat;
import java.util.Optional;
import java.util.Properties;

/**
 * The digest each registry reference got when it was last built on this machine, so that {@code
 * berth deploy} pins pods to the image just built rather than to whatever the tag points at when
 * they start. Kept under the cache directory, one small file per reference.
 */
final class BuildRecords {
  private BuildRecords() {}

  /** A build: the digest pushed to a reference, and when. */
  record Record(String reference, String digest, Instant builtAt) {}

  static void save(Path cacheDir, String reference, String digest) {
    Properties p = new Properties();
    p.setProperty("reference", reference);
    p.setProperty("digest", digest);
    p.setProperty("built-at", Instant.now().toString());
    Path file = file(cacheDir, reference);
    try {
      Files.createDirectories(file.getParent());
      Path tmp = Files.createTempFile(file.getParent(), "build", ".tmp");
      try (Writer w = Files.newBufferedWriter(tmp, UTF_8)) {
        p.store(w, "berth build");
      }
      Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException e) {
      System.err.println("berth: could not record the build in " + file + ": " + e.getMessage());
    }
  }

  static Optional<Record> find(Path cacheDir, String reference) {
    Path file = file(cacheDir, reference);
    if (!Files.isRegularFile(file)) {
      return Optional.empty();
    }
    Properties p = new Properties();
    try (Reader r = Files.newBufferedReader(file, UTF_8)) {
      p.load(r);
    } catch (IOException e) {
      return Optional.empty();
    }
    if (!reference.equals(p.getProperty("reference")) || p.getProperty("digest") == null) {
      return Optional.empty();
    }
    Instant at;
    try {
      at = Instant.parse(p.getProperty("built-at", ""));
    } catch (java.time.format.DateTimeParseException e) {
      at = null;
    }
    return Optional.of(new Record(reference, p.getProperty("digest"), at));
  }

  private static Path file(Path cacheDir, String reference) {
    try {
      byte[] sha = MessageDigest.getInstance("SHA-256").digest(reference.getBytes(UTF_8));
      return cacheDir
          .resolve("builds")
          .resolve(HexFormat.of().formatHex(sha, 0, 12) + ".properties");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
