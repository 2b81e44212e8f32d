package dev.berth.image;

import com.fasterxml.jackson.core.util.DefaultIndenter;
import com.fasterxml.jackson.core.util.DefaultPrettyPrinter;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.berth.api.BerthException;
import dev.berth.runtime.ModelRepository;
import dev.berth.runtime.ServiceSpec;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.StringReader;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.DigestInputStream;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.SortedMap;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.UUID;
import java.util.function.Consumer;

/**
 * The CycloneDX 1.6 SBOM (JSON) of an image Berth built, read from the image's own layers: the base
 * image (by digest) with its operating system and Debian packages (from dpkg's status database),
 * the Java runtime (a jlink runtime's modules and the JDK it was linked from, or the base's Java),
 * every jar with its Maven coordinates, licences and sha256, the native libraries in the jars and
 * on the file system, Berth's own modules, and every model version file with its sha256 (and the
 * model's signed manifest digest when it is signed).
 *
 * <pre>{@code
 * byte[] json = ImageSbom.of(plan).base("eclipse-temurin:21-jre", baseDigest).describe(archive);
 * }</pre>
 *
 * <p>Jars are named by the dependency BOM Berth's build wrote into its launcher ({@value
 * #DEPENDENCIES_RESOURCE} in {@code berth.jar}, made by the CycloneDX Maven plugin), matched by
 * sha256, else by file name; a jar it does not list is named by its {@code pom.properties}, else by
 * its file name, and listed all the same. The same image gives the same bytes: no clock time, a
 * serial number derived from the image's config digest, components sorted by {@code bom-ref}.
 */
public final class ImageSbom {
  /** The CycloneDX version written. */
  public static final String SPEC_VERSION = "1.6";

  /** The media type of the document. */
  public static final String MEDIA_TYPE = "application/vnd.cyclonedx+json";

  /** How the SBOM of an image archive is named beside it: {@code IMAGE.tar} → IMAGE.cdx.json. */
  public static final String FILE_SUFFIX = ".cdx.json";

  /** Where Berth's launcher jar carries the dependency BOM of its runtime class path. */
  public static final String DEPENDENCIES_RESOURCE = "META-INF/berth/dependencies.cdx.json";

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String LAUNCHER = ImagePlan.HOME + "/berth.jar";
  private static final String LIB = ImagePlan.HOME + "/lib/";
  private static final String ROOT = "image";
  private static final String BASE = "base-image";
  private static final String OS = "operating-system";
  private static final String P = "dev.berth:";

  private final ImagePlan plan;
  private String baseName;
  private String baseDigest;
  private Consumer<String> warnings = line -> {};
  private LayerScanCache layerCache;
  private boolean layerCacheFailed;

  ImageSbom(ImagePlan plan) {
    this.plan = plan;
    this.baseName = plan.service().image().base();
  }

  /** The SBOM of an image built from this plan. */
  public static ImageSbom of(ImagePlan plan) {
    return new ImageSbom(plan);
  }

  /**
   * The base image as the build named it, and its digest (null when unknown): the manifest digest
   * of a registry or OCI archive base, the image id of an older {@code docker save} archive.
   */
  public ImageSbom base(String name, String digest) {
    this.baseName = name;
    this.baseDigest = digest;
    return this;
  }

  /** Receives a line for each thing the SBOM could not say (e.g. Berth built without its BOM). */
  public ImageSbom warnings(Consumer<String> warnings) {
    this.warnings = warnings;
    return this;
  }

  /**
   * Keeps what each layer holds under this directory, by the layer's digest, and reads it there
   * instead of the layer when a later image has the same layer (a warm build's layers all do). The
   * SBOM is the same bytes with or without it; an entry that cannot be read is scanned again.
   */
  public ImageSbom layerCache(Path dir) {
    this.layerCache = dir == null ? null : new LayerScanCache(dir);
    return this;
  }

