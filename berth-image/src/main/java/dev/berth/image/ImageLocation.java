package dev.berth.image;

import dev.berth.api.BerthException;
import java.nio.file.Path;

/**
 * Where an image comes from or goes to: a registry ({@code 127.0.0.1:5000/ml/minilm:1}), the local
 * container engine ({@code docker://name:tag}) or an OCI archive file ({@code tar:PATH}).
 */
public sealed interface ImageLocation {

  /** A repository in an OCI registry, e.g. {@code ghcr.io/acme/minilm:1}. */
  record Registry(String reference) implements ImageLocation {
    @Override
    public String toString() {
      return reference;
    }
  }

  /** An image in the local container engine (Docker or podman), e.g. {@code minilm:1}. */
  record Daemon(String reference) implements ImageLocation {
    @Override
    public String toString() {
      return "docker://" + reference;
    }
  }

  /** An OCI image archive that {@code docker load} also accepts. */
  record Archive(Path file) implements ImageLocation {
    @Override
    public String toString() {
      return "tar:" + file;
    }
  }

  /** Parses {@code docker://REF}, {@code tar:PATH} or a registry reference. */
  static ImageLocation parse(String text) {
    String t = text == null ? "" : text.trim();
    if (t.startsWith("docker://")) {
      String ref = t.substring("docker://".length());
      checkReference(text, ref);
      return new Daemon(ref);
    }
    if (t.startsWith("tar:")) {
      String path = t.substring("tar:".length());
      if (path.isBlank()) {
        throw new BerthException(
            "'" + text + "' names no file; write tar:PATH, e.g. tar:minilm.tar");
      }
      return new Archive(Path.of(path).toAbsolutePath().normalize());
    }
    checkReference(text, t);
    return new Registry(t);
  }

  private static void checkReference(String text, String ref) {
    try {
      com.google.cloud.tools.jib.api.ImageReference.parse(ref);
    } catch (com.google.cloud.tools.jib.api.InvalidImageReferenceException e) {
      throw new BerthException(
          "'"
              + text
              + "' is not an image reference; write REGISTRY/REPO:TAG (e.g."
              + " 127.0.0.1:5000/ml/minilm:1), docker://NAME:TAG or tar:PATH",
          e);
    }
  }
}
