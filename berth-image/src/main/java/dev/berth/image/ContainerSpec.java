package dev.berth.image;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * What to run in a new container. The engine never removes it on its own (no auto-remove), so its
 * logs and exit code stay readable after it stops.
 *
 * @param image the image to run ({@code berth/minilm:1})
 * @param name the container's name, or null to let the engine make one up
 * @param env environment variables added to the image's
 * @param labels labels to find it by ({@code listContainers})
 * @param ports container ports to publish on the host
 * @param command the command to run instead of the image's, or null for the image's
 * @param stopTimeout how long {@code docker stop} waits after SIGTERM before SIGKILL, or null for
 *     the engine's default (10 s)
 * @param mounts host files and directories mounted into the container
 * @param entrypoint the entrypoint to run instead of the image's, or null for the image's
 * @param cpus CPUs the container may use, 0 for no limit
 * @param memoryBytes memory the container may use, 0 for no limit
 * @param gpus NVIDIA GPUs the container gets (a device request for the NVIDIA runtime), 0 for none
 */
public record ContainerSpec(
    String image,
    String name,
    Map<String, String> env,
    Map<String, String> labels,
    List<PortBinding> ports,
    List<String> command,
    Duration stopTimeout,
    List<Mount> mounts,
    List<String> entrypoint,
    double cpus,
    long memoryBytes,
    int gpus) {
  /**
   * A host file or directory mounted at {@code target} in the container, read-only unless {@code
   * writable}.
   */
  public record Mount(java.nio.file.Path source, String target, boolean writable) {
    public Mount(java.nio.file.Path source, String target) {
      this(source, target, false);
    }

    public Mount {
      Objects.requireNonNull(source, "source");
      Objects.requireNonNull(target, "target");
      if (!source.isAbsolute() || !target.startsWith("/")) {
        throw new IllegalArgumentException(
            "mounts need absolute paths, not " + source + " -> " + target);
      }
    }
  }

  public ContainerSpec {
    Objects.requireNonNull(image, "image");
    env = Collections.unmodifiableMap(new LinkedHashMap<>(env));
    labels = Collections.unmodifiableMap(new LinkedHashMap<>(labels));
    ports = List.copyOf(ports);
    command = command == null ? null : List.copyOf(command);
    mounts = List.copyOf(mounts);
    entrypoint = entrypoint == null ? null : List.copyOf(entrypoint);
    if (cpus < 0 || memoryBytes < 0 || gpus < 0) {
      throw new IllegalArgumentException("resource limits must not be negative");
    }
    if (stopTimeout != null && stopTimeout.isNegative()) {
      throw new IllegalArgumentException("stopTimeout must not be negative: " + stopTimeout);
    }
  }

  /** Starts a spec for a container of {@code image}. */
  public static Builder builder(String image) {
    return new Builder(image);
  }

  /** Builds a {@link ContainerSpec}; every setting but the image is optional. */
  public static final class Builder {
    private final String image;
    private String name;
    private final Map<String, String> env = new LinkedHashMap<>();
    private final Map<String, String> labels = new LinkedHashMap<>();
    private final List<PortBinding> ports = new ArrayList<>();
    private List<String> command;
    private Duration stopTimeout;
    private final List<Mount> mounts = new ArrayList<>();
    private List<String> entrypoint;
    private double cpus;
    private long memoryBytes;
    private int gpus;

    private Builder(String image) {
      this.image = Objects.requireNonNull(image, "image");
    }

    public Builder name(String name) {
      this.name = name;
      return this;
    }

    public Builder env(String key, String value) {
      env.put(Objects.requireNonNull(key, "key"), Objects.requireNonNull(value, "value"));
      return this;
    }

    public Builder label(String key, String value) {
      labels.put(Objects.requireNonNull(key, "key"), Objects.requireNonNull(value, "value"));
      return this;
    }

    public Builder publish(PortBinding port) {
      ports.add(Objects.requireNonNull(port, "port"));
      return this;
    }

    /** Runs {@code command} instead of the image's command. */
    public Builder command(String... command) {
      this.command = List.of(command);
      return this;
    }

    public Builder stopTimeout(Duration stopTimeout) {
      this.stopTimeout = stopTimeout;
      return this;
    }

    /** Mounts a host file read-only at {@code target}. */
    public Builder mountReadOnly(java.nio.file.Path source, String target) {
      mounts.add(new Mount(source, target));
      return this;
    }

    /** Mounts a host directory at {@code target}, writable by the container. */
    public Builder mountWritable(java.nio.file.Path source, String target) {
      mounts.add(new Mount(source, target, true));
      return this;
    }

    /** Runs {@code entrypoint} instead of the image's entrypoint. */
    public Builder entrypoint(List<String> entrypoint) {
      this.entrypoint = List.copyOf(entrypoint);
      return this;
    }

    /** Runs {@code command} instead of the image's command. */
    public Builder command(List<String> command) {
      this.command = List.copyOf(command);
      return this;
    }

    /** Limits the container to {@code cpus} CPUs (0: no limit). */
    public Builder cpus(double cpus) {
      this.cpus = cpus;
      return this;
    }

    /** Limits the container's memory to {@code bytes} (0: no limit). */
    public Builder memory(long bytes) {
      this.memoryBytes = bytes;
      return this;
    }

    /** Gives the container {@code gpus} NVIDIA GPUs (0: none). */
    public Builder gpus(int gpus) {
      this.gpus = gpus;
      return this;
    }

    public ContainerSpec build() {
      return new ContainerSpec(
          image,
          name,
          env,
          labels,
          ports,
          command,
          stopTimeout,
          mounts,
          entrypoint,
          cpus,
          memoryBytes,
          gpus);
    }
  }
}