  /** Where the SBOM of an image archive goes: {@code IMAGE.tar} → {@code IMAGE.cdx.json}. */
  public static Path besideArchive(Path archive) {
    String name = archive.getFileName().toString();
    String stem = name.endsWith(".tar") ? name.substring(0, name.length() - 4) : name;
    return archive.resolveSibling(stem + FILE_SUFFIX);
  }

  /**
   * The SBOM of the image in an OCI archive Berth wrote (a {@code tar:} target). With a {@link
   * #layerCache}, only the layers it does not hold are read from the archive.
   */
  public byte[] describe(Path archive) {
    OciArchive.Layout layout = OciArchive.layout(archive);
    Map<String, ImageFileSystem.Layer> scanned = new HashMap<>();
    Set<String> unscanned = new HashSet<>();
    for (String digest : new LinkedHashSet<>(layout.layers())) {
      ImageFileSystem.Layer cached = layerCache == null ? null : layerCache.get(digest);
      if (cached != null) {
        scanned.put(digest, cached);
      } else {
        unscanned.add(digest);
      }
    }
    if (!unscanned.isEmpty()) {
      OciArchive.readBlobs(
          archive, unscanned, (digest, blob) -> scanned.put(digest, scan(digest, blob)));
    }
    List<ImageFileSystem.Layer> layers = new ArrayList<>();
    for (int i = 0; i < layout.layers().size(); i++) {
      ImageFileSystem.Layer layer = scanned.get(layout.layers().get(i));
      if (layer == null) {
        throw new BerthException(
            archive + " lacks the layer " + layout.layers().get(i) + " its manifest names");
      }
      layers.add(atIndex(layer, i));
    }
    return describe(layout, layers);
  }

  /**
   * Scans one layer blob and, with a {@link #layerCache}, keeps the scan there when the blob's
   * bytes have the digest the archive names it by (so an entry always describes its digest).
   */
  private ImageFileSystem.Layer scan(String digest, InputStream blob) throws IOException {
    if (layerCache == null || !LayerScanCache.keeps(digest)) {
      return ImageFileSystem.scan(blob, -1);
    }
    MessageDigest sha = ImageFileSystem.sha256();
    DigestInputStream hashing = new DigestInputStream(blob, sha);
    ImageFileSystem.Layer layer = ImageFileSystem.scan(hashing, -1);
    hashing.transferTo(OutputStream.nullOutputStream());
    if (digest.equals("sha256:" + HexFormat.of().formatHex(sha.digest()))) {
      try {
        layerCache.put(digest, layer);
      } catch (IOException e) {
        if (!layerCacheFailed) {
          // once: a cache that cannot be written would otherwise say so for every layer
          layerCacheFailed = true;
          warnings.accept(
              "cannot keep what the SBOM read from layer "
                  + digest
                  + " in "
                  + layerCache.entry(digest)
                  + " ("
                  + e.getMessage()
                  + "); the next SBOM reads the layers it could not keep again");
        }
      }
    }
    return layer;
  }

  /** A layer's files, marked with the layer's index (one blob can be several identical layers). */
  private static ImageFileSystem.Layer atIndex(ImageFileSystem.Layer layer, int index) {
    Map<String, ImageFileSystem.File> files = new LinkedHashMap<>();
    layer
        .files()
        .forEach(
            (path, f) ->
                files.put(
                    path,
                    new ImageFileSystem.File(
                        f.path(), index, f.sha256(), f.size(), f.jar(), f.text())));
    return new ImageFileSystem.Layer(files, layer.otherPaths(), layer.whiteouts(), layer.opaque());
  }

