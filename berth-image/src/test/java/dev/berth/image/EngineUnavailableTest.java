package dev.berth.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What the user is told when no engine answers. */
class EngineUnavailableTest {
  @TempDir Path dir;

  @Test
  void aMissingSocketNamesTheAddressAndHowToGetAnEngine() {
    String host = "unix://" + dir.resolve("docker.sock");
    ContainerEngineUnavailableException e =
        assertThrows(
            ContainerEngineUnavailableException.class, () -> ContainerEngine.at(host).ping());
    assertEquals(
        "No container engine answers at "
            + host
            + ". Start Docker (e.g. `sudo systemctl start docker`), or point DOCKER_HOST at one"
            + " (podman: `systemctl --user start podman.socket` and"
            + " DOCKER_HOST=unix://$XDG_RUNTIME_DIR/podman/podman.sock).",
        e.getMessage());
    assertEquals(host, e.address());
    assertEquals(0, e.status());
    assertNotNull(e.getCause());
  }

  @Test
  void aSocketNobodyListensOnIsTheSame() throws IOException {
    Path socket = dir.resolve("stale.sock");
    try (ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX)) {
      server.bind(UnixDomainSocketAddress.of(socket));
    }
    assertTrue(Files.exists(socket), "closing a unix server channel leaves its file behind");
    ContainerEngineUnavailableException e =
        assertThrows(
            ContainerEngineUnavailableException.class,
            () -> ContainerEngine.at("unix://" + socket).ping());
    assertTrue(e.getMessage().startsWith("No container engine answers at unix://" + socket));
  }

  @Test
  void aClosedTcpPortIsTheSame() throws IOException {
    int port;
    try (ServerSocket free = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      port = free.getLocalPort();
    }
    String host = "tcp://127.0.0.1:" + port;
    ContainerEngineUnavailableException e =
        assertThrows(
            ContainerEngineUnavailableException.class, () -> ContainerEngine.at(host).ping());
    assertTrue(e.getMessage().startsWith("No container engine answers at " + host + "."));
  }
}
