package dev.berth.image;

import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * An image the container engine holds.
 *
 * @param id its id ({@code sha256:...})
 * @param repoTags the names it is tagged with ({@code berth/minilm:1}); empty when untagged
 * @param sizeBytes its size unpacked
 * @param labels the labels of its config
 * @param exposedPorts the ports its config exposes ({@code 8080/tcp})
 */
public record ImageInfo(
    String id,
    List<String> repoTags,
    long sizeBytes,
    Map<String, String> labels,
    Set<String> exposedPorts) {
  public ImageInfo {
    repoTags = List.copyOf(repoTags);
    labels = Map.copyOf(labels);
    exposedPorts = Set.copyOf(exposedPorts);
  }
}
