package dev.berth.image;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.jar.JarOutputStream;
import java.util.zip.ZipEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.apache.commons.compress.compressors.gzip.GzipCompressorOutputStream;
import org.junit.jupiter.api.Test;

/** Layers applied as a container's overlay applies them, and what the SBOM reads from files. */
class ImageFileSystemTest {

  @Test
  void upperLayersDeleteAndHideWhatLowerLayersHold() throws Exception {
    byte[] jar = jar(Map.of("native/linux-x86_64/libfoo.so", bytes("elf"), "a/B.class", bytes("")));
    Map<String, Object> first = new LinkedHashMap<>();
    first.put("opt/app/one.jar", jar);
    first.put("opt/app/two.jar", jar);
    first.put("opt/d/f.txt", bytes("f"));
    first.put("usr/lib/libz.so.1.2.13", bytes("zlib"));
    first.put("usr/lib/libgone.so", bytes("gone"));
    first.put("etc/os-release", bytes("ID=debian\nVERSION_ID=\"12\"\n"));
    Map<String, Object> second = new LinkedHashMap<>();
    second.put("opt/app/.wh.one.jar", bytes(""));
    second.put("opt/d/.wh..wh..opq", bytes(""));
    second.put("opt/d/g.txt", bytes("g"));
    second.put("usr/lib/libgone.so", new Link("libz.so.1.2.13", true));
    second.put("usr/lib/copy.so", bytes("copy"));
    second.put("usr/lib/same.so", new Link("usr/lib/copy.so", false));

    SortedMap<String, ImageFileSystem.File> files =
        ImageFileSystem.flatten(
            List.of(
                ImageFileSystem.scan(new ByteArrayInputStream(layer(first, true)), 0),
                ImageFileSystem.scan(new ByteArrayInputStream(layer(second, false)), 1)));

    assertEquals(
        List.of(
            "/etc/os-release",
            "/opt/app/two.jar",
            "/opt/d/g.txt",
            "/usr/lib/copy.so",
            "/usr/lib/libz.so.1.2.13",
            "/usr/lib/same.so"),
        List.copyOf(files.keySet()));
    ImageFileSystem.File two = files.get("/opt/app/two.jar");
    assertEquals(sha256(jar), two.sha256());
    assertEquals(0, two.layer());
    assertEquals(
        sha256(bytes("elf")), two.jar().natives().get("native/linux-x86_64/libfoo.so").sha256());
    assertEquals(1, two.jar().natives().size());
    assertEquals(sha256(bytes("copy")), files.get("/usr/lib/same.so").sha256());
    assertEquals(1, files.get("/opt/d/g.txt").layer());
    assertArrayEquals(bytes("ID=debian\nVERSION_ID=\"12\"\n"), files.get("/etc/os-release").text());
    assertNull(files.get("/opt/d/g.txt").text());
  }

  @Test
  void aJarCutShortIsListedByItsHashAsUnreadable() throws Exception {
    byte[] random = new byte[8192];
    new java.util.Random(1).nextBytes(random);
    byte[] whole = jar(Map.of("lib/libx.so", random));
    // cut in the middle of the library's data
    byte[] cut = java.util.Arrays.copyOf(whole, 4000);
    // the jar first, so that the file after it shows the layer is read on
    java.util.Map<String, Object> entries = new java.util.LinkedHashMap<>();
    entries.put("opt/cut.jar", cut);
    entries.put("etc/os-release", bytes("ID=debian\n"));
    byte[] layer = layer(entries, true);
    ImageFileSystem.Layer scanned =
        ImageFileSystem.scan(new java.io.ByteArrayInputStream(layer), 0);
    ImageFileSystem.File jar = scanned.files().get("/opt/cut.jar");
    assertFalse(jar.jar().readable());
    assertEquals(sha256(cut), jar.sha256());
    // the rest of the layer is read all the same
    assertTrue(scanned.files().containsKey("/etc/os-release"));
  }

  @Test
  void nativeLibrariesAreKnownByTheirNames() {
    for (String name :
        List.of("libonnxruntime.so", "libz.so.1", "libgomp-98b21ff3.so.1", "x.dll", "y.dylib")) {
      assertTrue(ImageFileSystem.isNative(name), name);
    }
    for (String name : List.of("model.onnx", "sonar.txt", "release", "a.jar")) {
      assertFalse(ImageFileSystem.isNative(name), name);
    }
  }