  byte[] describe(OciArchive.Layout layout, List<ImageFileSystem.Layer> layers) {
    int ownLayers = (int) plan.layers().stream().filter(l -> !l.files().isEmpty()).count();
    int baseLayers = layout.layers().size() - ownLayers;
    if (baseLayers < 0) {
      throw new BerthException(
          "the image has "
              + layout.layers().size()
              + " layers, fewer than the "
              + ownLayers
              + " Berth planned; it is not the image of this plan");
    }
    SortedMap<String, ImageFileSystem.File> files = ImageFileSystem.flatten(layers);
    Graph graph = new Graph();
    DependencyBom bom = DependencyBom.in(files.get(LAUNCHER));
    if (bom == null) {
      warnings.accept(
          "Berth's launcher carries no dependency BOM ("
              + DEPENDENCIES_RESOURCE
              + "; a build of Berth with -Dcyclonedx.skip leaves it out): the SBOM names jars"
              + " by their pom.properties or file names, without licences");
    }

    ObjectNode root = rootComponent(layout);
    graph.add(ROOT, null);
    graph.add(BASE, ROOT);
    Component base = baseComponent(layout.layers().subList(0, baseLayers));
    graph.components.put(BASE, base);

    Map<String, String> os = osRelease(files);
    if (os != null) {
      graph.components.put(OS, osComponent(os));
      graph.add(OS, BASE);
    }
    for (Component deb : debianPackages(files, os)) {
      if (!graph.components.containsKey(deb.ref)) {
        graph.components.put(deb.ref, deb);
        graph.add(deb.ref, BASE);
      }
    }

    // Java runtimes: a jlink runtime Berth brings, or the base's (each has a 'release' file)
    Map<String, String> javaHomes = new TreeMap<>();
    for (ImageFileSystem.File f : files.values()) {
      if (f.name().equals("release") && f.text() != null) {
        Map<String, String> release = javaRelease(f.text());
        if (release.containsKey("JAVA_VERSION")) {
          String home = f.path().substring(0, f.path().length() - "/release".length());
          String ref = "java:" + home;
          boolean own = f.layer() >= baseLayers;
          javaHomes.put(home, ref);
          graph.components.put(ref, javaComponent(ref, home, release, own));
          graph.add(ref, own ? ROOT : BASE);
        }
      }
    }

    Map<String, String> modelVersions = new TreeMap<>();
    for (ServiceSpec.ServiceModel model : plan.service().models()) {
      for (ModelRepository.Version version : model.versions()) {
        String dir = ImagePlan.MODELS + "/" + model.name() + "/" + version.label();
        String ref = "model:" + model.name() + "/" + version.label();
        modelVersions.put(dir + "/", ref);
        graph.components.put(ref, modelComponent(ref, model.name(), version.label()));
        graph.add(ref, ROOT);
      }
    }

    for (ImageFileSystem.File f : files.values()) {
      boolean own = f.layer() >= baseLayers;
      String javaHome = within(javaHomes, f.path());
      String parent = javaHome != null ? javaHome : own ? ROOT : BASE;
      if (ImageFileSystem.isJar(f.name())) {
        addJar(graph, f, bom, parent);
      } else if (ImageFileSystem.isNative(f.name())) {
        Component lib = fileComponent("library", f, f.path());
        if (javaHome != null) {
          lib.version = graph.components.get(javaHome).version;
        }
        graph.components.put(lib.ref, lib);
        graph.add(lib.ref, parent);
      } else if (own && javaHome == null) {
        String model = within(modelVersions, f.path());
        Component file = fileComponent("file", f, f.path());
        graph.components.put(file.ref, file);
        graph.add(file.ref, model != null ? model : ROOT);
      }
    }

    ObjectNode doc = JSON.createObjectNode();
    doc.put("bomFormat", "CycloneDX");
    doc.put("specVersion", SPEC_VERSION);
    doc.put(
        "serialNumber",
        "urn:uuid:"
            + UUID.nameUUIDFromBytes(
                ("berth image sbom " + layout.configDigest()).getBytes(StandardCharsets.UTF_8)));
    doc.put("version", 1);
    ObjectNode metadata = doc.putObject("metadata");
    metadata.putArray("lifecycles").addObject().put("phase", "build");
    ObjectNode tool = metadata.putObject("tools").putArray("components").addObject();
    tool.put("type", "application");
    tool.put("group", "dev.berth");
    tool.put("name", "berth");
    tool.put("version", plan.labels().getOrDefault("dev.berth.version", "dev"));
    metadata.set("component", root);
    ArrayNode props = metadata.putArray("properties");
    property(
        props, "dependency-bom", bom == null ? "missing" : "berth.jar!/" + DEPENDENCIES_RESOURCE);
    property(props, "base-layers", Integer.toString(baseLayers));
    property(props, "layers", Integer.toString(layout.layers().size()));

    ArrayNode components = doc.putArray("components");
    for (Component c : graph.components.values()) {
      components.add(c.toJson());
    }
    ArrayNode dependencies = doc.putArray("dependencies");
    for (Map.Entry<String, Set<String>> e : graph.edges.entrySet()) {
      ObjectNode d = dependencies.addObject();
      d.put("ref", e.getKey());
      if (!e.getValue().isEmpty()) {
        ArrayNode on = d.putArray("dependsOn");
        e.getValue().forEach(on::add);
      }
    }
    return pretty(doc, "the SBOM");
  }

