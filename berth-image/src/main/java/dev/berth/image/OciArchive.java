package dev.berth.image;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.berth.api.BerthException;
import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;

/**
 * Image archives that both OCI tools and Docker read: an OCI image layout ({@code oci-layout},
 * {@code index.json}, {@code blobs/sha256/...}) plus Docker's {@code manifest.json} pointing at the
 * same blobs, the layout {@code docker save} itself writes since Docker 25. {@code skopeo inspect
 * oci-archive:} reads the first, {@code docker load} (any version) the second.
 */
final class OciArchive {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final long MAX_METADATA_BYTES = 4 << 20;

  private OciArchive() {}

  /**
   * What an archive holds.
   *
   * @param manifestDigest the image manifest's digest (the image digest)
   * @param configDigest the config's digest (the image id)
   * @param layerSizes compressed size of each layer, bottom first
   * @param configSize size of the config blob
   * @param manifestSize size of the manifest blob
   */
  record Contents(
      String manifestDigest,
      String configDigest,
      List<Long> layerSizes,
      long configSize,
      long manifestSize) {
    /** Bytes a registry stores for this image: manifest, config and layers. */
    long totalSize() {
      return manifestSize + configSize + layerSizes.stream().mapToLong(Long::longValue).sum();
    }
  }

  /**
   * Copies an OCI layout archive to {@code out}, adding Docker's manifest.json with the given
   * repository tags, with fixed entry times so equal images give equal files.
   */
  static Contents addDockerManifest(Path ociTar, Path out, List<String> repoTags) {
    Map<String, byte[]> metadata = new HashMap<>();
    Path tmp = out.resolveSibling(out.getFileName() + ".tmp");
    Contents contents;
    try {
      contents = copyWithManifest(ociTar, tmp, repoTags, metadata);
      Files.move(tmp, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw new BerthException("cannot write " + out + ": " + e.getMessage(), e);
    } finally {
      try {
        Files.deleteIfExists(tmp);
      } catch (IOException ignored) {
        // nothing left to clean
      }
    }
    return contents;
  }

  private static Contents copyWithManifest(
      Path ociTar, Path tmp, List<String> repoTags, Map<String, byte[]> metadata)
      throws IOException {
    try (TarArchiveInputStream in =
            new TarArchiveInputStream(new BufferedInputStream(Files.newInputStream(ociTar)));
        TarArchiveOutputStream tar =
            new TarArchiveOutputStream(new BufferedOutputStream(Files.newOutputStream(tmp)))) {
      tar.setLongFileMode(TarArchiveOutputStream.LONGFILE_POSIX);
      tar.setBigNumberMode(TarArchiveOutputStream.BIGNUMBER_POSIX);
      TarArchiveEntry entry;
      while ((entry = in.getNextEntry()) != null) {
        if (entry.getName().equals("manifest.json")) {
          continue;
        }
        TarArchiveEntry copy = new TarArchiveEntry(entry.getName());
        copy.setSize(entry.getSize());
        copy.setModTime(0);
        copy.setMode(0644);
        tar.putArchiveEntry(copy);
        if (entry.getSize() <= MAX_METADATA_BYTES) {
          byte[] bytes = in.readAllBytes();
          metadata.put(entry.getName(), bytes);
          tar.write(bytes);
        } else {
          in.transferTo(tar);
        }
        tar.closeArchiveEntry();
      }
      Contents contents = contents(ociTar, metadata);
      ObjectNode docker = JSON.createObjectNode();
      docker.put("Config", blob(contents.configDigest()));
      ArrayNode tags = docker.putArray("RepoTags");
      repoTags.forEach(tags::add);
      ArrayNode layers = docker.putArray("Layers");
      JsonNode manifest = JSON.readTree(metadata.get(blob(contents.manifestDigest())));
      for (JsonNode layer : manifest.path("layers")) {
        layers.add(blob(layer.path("digest").asText()));
      }
      byte[] bytes = JSON.writeValueAsBytes(JSON.createArrayNode().add(docker));
      TarArchiveEntry m = new TarArchiveEntry("manifest.json");
      m.setSize(bytes.length);
      m.setModTime(0);
      m.setMode(0644);
      tar.putArchiveEntry(m);
      tar.write(bytes);
      tar.closeArchiveEntry();
      tar.finish();
      return contents;
    }
  }

  /**
   * An archive jib-core can use as a base image: the file itself when it has Docker's
   * manifest.json, otherwise a copy with one added (an OCI-only archive, e.g. from skopeo).
   */
  static Path dockerReadable(Path archive, Path scratch) {
    if (!Files.isRegularFile(archive)) {
      throw new BerthException(
          "base image archive " + archive + " does not exist; give tar:PATH of an image archive");
    }
    boolean hasDockerManifest = false;
    boolean hasIndex = false;
    try (TarArchiveInputStream in =
        new TarArchiveInputStream(new BufferedInputStream(Files.newInputStream(archive)))) {
      TarArchiveEntry entry;
      while ((entry = in.getNextEntry()) != null) {
        hasDockerManifest |= entry.getName().equals("manifest.json");
        hasIndex |= entry.getName().equals("index.json");
      }
    } catch (IOException e) {
      throw new BerthException(
          archive + " is not a tar archive of an image (" + e.getMessage() + ")", e);
    }
    if (hasDockerManifest) {
      return archive;
    }
    if (!hasIndex) {
      throw new BerthException(
          archive
              + " is neither a 'docker save' archive (manifest.json) nor an OCI archive"
              + " (index.json)");
    }
    try {
      Files.createDirectories(scratch);
      Path out = Files.createTempFile(scratch, "base-", ".tar");
      addDockerManifest(archive, out, List.of());
      return out;
    } catch (IOException e) {
      throw new BerthException("cannot convert " + archive + ": " + e.getMessage(), e);
    }
  }

  /** Reads the digests and sizes of an OCI layout archive whose small files are at hand. */
  private static Contents contents(Path file, Map<String, byte[]> metadata) throws IOException {
    byte[] index = metadata.get("index.json");
    if (index == null) {
      throw new BerthException(file + " has no index.json; it is not an OCI image archive");
    }
    JsonNode manifests = JSON.readTree(index).path("manifests");
    if (manifests.size() != 1) {
      throw new BerthException(
          file + " holds " + manifests.size() + " images; Berth handles archives of one image");
    }
    JsonNode descriptor = manifests.get(0);
    String manifestDigest = descriptor.path("digest").asText();
    byte[] manifestBytes = metadata.get(blob(manifestDigest));
    if (manifestBytes == null) {
      throw new BerthException(file + " lacks its manifest blob " + manifestDigest);
    }
    JsonNode manifest = JSON.readTree(manifestBytes);
    List<Long> sizes = new ArrayList<>();
    for (JsonNode layer : manifest.path("layers")) {
      sizes.add(layer.path("size").asLong());
    }
    JsonNode config = manifest.path("config");
    return new Contents(
        manifestDigest,
        config.path("digest").asText(),
        sizes,
        config.path("size").asLong(),
        manifestBytes.length);
  }

  /** Reads what an archive written by {@link #addDockerManifest} holds. */
  static Contents read(Path archive) {
    Map<String, byte[]> metadata = metadata(archive);
    try {
      return contents(archive, metadata);
    } catch (IOException e) {
      throw new BerthException("cannot read " + archive + ": " + e.getMessage(), e);
    }
  }

  /** The small entries of an archive (index, manifests, configs) by name; layers are skipped. */
  private static Map<String, byte[]> metadata(Path archive) {
    Map<String, byte[]> metadata = new HashMap<>();
    try (InputStream raw = new BufferedInputStream(Files.newInputStream(archive));
        TarArchiveInputStream in = new TarArchiveInputStream(raw)) {
      TarArchiveEntry entry;
      while ((entry = in.getNextEntry()) != null) {
        if (entry.getSize() <= MAX_METADATA_BYTES) {
          metadata.put(entry.getName(), in.readAllBytes());
        }
      }
      return metadata;
    } catch (IOException e) {
      throw new BerthException("cannot read " + archive + ": " + e.getMessage(), e);
    }
  }

  /**
   * An image archive's manifest: its digest, its config's digest and its layers' digests, bottom
   * first.
   */
  record Layout(String manifestDigest, String configDigest, List<String> layers) {}

  /** Reads the manifest of an OCI layout archive (one image, as Berth writes them). */
  static Layout layout(Path archive) {
    Map<String, byte[]> metadata = metadata(archive);
    try {
      Contents contents = contents(archive, metadata);
      JsonNode manifest = JSON.readTree(metadata.get(blob(contents.manifestDigest())));
      List<String> layers = new ArrayList<>();
      for (JsonNode layer : manifest.path("layers")) {
        layers.add(layer.path("digest").asText());
      }
      return new Layout(contents.manifestDigest(), contents.configDigest(), layers);
    } catch (IOException e) {
      throw new BerthException("cannot read " + archive + ": " + e.getMessage(), e);
    }
  }

  /** Receives one blob of an archive. */
  interface BlobReader {
    void read(String digest, InputStream blob) throws IOException;
  }

  /** Reads each of these blobs of an archive once, in the order the archive holds them. */
  static void readBlobs(Path archive, java.util.Set<String> digests, BlobReader reader) {
    try (InputStream raw = new BufferedInputStream(Files.newInputStream(archive), 1 << 16);
        TarArchiveInputStream in = new TarArchiveInputStream(raw)) {
      TarArchiveEntry entry;
      while ((entry = in.getNextEntry()) != null) {
        String name = entry.getName();
        if (name.startsWith("blobs/")) {
          String digest = name.substring("blobs/".length()).replaceFirst("/", ":");
          if (digests.contains(digest)) {
            reader.read(digest, in);
          }
        }
      }
    } catch (IOException e) {
      throw new BerthException("cannot read " + archive + ": " + e.getMessage(), e);
    }
  }

  /**
   * The digest that names the image in an archive a base was given as: its manifest's digest in an
   * OCI layout archive, else (a {@code docker save} archive of Docker before 25) its config's
   * digest, the image id.
   */
  static String imageDigest(Path archive) {
    Map<String, byte[]> metadata = new HashMap<>();
    try (InputStream raw = new BufferedInputStream(Files.newInputStream(archive));
        TarArchiveInputStream in = new TarArchiveInputStream(raw)) {
      TarArchiveEntry entry;
      while ((entry = in.getNextEntry()) != null) {
        if (entry.getSize() <= MAX_METADATA_BYTES) {
          metadata.put(normalizedName(entry.getName()), in.readAllBytes());
        }
      }
      byte[] index = metadata.get("index.json");
      if (index != null) {
        JsonNode manifests = JSON.readTree(index).path("manifests");
        if (manifests.size() == 1) {
          return manifests.get(0).path("digest").asText();
        }
      }
      byte[] docker = metadata.get("manifest.json");
      if (docker != null) {
        JsonNode images = JSON.readTree(docker);
        if (images.size() == 1) {
          byte[] config = metadata.get(normalizedName(images.get(0).path("Config").asText()));
          if (config != null) {
            return "sha256:"
                + java.util.HexFormat.of().formatHex(ImageFileSystem.sha256().digest(config));
          }
        }
      }
      return null;
    } catch (IOException e) {
      throw new BerthException("cannot read " + archive + ": " + e.getMessage(), e);
    }
  }

  private static String normalizedName(String name) {
    return name.startsWith("./") ? name.substring(2) : name;
  }

  private static String blob(String digest) {
    return "blobs/" + digest.replace(':', '/');
  }
}
