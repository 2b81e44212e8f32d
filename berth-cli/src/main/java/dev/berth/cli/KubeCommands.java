package dev.berth.cli;

import picocli.CommandLine;

/** The Kubernetes commands, added to the CLI when berth-kube is on the class path. */
final class KubeCommands {
  private KubeCommands() {}

  static void addTo(CommandLine cli) {
    cli.addSubcommand(new DeployCommand());
    cli.addSubcommand(new KubeStatusCommand());
    cli.addSubcommand(new ScaleCommand());
    cli.addSubcommand(new RollbackCommand());
    cli.addSubcommand(new PromoteCommand());
    cli.addSubcommand(new UndeployCommand());
  }
}