  /**
   * A document as the SBOMs are written: two-space indents, one line a value, a newline at the end
   * (the same bytes on every machine).
   */
  static byte[] pretty(ObjectNode doc, String what) {
    try {
      DefaultPrettyPrinter pretty =
          new DefaultPrettyPrinter()
              .withObjectIndenter(new DefaultIndenter("  ", "\n"))
              .withArrayIndenter(new DefaultIndenter("  ", "\n"));
      byte[] body = JSON.writer(pretty).writeValueAsBytes(doc);
      byte[] out = java.util.Arrays.copyOf(body, body.length + 1);
      out[body.length] = '\n';
      return out;
    } catch (IOException e) {
      throw new BerthException("cannot write " + what + ": " + e.getMessage(), e);
    }
  }

  private ObjectNode rootComponent(OciArchive.Layout layout) {
    ObjectNode root = JSON.createObjectNode();
    root.put("bom-ref", ROOT);
    root.put("type", "container");
    String name = plan.service().name();
    root.put("name", name);
    root.put("version", layout.manifestDigest());
    root.put("description", "the image of the model service " + name + ", built by berth build");
    hashOf(root, layout.manifestDigest());
    root.put("purl", "pkg:oci/" + name + "@" + encode(layout.manifestDigest()));
    ArrayNode props = root.putArray("properties");
    property(props, "image.config-digest", layout.configDigest());
    property(props, "service", name);
    return root;
  }

  private Component baseComponent(List<String> layerDigests) {
    Component c = new Component(BASE, "container", baseName);
    c.version = baseDigest;
    c.description = "the base image";
    if (baseDigest != null && baseDigest.startsWith("sha256:")) {
      c.sha256 = baseDigest.substring("sha256:".length());
      String ref = baseName.startsWith("docker://") ? baseName.substring(9) : baseName;
      if (!ref.startsWith("tar:")) {
        // pkg:oci/NAME@DIGEST?repository_url=REGISTRY/REPOSITORY
        String repository = ref.contains("@") ? ref.substring(0, ref.indexOf('@')) : ref;
        int tag = repository.lastIndexOf(':');
        if (tag > repository.lastIndexOf('/')) {
          repository = repository.substring(0, tag);
        }
        String last = repository.substring(repository.lastIndexOf('/') + 1);
        c.purl =
            "pkg:oci/"
                + encode(last)
                + "@"
                + encode(baseDigest)
                + "?repository_url="
                + encode(repository);
      }
    }
    for (String layer : layerDigests) {
      c.properties.add(new String[] {P + "base.layer", layer});
    }
    return c;
  }

  private static Component osComponent(Map<String, String> os) {
    Component c = new Component(OS, "operating-system", os.getOrDefault("ID", "linux"));
    c.version = os.get("VERSION_ID");
    c.description = os.get("PRETTY_NAME");
    return c;
  }

