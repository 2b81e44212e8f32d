package dev.berth.image;

import java.util.Objects;
import java.util.Set;

/**
 * A container port published on the host: connections to {@code hostIp:hostPort} reach {@code
 * containerPort/protocol}.
 *
 * @param containerPort the port inside the container
 * @param protocol {@code tcp}, {@code udp} or {@code sctp}
 * @param hostIp the host address to bind; empty for all of them
 * @param hostPort the host port; 0 asks the engine to pick a free one
 */
public record PortBinding(int containerPort, String protocol, String hostIp, int hostPort) {
  private static final Set<String> PROTOCOLS = Set.of("tcp", "udp", "sctp");

  public PortBinding {
    if (containerPort < 1 || containerPort > 65535 || hostPort < 0 || hostPort > 65535) {
      throw new IllegalArgumentException(
          "port out of range: " + hostIp + ":" + hostPort + " -> " + containerPort);
    }
    if (!PROTOCOLS.contains(protocol)) {
      throw new IllegalArgumentException("protocol must be one of " + PROTOCOLS + ": " + protocol);
    }
    hostIp = Objects.requireNonNullElse(hostIp, "");
  }

  /** A TCP port published on {@code hostIp:hostPort} (host port 0: the engine picks one). */
  public static PortBinding tcp(int containerPort, String hostIp, int hostPort) {
    return new PortBinding(containerPort, "tcp", hostIp, hostPort);
  }

  /** The engine's name for the container port: {@code 8080/tcp}. */
  String key() {
    return containerPort + "/" + protocol;
  }
}
