package dev.berth.image;

/** The container engine has no container with the given id or name. */
public class ContainerNotFoundException extends ContainerEngineException {
  private static final long serialVersionUID = 1L;
  private final String container;

  ContainerNotFoundException(String container) {
    super(
        404,
        "The container engine has no container '"
            + container
            + "'; `berth ps` lists the ones Berth runs.");
    this.container = container;
  }

  /** The id or name that was asked for. */
  public String container() {
    return container;
  }
}