  private static Component javaComponent(
      String ref, String home, Map<String, String> release, boolean own) {
    Component c = new Component(ref, "platform", "java-runtime");
    String runtime = release.getOrDefault("JAVA_RUNTIME_VERSION", release.get("JAVA_VERSION"));
    c.version = runtime;
    c.publisher = release.get("IMPLEMENTOR");
    c.description =
        own
            ? "the Java runtime berth build linked with jlink from the JDK " + runtime
            : "the base image's Java runtime";
    c.location = home;
    c.properties.add(new String[] {P + "java.home", home});
    c.properties.add(new String[] {P + "java.version", release.get("JAVA_VERSION")});
    if (release.containsKey("IMPLEMENTOR_VERSION")) {
      c.properties.add(
          new String[] {P + "java.implementor-version", release.get("IMPLEMENTOR_VERSION")});
    }
    c.properties.add(new String[] {P + "java.linked-by", own ? "jlink" : "base image"});
    String modules = release.get("MODULES");
    if (modules != null) {
      for (String m : new TreeSet<>(List.of(modules.trim().split("\\s+")))) {
        c.properties.add(new String[] {P + "java.module", m});
      }
    }
    return c;
  }

  private Component modelComponent(String ref, String model, String version) {
    Component c = new Component(ref, "machine-learning-model", model);
    c.version = version;
    c.description = "model " + model + " version " + version;
    String prefix = "dev.berth.model." + model + ".";
    String manifest = plan.labels().get(prefix + version + ".sha256");
    if (manifest != null) {
      c.properties.add(new String[] {P + "model.manifest-digest", manifest});
    }
    String signed = plan.labels().get(prefix + "signed-manifest");
    if (signed != null) {
      c.properties.add(new String[] {P + "model.signed-manifest-digest", signed});
    }
    return c;
  }

  private static Component fileComponent(String type, ImageFileSystem.File f, String location) {
    Component c = new Component(location, type, f.name());
    c.sha256 = f.sha256();
    c.location = location;
    c.properties.add(new String[] {P + "file.size", Long.toString(f.size())});
    return c;
  }

  private static void addJar(
      Graph graph, ImageFileSystem.File f, DependencyBom bom, String parent) {
    Coordinates id = identify(f, bom);
    Component jar = new Component(f.path(), "library", id.name);
    jar.group = id.group;
    jar.version = id.version;
    jar.purl = id.purl;
    jar.licenses = id.licenses;
    jar.sha256 = f.sha256();
    jar.location = f.path();
    jar.properties.add(new String[] {P + "identified-by", id.source});
    jar.properties.add(new String[] {P + "file.size", Long.toString(f.size())});
    if (f.jar() != null && !f.jar().readable()) {
      jar.properties.add(new String[] {P + "jar.readable", "false"});
    }
    graph.components.put(jar.ref, jar);
    graph.add(jar.ref, parent);
    if (f.jar() == null) {
      return;
    }
    for (ImageFileSystem.Native n : f.jar().natives().values()) {
      String location = f.path() + "!/" + n.entry();
      Component lib =
          new Component(location, "library", n.entry().substring(n.entry().lastIndexOf('/') + 1));
      NativeVersions.Upstream upstream =
          NativeVersions.of(id.group, id.artifact, id.version, n.entry(), f.jar().metadata());
      if (upstream != null) {
        lib.version = upstream.version();
        lib.properties.add(new String[] {P + "native.project", upstream.project()});
        lib.properties.add(new String[] {P + "native.commit", upstream.commit()});
      }
      lib.sha256 = n.sha256();
      lib.location = location;
      lib.description = "native library carried by " + f.name();
      lib.properties.add(new String[] {P + "file.size", Long.toString(n.size())});
      graph.components.put(lib.ref, lib);
      graph.add(lib.ref, jar.ref);
    }
  }

