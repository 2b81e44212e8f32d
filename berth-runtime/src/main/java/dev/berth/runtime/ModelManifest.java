package dev.berth.runtime;

import dev.berth.api.BerthException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Predicate;
import java.util.stream.Stream;

/**
 * The sha256 of every file of a model directory, by path relative to it ({@code model.yaml}, {@code
 * 1/model.onnx}, ...). Its canonical text is one line {@code <sha256> <path>} per file, sorted by
 * path, the format {@code sha256sum -c} reads; that text is what {@code berth sign} signs.
 *
 * @param files lowercase hex sha256 by relative path ('/'-separated)
 */
public record ModelManifest(Map<String, String> files) {
  /** The signature file in a model directory; never part of the manifest. */
  public static final String SIGNATURE_FILE = "berth.sig";

  public ModelManifest {
    files = java.util.Collections.unmodifiableMap(new TreeMap<>(files));
  }

  /** Every regular file under a model directory except {@link #SIGNATURE_FILE}. */
  public static ModelManifest of(Path modelDir) {
    return of(modelDir, path -> true);
  }

  /**
   * The regular files under a model directory whose relative path passes {@code include}, except
   * {@link #SIGNATURE_FILE}; files that do not pass are not read.
   */
  public static ModelManifest of(Path modelDir, Predicate<String> include) {
    Map<String, String> out = new TreeMap<>();
    for (String path : list(modelDir)) {
      if (include.test(path)) {
        out.put(path, sha256(modelDir.resolve(path)));
      }
    }
    return new ModelManifest(out);
  }

  /** The relative paths of the regular files under a model directory, signature file excluded. */
  static List<String> list(Path modelDir) {
    List<String> out = new ArrayList<>();
    try (Stream<Path> walk = Files.walk(modelDir)) {
      for (Path f : walk.filter(Files::isRegularFile).toList()) {
        String rel = modelDir.relativize(f).toString().replace('\\', '/');
        if (rel.equals(SIGNATURE_FILE)) {
          continue;
        }
        if (rel.chars().anyMatch(c -> c < 0x20 || c == 0x7f)) {
          throw new BerthException(
              "cannot record " + f + ": its name holds a control character; rename it");
        }
        out.add(rel);
      }
    } catch (IOException e) {
      throw new BerthException("cannot read " + modelDir + ": " + e.getMessage(), e);
    }
    out.sort(null);
    return out;
  }

  /** The files whose relative path passes {@code include}. */
  public ModelManifest filter(Predicate<String> include) {
    Map<String, String> out = new TreeMap<>();
    files.forEach(
        (path, digest) -> {
          if (include.test(path)) {
            out.put(path, digest);
          }
        });
    return new ModelManifest(out);
  }

  /** The canonical text: {@code <sha256> <path>\n} per file, sorted by path. */
  public String text() {
    StringBuilder out = new StringBuilder();
    files.forEach((path, digest) -> out.append(digest).append("  ").append(path).append('\n'));
    return out.toString();
  }

  /** The sha256 of the canonical text, as {@code sha256:<hex>}. */
  public String digest() {
    return "sha256:"
        + HexFormat.of().formatHex(sha256().digest(text().getBytes(StandardCharsets.UTF_8)));
  }

  /**
   * Reads a canonical text back.
   *
   * @throws IllegalArgumentException naming the line that is not {@code <sha256> <path>}, or when
   *     the lines are not sorted and unique
   */
  public static ModelManifest parse(String text) {
    Map<String, String> out = new TreeMap<>();
    if (text.isEmpty()) {
      return new ModelManifest(out);
    }
    if (!text.endsWith("\n")) {
      throw new IllegalArgumentException("the manifest does not end with a new line");
    }
    String previous = null;
    int number = 0;
    for (String line : text.split("\n")) {
      number++;
      if (line.length() < 67
          || !isHexDigest(line.substring(0, 64))
          || !line.startsWith("  ", 64)
          || !line.substring(0, 64)
              .equals(line.substring(0, 64).toLowerCase(java.util.Locale.ROOT))) {
        throw new IllegalArgumentException(
            "manifest line " + number + " is not '<sha256>  <path>': " + line);
      }
      String path = line.substring(66);
      if (previous != null && previous.compareTo(path) >= 0) {
        throw new IllegalArgumentException(
            "manifest line " + number + " is out of order or repeated: " + path);
      }
      previous = path;
      out.put(path, line.substring(0, 64));
    }
    return new ModelManifest(out);
  }

  /** Whether a string is 64 hex digits (either case). */
  public static boolean isHexDigest(String s) {
    if (s.length() != 64) {
      return false;
    }
    for (int i = 0; i < s.length(); i++) {
      if (Character.digit(s.charAt(i), 16) < 0) {
        return false;
      }
    }
    return true;
  }

  /** The sha256 of a file's bytes, lowercase hex. */
  public static String sha256(Path file) {
    MessageDigest md = sha256();
    try (InputStream in = new DigestInputStream(Files.newInputStream(file), md)) {
      in.transferTo(OutputStream.nullOutputStream());
    } catch (IOException e) {
      throw new BerthException("cannot read " + file + ": " + e.getMessage(), e);
    }
    return HexFormat.of().formatHex(md.digest());
  }

  private static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
