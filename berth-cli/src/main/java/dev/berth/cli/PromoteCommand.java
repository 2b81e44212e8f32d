package dev.berth.cli;

import dev.berth.kube.CanaryGate;
import dev.berth.kube.KubeDeployer;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "promote",
    mixinStandardHelpOptions = true,
    description = {
      "Make a service's canary its stable version: the stable Deployment rolls to the canary's"
          + " image and config, then the canary goes. With --gate, the canary is first evaluated"
          + " on its models' gates against the stable version, and rolled back instead when it"
          + " falls short.",
      "Exit codes: 0 promoted, 3 refused by the gate (the canary is dropped), 2 anything else."
    })
final class PromoteCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "NAME", description = "The service's name.")
  String name;

  @Option(
      names = "--gate",
      description =
          "Evaluate canary and stable on each model's model.yaml gate first (an evaluation Job"
              + " per version, from the canary's image): promote when every gated model passes,"
              + " else roll the canary back.")
  boolean gate;

  @Option(
      names = "--timeout",
      paramLabel = "DURATION",
      description =
          "How long to follow the rollout, and each evaluation Job (default: ${DEFAULT-VALUE}).",
      defaultValue = "10m",
      converter = ServeCommand.DurationConverter.class)
  Duration timeout;

  @Mixin KubeOptions kube;

  @Override
  public Integer call() {
    return kube.withDeployer(
        null,
        d -> {
          if (gate && !passesGate(d, name, timeout)) {
            return CanaryDecision.rollBack(d, name);
          }
          d.promote(name);
          d.awaitRollout(name, timeout);
          d.pruneConfigs(name);
          System.out.println(name + " promoted: the canary's version is stable");
          return 0;
        });
  }

  /** Runs the gated evaluation and prints both versions' figures; true when every model passes. */
  static boolean passesGate(KubeDeployer d, String name, Duration timeout) {
    System.err.println("evaluating " + name + "-canary against " + name + " on their gates ...");
    List<CanaryGate.Result> results;
    try {
      results = d.canaryGate().evaluate(name, timeout);
    } catch (CanaryGate.EvaluationFailed e) {
      // a canary that cannot be evaluated (one that answers with errors, among others) does not
      // pass
      System.out.println("the gate could not evaluate the canary: " + e.getMessage());
      return false;
    }
    boolean passed = true;
    for (CanaryGate.Result r : results) {
      System.out.printf(
          Locale.ROOT,
          "model '%s': canary (version %s) %s %.4f, stable (version %s) %s %.4f: %s (%s)%n",
          r.model(),
          r.canary().version(),
          r.canary().metric(),
          r.canary().figure(),
          r.stable().version(),
          r.stable().metric(),
          r.stable().figure(),
          r.verdict().passed() ? "passed" : "refused",
          r.verdict().summary());
      passed &= r.verdict().passed();
    }
    return passed;
  }

  /** What a refused canary comes to. */
  static final class CanaryDecision {
    private CanaryDecision() {}

    static int rollBack(KubeDeployer d, String name) {
      String done = d.rollback(name);
      System.out.println("refused by the gate: " + done);
      return TrainCommand.REFUSED;
    }
  }
}