  @Test
  void dpkgStanzasKeepTheirFirstLines() {
    String status =
        "Package: libc6\nStatus: install ok installed\nVersion: 2.36-9+deb12u4\n"
            + "Architecture: amd64\nDescription: GNU C Library\n continued here\n\n"
            + "Package: old\nStatus: deinstall ok config-files\nVersion: 1\n";
    List<Map<String, String>> stanzas = DebianStatus.parse(bytes(status));
    assertEquals(2, stanzas.size());
    assertEquals("2.36-9+deb12u4", stanzas.get(0).get("Version"));
    assertEquals("GNU C Library", stanzas.get(0).get("Description"));
    assertEquals("deinstall ok config-files", stanzas.get(1).get("Status"));
  }

  @Test
  void aJarsOwnMetadataNamesTheUpstreamOfItsLibraries() {
    Map<String, byte[]> tokenizers =
        Map.of(NativeVersions.TOKENIZERS, bytes("version=0.21.0-0.38.0\n"));
    NativeVersions.Upstream t =
        NativeVersions.of(
            "ai.djl.huggingface",
            "tokenizers",
            "0.38.0",
            "native/lib/linux-x86_64/cpu/libtokenizers.so",
            tokenizers);
    assertEquals(new NativeVersions.Upstream("huggingface-tokenizers", "0.21.0"), t);
    assertEquals(
        new NativeVersions.Upstream("onnxruntime", "1.29.0"),
        NativeVersions.of(
            "com.microsoft.onnxruntime",
            "onnxruntime",
            "1.29.0",
            "ai/onnxruntime/native/linux-x64/libonnxruntime.so",
            Map.of()));
    String commit = "80fb11ac73e66d89eae2c6a91d8a77428fa733ed";
    assertEquals(
        new NativeVersions.Upstream("llama.cpp", "b1234", commit),
        NativeVersions.of(
            "dev.berth",
            "berth-llm",
            "0.1.0",
            "dev/berth/llm/native/linux-x86_64/libllama.so",
            Map.of(
                "dev/berth/llm/native/linux-x86_64/llama.cpp.info.json",
                bytes("{\"tag\": \"b1234\"}"),
                "dev/berth/llm/native/linux-x86_64/llama.cpp.commit",
                bytes(commit + "\n"))));
    assertEquals(
        new NativeVersions.Upstream("netty", "4.2.17.Final"),
        NativeVersions.of(
            "io.grpc",
            "grpc-netty-shaded",
            "1.85.1",
            "META-INF/native/libio_grpc_netty_shaded_netty_transport_native_epoll_x86_64.so",
            Map.of(
                "META-INF/io.grpc.netty.shaded.io.netty.versions.properties",
                bytes("netty-common.version=4.2.17.Final\n"))));
    assertEquals(
        new NativeVersions.Upstream("jna", "5.17.0"),
        NativeVersions.of(
            "net.java.dev.jna",
            "jna",
            "5.17.0",
            "com/sun/jna/linux-x86-64/libjnidispatch.so",
            Map.of()));
    assertNull(NativeVersions.of("org.example", "x", "1", "libx.so", Map.of()));
    assertEquals(
        "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4",
        "pkg:deb/debian/libc6@" + ImageSbom.encode("2.36-9+deb12u4"));
    assertEquals("sha256%3Aab", ImageSbom.encode("sha256:ab"));
  }

  /** A symbolic link (true) or a hard link (false) to a target. */
  record Link(String target, boolean symbolic) {}

  static byte[] layer(Map<String, Object> entries, boolean gzip) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    OutputStream sink = gzip ? new GzipCompressorOutputStream(bytes) : bytes;
    try (TarArchiveOutputStream tar = new TarArchiveOutputStream(sink)) {
      tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
      for (Map.Entry<String, Object> e : entries.entrySet()) {
        if (e.getValue() instanceof Link link) {
          TarArchiveEntry t =
              new TarArchiveEntry(
                  e.getKey(),
                  link.symbolic() ? TarArchiveEntry.LF_SYMLINK : TarArchiveEntry.LF_LINK);
          t.setLinkName(link.target());
          tar.putArchiveEntry(t);
        } else {
          byte[] content = (byte[]) e.getValue();
          TarArchiveEntry t = new TarArchiveEntry(e.getKey());
          t.setSize(content.length);
          tar.putArchiveEntry(t);
          tar.write(content);
        }
        tar.closeArchiveEntry();
      }
    }
    return bytes.toByteArray();
  }

  static byte[] jar(Map<String, byte[]> entries) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (JarOutputStream jar = new JarOutputStream(bytes)) {
      for (Map.Entry<String, byte[]> e : entries.entrySet()) {
        jar.putNextEntry(new ZipEntry(e.getKey()));
        jar.write(e.getValue());
        jar.closeEntry();
      }
    }
    return bytes.toByteArray();
  }

  static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }

  static String sha256(byte[] bytes) throws Exception {
    return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
  }
}
