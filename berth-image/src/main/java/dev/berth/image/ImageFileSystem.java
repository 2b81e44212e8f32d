package dev.berth.image;

import java.io.BufferedInputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.zip.ZipEntry;
import java.util.zip.ZipException;
import java.util.zip.ZipInputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.compressors.gzip.GzipCompressorInputStream;

/**
 * The regular files of an image as a container sees them: its layers applied in order, with OCI
 * whiteouts ({@code .wh.NAME}, {@code .wh..wh..opq}) removing what lower layers put there. Each
 * file is hashed; jars are opened (their native libraries hashed, their Maven and version metadata
 * kept) and a few small text files (dpkg's status, os-release, a Java runtime's {@code release})
 * kept whole, which is what an SBOM of the image needs. What {@link #scan} keeps of a layer is
 * cached by the layer's digest ({@link LayerScanCache}): a change to what it keeps must raise
 * {@link LayerScanCache#FORMAT}.
 */
final class ImageFileSystem {
  /** Text files kept whole up to this size (a dpkg status file of a big base is a few MB). */
  private static final long MAX_TEXT_BYTES = 32L << 20;

  /** Entries of a jar kept whole up to this size (properties files, Berth's dependency BOM). */
  private static final long MAX_JAR_ENTRY_BYTES = 16L << 20;

  private ImageFileSystem() {}

  /**
   * One regular file of the image.
   *
   * @param path its absolute path
   * @param layer the index of the layer it comes from, bottom first
   * @param sha256 its sha256, hex
   * @param size its size in bytes
   * @param jar what a jar holds, or null for other files
   * @param text its bytes when it is one of the text files the SBOM reads, else null
   */
  record File(String path, int layer, String sha256, long size, JarContents jar, byte[] text) {
    String name() {
      return path.substring(path.lastIndexOf('/') + 1);
    }
  }

  /**
   * What a jar holds that an SBOM names.
   *
   * @param natives its native libraries, by entry name
   * @param metadata small entries it keeps whole, by entry name: {@code pom.properties} files,
   *     version properties of native libraries, Berth's dependency BOM
   * @param readable false when the jar could not be read as a zip (it is still listed and hashed)
   */
  record JarContents(
      SortedMap<String, Native> natives, Map<String, byte[]> metadata, boolean readable) {}

  /**
   * A native library inside a jar.
   *
   * @param entry its entry name in the jar
   * @param sha256 its sha256, hex
   * @param size its size in bytes
   */
  record Native(String entry, String sha256, long size) {}

  /** What one layer holds: its files, and what it removes from the layers below it. */
  record Layer(
      Map<String, File> files, Set<String> otherPaths, Set<String> whiteouts, Set<String> opaque) {}

  /** Whether a file name is a native library: {@code .so} (also versioned), .dll, .dylib. */
  static boolean isNative(String name) {
    return name.endsWith(".so")
        || name.contains(".so.")
        || name.endsWith(".dll")
        || name.endsWith(".dylib")
        || name.endsWith(".jnilib");
  }

  static boolean isJar(String name) {
    return name.endsWith(".jar");
  }

  /** Whether the SBOM reads this file's text: dpkg's database, os-release, Java's release. */
  static boolean isText(String path) {
    return path.equals("/var/lib/dpkg/status")
        || path.startsWith("/var/lib/dpkg/status.d/")
        || path.equals("/etc/os-release")
        || path.equals("/usr/lib/os-release")
        || path.endsWith("/release");
  }

  /** Reads one layer blob (gzip-compressed or plain tar). */
  static Layer scan(InputStream blob, int index) throws IOException {
    InputStream in = new BufferedInputStream(blob, 1 << 16);
    in.mark(2);
    int first = in.read();
    int second = in.read();
    in.reset();
    InputStream tar = first == 0x1f && second == 0x8b ? new GzipCompressorInputStream(in) : in;
    Map<String, File> files = new LinkedHashMap<>();
    Set<String> others = new TreeSet<>();
    Set<String> whiteouts = new TreeSet<>();
    Set<String> opaque = new TreeSet<>();
    TarArchiveInputStream entries = new TarArchiveInputStream(tar);
    TarArchiveEntry entry;
    while ((entry = entries.getNextEntry()) != null) {
      String path = normalize(entry.getName());
      if (path.equals("/")) {
        continue;
      }
      int slash = path.lastIndexOf('/');
      String parent = path.substring(0, slash);
      String name = path.substring(slash + 1);
      if (name.equals(".wh..wh..opq")) {
        opaque.add(parent.isEmpty() ? "/" : parent);
      } else if (name.startsWith(".wh.")) {
        whiteouts.add(parent + "/" + name.substring(4));
      } else if (entry.isDirectory()
          || entry.isSymbolicLink()
          || entry.isCharacterDevice()
          || entry.isBlockDevice()
          || entry.isFIFO()) {
        // not files an SBOM lists, but they hide a lower layer's file at the same path
        files.remove(path);
        others.add(path);
      } else if (entry.isLink()) {
        // a hard link: the same bytes as the file it names, if that came earlier in the layer
        File target = files.get(normalize(entry.getLinkName()));
        files.remove(path);
        others.remove(path);
        if (target != null) {
          files.put(
              path,
              new File(path, index, target.sha256(), target.size(), target.jar(), target.text()));
        } else {
          others.add(path);
        }
      } else {
        others.remove(path);
        files.put(path, read(path, index, entries, entry.getSize()));
      }
    }
    return new Layer(files, others, whiteouts, opaque);
  }

