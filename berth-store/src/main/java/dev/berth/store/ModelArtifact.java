package dev.berth.store;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.berth.api.BerthException;
import dev.berth.runtime.ModelRepository;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.security.DigestOutputStream;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;

/**
 * A model directory as an OCI artifact: an image manifest of artifact type {@value #ARTIFACT_TYPE},
 * one uncompressed tar layer for the model's own files (model.yaml, its signature, anything beside
 * the version folders) and one per version folder, and annotations that say what it holds. Paths
 * inside the layers are relative to the model directory, so unpacking every layer in order gives
 * the directory back. Its config is an image configuration (linux/amd64, the annotations as labels,
 * no command) rather than the empty one: tools that read images (skopeo inspect, image volumes)
 * then read it too, as a file system holding the model. Tars are written reproducibly (sorted
 * entries, no times, no owners): the same model gives the same digests, and pushing it again
 * uploads nothing.
 */
public final class ModelArtifact {
  public static final String ARTIFACT_TYPE = "application/vnd.berth.model.v1";
  public static final String LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar";

  /** The artifact type of a repository: an image index listing one model manifest a model. */
  public static final String REPOSITORY_TYPE = "application/vnd.berth.model-repository.v1";

  static final String CONFIG_TYPE = "application/vnd.oci.image.config.v1+json";

  /** Manifest annotation: the model's name. */
  public static final String NAME = "dev.berth.model.name";

  /** Manifest annotation: its versions, comma-separated, in order. */
  public static final String VERSIONS = "dev.berth.model.versions";

  /** Manifest annotation: the engine that serves it. */
  public static final String ENGINE = "dev.berth.model.engine";

  /** Manifest annotation: the digest of its sha256 manifest (what {@code berth sign} signs). */
  public static final String FILES_MANIFEST = "dev.berth.model.manifest";

  /** Manifest annotation: whether it carries a signature ({@code true}/{@code false}). */
  public static final String SIGNED = "dev.berth.model.signed";

  /** Layer annotation: the version folder a layer holds; absent on the model's own layer. */
  public static final String LAYER_VERSION = "dev.berth.model.version";

  static final String TITLE = "org.opencontainers.image.title";

  private static final ObjectMapper JSON = new ObjectMapper();

  private ModelArtifact() {}

  /** One layer written to a file: which part of the model, its digest and size. */
  public record Layer(String version, Path file, String digest, long size) {
    /** {@code model} for the model's own files, else the version folder. */
    String title() {
      return version == null ? "model" : version;
    }
  }

  /** The model's parts: its own files (null version) first, then each version folder in order. */
  static List<String> parts(Path modelDir) {
    List<String> versions = new ArrayList<>();
    try (Stream<Path> s = Files.list(modelDir)) {
      s.filter(
              p ->
                  Files.isDirectory(p)
                      && ModelRepository.isValidVersion(p.getFileName().toString()))
          .map(p -> p.getFileName().toString())
          .sorted(Comparator.comparingLong(Long::parseLong))
          .forEach(versions::add);
    } catch (IOException e) {
      throw new BerthException("cannot list " + modelDir + ": " + e.getMessage(), e);
    }
    if (versions.isEmpty()) {
      throw new BerthException(
          modelDir
              + " has no version folders; put the model file in "
              + modelDir.resolve("1")
              + "/");
    }
    List<String> parts = new ArrayList<>();
    parts.add(null);
    parts.addAll(versions);
    return parts;
  }

