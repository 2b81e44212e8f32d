package dev.berth.cli;

import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

@Command(
    name = "scale",
    mixinStandardHelpOptions = true,
    description = "Set the replicas of a deployed model service (not one an autoscaler owns).")
final class ScaleCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "NAME", description = "The service's name.")
  String name;

  @Parameters(index = "1", paramLabel = "REPLICAS", description = "How many pods to run.")
  int replicas;

  @Mixin KubeOptions kube;

  @Override
  public Integer call() {
    String ns =
        kube.withDeployer(
            null,
            d -> {
              d.scale(name, replicas);
              return d.namespace();
            });
    System.out.println("scaled deployment/" + name + " in " + ns + " to " + replicas + " replicas");
    return 0;
  }
}
