package dev.berth.cli;

import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Parameters;

@Command(
    name = "undeploy",
    mixinStandardHelpOptions = true,
    description = "Delete every object Berth deployed for a service, its canary included.")
final class UndeployCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "NAME", description = "The service's name.")
  String name;

  @Mixin KubeOptions kube;

  @Override
  public Integer call() {
    List<String> deleted = kube.withDeployer(null, d -> d.undeploy(name));
    System.out.println("undeployed " + name + " (" + deleted.size() + " objects deleted)");
    return 0;
  }
}
