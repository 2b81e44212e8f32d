package dev.berth.image;

/** No container engine answers at the address, or the address is of a kind Berth cannot use. */
public class ContainerEngineUnavailableException extends ContainerEngineException {
  private static final long serialVersionUID = 1L;
  private static final String HOW_TO_GET_ONE =
      " Start Docker (e.g. `sudo systemctl start docker`), or point DOCKER_HOST at one (podman:"
          + " `systemctl --user start podman.socket` and"
          + " DOCKER_HOST=unix://$XDG_RUNTIME_DIR/podman/podman.sock).";

  private final String address;

  ContainerEngineUnavailableException(String address, String message, Throwable cause) {
    super(0, message, cause);
    this.address = address;
  }

  /** The engine address that was tried, as given ({@code unix:///var/run/docker.sock}). */
  public String address() {
    return address;
  }

  static ContainerEngineUnavailableException notAnswering(
      String address, boolean socketForbidden, Throwable cause) {
    if (socketForbidden) {
      return new ContainerEngineUnavailableException(
          address,
          "This user may not use the container engine socket "
              + address
              + ". Add yourself to its group (e.g. `sudo usermod -aG docker $USER`, then log in"
              + " again), or point DOCKER_HOST at an engine of your own (podman: `systemctl --user"
              + " start podman.socket` and DOCKER_HOST=unix://$XDG_RUNTIME_DIR/podman/podman.sock).",
          cause);
    }
    return new ContainerEngineUnavailableException(
        address, "No container engine answers at " + address + "." + HOW_TO_GET_ONE, cause);
  }

  /** An address Berth cannot use; {@code problem} says what is wrong with it. */
  static ContainerEngineUnavailableException unsupported(
      String address, String problem, Throwable cause) {
    return new ContainerEngineUnavailableException(
        address,
        problem
            + ": Berth speaks to an engine at unix:///path/to/socket or tcp://host:port (plain HTTP,"
            + " no TLS). For a remote engine, forward its socket (e.g. `ssh -nNT -L"
            + " /tmp/engine.sock:/var/run/docker.sock user@host`) and set"
            + " DOCKER_HOST=unix:///tmp/engine.sock.",
        cause);
  }
}
