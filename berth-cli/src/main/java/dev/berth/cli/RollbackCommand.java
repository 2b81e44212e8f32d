package dev.berth.cli;

import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "rollback",
    mixinStandardHelpOptions = true,
    description = {
      "Go back: drop the canary if there is one, else return the service to its previous"
          + " revision (as 'kubectl rollout undo') and follow the rollout."
    })
final class RollbackCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "NAME", description = "The service's name.")
  String name;

  @Option(
      names = "--timeout",
      paramLabel = "DURATION",
      description = "How long to follow the rollout (default: ${DEFAULT-VALUE}).",
      defaultValue = "10m",
      converter = ServeCommand.DurationConverter.class)
  Duration timeout;

  @Mixin KubeOptions kube;

  @Override
  public Integer call() {
    kube.withDeployer(
        null,
        d -> {
          String done = d.rollback(name);
          System.err.println(done);
          d.awaitRollout(name, timeout);
          return null;
        });
    System.out.println(name + " rolled back");
    return 0;
  }
}
