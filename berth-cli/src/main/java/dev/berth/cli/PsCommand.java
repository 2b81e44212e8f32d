package dev.berth.cli;

import dev.berth.image.ContainerEngine;
import dev.berth.image.ContainerInfo;
import dev.berth.image.PortBinding;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code berth ps}: the containers Berth started on the local engine. */
@Command(
    name = "ps",
    mixinStandardHelpOptions = true,
    description = "List the model-service containers Berth started on the local container engine.")
final class PsCommand implements Callable<Integer> {
  @Option(
      names = {"-a", "--all"},
      description = "Stopped containers too.")
  boolean all;

  @Override
  public Integer call() {
    ContainerEngine engine = ContainerEngine.fromEnvironment();
    List<ContainerInfo> containers = ManagedContainers.list(engine, all);
    String format = "%-24s %-16s %-32s %-10s %s%n";
    System.out.printf(Locale.ROOT, format, "NAME", "SERVICE", "IMAGE", "STATUS", "PORTS");
    for (ContainerInfo c : containers) {
      System.out.printf(
          Locale.ROOT,
          format,
          c.name(),
          c.labels().getOrDefault(ManagedContainers.SERVICE, "-"),
          c.image(),
          c.status() + (c.running() ? "" : " (" + c.exitCode() + ")"),
          c.ports().stream().map(PsCommand::port).collect(Collectors.joining(", ")));
    }
    return 0;
  }

  private static String port(PortBinding p) {
    String ip = p.hostIp() == null || p.hostIp().isEmpty() ? "0.0.0.0" : p.hostIp();
    return ip + ":" + p.hostPort() + "->" + p.containerPort() + "/" + p.protocol();
  }
}