  /** Who a jar is: from Berth's dependency BOM, its pom.properties, or its file name alone. */
  private static Coordinates identify(ImageFileSystem.File f, DependencyBom bom) {
    if (bom != null) {
      if (f.path().equals(LAUNCHER) && bom.launcher != null) {
        return bom.launcher.as("berth-bom");
      }
      Coordinates byHash = bom.bySha256.get(f.sha256());
      if (byHash != null) {
        return byHash.as("berth-bom");
      }
      if (f.path().startsWith(LIB)) {
        Coordinates byName = bom.byFileName.get(f.name());
        if (byName != null) {
          return byName.as("berth-bom, by file name");
        }
      }
    }
    if (f.jar() != null) {
      List<Coordinates> poms = new ArrayList<>();
      for (Map.Entry<String, byte[]> e : f.jar().metadata().entrySet()) {
        if (e.getKey().startsWith("META-INF/maven/") && e.getKey().endsWith("/pom.properties")) {
          Coordinates c = fromPomProperties(e.getValue());
          if (c != null) {
            poms.add(c);
          }
        }
      }
      Coordinates named =
          poms.stream()
              .filter(c -> f.name().startsWith(c.name + "-" + c.version))
              .findFirst()
              .orElse(poms.size() == 1 ? poms.get(0) : null);
      if (named != null) {
        return named.as("pom.properties");
      }
    }
    return new Coordinates(null, f.name(), null, null, null, null, "file name");
  }

  private static Coordinates fromPomProperties(byte[] bytes) {
    Properties p = new Properties();
    try {
      p.load(new StringReader(new String(bytes, StandardCharsets.UTF_8)));
    } catch (IOException | IllegalArgumentException e) {
      return null;
    }
    String g = p.getProperty("groupId");
    String a = p.getProperty("artifactId");
    String v = p.getProperty("version");
    if (g == null || a == null || v == null) {
      return null;
    }
    String purl = "pkg:maven/" + encode(g) + "/" + encode(a) + "@" + encode(v);
    return new Coordinates(g.strip(), a.strip(), a.strip(), v.strip(), purl, null, null);
  }

  /** The OS the base is, from its os-release file (/etc first, then /usr/lib), or null. */
  private static Map<String, String> osRelease(SortedMap<String, ImageFileSystem.File> files) {
    for (String path : List.of("/etc/os-release", "/usr/lib/os-release")) {
      ImageFileSystem.File f = files.get(path);
      if (f != null && f.text() != null) {
        return keyValues(f.text());
      }
    }
    return null;
  }

  /** Debian packages dpkg records as installed (status), or as distroless images list them. */
  private static List<Component> debianPackages(
      SortedMap<String, ImageFileSystem.File> files, Map<String, String> os) {
    List<Component> out = new ArrayList<>();
    String vendor = os != null && "ubuntu".equals(os.get("ID")) ? "ubuntu" : "debian";
    String distro =
        os != null && os.get("ID") != null && os.get("VERSION_ID") != null
            ? os.get("ID") + "-" + os.get("VERSION_ID")
            : null;
    for (ImageFileSystem.File f : files.values()) {
      boolean status = f.path().equals("/var/lib/dpkg/status");
      boolean statusD =
          f.path().startsWith("/var/lib/dpkg/status.d/") && !f.path().endsWith(".md5sums");
      if ((!status && !statusD) || f.text() == null) {
        continue;
      }
      for (Map<String, String> stanza : DebianStatus.parse(f.text())) {
        String name = stanza.get("Package");
        String version = stanza.get("Version");
        String state = stanza.get("Status");
        if (name == null || version == null) {
          continue;
        }
        if (state != null && !state.endsWith(" installed")) {
          continue;
        }
        String arch = stanza.get("Architecture");
        StringBuilder purl =
            new StringBuilder("pkg:deb/" + vendor + "/" + encode(name) + "@" + encode(version));
        String sep = "?";
        if (arch != null) {
          purl.append(sep).append("arch=").append(encode(arch));
          sep = "&";
        }
        if (distro != null) {
          purl.append(sep).append("distro=").append(encode(distro));
          sep = "&";
        }
        String upstream = upstream(stanza.get("Source"), version);
        if (upstream != null) {
          // Debian's advisories name source packages (libssl3 is built from openssl): scanners
          // read the source from this qualifier
          purl.append(sep).append("upstream=").append(encode(upstream));
        }
        Component c = new Component(purl.toString(), "library", name);
        c.version = version;
        c.purl = purl.toString();
        if (stanza.get("Source") != null) {
          c.properties.add(new String[] {P + "deb.source", stanza.get("Source")});
        }
        c.properties.add(new String[] {P + "deb.database", f.path()});
        out.add(c);
      }
    }
    return out;
  }