  /**
   * Writes one part of a model as a tar into {@code into}: the model's own files when {@code
   * version} is null, else that version folder.
   */
  static Layer writeLayer(Path modelDir, String version, Path into) {
    List<Path> entries = new ArrayList<>();
    try (Stream<Path> walk = Files.walk(modelDir)) {
      walk.filter(p -> !p.equals(modelDir))
          .filter(
              p -> {
                Path first = modelDir.relativize(p).getName(0);
                boolean inVersion =
                    Files.isDirectory(modelDir.resolve(first))
                        && ModelRepository.isValidVersion(first.toString());
                return version == null ? !inVersion : first.toString().equals(version);
              })
          .forEach(entries::add);
    } catch (IOException e) {
      throw new BerthException("cannot list " + modelDir + ": " + e.getMessage(), e);
    }
    entries.sort(Comparator.comparing(p -> relative(modelDir, p)));
    MessageDigest sha = RegistryClient.sha256();
    CountingOutputStream counted;
    try (OutputStream file = Files.newOutputStream(into);
        TarArchiveOutputStream tar =
            new TarArchiveOutputStream(
                counted = new CountingOutputStream(new DigestOutputStream(file, sha)))) {
      tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
      tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
      for (Path p : entries) {
        String name = relative(modelDir, p);
        if (Files.isSymbolicLink(p) && !Files.isRegularFile(p)) {
          throw new BerthException(
              p
                  + (Files.isDirectory(p)
                      ? " is a link to a folder, which a push does not follow; copy the folder in"
                      : " is a link to nothing; a model holds files and folders"));
        }
        boolean dir = Files.isDirectory(p);
        TarArchiveEntry e = new TarArchiveEntry(dir ? name + "/" : name);
        e.setModTime(FileTime.fromMillis(0));
        e.setUserId(0);
        e.setGroupId(0);
        e.setUserName("");
        e.setGroupName("");
        e.setMode(dir || Files.isExecutable(p) ? 0755 : 0644);
        if (dir) {
          e.setMode(040755);
          tar.putArchiveEntry(e);
        } else {
          e.setSize(Files.size(p));
          tar.putArchiveEntry(e);
          Files.copy(p, tar);
        }
        tar.closeArchiveEntry();
      }
      tar.finish();
    } catch (IOException e) {
      throw new BerthException("cannot pack " + modelDir + " into a layer: " + e.getMessage(), e);
    }
    return new Layer(
        version, into, "sha256:" + HexFormat.of().formatHex(sha.digest()), counted.count);
  }

  private static String relative(Path root, Path p) {
    return root.relativize(p).toString().replace('\\', '/');
  }

