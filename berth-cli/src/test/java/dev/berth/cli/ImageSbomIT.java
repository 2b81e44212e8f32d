package dev.berth.cli;

import static dev.berth.cli.ContainerTestEnv.berth;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.networknt.schema.JsonSchema;
import com.networknt.schema.JsonSchemaFactory;
import com.networknt.schema.SchemaLocation;
import com.networknt.schema.SpecVersion;
import com.networknt.schema.ValidationMessage;
import dev.berth.store.TestRegistry;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.stream.Stream;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * The SBOM {@code berth build} writes beside a {@code tar:} image: valid against the official
 * CycloneDX 1.6 JSON schema (and, as {@code berth sbom --format spdx} says it, the SPDX 2.3 one),
 * and exactly what the image's layers hold as skopeo and umoci unpack them (every jar and native
 * library, those inside jars too, and every model file with its sha256; nothing the image does not
 * hold). The base is an image archive made here from this machine's own files: its Debian package
 * database, os-release, zlib, a Java runtime's release file and library, a jar, and a second layer
 * that deletes a jar of the first. No container engine needed.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class ImageSbomIT {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String JAVA_HOME_IN_BASE = "/opt/java/openjdk";

  private Path work;
  private Path hostJavaHome;
  private String baseImageId;
  private JsonNode sbom;
  private byte[] sbomBytes;
  private byte[] secondSbomBytes;

  /** The image's regular files, path to sha256 (its layers applied, whiteouts honoured). */
  private Map<String, String> imageFiles;

  /** The native libraries inside the image's jars: {@code JAR!/ENTRY} to sha256. */
  private Map<String, String> jarNatives;

  @BeforeAll
  void buildTheImageTwice() throws Exception {
    work = Files.createTempDirectory(Path.of("target").toAbsolutePath(), "sbom-it-");
    hostJavaHome = Path.of(System.getProperty("java.home"));
    Path base = work.resolve("base.tar");
    writeBase(base);
    Path service = ContainerTestEnv.examples().resolve("minilm/berth.yaml");
    Path cache = work.resolve("cache");
    for (String name : List.of("a", "b")) {
      ContainerTestEnv.Result r =
          berth(
                  work,
                  "build",
                  service.toString(),
                  "--to",
                  "tar:" + work.resolve(name + ".tar"),
                  "--base",
                  "tar:" + base,
                  "--runtime",
                  "jlink",
                  "--no-class-data-sharing",
                  "--cache-dir",
                  cache.toString())
              .ok();
      assertTrue(
          r.out().contains("sbom   " + work.resolve(name + ".cdx.json")),
          "berth build names where the SBOM went: " + r.out());
    }
    sbomBytes = Files.readAllBytes(work.resolve("a.cdx.json"));
    secondSbomBytes = Files.readAllBytes(work.resolve("b.cdx.json"));
    sbom = JSON.readTree(sbomBytes);
    readImage(work.resolve("a.tar"));
  }

  @Test
  void theSbomIsValidCycloneDx16() throws Exception {
    // the official schema (and the SPDX and JSF schemas it refers to), as CycloneDX's Java
    // library ships it; nothing is fetched
    JsonSchemaFactory factory =
        JsonSchemaFactory.getInstance(
            SpecVersion.VersionFlag.V7,
            builder ->
                builder.schemaMappers(
                    m -> m.mapPrefix("http://cyclonedx.org/schema/", "classpath:")));
    JsonSchema schema =
        factory.getSchema(SchemaLocation.of("http://cyclonedx.org/schema/bom-1.6.schema.json"));
    Set<ValidationMessage> errors = schema.validate(sbom);
    assertTrue(errors.isEmpty(), "not valid CycloneDX 1.6: " + errors);
    assertEquals("CycloneDX", sbom.path("bomFormat").asText());
    assertEquals("1.6", sbom.path("specVersion").asText());

    // the same schema refuses a document that breaks it: the check can fail
    ObjectNode broken = sbom.deepCopy();
    ((ObjectNode) broken.path("components").get(0)).put("type", "no-such-type");
    assertFalse(schema.validate(broken).isEmpty());
  }

  @Test
  void berthSbomSaysItAsSpdx23ThatSpdxsSchemaAccepts() throws Exception {
    Path out = work.resolve("a.spdx.json");
    berth(
            work,
            Map.of("SOURCE_DATE_EPOCH", "1700000000"),
            "sbom",
            "tar:" + work.resolve("a.tar"),
            "--format",
            "spdx",
            "-o",
            out.toString())
        .ok();
    JsonNode spdx = JSON.readTree(out.toFile());
    // SPDX's own 2.3 JSON schema, as SPDX's Java tools ship it
    JsonSchema schema =
        JsonSchemaFactory.getInstance(SpecVersion.VersionFlag.V201909)
            .getSchema(SchemaLocation.of("classpath:resources/spdx-schema-v2.3.json"));
    Set<ValidationMessage> errors = schema.validate(spdx);
    assertTrue(errors.isEmpty(), "not valid SPDX 2.3: " + errors);
    assertEquals("2023-11-14T22:13:20Z", spdx.path("creationInfo").path("created").asText());

    // the same packages as the CycloneDX SBOM's components, by purl and checksum
    assertEquals(sbom.path("components").size() + 1, spdx.path("packages").size());
    Set<String> cdx = new TreeSet<>();
    for (JsonNode c : sbom.path("components")) {
      cdx.add(c.path("purl").asText("") + " " + (sha256Of(c) == null ? "" : sha256Of(c)));
    }
    cdx.add(
        sbom.path("metadata").path("component").path("purl").asText()
            + " "
            + sha256Of(sbom.path("metadata").path("component")));
    Set<String> packages = new TreeSet<>();
    Map<String, Integer> purposes = new TreeMap<>();
    for (JsonNode p : spdx.path("packages")) {
      String purl = p.path("externalRefs").path(0).path("referenceLocator").asText("");
      String sum = p.path("checksums").path(0).path("checksumValue").asText("");
      packages.add(purl + " " + sum);
      purposes.merge(p.path("primaryPackagePurpose").asText(), 1, Integer::sum);
    }
    assertEquals(cdx, packages);
    assertEquals(1, purposes.get("OPERATING_SYSTEM"), purposes.toString());
    assertEquals(2, purposes.get("CONTAINER"), "the image and its base: " + purposes);
    assertEquals(
        sbom.path("dependencies").findValues("dependsOn").stream().mapToInt(JsonNode::size).sum()
            + 1,
        spdx.path("relationships").size(),
        "every edge, and the document's DESCRIBES");

    // an SBOM left beside an archive built again without one describes another image: refused
    Path stale = work.resolve("stale.tar");
    Files.copy(work.resolve("a.cdx.json"), work.resolve("stale.cdx.json"));
    berth(
            work,
            "build",
            ContainerTestEnv.examples().resolve("minilm/berth.yaml").toString(),
            "--to",
            "tar:" + stale,
            "--base",
            "tar:" + work.resolve("base.tar"),
            "--runtime",
            "base",
            "--no-sbom",
            "--cache-dir",
            work.resolve("cache").toString())
        .ok();
    ContainerTestEnv.Result refused = ContainerTestEnv.berth(work, "sbom", "tar:" + stale);
    assertEquals(2, refused.code(), refused.err());
    assertTrue(refused.err().contains("describes the image"), refused.err());

    // a wrong format is refused by name, with exit code 2
    ContainerTestEnv.Result wrong =
        ContainerTestEnv.berth(work, "sbom", "tar:" + work.resolve("a.tar"), "--format", "swid");
    assertEquals(2, wrong.code(), wrong.err());
    assertTrue(wrong.err().contains("cyclonedx, spdx"), wrong.err());
  }

  @Test
  void everyJarAndNativeLibraryOfTheImageIsListedAndNothingElse() {
    Map<String, String> listed = new TreeMap<>();
    for (JsonNode c : sbom.path("components")) {
      for (JsonNode o : c.path("evidence").path("occurrences")) {
        String location = o.path("location").asText();
        String sha = sha256Of(c);
        if (sha != null) {
          listed.put(location, sha);
        }
      }
    }
    Set<String> expected = new TreeSet<>();
    for (String path : imageFiles.keySet()) {
      String name = path.substring(path.lastIndexOf('/') + 1);
      if (name.endsWith(".jar") || isNative(name)) {
        expected.add(path);
      }
    }
    expected.addAll(jarNatives.keySet());
    assertTrue(expected.size() > 100, "the image holds jars and libraries: " + expected.size());
    Set<String> missing = new TreeSet<>(expected);
    missing.removeAll(listed.keySet());
    assertTrue(missing.isEmpty(), "in the image but not in its SBOM: " + missing);

    // each file the SBOM names is in the image, with the bytes it says
    for (Map.Entry<String, String> e : listed.entrySet()) {
      String actual =
          imageFiles.containsKey(e.getKey())
              ? imageFiles.get(e.getKey())
              : jarNatives.get(e.getKey());
      assertNotNull(actual, "in the SBOM but not in the image: " + e.getKey());
      assertEquals(actual, e.getValue(), "sha256 of " + e.getKey());
    }
    // the base's second layer deleted this jar of its first
    assertFalse(listed.containsKey("/opt/legacy/old.jar"));
    assertTrue(listed.containsKey("/opt/legacy/kept.jar"));
    assertTrue(
        listed.keySet().stream()
            .anyMatch(
                l ->
                    l.matches(
                        "/opt/berth/lib/onnxruntime-.*\\.jar!/.*linux-x64/libonnxruntime.so")),
        "ONNX Runtime's library inside its jar");
  }

  @Test
  void modelFilesAreListedWithTheirSha256UnderTheirModelVersion() throws Exception {
    Path version = ContainerTestEnv.examples().resolve("models/minilm/1");
    List<Path> files;
    try (Stream<Path> walk = Files.walk(version)) {
      files = walk.filter(Files::isRegularFile).sorted().toList();
    }
    assertFalse(files.isEmpty());
    JsonNode model = component("model:minilm/1");
    assertEquals("machine-learning-model", model.path("type").asText());
    assertEquals("1", model.path("version").asText());
    assertTrue(property(model, "dev.berth:model.manifest-digest").startsWith("sha256:"));
    Set<String> children = dependsOn("model:minilm/1");
    for (Path f : files) {
      String path = "/opt/berth/models/minilm/1/" + version.relativize(f).toString();
      JsonNode c = component(path);
      String sha = sha256(Files.readAllBytes(f));
      assertEquals(sha, sha256Of(c), path);
      assertEquals(sha, imageFiles.get(path), "the image holds " + path);
      assertTrue(children.contains(path), path + " belongs to model:minilm/1");
    }
  }

  @Test
  void jarsHaveMavenCoordinatesLicencesAndTheirLibrariesTheirUpstreamVersions() {
    int named = 0;
    for (JsonNode c : sbom.path("components")) {
      String ref = c.path("bom-ref").asText();
      if (ref.startsWith("/opt/berth/lib/") && ref.endsWith(".jar")) {
        assertTrue(property(c, "dev.berth:identified-by").startsWith("berth-bom"), ref);
        assertTrue(c.path("purl").asText().startsWith("pkg:maven/"), ref);
        named++;
      }
    }
    assertTrue(named > 50, "jars from Berth's dependency BOM: " + named);

    JsonNode ort = componentMatching("/opt/berth/lib/onnxruntime-[0-9.]+\\.jar");
    assertEquals("com.microsoft.onnxruntime", ort.path("group").asText());
    assertTrue(
        ort.path("purl").asText().startsWith("pkg:maven/com.microsoft.onnxruntime/onnxruntime@"));
    assertTrue(ort.path("licenses").toString().contains("MIT"), ort.path("licenses").toString());
    JsonNode libOrt =
        component(
            ort.path("bom-ref").asText() + "!/ai/onnxruntime/native/linux-x64/libonnxruntime.so");
    assertEquals(ort.path("version").asText(), libOrt.path("version").asText());
    assertEquals("onnxruntime", property(libOrt, "dev.berth:native.project"));
    assertTrue(dependsOn(ort.path("bom-ref").asText()).contains(libOrt.path("bom-ref").asText()));

    JsonNode tokenizers = componentMatching("/opt/berth/lib/tokenizers-[0-9.]+\\.jar");
    JsonNode libTokenizers =
        component(
            tokenizers.path("bom-ref").asText() + "!/native/lib/linux-x86_64/cpu/libtokenizers.so");
    // DJL's jar says which Hugging Face tokenizers it carries (tokenizers.properties)
    assertTrue(
        libTokenizers.path("version").asText().matches("0\\.[0-9]+\\.[0-9]+"),
        libTokenizers.toString());

    // Berth's own modules, and its launcher
    JsonNode server = componentMatching("/opt/berth/lib/berth-server-.*\\.jar");
    assertTrue(server.path("purl").asText().startsWith("pkg:maven/dev.berth/berth-server@"));
    JsonNode launcher = component("/opt/berth/berth.jar");
    assertTrue(launcher.path("purl").asText().startsWith("pkg:maven/dev.berth/berth-cli@"));
  }

  @Test
  void theBaseItsDebianPackagesAndBothJavaRuntimesAreNamed() throws Exception {
    JsonNode base = component("base-image");
    assertEquals("container", base.path("type").asText());
    assertEquals(baseImageId, base.path("version").asText(), "a docker save archive: its image id");
    assertEquals("tar:" + work.resolve("base.tar"), base.path("name").asText());

    Map<String, String> os = keyValues(Files.readString(Path.of("/etc/os-release")));
    JsonNode system = component("operating-system");
    assertEquals(os.get("ID"), system.path("name").asText());
    assertEquals(os.get("VERSION_ID"), system.path("version").asText());

    Set<String> installed = new TreeSet<>();
    for (String stanza : Files.readString(Path.of("/var/lib/dpkg/status")).split("\n\n")) {
      Map<String, String> f = fields(stanza);
      if (f.getOrDefault("Status", "").endsWith(" installed")) {
        installed.add(f.get("Package") + " " + f.get("Version") + " " + f.get("Architecture"));
      }
    }
    Set<String> listed = new TreeSet<>();
    for (JsonNode c : sbom.path("components")) {
      if (c.path("purl").asText().startsWith("pkg:deb/")) {
        listed.add(
            c.path("name").asText()
                + " "
                + c.path("version").asText()
                + " "
                + c.path("purl").asText().replaceAll(".*[?&]arch=([^&]+).*", "$1"));
        assertTrue(dependsOn("base-image").contains(c.path("bom-ref").asText()));
      }
    }
    assertEquals(installed, listed);

    Map<String, String> hostRelease = keyValues(Files.readString(hostJavaHome.resolve("release")));
    JsonNode baseJava = component("java:" + JAVA_HOME_IN_BASE);
    assertEquals("platform", baseJava.path("type").asText());
    assertEquals(hostRelease.get("JAVA_RUNTIME_VERSION"), baseJava.path("version").asText());
    assertTrue(dependsOn("base-image").contains("java:" + JAVA_HOME_IN_BASE));
    assertTrue(
        dependsOn("java:" + JAVA_HOME_IN_BASE).contains(JAVA_HOME_IN_BASE + "/lib/libjava.so"));

    JsonNode jlinked = component("java:/opt/berth/java");
    assertEquals("jlink", property(jlinked, "dev.berth:java.linked-by"));
    assertEquals(Runtime.version().toString(), jlinked.path("version").asText());
    Set<String> modules = new TreeSet<>();
    for (JsonNode p : jlinked.path("properties")) {
      if (p.path("name").asText().equals("dev.berth:java.module")) {
        modules.add(p.path("value").asText());
      }
    }
    assertTrue(modules.containsAll(List.of("java.base", "java.net.http", "jdk.management")));
    assertTrue(dependsOn("image").contains("java:/opt/berth/java"));
    assertTrue(dependsOn("java:/opt/berth/java").contains("/opt/berth/java/lib/server/libjvm.so"));
  }

  @Test
  void theSameInputsGiveTheSameBytes() {
    assertArrayEquals(sbomBytes, secondSbomBytes);
    String serial = sbom.path("serialNumber").asText();
    assertTrue(serial.matches("urn:uuid:[0-9a-f-]{36}"), serial);
    assertFalse(sbom.path("metadata").has("timestamp"));
    List<String> refs = new ArrayList<>();
    sbom.path("components").forEach(c -> refs.add(c.path("bom-ref").asText()));
    assertEquals(refs.stream().sorted().toList(), refs, "components sorted by bom-ref");
  }

  @Test
  void aPushedImageHasTheSameSbomAsItsArchive() throws Exception {
    // a real registry (Debian's docker-registry); the image Berth pushes is read back from the
    // same image written into an archive on this machine, whose digest must be the pushed one
    try (TestRegistry registry =
        TestRegistry.start(Files.createDirectories(work.resolve("registry")))) {
      String ref = registry.address() + "/sbom/minilm:1";
      Path pushed = work.resolve("pushed.cdx.json");
      ContainerTestEnv.Result r =
          berth(
                  work,
                  "build",
                  ContainerTestEnv.examples().resolve("minilm/berth.yaml").toString(),
                  "--to",
                  ref,
                  "--base",
                  "tar:" + work.resolve("base.tar"),
                  "--runtime",
                  "jlink",
                  "--no-class-data-sharing",
                  "--cache-dir",
                  work.resolve("cache").toString(),
                  "--sbom",
                  pushed.toString())
              .ok();
      assertTrue(
          r.out()
              .contains(
                  "digest " + sbom.path("metadata").path("component").path("version").asText()),
          r.out());
      assertTrue(r.out().contains("sbom   " + pushed), r.out());
      assertArrayEquals(sbomBytes, Files.readAllBytes(pushed));

      // berth sbom reads it back from the registry, in either format
      Map<String, String> epoch = Map.of("SOURCE_DATE_EPOCH", "1700000000");
      assertEquals(
          new String(sbomBytes, java.nio.charset.StandardCharsets.UTF_8),
          berth(work, "sbom", ref).ok().out());
      assertEquals(
          berth(work, epoch, "sbom", "tar:" + work.resolve("a.tar"), "--format", "spdx").ok().out(),
          berth(work, epoch, "sbom", ref, "--format", "spdx").ok().out());

      // that image as the base of another: the SBOM names the digest jib-core pulled it by
      ContainerTestEnv.Result again =
          berth(
                  work,
                  "build",
                  ContainerTestEnv.examples().resolve("minilm/berth.yaml").toString(),
                  "--to",
                  "tar:" + work.resolve("on-pushed.tar"),
                  "--base",
                  ref,
                  "--runtime",
                  "jlink",
                  "--no-class-data-sharing",
                  "--cache-dir",
                  work.resolve("cache").toString())
              .ok();
      JsonNode onPushed = JSON.readTree(work.resolve("on-pushed.cdx.json").toFile());
      JsonNode base = null;
      for (JsonNode c : onPushed.path("components")) {
        if (c.path("bom-ref").asText().equals("base-image")) {
          base = c;
        }
      }
      assertNotNull(base, again.out());
      assertEquals(ref, base.path("name").asText());
      assertEquals(
          sbom.path("metadata").path("component").path("version").asText(),
          base.path("version").asText());
    }
  }

  // ---- the image, as skopeo and umoci unpack it

  /**
   * Unpacks the image with tools Berth did not write: skopeo copies the OCI archive into an OCI
   * layout, umoci applies its layers (whiteouts included) into a root file system, which is then
   * read file by file.
   */
  private void readImage(Path archive) throws Exception {
    Path layout = work.resolve("unpacked/layout");
    Path bundle = work.resolve("unpacked/bundle");
    Files.createDirectories(layout.getParent());
    ContainerTestEnv.skopeo(
            work, "copy", "-q", "oci-archive:" + archive, "oci:" + layout + ":image")
        .ok();
    ContainerTestEnv.exec(
            work,
            List.of(
                "umoci", "unpack", "--rootless", "--image", layout + ":image", bundle.toString()))
        .ok();
    Path rootfs = bundle.resolve("rootfs");
    Map<String, String> files = new TreeMap<>();
    Map<String, String> natives = new TreeMap<>();
    List<Path> regular;
    try (Stream<Path> walk = Files.walk(rootfs)) {
      regular = walk.filter(f -> Files.isRegularFile(f, LinkOption.NOFOLLOW_LINKS)).toList();
    }
    for (Path f : regular) {
      String path = "/" + rootfs.relativize(f);
      files.put(path, sha256(Files.readAllBytes(f)));
      if (path.endsWith(".jar")) {
        natives.putAll(nativesIn(path, f));
      }
    }
    imageFiles = files;
    jarNatives = natives;
  }

  private static Map<String, String> nativesIn(String jarPath, Path jar) throws IOException {
    Map<String, String> out = new TreeMap<>();
    try (ZipFile zip = new ZipFile(jar.toFile())) {
      Enumeration<? extends ZipEntry> entries = zip.entries();
      while (entries.hasMoreElements()) {
        ZipEntry z = entries.nextElement();
        String name = z.getName().substring(z.getName().lastIndexOf('/') + 1);
        if (!z.isDirectory() && isNative(name)) {
          try (InputStream in = zip.getInputStream(z)) {
            out.put(jarPath + "!/" + z.getName(), sha256(in.readAllBytes()));
          }
        }
      }
    }
    return out;
  }

  private static boolean isNative(String name) {
    return name.endsWith(".so")
        || name.contains(".so.")
        || name.endsWith(".dll")
        || name.endsWith(".dylib")
        || name.endsWith(".jnilib");
  }

  // ---- the base image: this machine's files in a docker save archive

  private void writeBase(Path tar) throws IOException {
    Path zlib;
    try (Stream<Path> libs = Files.list(Path.of("/usr/lib/x86_64-linux-gnu"))) {
      zlib =
          libs.filter(p -> p.getFileName().toString().matches("libz\\.so\\.1\\.[0-9.]+"))
              .findFirst()
              .orElseThrow();
    }
    Path someJar;
    try (Stream<Path> jars = Files.list(BerthProcess.jar().getParent().resolve("lib"))) {
      someJar =
          jars.filter(p -> p.getFileName().toString().startsWith("slf4j-api-"))
              .findFirst()
              .orElseThrow();
    }
    Map<String, byte[]> first = new LinkedHashMap<>();
    first.put("etc/os-release", Files.readAllBytes(Path.of("/etc/os-release")));
    first.put("var/lib/dpkg/status", Files.readAllBytes(Path.of("/var/lib/dpkg/status")));
    first.put("usr/lib/x86_64-linux-gnu/" + zlib.getFileName(), Files.readAllBytes(zlib));
    first.put(
        JAVA_HOME_IN_BASE.substring(1) + "/release",
        Files.readAllBytes(hostJavaHome.resolve("release")));
    first.put(
        JAVA_HOME_IN_BASE.substring(1) + "/lib/libjava.so",
        Files.readAllBytes(hostJavaHome.resolve("lib/libjava.so")));
    first.put("opt/legacy/old.jar", Files.readAllBytes(someJar));
    first.put("opt/legacy/kept.jar", Files.readAllBytes(someJar));
    byte[] layer1 = layerTar(first, Map.of("usr/lib/x86_64-linux-gnu/libz.so.1", zlib));
    Map<String, byte[]> second = new LinkedHashMap<>();
    second.put("opt/legacy/.wh.old.jar", new byte[0]);
    byte[] layer2 = layerTar(second, Map.of());

    ObjectNode config = JSON.createObjectNode();
    config.put("architecture", "amd64");
    config.put("os", "linux");
    config.putObject("config").putArray("Env").add("PATH=/usr/bin:/bin");
    ObjectNode rootfs = config.putObject("rootfs");
    rootfs.put("type", "layers");
    rootfs.putArray("diff_ids").add("sha256:" + sha256(layer1)).add("sha256:" + sha256(layer2));
    byte[] configBytes = JSON.writeValueAsBytes(config);
    baseImageId = "sha256:" + sha256(configBytes);
    ArrayNode manifest = JSON.createArrayNode();
    ObjectNode image = manifest.addObject();
    image.put("Config", "config.json");
    image.putArray("RepoTags").add("berth-test/sbom-base:1");
    image.putArray("Layers").add("layer1.tar").add("layer2.tar");

    try (TarArchiveOutputStream out = new TarArchiveOutputStream(Files.newOutputStream(tar))) {
      out.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
      put(out, "manifest.json", JSON.writeValueAsBytes(manifest));
      put(out, "config.json", configBytes);
      put(out, "layer1.tar", layer1);
      put(out, "layer2.tar", layer2);
    }
  }

  private static byte[] layerTar(Map<String, byte[]> files, Map<String, Path> symlinks)
      throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (TarArchiveOutputStream out = new TarArchiveOutputStream(bytes)) {
      out.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
      for (Map.Entry<String, byte[]> f : files.entrySet()) {
        put(out, f.getKey(), f.getValue());
      }
      for (Map.Entry<String, Path> l : symlinks.entrySet()) {
        TarArchiveEntry link = new TarArchiveEntry(l.getKey(), TarArchiveEntry.LF_SYMLINK);
        link.setLinkName(l.getValue().getFileName().toString());
        out.putArchiveEntry(link);
        out.closeArchiveEntry();
      }
    }
    return bytes.toByteArray();
  }

  private static void put(TarArchiveOutputStream out, String name, byte[] bytes)
      throws IOException {
    TarArchiveEntry e = new TarArchiveEntry(name);
    e.setSize(bytes.length);
    e.setMode(0644);
    e.setModTime(0);
    out.putArchiveEntry(e);
    new ByteArrayInputStream(bytes).transferTo(out);
    out.closeArchiveEntry();
  }

  // ---- reading the SBOM

  private JsonNode component(String ref) {
    for (JsonNode c : sbom.path("components")) {
      if (c.path("bom-ref").asText().equals(ref)) {
        return c;
      }
    }
    throw new AssertionError("no component " + ref + " in the SBOM");
  }

  private JsonNode componentMatching(String regex) {
    for (JsonNode c : sbom.path("components")) {
      if (c.path("bom-ref").asText().matches(regex)) {
        return c;
      }
    }
    throw new AssertionError("no component matching " + regex + " in the SBOM");
  }

  private Set<String> dependsOn(String ref) {
    for (JsonNode d : sbom.path("dependencies")) {
      if (d.path("ref").asText().equals(ref)) {
        Set<String> out = new TreeSet<>();
        d.path("dependsOn").forEach(n -> out.add(n.asText()));
        return out;
      }
    }
    throw new AssertionError("no dependencies of " + ref + " in the SBOM");
  }

  private static String property(JsonNode component, String name) {
    for (JsonNode p : component.path("properties")) {
      if (p.path("name").asText().equals(name)) {
        return p.path("value").asText();
      }
    }
    return "";
  }

  private static String sha256Of(JsonNode component) {
    for (JsonNode h : component.path("hashes")) {
      if (h.path("alg").asText().equals("SHA-256")) {
        return h.path("content").asText();
      }
    }
    return null;
  }

  private static Map<String, String> keyValues(String text) {
    Map<String, String> out = new LinkedHashMap<>();
    for (String line : text.split("\n")) {
      int eq = line.indexOf('=');
      if (eq > 0) {
        out.put(line.substring(0, eq), line.substring(eq + 1).replaceAll("^\"|\"$", ""));
      }
    }
    return out;
  }

  private static Map<String, String> fields(String stanza) {
    Map<String, String> out = new LinkedHashMap<>();
    for (String line : stanza.split("\n")) {
      int colon = line.indexOf(':');
      if (colon > 0 && !line.startsWith(" ")) {
        out.put(line.substring(0, colon), line.substring(colon + 1).strip());
      }
    }
    return out;
  }

  private static String sha256(byte[] bytes) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