  /**
   * A dpkg {@code Source} field ({@code openssl} or {@code openssl (3.0.11-1)}) as a purl's {@code
   * upstream}: the name, with {@code @VERSION} when the source's version is not the package's; null
   * when there is no field.
   */
  static String upstream(String source, String version) {
    if (source == null || source.isBlank()) {
      return null;
    }
    String s = source.strip();
    int open = s.indexOf(" (");
    if (open < 0 || !s.endsWith(")")) {
      return s;
    }
    String name = s.substring(0, open).strip();
    String sourceVersion = s.substring(open + 2, s.length() - 1).strip();
    return sourceVersion.equals(version) || sourceVersion.isEmpty()
        ? name
        : name + "@" + sourceVersion;
  }

  /**
   * The manifest digest of the image in an OCI archive Berth wrote, which its SBOM names as {@code
   * metadata.component.version}.
   */
  public static String imageDigest(Path archive) {
    return OciArchive.layout(archive).manifestDigest();
  }

  private static Map<String, String> javaRelease(byte[] text) {
    return keyValues(text);
  }

  /** KEY=VALUE lines, values unquoted (os-release, a Java runtime's release). */
  private static Map<String, String> keyValues(byte[] text) {
    Map<String, String> out = new LinkedHashMap<>();
    for (String line : new String(text, StandardCharsets.UTF_8).split("\n")) {
      int eq = line.indexOf('=');
      if (eq <= 0 || line.startsWith("#")) {
        continue;
      }
      String value = line.substring(eq + 1).strip();
      if (value.length() >= 2
          && (value.startsWith("\"") && value.endsWith("\"")
              || value.startsWith("'") && value.endsWith("'"))) {
        value = value.substring(1, value.length() - 1);
      }
      out.put(line.substring(0, eq).strip(), value);
    }
    return out;
  }

  /** The value of the longest key that is a directory holding path, or null. */
  private static String within(Map<String, String> dirs, String path) {
    String best = null;
    int length = -1;
    for (Map.Entry<String, String> e : dirs.entrySet()) {
      String dir = e.getKey().endsWith("/") ? e.getKey() : e.getKey() + "/";
      if (path.startsWith(dir) && dir.length() > length) {
        best = e.getValue();
        length = dir.length();
      }
    }
    return best;
  }

  private static void hashOf(ObjectNode node, String digest) {
    if (digest != null && digest.startsWith("sha256:")) {
      ObjectNode h = node.putArray("hashes").addObject();
      h.put("alg", "SHA-256");
      h.put("content", digest.substring("sha256:".length()));
    }
  }

  private static void property(ArrayNode props, String name, String value) {
    ObjectNode p = props.addObject();
    p.put("name", P + name);
    p.put("value", value);
  }

  /** Percent-encodes a purl segment (RFC 3986 unreserved characters stay). */
  static String encode(String s) {
    return URLEncoder.encode(s, StandardCharsets.UTF_8).replace("+", "%20").replace("%7E", "~");
  }

  /** Maven coordinates of a jar, and how they were found. */
  private record Coordinates(
      String group,
      String name,
      String artifact,
      String version,
      String purl,
      JsonNode licenses,
      String source) {
    Coordinates as(String how) {
      return new Coordinates(group, name, artifact, version, purl, licenses, how);
    }
  }

  /** The dependency BOM Berth's build put into its launcher. */
  private static final class DependencyBom {
    Coordinates launcher;
    final Map<String, Coordinates> bySha256 = new HashMap<>();
    final Map<String, Coordinates> byFileName = new HashMap<>();

