package dev.berth.cli;

import dev.berth.image.ContainerEngine;
import dev.berth.image.ContainerInfo;
import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code berth stop}: stops a service container gracefully and removes it. */
@Command(
    name = "stop",
    mixinStandardHelpOptions = true,
    description = {
      "Stop a container Berth started and remove it.",
      "It gets SIGTERM, answers the requests it has accepted (its drain timeout), then exits."
    })
final class StopCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "NAME", description = "Service or container name.")
  String name;

  @Option(
      names = "--timeout",
      paramLabel = "DURATION",
      description =
          "How long to wait after SIGTERM before SIGKILL (default: the drain timeout the container"
              + " was started with, plus 5s).",
      converter = ServeCommand.DurationConverter.class)
  Duration timeout;

  @Override
  public Integer call() {
    ContainerEngine engine = ContainerEngine.fromEnvironment();
    ContainerInfo c = ManagedContainers.find(engine, name);
    Duration wait = timeout;
    if (wait == null) {
      String label = c.labels().get(RunCommand.STOP_TIMEOUT_LABEL);
      wait = Duration.ofSeconds(label == null ? 35 : Long.parseLong(label));
    }
    if (c.running()) {
      System.err.println("stopping " + c.name() + " (SIGTERM; up to " + wait.toSeconds() + "s)...");
      engine.stop(c.id(), wait);
    }
    int exit = engine.inspectContainer(c.id()).exitCode();
    engine.remove(c.id(), false);
    System.out.println("stopped " + c.name() + " (exit code " + exit + ")");
    return 0;
  }
}