  /** The regular files of the image: its layers applied in order, bottom first. */
  static SortedMap<String, File> flatten(List<Layer> layers) {
    TreeMap<String, File> out = new TreeMap<>();
    for (Layer layer : layers) {
      for (String dir : layer.opaque()) {
        removeUnder(out, dir);
      }
      for (String gone : layer.whiteouts()) {
        out.remove(gone);
        removeUnder(out, gone);
      }
      for (String other : layer.otherPaths()) {
        out.remove(other);
      }
      out.putAll(layer.files());
    }
    return out;
  }

  private static void removeUnder(TreeMap<String, File> files, String dir) {
    String prefix = dir.endsWith("/") ? dir : dir + "/";
    files.subMap(prefix, prefix + Character.MAX_VALUE).clear();
  }

  private static String normalize(String name) {
    String n = name;
    while (n.startsWith("./")) {
      n = n.substring(2);
    }
    while (n.startsWith("/")) {
      n = n.substring(1);
    }
    while (n.endsWith("/")) {
      n = n.substring(0, n.length() - 1);
    }
    return "/" + n;
  }

  private static File read(String path, int layer, InputStream in, long size) throws IOException {
    MessageDigest sha = sha256();
    DigestInputStream digesting = new DigestInputStream(new Unclosable(in), sha);
    String name = path.substring(path.lastIndexOf('/') + 1);
    JarContents jar = null;
    byte[] text = null;
    if (isJar(name)) {
      jar = readJar(digesting);
    } else if (isText(path) && size <= MAX_TEXT_BYTES) {
      text = digesting.readAllBytes();
    }
    digesting.transferTo(OutputStream.nullOutputStream());
    return new File(path, layer, HexFormat.of().formatHex(sha.digest()), size, jar, text);
  }

  private static JarContents readJar(InputStream in) throws IOException {
    SortedMap<String, Native> natives = new TreeMap<>();
    Map<String, byte[]> metadata = new TreeMap<>();
    // not closed: closing would close the layer's stream, which goes on after this jar
    ZipInputStream zip = new ZipInputStream(in);
    try {
      ZipEntry e;
      while ((e = zip.getNextEntry()) != null) {
        if (e.isDirectory()) {
          continue;
        }
        String entry = e.getName();
        String name = entry.substring(entry.lastIndexOf('/') + 1);
        if (isNative(name)) {
          MessageDigest sha = sha256();
          long size;
          try (DigestInputStream d = new DigestInputStream(new Unclosable(zip), sha)) {
            size = d.transferTo(OutputStream.nullOutputStream());
          }
          natives.put(entry, new Native(entry, HexFormat.of().formatHex(sha.digest()), size));
        } else if (NativeVersions.isMetadata(entry)) {
          byte[] bytes = zip.readNBytes((int) MAX_JAR_ENTRY_BYTES + 1);
          if (bytes.length <= MAX_JAR_ENTRY_BYTES) {
            metadata.put(entry, bytes);
          }
        }
      }
    } catch (ZipException | java.io.EOFException | IllegalArgumentException e) {
      // not a zip this reader can follow, one cut short, or entry names that are not UTF-8; the jar
      // is still listed, by its name and hash
      return new JarContents(natives, metadata, false);
    }
    return new JarContents(natives, metadata, true);
  }

  static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** A stream whose close leaves the stream below open. */
  private static final class Unclosable extends FilterInputStream {
    Unclosable(InputStream in) {
      super(in);
    }

    @Override
    public void close() {
      // the stream below goes on
    }
  }
}
