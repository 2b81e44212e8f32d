package dev.berth.image;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Pattern;

/**
 * What {@link ImageFileSystem#scan} found in each layer, kept on disk by the layer's digest: a
 * layer is content-addressed, so the same digest always scans to the same files, and an SBOM of an
 * image whose layers were scanned before reads them here instead of decompressing and hashing them
 * again.
 *
 * <p>One JSON file per layer, {@code DIR/v}{@value #FORMAT}{@code /sha256/HEX.json}, written to a
 * temporary file and moved into place, so a reader sees a whole entry or none and builds sharing
 * the directory may write the same entry at once. The layer index is not kept ({@link ImageSbom}
 * stamps it per image). An entry that cannot be read, or is not what this version writes, counts as
 * absent: the layer is scanned again and the entry replaced.
 */
final class LayerScanCache {
  /**
   * The version of what an entry records; part of its path. Raise it whenever what a scan keeps
   * changes ({@link ImageFileSystem#isText}, {@link ImageFileSystem#isNative}, {@link
   * NativeVersions#isMetadata}, the size limits, the records), so that entries of an older Berth
   * are never read as this one's.
   */
  static final int FORMAT = 1;

  /**
   * Entries carry texts of up to 32 MiB and jar entries of up to 16 MiB as base64, longer than
   * Jackson's default string limit: the limit is raised past them, or such entries could be written
   * but never read.
   */
  private static final ObjectMapper JSON =
      new ObjectMapper(
          com.fasterxml.jackson.core.JsonFactory.builder()
              .streamReadConstraints(
                  com.fasterxml.jackson.core.StreamReadConstraints.builder()
                      .maxStringLength(64 * 1024 * 1024)
                      .build())
              .build());

  private static final Pattern SHA256 = Pattern.compile("sha256:[0-9a-f]{64}");
  private static final Base64.Encoder BASE64 = Base64.getEncoder();
  private static final Base64.Decoder UNBASE64 = Base64.getDecoder();

  private final Path dir;

  /** A cache kept under {@code dir}; nothing is created until a layer is stored. */
  LayerScanCache(Path dir) {
    this.dir = dir.resolve("v" + FORMAT);
  }

  /** Whether a digest names a layer this cache can keep: {@code sha256:} and 64 hex digits. */
  static boolean keeps(String digest) {
    return SHA256.matcher(digest).matches();
  }

  /** The file that holds the scan of the layer with this digest ({@link #keeps} must hold). */
  Path entry(String digest) {
    return dir.resolve("sha256").resolve(digest.substring("sha256:".length()) + ".json");
  }

  /**
   * The scan of the layer with this digest, its files at layer index -1, or null when the cache has
   * none, or none it can read.
   */
  ImageFileSystem.Layer get(String digest) {
    if (!keeps(digest)) {
      return null;
    }
    try {
      return fromJson(JSON.readTree(Files.readAllBytes(entry(digest))), digest);
    } catch (IOException | RuntimeException e) {
      // none yet, or one that is damaged, foreign or unreadable: the layer is scanned again and
      // the entry rewritten; a cache never fails the SBOM
      return null;
    }
  }

