package dev.berth.image;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Which engine DOCKER_HOST names, and the addresses Berth refuses. */
class EngineAddressTest {
  @Test
  void withoutDockerHostTheDockerSocket() {
    assertEquals(
        "unix:///var/run/docker.sock", ContainerEngine.fromEnvironment(Map.of()).address());
    assertEquals(
        "unix:///var/run/docker.sock",
        ContainerEngine.fromEnvironment(Map.of("DOCKER_HOST", " ")).address());
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "unix:///run/user/1000/podman/podman.sock",
        "unix://relative.sock",
        "tcp://127.0.0.1:2375",
        "tcp://engine.example",
        "tcp://[::1]:2375"
      })
  void unixAndTcpAddressesAreTakenAsGiven(String host) {
    assertEquals(host, ContainerEngine.fromEnvironment(Map.of("DOCKER_HOST", host)).address());
    assertEquals(host, ContainerEngine.at(host).address());
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "ssh://me@engine.example",
        "https://engine.example:2376",
        "npipe:////./pipe/docker_engine",
        "fd://",
        "unix://",
        "tcp://",
        "/var/run/docker.sock"
      })
  void otherAddressesAreRefusedWithWhatIsSupported(String host) {
    ContainerEngineUnavailableException e =
        assertThrows(
            ContainerEngineUnavailableException.class,
            () -> ContainerEngine.fromEnvironment(Map.of("DOCKER_HOST", host)));
    assertEquals(host, e.address());
    assertTrue(
        e.getMessage().contains("unix:///path/to/socket or tcp://host:port"), e.getMessage());
  }

  @Test
  void tlsIsRefused() {
    ContainerEngineUnavailableException e =
        assertThrows(
            ContainerEngineUnavailableException.class,
            () ->
                ContainerEngine.fromEnvironment(
                    Map.of("DOCKER_HOST", "tcp://engine:2376", "DOCKER_TLS_VERIFY", "1")));
    assertTrue(e.getMessage().contains("no TLS"), e.getMessage());
  }
}
