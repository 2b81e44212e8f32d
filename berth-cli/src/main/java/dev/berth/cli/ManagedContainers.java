package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.image.ContainerEngine;
import dev.berth.image.ContainerInfo;
import java.util.List;
import java.util.Map;

/** The containers Berth started on the local engine: labelled, and named {@code berth-SERVICE}. */
final class ManagedContainers {
  static final String MANAGED = "dev.berth.managed";
  static final String SERVICE = "dev.berth.service";

  private ManagedContainers() {}

  static String containerName(String service) {
    return "berth-" + service;
  }

  static List<ContainerInfo> list(ContainerEngine engine, boolean all) {
    return engine.listContainers(Map.of(MANAGED, "true"), all);
  }

  /** The container of a service, found by service name, container name or id prefix. */
  static ContainerInfo find(ContainerEngine engine, String name) {
    List<ContainerInfo> all = list(engine, true);
    for (ContainerInfo c : all) {
      if (c.name().equals(name)
          || c.name().equals(containerName(name))
          || name.equals(c.labels().get(SERVICE))) {
        return c;
      }
    }
    if (name.length() >= 6) {
      for (ContainerInfo c : all) {
        if (c.id().startsWith(name)) {
          return c;
        }
      }
    }
    throw new BerthException(
        "no container that Berth started is called '"
            + name
            + "'"
            + (all.isEmpty()
                ? "; none is there ('berth run berth.yaml' starts one)"
                : "; 'berth ps' lists them: "
                    + String.join(", ", all.stream().map(ContainerInfo::name).toList())));
  }
}
