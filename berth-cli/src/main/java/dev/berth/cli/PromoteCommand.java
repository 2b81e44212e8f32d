package dev.berth.cli;

import java.time.Duration;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "promote",
    mixinStandardHelpOptions = true,
    description =
        "Make a service's canary its stable version: the stable Deployment rolls to the canary's"
            + " image and config, then the canary goes.")
final class PromoteCommand implements Callable<Integer> {
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
          d.promote(name);
          d.awaitRollout(name, timeout);
          d.pruneConfigs(name);
          return null;
        });
    System.out.println(name + " promoted: the canary's version is stable");
    return 0;
  }
}
