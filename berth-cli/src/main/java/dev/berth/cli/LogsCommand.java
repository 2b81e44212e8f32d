package dev.berth.cli;

import dev.berth.image.ContainerEngine;
import dev.berth.image.ContainerInfo;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code berth logs}: a service container's logs. */
@Command(
    name = "logs",
    mixinStandardHelpOptions = true,
    description = "Print the logs of a container Berth started (its JSON log lines by default).")
final class LogsCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "NAME", description = "Service or container name.")
  String name;

  @Option(
      names = {"-f", "--follow"},
      description = "Keep printing new lines until the container stops (or Ctrl-C).")
  boolean follow;

  @Option(
      names = "--tail",
      paramLabel = "N",
      description = "Only the last N lines (default: all).",
      defaultValue = "-1")
  int tail;

  @Override
  public Integer call() {
    ContainerEngine engine = ContainerEngine.fromEnvironment();
    ContainerInfo c = ManagedContainers.find(engine, name);
    engine.logs(c.id(), follow, null, tail, System.out, System.err);
    System.out.flush();
    return 0;
  }
}
