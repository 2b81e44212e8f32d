package dev.berth.image;

import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;

/**
 * A container as the engine reports it.
 *
 * @param id its full id
 * @param name its name, without the engine's leading slash
 * @param image the image it was created from, as named then
 * @param status {@code created}, {@code running}, {@code paused}, {@code restarting}, {@code
 *     removing}, {@code exited} or {@code dead}
 * @param running whether it runs now
 * @param exitCode the exit code of its last run (0 when it has not exited)
 * @param startedAt when it last started, or null when it never has
 * @param labels its labels
 * @param ports the host ports the engine actually bound (a requested port 0 shows the one picked)
 */
public record ContainerInfo(
    String id,
    String name,
    String image,
    String status,
    boolean running,
    int exitCode,
    Instant startedAt,
    Map<String, String> labels,
    List<PortBinding> ports) {
  public ContainerInfo {
    labels = Map.copyOf(labels);
    ports = List.copyOf(ports);
  }

  /** The host port bound to TCP {@code containerPort}, if it is published. */
  public OptionalInt hostPort(int containerPort) {
    return ports.stream()
        .filter(p -> p.containerPort() == containerPort && p.protocol().equals("tcp"))
        .mapToInt(PortBinding::hostPort)
        .findFirst();
  }
}
