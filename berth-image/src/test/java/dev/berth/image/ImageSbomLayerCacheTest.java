package dev.berth.image;

import static dev.berth.image.ImageFileSystemTest.bytes;
import static dev.berth.image.ImageFileSystemTest.jar;
import static dev.berth.image.ImageFileSystemTest.layer;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.berth.api.BerthException;
import dev.berth.image.ImageFileSystemTest.Link;
import dev.berth.runtime.ServiceSpec;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The SBOM's per-layer scan cache: an entry gives back exactly what the scan found, an image whose
 * layers are all cached is described without reading a layer, and the SBOM is the same bytes with
 * and without the cache, also when an entry is damaged or the cache cannot be written.
 */
class ImageSbomLayerCacheTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip";

  @TempDir Path dir;
  private ImagePlan plan;
  private Path cache;
  private byte[] baseLayer;
  private List<byte[]> layers;
  private String baseDigest;

  @BeforeEach
  void image() throws Exception {
    Files.createDirectories(dir.resolve("models/m/1"));
    Files.writeString(dir.resolve("models/m/1/model.onnx"), "graph");
    Files.writeString(dir.resolve("berth.jar"), "jar");
    Files.writeString(
        dir.resolve("berth.yaml"),
        "apiVersion: berth.dev/v1\nkind: ModelService\nname: m\nmodels: [{path: models/m}]\n");
    plan =
        ImagePlan.of(
            ServiceSpec.load(dir.resolve("berth.yaml")),
            new BerthDistribution(dir.resolve("berth.jar"), List.of(), List.of(), "1.0"),
            null,
            null,
            dir.resolve("staging"));
    cache = dir.resolve("cache/sbom-layers");

    byte[] nativeJar =
        jar(
            Map.of(
                "native/linux-x86_64/libfoo.so", bytes("elf"),
                "META-INF/maven/org.example/foo/pom.properties",
                    bytes("groupId=org.example\nartifactId=foo\nversion=1.2\n"),
                "org/example/Foo.class", bytes("class")));
    Map<String, Object> base = new LinkedHashMap<>();
    base.put("etc/os-release", bytes("ID=debian\nVERSION_ID=\"12\"\nPRETTY_NAME=\"Debian 12\"\n"));
    base.put(
        "var/lib/dpkg/status",
        bytes(
            "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\n"
                + "Architecture: amd64\n"));
    base.put("opt/java/release", bytes("JAVA_VERSION=\"25\"\nIMPLEMENTOR=\"Eclipse Adoptium\"\n"));
    base.put("opt/app/foo-1.2.jar", nativeJar);
    base.put("opt/app/linked.jar", new Link("opt/app/foo-1.2.jar", false));
    base.put("opt/app/unreadable.jar", unreadableJar());
    base.put("usr/lib/libz.so.1", bytes("zlib"));
    base.put("usr/lib/libz.so", new Link("libz.so.1", true));
    base.put("opt/old/.wh.gone.txt", bytes(""));
    base.put("opt/emptied/.wh..wh..opq", bytes(""));
    baseLayer = layer(base, true);
    baseDigest = digest(baseLayer);

    // the layers Berth planned come above the base: one small layer each
    long own = plan.layers().stream().filter(l -> !l.files().isEmpty()).count();
    layers = new ArrayList<>();
    layers.add(baseLayer);
    for (int i = 0; i < own; i++) {
      layers.add(layer(Map.of("opt/berth/own-" + i + ".txt", bytes("layer " + i)), true));
    }
  }

  @Test
  void anEntryGivesBackEverythingTheScanFound() throws Exception {
    ImageFileSystem.Layer scanned = ImageFileSystem.scan(new ByteArrayInputStream(baseLayer), -1);
    // what this layer holds, so that the comparison below compares something
    ImageFileSystem.File jar = scanned.files().get("/opt/app/foo-1.2.jar");
    assertEquals(1, jar.jar().natives().size());
    assertEquals(1, jar.jar().metadata().size());
    assertTrue(jar.jar().readable());
    assertEquals(jar.sha256(), scanned.files().get("/opt/app/linked.jar").sha256());
    assertNotNull(scanned.files().get("/etc/os-release").text());
    assertNotNull(scanned.files().get("/var/lib/dpkg/status").text());
    assertFalse(scanned.files().get("/opt/app/unreadable.jar").jar().readable());
    assertTrue(scanned.otherPaths().contains("/usr/lib/libz.so"));
    assertEquals(Set.of("/opt/old/gone.txt"), scanned.whiteouts());
    assertEquals(Set.of("/opt/emptied"), scanned.opaque());

    LayerScanCache layerCache = new LayerScanCache(cache);
    assertNull(layerCache.get(baseDigest));
    layerCache.put(baseDigest, scanned);
    assertTrue(
        Files.isRegularFile(
            cache.resolve(
                "v" + LayerScanCache.FORMAT + "/sha256/" + baseDigest.substring(7) + ".json")));
    assertSameLayer(scanned, layerCache.get(baseDigest));
    assertSameLayer(scanned, new LayerScanCache(cache).get(baseDigest));
    assertNull(layerCache.get(digest(layers.get(1))), "only the layer stored is there");
    assertNull(layerCache.get("sha256:../../etc/passwd"), "not a digest the cache keeps");
  }

  @Test
  void theSbomIsTheSameWithAndWithoutTheCacheAndCachedLayersAreNotRead() throws Exception {
    Path archive = archive("image.tar", layers, Set.of());
    byte[] fresh = ImageSbom.of(plan).describe(archive);
    assertTrue(new String(fresh, StandardCharsets.UTF_8).contains("libfoo.so"));

    // a cold cache: every layer is scanned, kept, and the SBOM is the same
    assertArrayEquals(fresh, ImageSbom.of(plan).layerCache(cache).describe(archive));
    for (byte[] layer : layers) {
      assertTrue(Files.isRegularFile(new LayerScanCache(cache).entry(digest(layer))));
    }

    // a warm cache: the same image without its layer blobs is described all the same
    Path noLayers = archive("no-layers.tar", layers, allLayers());
    assertThrows(BerthException.class, () -> ImageSbom.of(plan).describe(noLayers));
    assertArrayEquals(fresh, ImageSbom.of(plan).layerCache(cache).describe(noLayers));

    // a layer the cache lacks is read, and only it: here only its blob is in the archive
    int last = layers.size() - 1;
    Files.delete(new LayerScanCache(cache).entry(digest(layers.get(last))));
    Set<Integer> allButLast = new HashSet<>(allLayers());
    allButLast.remove(last);
    Path onlyLast = archive("only-last.tar", layers, allButLast);
    assertArrayEquals(fresh, ImageSbom.of(plan).layerCache(cache).describe(onlyLast));
    assertTrue(Files.isRegularFile(new LayerScanCache(cache).entry(digest(layers.get(last)))));
    assertArrayEquals(fresh, ImageSbom.of(plan).layerCache(cache).describe(noLayers));
  }

  @Test
  void aDamagedEntryIsScannedAgainAndReplaced() throws Exception {
    Path archive = archive("image.tar", layers, Set.of());
    byte[] fresh = ImageSbom.of(plan).describe(archive);
    ImageSbom.of(plan).layerCache(cache).describe(archive);
    Path entry = new LayerScanCache(cache).entry(baseDigest);
    byte[] good = Files.readAllBytes(entry);
    ObjectNode other = (ObjectNode) JSON.readTree(good);
    ((ObjectNode) other.get("files").get(0)).put("size", "12");
    ObjectNode badBase64 = (ObjectNode) JSON.readTree(good);
    ((ObjectNode) badBase64.get("files").get(0)).put("text", "not base64!");
    ObjectNode oldFormat = (ObjectNode) JSON.readTree(good);
    oldFormat.put("format", LayerScanCache.FORMAT - 1);
    ObjectNode otherLayer = (ObjectNode) JSON.readTree(good);
    otherLayer.put("digest", digest(layers.get(1)));
    ObjectNode noWhiteouts = (ObjectNode) JSON.readTree(good);
    noWhiteouts.remove("whiteouts");
    ObjectNode nullPath = (ObjectNode) JSON.readTree(good);
    ((ArrayNode) nullPath.get("otherPaths")).addNull();

    Path noBase = archive("no-base.tar", layers, Set.of(0));
    for (byte[] damage :
        List.of(
            new byte[0],
            Arrays.copyOf(good, good.length / 2),
            bytes("not json"),
            bytes("[]"),
            JSON.writeValueAsBytes(other),
            JSON.writeValueAsBytes(badBase64),
            JSON.writeValueAsBytes(oldFormat),
            JSON.writeValueAsBytes(otherLayer),
            JSON.writeValueAsBytes(noWhiteouts),
            JSON.writeValueAsBytes(nullPath))) {
      String what = new String(damage, StandardCharsets.UTF_8);
      Files.write(entry, damage);
      assertNull(new LayerScanCache(cache).get(baseDigest), what);
      // not used: without the layer's blob there is nothing to describe the base by
      assertThrows(
          BerthException.class, () -> ImageSbom.of(plan).layerCache(cache).describe(noBase), what);
      assertArrayEquals(fresh, ImageSbom.of(plan).layerCache(cache).describe(archive), what);
      assertArrayEquals(good, Files.readAllBytes(entry), what);
    }
  }

  @Test
  void aLayerWhoseBytesAreNotItsDigestIsNotKept() throws Exception {
    String claimed = "sha256:" + "0".repeat(64);
    Path lying = archive("lying.tar", layers, Set.of(), Map.of(0, claimed));
    byte[] fresh = ImageSbom.of(plan).describe(lying);
    List<String> warnings = new ArrayList<>();
    byte[] sbom = ImageSbom.of(plan).layerCache(cache).warnings(warnings::add).describe(lying);
    assertArrayEquals(fresh, sbom, "the layer is described as it is");
    assertTrue(new String(sbom, StandardCharsets.UTF_8).contains("libfoo.so"));
    assertFalse(Files.exists(new LayerScanCache(cache).entry(claimed)));
    assertTrue(Files.exists(new LayerScanCache(cache).entry(digest(layers.get(1)))));
    assertEquals(List.of(), warnings.stream().filter(w -> w.startsWith("cannot keep")).toList());
  }

  @Test
  void aCacheThatCannotBeWrittenWarnsAndChangesNothing() throws Exception {
    Path archive = archive("image.tar", layers, Set.of());
    byte[] fresh = ImageSbom.of(plan).describe(archive);
    Path file = Files.writeString(dir.resolve("a-file"), "not a directory");
    List<String> warnings = new ArrayList<>();
    assertArrayEquals(
        fresh, ImageSbom.of(plan).layerCache(file).warnings(warnings::add).describe(archive));
    List<String> said =
        warnings.stream().filter(w -> w.startsWith("cannot keep what the SBOM read")).toList();
    assertEquals(1, said.size(), "said once, not once per layer: " + warnings);
    assertTrue(said.get(0).contains(file.toString()), said.get(0));
  }

  private Set<Integer> allLayers() {
    Set<Integer> all = new HashSet<>();
    for (int i = 0; i < layers.size(); i++) {
      all.add(i);
    }
    return all;
  }

  private static void assertSameLayer(
      ImageFileSystem.Layer expected, ImageFileSystem.Layer actual) {
    assertNotNull(actual);
    assertEquals(List.copyOf(expected.files().keySet()), List.copyOf(actual.files().keySet()));
    for (ImageFileSystem.File e : expected.files().values()) {
      ImageFileSystem.File a = actual.files().get(e.path());
      assertEquals(e.path(), a.path());
      assertEquals(e.layer(), a.layer(), e.path());
      assertEquals(e.sha256(), a.sha256(), e.path());
      assertEquals(e.size(), a.size(), e.path());
      assertArrayEquals(e.text(), a.text(), e.path());
      if (e.jar() == null) {
        assertNull(a.jar(), e.path());
      } else {
        assertEquals(e.jar().readable(), a.jar().readable(), e.path());
        assertEquals(e.jar().natives(), a.jar().natives(), e.path());
        assertEquals(e.jar().metadata().keySet(), a.jar().metadata().keySet(), e.path());
        e.jar()
            .metadata()
            .forEach((name, bytes) -> assertArrayEquals(bytes, a.jar().metadata().get(name), name));
      }
    }
    assertEquals(expected.otherPaths(), actual.otherPaths());
    assertEquals(expected.whiteouts(), actual.whiteouts());
    assertEquals(expected.opaque(), actual.opaque());
  }

  private Path archive(String name, List<byte[]> layerBlobs, Set<Integer> omit) throws IOException {
    return archive(name, layerBlobs, omit, Map.of());
  }

  /**
   * An OCI image archive of these layers, as Berth writes them, leaving out the blobs of the layers
   * at {@code omit} and naming the layers at the keys of {@code names} by their values.
   */
  private Path archive(
      String name, List<byte[]> layerBlobs, Set<Integer> omit, Map<Integer, String> names)
      throws IOException {
    Map<String, byte[]> blobs = new LinkedHashMap<>();
    byte[] config = bytes("{\"architecture\":\"amd64\",\"os\":\"linux\"}");
    blobs.put(digest(config), config);
    ObjectNode manifest = JSON.createObjectNode();
    manifest.put("schemaVersion", 2);
    manifest.put("mediaType", "application/vnd.oci.image.manifest.v1+json");
    manifest
        .putObject("config")
        .put("mediaType", "application/vnd.oci.image.config.v1+json")
        .put("digest", digest(config))
        .put("size", config.length);
    ArrayNode manifestLayers = manifest.putArray("layers");
    for (int i = 0; i < layerBlobs.size(); i++) {
      byte[] blob = layerBlobs.get(i);
      String digest = names.getOrDefault(i, digest(blob));
      manifestLayers
          .addObject()
          .put("mediaType", LAYER_TYPE)
          .put("digest", digest)
          .put("size", blob.length);
      if (!omit.contains(i)) {
        blobs.put(digest, blob);
      }
    }
    byte[] manifestBytes = JSON.writeValueAsBytes(manifest);
    blobs.put(digest(manifestBytes), manifestBytes);
    ObjectNode index = JSON.createObjectNode();
    index.put("schemaVersion", 2);
    index
        .putArray("manifests")
        .addObject()
        .put("mediaType", "application/vnd.oci.image.manifest.v1+json")
        .put("digest", digest(manifestBytes))
        .put("size", manifestBytes.length);

    Path file = dir.resolve(name);
    try (OutputStream out = Files.newOutputStream(file);
        TarArchiveOutputStream tar = new TarArchiveOutputStream(out)) {
      for (Map.Entry<String, byte[]> blob : blobs.entrySet()) {
        entry(tar, "blobs/" + blob.getKey().replace(':', '/'), blob.getValue());
      }
      entry(tar, "oci-layout", bytes("{\"imageLayoutVersion\":\"1.0.0\"}"));
      entry(tar, "index.json", JSON.writeValueAsBytes(index));
    }
    return file;
  }

  private static void entry(TarArchiveOutputStream tar, String name, byte[] content)
      throws IOException {
    TarArchiveEntry e = new TarArchiveEntry(name);
    e.setSize(content.length);
    tar.putArchiveEntry(e);
    tar.write(content);
    tar.closeArchiveEntry();
  }

  /** A zip whose one entry, a native library, holds deflate data no inflater accepts. */
  private static byte[] unreadableJar() throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    String name = "lib/libx.so";
    try (ZipOutputStream zip = new ZipOutputStream(bytes)) {
      zip.putNextEntry(new ZipEntry(name));
      zip.write(bytes("x".repeat(100)));
      zip.closeEntry();
    }
    byte[] jar = bytes.toByteArray();
    jar[30 + name.length()] = (byte) 0xff; // the first block: final, of the reserved type 3
    return jar;
  }

  private static String digest(byte[] blob) {
    return "sha256:" + HexFormat.of().formatHex(ImageFileSystem.sha256().digest(blob));
  }
}
