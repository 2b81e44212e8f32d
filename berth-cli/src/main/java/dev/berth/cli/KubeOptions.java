package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.kube.KubeDeployer;
import io.fabric8.kubernetes.client.Config;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientBuilder;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Function;
import picocli.CommandLine.Option;

/**
 * Which cluster and namespace a Kubernetes command works on, found as kubectl finds them: {@code
 * --kubeconfig}, else {@code KUBECONFIG}, else {@code ~/.kube/config}, else the pod's service
 * account; {@code --context} picks a context other than the current one.
 */
final class KubeOptions {
  @Option(
      names = {"-n", "--namespace"},
      paramLabel = "NAMESPACE",
      description =
          "Namespace (default: berth.yaml's deploy.namespace, else the kubeconfig context's,"
              + " else 'default').")
  String namespace;

  @Option(
      names = "--context",
      paramLabel = "CONTEXT",
      description = "kubeconfig context to use (default: the current context).")
  String context;

  @Option(
      names = "--kubeconfig",
      paramLabel = "FILE",
      description = "kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).")
  Path kubeconfig;

  private Config config() {
    if (kubeconfig != null) {
      if (!Files.isRegularFile(kubeconfig)) {
        throw new BerthException("--kubeconfig " + kubeconfig + " does not exist");
      }
      return Config.fromKubeconfig(context, kubeconfig.toFile());
    }
    return Config.autoConfigure(context);
  }

  /**
   * Runs {@code action} with a deployer for the chosen cluster and namespace, turning the client's
   * failures into messages that say which API server said what.
   *
   * @param serviceNamespace the service file's namespace, or null
   */
  <T> T withDeployer(String serviceNamespace, Function<KubeDeployer, T> action) {
    Config config;
    try {
      config = config();
    } catch (KubernetesClientException e) {
      throw new BerthException("cannot read the kubeconfig: " + e.getMessage(), e);
    }
    if (context != null
        && (config.getCurrentContext() == null
            || !context.equals(config.getCurrentContext().getName()))) {
      throw new BerthException(
          "kubeconfig has no context '"
              + context
              + "'; 'kubectl config get-contexts' lists the ones it has");
    }
    String ns = namespace;
    if (ns == null) {
      ns = serviceNamespace;
    }
    if (ns == null) {
      ns = config.getNamespace();
    }
    if (ns == null) {
      ns = "default";
    }
    try (KubernetesClient client = new KubernetesClientBuilder().withConfig(config).build()) {
      return action.apply(new KubeDeployer(client, ns, System.err));
    } catch (KubernetesClientException e) {
      throw new BerthException(describe(e, config.getMasterUrl()), e);
    }
  }

  static String describe(KubernetesClientException e, String url) {
    if (e.getCode() > 0) {
      String message = e.getStatus() != null ? e.getStatus().getMessage() : e.getMessage();
      return "the Kubernetes API at " + url + " answered " + e.getCode() + ": " + message;
    }
    Throwable root = e;
    while (root.getCause() != null && root.getCause() != root) {
      root = root.getCause();
    }
    return "cannot reach the Kubernetes API at "
        + url
        + " ("
        + root.getClass().getSimpleName()
        + (root.getMessage() == null ? "" : ": " + root.getMessage())
        + "); check the kubeconfig's current context ('kubectl config current-context') or pass"
        + " --context / --kubeconfig";
  }
}
