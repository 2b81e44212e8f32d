package dev.berth.cli;

import dev.berth.kube.StatusReport;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

@Command(
    name = "status",
    mixinStandardHelpOptions = true,
    description =
        "Show a deployed model service: replicas desired/updated/ready/available, image, model"
            + " versions, canary and autoscaler.")
final class KubeStatusCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "NAME", description = "The service's name.")
  String name;

  @Mixin KubeOptions kube;

  @Override
  public Integer call() {
    String report = kube.withDeployer(null, d -> StatusReport.format(d.state(name)));
    System.out.print(report);
    return 0;
  }
}