  /**
   * Keeps the scan of the layer with this digest, replacing any entry there; a digest the cache
   * cannot keep is ignored.
   *
   * @throws IOException when the entry cannot be written
   */
  void put(String digest, ImageFileSystem.Layer layer) throws IOException {
    if (!keeps(digest)) {
      return;
    }
    Path file = entry(digest);
    Files.createDirectories(file.getParent());
    Path tmp = Files.createTempFile(file.getParent(), file.getFileName().toString(), ".tmp");
    try {
      Files.write(tmp, JSON.writeValueAsBytes(toJson(digest, layer)));
      Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  private static ObjectNode toJson(String digest, ImageFileSystem.Layer layer) {
    ObjectNode root = JSON.createObjectNode();
    root.put("format", FORMAT);
    root.put("digest", digest);
    ArrayNode files = root.putArray("files");
    for (ImageFileSystem.File f : layer.files().values()) {
      ObjectNode file = files.addObject();
      file.put("path", f.path());
      file.put("sha256", f.sha256());
      file.put("size", f.size());
      if (f.text() != null) {
        file.put("text", BASE64.encodeToString(f.text()));
      }
      if (f.jar() != null) {
        ObjectNode jar = file.putObject("jar");
        jar.put("readable", f.jar().readable());
        ArrayNode natives = jar.putArray("natives");
        for (ImageFileSystem.Native n : f.jar().natives().values()) {
          natives
              .addObject()
              .put("entry", n.entry())
              .put("sha256", n.sha256())
              .put("size", n.size());
        }
        ObjectNode metadata = jar.putObject("metadata");
        f.jar()
            .metadata()
            .forEach((name, bytes) -> metadata.put(name, BASE64.encodeToString(bytes)));
      }
    }
    layer.otherPaths().forEach(root.putArray("otherPaths")::add);
    layer.whiteouts().forEach(root.putArray("whiteouts")::add);
    layer.opaque().forEach(root.putArray("opaque")::add);
    return root;
  }

  private static ImageFileSystem.Layer fromJson(JsonNode root, String digest) throws IOException {
    if (root.path("format").asInt(-1) != FORMAT || !digest.equals(root.path("digest").asText())) {
      throw new IOException("not an entry of format " + FORMAT + " for " + digest);
    }
    Map<String, ImageFileSystem.File> files = new LinkedHashMap<>();
    for (JsonNode file : array(root, "files")) {
      String path = text(file, "path");
      JsonNode text = file.get("text");
      JsonNode jar = file.get("jar");
      files.put(
          path,
          new ImageFileSystem.File(
              path,
              -1,
              text(file, "sha256"),
              number(file, "size"),
              jar == null ? null : jarFromJson(jar),
              text == null ? null : UNBASE64.decode(text(file, "text"))));
    }
    return new ImageFileSystem.Layer(
        files, paths(root, "otherPaths"), paths(root, "whiteouts"), paths(root, "opaque"));
  }

  private static ImageFileSystem.JarContents jarFromJson(JsonNode jar) throws IOException {
    SortedMap<String, ImageFileSystem.Native> natives = new TreeMap<>();
    for (JsonNode n : array(jar, "natives")) {
      String entry = text(n, "entry");
      natives.put(entry, new ImageFileSystem.Native(entry, text(n, "sha256"), number(n, "size")));
    }
    JsonNode metadataNode = jar.get("metadata");
    if (metadataNode == null || !metadataNode.isObject()) {
      throw new IOException("a jar without its metadata");
    }
    Map<String, byte[]> metadata = new TreeMap<>();
    for (Map.Entry<String, JsonNode> e : metadataNode.properties()) {
      if (!e.getValue().isTextual()) {
        throw new IOException("metadata " + e.getKey() + " is not base64 text");
      }
      metadata.put(e.getKey(), UNBASE64.decode(e.getValue().asText()));
    }
    JsonNode readable = jar.get("readable");
    if (readable == null || !readable.isBoolean()) {
      throw new IOException("a jar without readable");
    }
    return new ImageFileSystem.JarContents(natives, metadata, readable.booleanValue());
  }

  private static Set<String> paths(JsonNode node, String field) throws IOException {
    Set<String> out = new TreeSet<>();
    for (JsonNode path : array(node, field)) {
      if (!path.isTextual()) {
        throw new IOException(field + " holds a value that is not a path");
      }
      out.add(path.asText());
    }
    return out;
  }

  private static JsonNode array(JsonNode node, String field) throws IOException {
    JsonNode value = node.get(field);
    if (value == null || !value.isArray()) {
      throw new IOException("no array " + field);
    }
    return value;
  }

  private static String text(JsonNode node, String field) throws IOException {
    JsonNode value = node.get(field);
    if (value == null || !value.isTextual()) {
      throw new IOException("no text " + field);
    }
    return value.asText();
  }

  private static long number(JsonNode node, String field) throws IOException {
    JsonNode value = node.get(field);
    if (value == null || !value.canConvertToLong() || !value.isIntegralNumber()) {
      throw new IOException("no whole number " + field);
    }
    return value.longValue();
  }
}