    static DependencyBom in(ImageFileSystem.File launcherJar) {
      if (launcherJar == null || launcherJar.jar() == null) {
        return null;
      }
      byte[] bytes = launcherJar.jar().metadata().get(DEPENDENCIES_RESOURCE);
      if (bytes == null) {
        return null;
      }
      JsonNode doc;
      try {
        doc = JSON.readTree(bytes);
      } catch (IOException e) {
        throw new BerthException(
            "Berth's dependency BOM (" + DEPENDENCIES_RESOURCE + ") is not JSON: " + e.getMessage(),
            e);
      }
      DependencyBom bom = new DependencyBom();
      JsonNode self = doc.path("metadata").path("component");
      if (self.isObject()) {
        bom.launcher = coordinates(self);
      }
      for (JsonNode c : doc.path("components")) {
        Coordinates id = coordinates(c);
        for (JsonNode h : c.path("hashes")) {
          if ("SHA-256".equals(h.path("alg").asText())) {
            bom.bySha256.putIfAbsent(h.path("content").asText(), id);
          }
        }
        String classifier = qualifier(id.purl, "classifier");
        String file =
            id.artifact + "-" + id.version + (classifier == null ? "" : "-" + classifier) + ".jar";
        bom.byFileName.putIfAbsent(file, id);
      }
      return bom;
    }

    private static Coordinates coordinates(JsonNode c) {
      String group = c.path("group").asText(null);
      String name = c.path("name").asText(null);
      JsonNode licenses = c.path("licenses");
      return new Coordinates(
          group,
          name,
          name,
          c.path("version").asText(null),
          c.path("purl").asText(null),
          licenses.isArray() && !licenses.isEmpty() ? licenses : null,
          null);
    }

    private static String qualifier(String purl, String key) {
      if (purl == null || !purl.contains("?")) {
        return null;
      }
      for (String pair : purl.substring(purl.indexOf('?') + 1).split("&")) {
        if (pair.startsWith(key + "=")) {
          return java.net.URLDecoder.decode(
              pair.substring(key.length() + 1), StandardCharsets.UTF_8);
        }
      }
      return null;
    }
  }

  /** Components by bom-ref and who depends on whom, both sorted. */
  private static final class Graph {
    final SortedMap<String, Component> components = new TreeMap<>();
    final SortedMap<String, Set<String>> edges = new TreeMap<>();

    void add(String ref, String parent) {
      edges.computeIfAbsent(ref, r -> new TreeSet<>());
      if (parent != null) {
        edges.computeIfAbsent(parent, r -> new TreeSet<>()).add(ref);
      }
    }
  }

  /** One component, written in CycloneDX's field order. */
  private static final class Component {
    final String ref;
    final String type;
    final String name;
    String group;
    String version;
    String publisher;
    String description;
    String purl;
    String sha256;
    JsonNode licenses;
    String location;
    final List<String[]> properties = new ArrayList<>();

    Component(String ref, String type, String name) {
      this.ref = ref;
      this.type = type;
      this.name = name;
    }

    ObjectNode toJson() {
      ObjectNode c = JSON.createObjectNode();
      c.put("bom-ref", ref);
      c.put("type", type);
      if (publisher != null) {
        c.put("publisher", publisher);
      }
      if (group != null) {
        c.put("group", group);
      }
      c.put("name", name);
      if (version != null) {
        c.put("version", version);
      }
      if (description != null) {
        c.put("description", description);
      }
      if (sha256 != null) {
        ObjectNode h = c.putArray("hashes").addObject();
        h.put("alg", "SHA-256");
        h.put("content", sha256);
      }
      if (licenses != null) {
        c.set("licenses", licenses.deepCopy());
      }
      if (purl != null) {
        c.put("purl", purl);
      }
      if (location != null) {
        c.putObject("evidence").putArray("occurrences").addObject().put("location", location);
      }
      if (!properties.isEmpty()) {
        ArrayNode props = c.putArray("properties");
        for (String[] p : properties) {
          if (p[1] != null) {
            ObjectNode o = props.addObject();
            o.put("name", p[0]);
            o.put("value", p[1]);
          }
        }
      }
      return c;
    }
  }
}