  /**
   * The artifact's config: an image configuration whose file system is the model (the layers are
   * uncompressed, so their digests are their diff ids) and whose labels are the annotations.
   */
  static byte[] config(List<Layer> layers, Map<String, String> annotations) {
    ObjectNode c = JSON.createObjectNode();
    c.put("architecture", "amd64");
    c.put("os", "linux");
    ObjectNode labels = c.putObject("config").putObject("Labels");
    annotations.forEach(labels::put);
    ObjectNode rootfs = c.putObject("rootfs");
    rootfs.put("type", "layers");
    ArrayNode diffIds = rootfs.putArray("diff_ids");
    layers.forEach(l -> diffIds.add(l.digest()));
    try {
      return JSON.writeValueAsBytes(c);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The artifact's manifest: its config, the layers in order, and the annotations. */
  static byte[] manifest(byte[] configBlob, List<Layer> layers, Map<String, String> annotations) {
    ObjectNode m = JSON.createObjectNode();
    m.put("schemaVersion", 2);
    m.put("mediaType", RegistryClient.OCI_MANIFEST);
    m.put("artifactType", ARTIFACT_TYPE);
    ObjectNode config = m.putObject("config");
    config.put("mediaType", CONFIG_TYPE);
    config.put("digest", RegistryClient.sha256(configBlob));
    config.put("size", configBlob.length);
    ArrayNode ls = m.putArray("layers");
    for (Layer l : layers) {
      ObjectNode d = ls.addObject();
      d.put("mediaType", LAYER_TYPE);
      d.put("digest", l.digest());
      d.put("size", l.size());
      ObjectNode a = d.putObject("annotations");
      a.put(TITLE, l.title());
      if (l.version() != null) {
        a.put(LAYER_VERSION, l.version());
      }
    }
    ObjectNode a = m.putObject("annotations");
    annotations.forEach(a::put);
    try {
      return JSON.writeValueAsBytes(m);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /** A model of a repository index: its name and its manifest's digest and size. */
  public record Member(String name, String digest, long size) {}

  /**
   * The model folders of a repository directory, sorted: those holding a model.yaml or a version
   * folder.
   */
  public static List<Path> modelDirs(Path repositoryDir) {
    List<Path> out = new ArrayList<>();
    try (Stream<Path> s = Files.list(repositoryDir)) {
      for (Path p : s.filter(Files::isDirectory).sorted().toList()) {
        String name = p.getFileName().toString();
        if (name.startsWith(".") || !ModelRepository.isValidModelName(name)) {
          continue;
        }
        boolean model = Files.isRegularFile(p.resolve("model.yaml"));
        try (Stream<Path> inner = Files.list(p)) {
          model |=
              inner.anyMatch(
                  v ->
                      Files.isDirectory(v)
                          && ModelRepository.isValidVersion(v.getFileName().toString()));
        }
        if (model) {
          out.add(p);
        }
      }
    } catch (IOException e) {
      throw new BerthException("cannot list " + repositoryDir + ": " + e.getMessage(), e);
    }
    return out;
  }

  /** A repository's index: one entry a model, under its name. */
  static byte[] index(List<Member> members) {
    ObjectNode i = JSON.createObjectNode();
    i.put("schemaVersion", 2);
    i.put("mediaType", RegistryClient.OCI_INDEX);
    i.put("artifactType", REPOSITORY_TYPE);
    ArrayNode ms = i.putArray("manifests");
    for (Member m : members) {
      ObjectNode d = ms.addObject();
      d.put("mediaType", RegistryClient.OCI_MANIFEST);
      d.put("artifactType", ARTIFACT_TYPE);
      d.put("digest", m.digest());
      d.put("size", m.size());
      d.putObject("annotations").put(NAME, m.name());
    }
    i.putObject("annotations")
        .put(
            "dev.berth.repository.models",
            String.join(",", members.stream().map(Member::name).toList()));
    try {
      return JSON.writeValueAsBytes(i);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * The models a manifest stands for: a repository index's members, or null when it is no index (a
   * single model's manifest).
   */
  static List<Member> members(OciReference ref, RegistryClient.Manifest manifest) {
    JsonNode m;
    try {
      m = JSON.readTree(manifest.bytes());
    } catch (IOException e) {
      throw new BerthException(ref + " has a manifest that is not JSON: " + e.getMessage(), e);
    }
    if (!m.path("mediaType").asText(manifest.mediaType()).equals(RegistryClient.OCI_INDEX)) {
      return null;
    }
    if (!m.path("artifactType").asText("").equals(REPOSITORY_TYPE)) {
      throw new BerthException(
          ref
              + " is an image index but not a Berth model repository (artifact type "
              + m.path("artifactType").asText("not given")
              + "); push one with berth push REPOSITORY_DIR "
              + ref);
    }
    List<Member> out = new ArrayList<>();
    for (JsonNode d : m.path("manifests")) {
      String name = d.path("annotations").path(NAME).asText("");
      String digest = d.path("digest").asText("");
      if (!ModelRepository.isValidModelName(name) || !digest.matches("sha256:[0-9a-f]{64}")) {
        throw new BerthException(
            ref
                + " lists a model without a valid name and digest ('"
                + name
                + "', '"
                + digest
                + "')");
      }
      out.add(new Member(name, digest, d.path("size").asLong()));
    }
    return out;
  }

  /** A layer as a manifest lists it. */
  record Descriptor(String digest, long size, String version) {}

  /** What a pulled manifest says: its layers and annotations, checked to be a Berth model. */
  record Parsed(List<Descriptor> layers, Map<String, String> annotations) {}

  static Parsed parse(OciReference ref, RegistryClient.Manifest manifest) {
    JsonNode m;
    try {
      m = JSON.readTree(manifest.bytes());
    } catch (IOException e) {
      throw new BerthException(ref + " has a manifest that is not JSON: " + e.getMessage(), e);
    }
    String type = m.path("mediaType").asText(manifest.mediaType());
    if (type.equals(RegistryClient.OCI_INDEX)) {
      throw new BerthException(
          ref + " is an image index (several images), not a Berth model; push one with berth push");
    }
    String artifactType = m.path("artifactType").asText("");
    if (!artifactType.equals(ARTIFACT_TYPE)) {
      throw new BerthException(
          ref
              + " is not a Berth model (its artifact type is "
              + (artifactType.isEmpty() ? "not given" : "'" + artifactType + "'")
              + ", not "
              + ARTIFACT_TYPE
              + "); push a model directory with berth push MODEL_DIR "
              + ref);
    }
    List<Descriptor> layers = new ArrayList<>();
    for (JsonNode l : m.path("layers")) {
      if (!l.path("mediaType").asText().equals(LAYER_TYPE)) {
        throw new BerthException(
            ref + " has a layer of type '" + l.path("mediaType").asText() + "', not " + LAYER_TYPE);
      }
      String digest = l.path("digest").asText();
      if (!digest.matches("sha256:[0-9a-f]{64}")) {
        throw new BerthException(ref + " names a layer by '" + digest + "', not a sha256 digest");
      }
      JsonNode version = l.path("annotations").path(LAYER_VERSION);
      layers.add(
          new Descriptor(
              digest, l.path("size").asLong(-1), version.isTextual() ? version.asText() : null));
    }
    if (layers.isEmpty() || layers.get(0).version() != null) {
      throw new BerthException(ref + " lacks the model's own layer (model.yaml); push it again");
    }
    Map<String, String> annotations = new LinkedHashMap<>();
    m.path("annotations")
        .properties()
        .forEach(e -> annotations.put(e.getKey(), e.getValue().asText()));
    return new Parsed(layers, annotations);
  }

  /**
   * Unpacks one layer into a directory, refusing anything but folders and regular files inside its
   * own part of the model (the model's own files, or its version folder).
   */
  static void unpack(OciReference ref, Descriptor layer, Path tarFile, Path into) {
    try (InputStream in = Files.newInputStream(tarFile)) {
      unpack(ref, layer, in, into, new java.util.HashMap<>());
    } catch (IOException e) {
      throw new BerthException("cannot read " + tarFile + ": " + e.getMessage(), e);
    }
  }

  /**
   * Unpacks one layer as it streams in, with the same refusals, recording each file's sha256 by its
   * path in the model directory; leaves the stream open (its caller checks the rest of it).
   */
  static void unpack(
      OciReference ref,
      Descriptor layer,
      InputStream stream,
      Path into,
      Map<String, String> hashes) {
    String where = "layer " + layer.digest() + " of " + ref;
    try {
      TarArchiveInputStream tar = new TarArchiveInputStream(stream);
      for (TarArchiveEntry e; (e = tar.getNextEntry()) != null; ) {
        String name = e.getName();
        while (name.endsWith("/")) {
          name = name.substring(0, name.length() - 1);
        }
        if (name.isEmpty()
            || name.startsWith("/")
            || name.contains("\\")
            || Stream.of(name.split("/"))
                .anyMatch(s -> s.isEmpty() || s.equals(".") || s.equals(".."))) {
          throw new BerthException(where + " holds the unsafe path '" + e.getName() + "'");
        }
        String first = name.split("/")[0];
        boolean ownPart =
            layer.version() == null
                ? !(ModelRepository.isValidVersion(first)
                    && (e.isDirectory() || name.contains("/")))
                : first.equals(layer.version());
        if (!ownPart) {
          throw new BerthException(
              where
                  + " holds '"
                  + name
                  + "', outside "
                  + (layer.version() == null
                      ? "the model's own files"
                      : "version folder " + layer.version()));
        }
        Path target = into.resolve(name);
        if (e.isDirectory()) {
          Files.createDirectories(target);
        } else if (e.isFile()
            && !e.isSymbolicLink()
            && !e.isLink()
            && !e.isCharacterDevice()
            && !e.isBlockDevice()
            && !e.isFIFO()) {
          Files.createDirectories(target.getParent());
          if (Files.exists(target)) {
            throw new BerthException(where + " holds '" + name + "' twice");
          }
          MessageDigest sha = RegistryClient.sha256();
          try (OutputStream out = new DigestOutputStream(Files.newOutputStream(target), sha)) {
            tar.transferTo(out);
          }
          hashes.put(name, HexFormat.of().formatHex(sha.digest()));
          if ((e.getMode() & 0100) != 0) {
            target.toFile().setExecutable(true, false);
          }
        } else {
          throw new BerthException(
              where + " holds '" + name + "', which is not a file or folder (a link or device)");
        }
      }
    } catch (IOException e) {
      throw new BerthException("cannot unpack " + where + ": " + e.getMessage(), e);
    }
  }

  /** Counts what passes through. */
  private static final class CountingOutputStream extends java.io.FilterOutputStream {
    long count;

    CountingOutputStream(OutputStream out) {
      super(out);
    }

    @Override
    public void write(int b) throws IOException {
      out.write(b);
      count++;
    }

    @Override
    public void write(byte[] b, int off, int len) throws IOException {
      out.write(b, off, len);
      count += len;
    }
  }
}
