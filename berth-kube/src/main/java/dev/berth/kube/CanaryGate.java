package dev.berth.kube;

import static dev.berth.kube.ManifestGenerator.CANARY_SUFFIX;
import static dev.berth.kube.ManifestGenerator.INSTANCE_LABEL;
import static dev.berth.kube.ManifestGenerator.MANAGED_BY_LABEL;
import static dev.berth.kube.ManifestGenerator.PART_OF_LABEL;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.api.BerthException;
import dev.berth.runtime.ModelGate;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerPort;
import io.fabric8.kubernetes.api.model.ContainerStateTerminated;
import io.fabric8.kubernetes.api.model.EnvFromSource;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodSpec;
import io.fabric8.kubernetes.api.model.Quantity;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.batch.v1.Job;
import io.fabric8.kubernetes.api.model.batch.v1.JobBuilder;
import io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicy;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientTimeoutException;
import java.io.IOException;
import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.TimeUnit;

/**
 * A gated canary's evaluation through the cluster: for each model of the canary whose model.yaml
 * has a gate, an evaluation Job runs {@code berth eval --gate} from the canary's own image (which
 * carries the gate's data set) against one ready pod of the canary and one of the stable version,
 * and writes the figure to its termination message; the canary passes when, for every gated model,
 * its figure meets the gate's minimum and is within its largest drop of the stable version's.
 *
 * <p>The Jobs run with the restricted security profile, as the service's pods do, carry the labels
 * the service's NetworkPolicy admits, and are deleted once read.
 */
public final class CanaryGate {
  /** Deployment annotation: the bundled models whose model.yaml has a gate, space-separated. */
  public static final String GATED_ANNOTATION = "dev.berth/gated-models";

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String JOB_LABEL = "job-name";

  private final KubernetesClient client;
  private final String namespace;
  private final PrintStream progress;

  public CanaryGate(KubernetesClient client, String namespace, PrintStream progress) {
    this.client = client;
    this.namespace = namespace;
    this.progress = progress;
  }

  /**
   * What one evaluation Job measured.
   *
   * @param target {@code canary} or {@code stable}
   * @param pod the pod it evaluated
   * @param version the model version that answered
   * @param metric the gate's metric ({@code accuracy}, {@code recall:Bag})
   * @param figure what it scored
   * @param min the gate's minimum, NaN for none
   * @param maxDrop the gate's largest drop, NaN for none
   */
  public record Measured(
      String target,
      String pod,
      String version,
      String metric,
      double figure,
      double min,
      double maxDrop) {}

  /**
   * An evaluation that could not be made: a Job that failed or ran past its deadline, no ready pod
   * to evaluate. A canary that cannot be evaluated does not pass.
   */
  public static final class EvaluationFailed extends BerthException {
    EvaluationFailed(String message, Throwable cause) {
      super(message, cause);
    }

    EvaluationFailed(String message) {
      super(message);
    }
  }

  /** One gated model's figures and the gate's verdict on the canary. */
  public record Result(String model, Measured canary, Measured stable, ModelGate.Verdict verdict) {}

  /**
   * Evaluates the canary of service {@code name} and its stable version on every gated model.
   *
   * @throws BerthException when there is no canary, no model of it has a gate, a pod to evaluate is
   *     missing, or an evaluation Job fails or runs past {@code timeout}
   */
  public List<Result> evaluate(String name, Duration timeout) {
    Deployment canary = deployment(name + CANARY_SUFFIX);
    if (canary == null) {
      throw new BerthException(
          "service '"
              + name
              + "' has no canary to gate in namespace "
              + namespace
              + "; start one with 'berth deploy berth.yaml --canary PERCENT'");
    }
    Deployment stable = deployment(name);
    if (stable == null) {
      throw new BerthException("service '" + name + "' has a canary but no stable Deployment");
    }
    List<String> models = gatedModels(canary);
    if (models.isEmpty()) {
      throw new BerthException(
          "no model of "
              + name
              + CANARY_SUFFIX
              + " has a gate in its model.yaml; add 'gate:' (a labelled data set, a metric, 'min'"
              + " and/or 'max-drop') and deploy the canary again");
    }
    refuseUnreachable(canary);
    List<Result> out = new ArrayList<>();
    for (int i = 0; i < models.size(); i++) {
      String model = models.get(i);
      Measured c = measure(name, i + 1, model, canary, canary, "canary", timeout);
      Measured s = measure(name, i + 1, model, canary, stable, "stable", timeout);
      ModelGate.Verdict v =
          ModelGate.judge(
              c.metric(),
              c.min(),
              c.maxDrop(),
              c.figure(),
              s.figure(),
              s.version() + " (stable)",
              "its gate's data");
      out.add(new Result(model, c, s, v));
    }
    return out;
  }

  private Deployment deployment(String name) {
    return client.apps().deployments().inNamespace(namespace).withName(name).get();
  }

  /** The gated models a Deployment's annotation names. */
  static List<String> gatedModels(Deployment d) {
    Map<String, String> annotations = d.getMetadata().getAnnotations();
    String gated = annotations == null ? null : annotations.get(GATED_ANNOTATION);
    if (gated == null || gated.isBlank()) {
      return List.of();
    }
    return List.of(gated.strip().split("\\s+"));
  }

  /**
   * An evaluation Job calls the pods as any client: a service that wants API keys or serves TLS
   * would refuse it or need its CA, which a Job of this kind does not carry.
   */
  private void refuseUnreachable(Deployment canary) {
    Container server = canary.getSpec().getTemplate().getSpec().getContainers().get(0);
    for (EnvFromSource from :
        Objects.requireNonNullElse(server.getEnvFrom(), List.<EnvFromSource>of())) {
      if (from.getConfigMapRef() == null) {
        continue;
      }
      ConfigMap config =
          client
              .configMaps()
              .inNamespace(namespace)
              .withName(from.getConfigMapRef().getName())
              .get();
      Map<String, String> data = config == null ? null : config.getData();
      if (data == null) {
        continue;
      }
      for (String setting : List.of("BERTH_API_KEYS", "BERTH_TLS_CERT")) {
        if (data.containsKey(setting)) {
          throw new BerthException(
              canary.getMetadata().getName()
                  + " serves with "
                  + (setting.equals("BERTH_API_KEYS") ? "API keys" : "TLS")
                  + ", which a gated canary's evaluation Job cannot present; evaluate it with"
                  + " 'berth eval URL --gate MODEL_DIR/model.yaml' and promote or roll back by"
                  + " hand");
        }
      }
    }
  }

  /** Runs one evaluation Job against one ready pod of {@code target} and reads its figure. */
  private Measured measure(
      String name,
      int index,
      String model,
      Deployment canary,
      Deployment target,
      String targetName,
      Duration timeout) {
    Pod pod = readyPod(target);
    String url = url(pod, target);
    // a name of its own each run: a Job of an earlier run may still be going away
    String jobName =
        jobName(name, index, targetName, Long.toString(System.currentTimeMillis() % 46_656, 36));
    PodSpec canarySpec = canary.getSpec().getTemplate().getSpec();
    Container server = canarySpec.getContainers().get(0);
    Map<String, String> labels = new LinkedHashMap<>();
    labels.put(MANAGED_BY_LABEL, "berth");
    labels.put(PART_OF_LABEL, name);
    labels.put("app.kubernetes.io/component", "model-gate");
    labels.putAll(admittedLabels(name)); // last: what the NetworkPolicy asks for wins
    String modelYaml = "/opt/berth/models/" + model + "/model.yaml";
    Job job =
        new JobBuilder()
            .withNewMetadata()
            .withName(jobName)
            .withNamespace(namespace)
            .withLabels(labels)
            .endMetadata()
            .withNewSpec()
            .withBackoffLimit(0)
            .withActiveDeadlineSeconds(Math.max(1, timeout.toSeconds()))
            .withTtlSecondsAfterFinished(600)
            .withNewTemplate()
            .withNewMetadata()
            .withLabels(labels)
            .endMetadata()
            .withNewSpec()
            .withRestartPolicy("Never")
            .withAutomountServiceAccountToken(false)
            .withSecurityContext(canarySpec.getSecurityContext())
            .withImagePullSecrets(canarySpec.getImagePullSecrets())
            .addNewContainer()
            .withName("eval")
            .withImage(server.getImage())
            .withImagePullPolicy(server.getImagePullPolicy())
            .withArgs(
                "eval",
                url,
                "--model",
                model,
                "--gate",
                modelYaml,
                "--max-errors",
                "0",
                "--result",
                "/dev/termination-log")
            .withTerminationMessagePolicy("FallbackToLogsOnError")
            // an evaluation client's own needs, not the server's (a GPU, a language model's memory)
            .withNewResources()
            .withRequests(Map.of("cpu", new Quantity("500m"), "memory", new Quantity("512Mi")))
            .withLimits(Map.of("memory", new Quantity("1Gi")))
            .endResources()
            .withSecurityContext(server.getSecurityContext())
            .addNewVolumeMount()
            .withName("tmp")
            .withMountPath("/tmp")
            .endVolumeMount()
            .endContainer()
            .addNewVolume()
            .withName("tmp")
            .withNewEmptyDir()
            .endEmptyDir()
            .endVolume()
            .endSpec()
            .endTemplate()
            .endSpec()
            .build();
    progress.println(
        "  job/"
            + jobName
            + ": evaluating model '"
            + model
            + "' of the "
            + targetName
            + " (pod "
            + pod.getMetadata().getName()
            + ") on its gate's data ...");
    client.batch().v1().jobs().inNamespace(namespace).resource(job).create();
    try {
      Job done;
      try {
        done =
            client
                .batch()
                .v1()
                .jobs()
                .inNamespace(namespace)
                .withName(jobName)
                .waitUntilCondition(
                    j ->
                        j != null
                            && j.getStatus() != null
                            && (positive(j.getStatus().getSucceeded())
                                || positive(j.getStatus().getFailed())),
                    timeout.toMillis(),
                    TimeUnit.MILLISECONDS);
      } catch (KubernetesClientTimeoutException e) {
        throw new EvaluationFailed(
            "job/"
                + jobName
                + " did not finish within "
                + timeout.toSeconds()
                + "s (--timeout); its pod's events say why ('kubectl describe job "
                + jobName
                + "')",
            e);
      }
      String message = terminationMessage(jobName);
      if (!positive(done.getStatus().getSucceeded())) {
        throw new EvaluationFailed(
            "job/"
                + jobName
                + " failed evaluating model '"
                + model
                + "' of the "
                + targetName
                + (message == null ? "" : ": " + message.strip()));
      }
      if (message == null) {
        throw new EvaluationFailed("job/" + jobName + " finished without a result");
      }
      JsonNode r;
      try {
        r = JSON.readTree(message);
      } catch (IOException e) {
        throw new EvaluationFailed("job/" + jobName + " wrote no result JSON: " + message, e);
      }
      return new Measured(
          targetName,
          pod.getMetadata().getName(),
          r.path("version").asText(),
          r.path("metric").asText(),
          r.path("figure").asDouble(Double.NaN),
          r.has("min") ? r.get("min").asDouble() : Double.NaN,
          r.has("max_drop") ? r.get("max_drop").asDouble() : Double.NaN);
    } finally {
      client
          .batch()
          .v1()
          .jobs()
          .inNamespace(namespace)
          .withName(jobName)
          .withPropagationPolicy(io.fabric8.kubernetes.api.model.DeletionPropagation.BACKGROUND)
          .delete();
    }
  }

  private static boolean positive(Integer n) {
    return n != null && n > 0;
  }

  /** The termination message of a Job's pod: the result, or the tail of its log on failure. */
  private String terminationMessage(String jobName) {
    for (Pod p :
        client.pods().inNamespace(namespace).withLabel(JOB_LABEL, jobName).list().getItems()) {
      if (p.getStatus() == null || p.getStatus().getContainerStatuses() == null) {
        continue;
      }
      for (var status : p.getStatus().getContainerStatuses()) {
        ContainerStateTerminated t =
            status.getState() == null ? null : status.getState().getTerminated();
        if (t != null && t.getMessage() != null) {
          return t.getMessage();
        }
      }
    }
    return null;
  }

  /** A ready pod of a Deployment, the oldest first. */
  private Pod readyPod(Deployment d) {
    String instance = d.getMetadata().getName();
    return client
        .pods()
        .inNamespace(namespace)
        .withLabel(INSTANCE_LABEL, instance)
        .list()
        .getItems()
        .stream()
        .filter(CanaryGate::ready)
        .filter(p -> p.getStatus().getPodIP() != null)
        .min(
            java.util.Comparator.comparing(
                p -> Objects.requireNonNullElse(p.getMetadata().getCreationTimestamp(), "")))
        .orElseThrow(
            () ->
                new EvaluationFailed(
                    "deployment/"
                        + instance
                        + " has no ready pod to evaluate; see 'berth status "
                        + instance.replace(CANARY_SUFFIX, "")
                        + "'"));
  }

  private static boolean ready(Pod p) {
    return p.getStatus() != null
        && p.getStatus().getConditions() != null
        && p.getStatus().getConditions().stream()
            .anyMatch(c -> "Ready".equals(c.getType()) && "True".equals(c.getStatus()));
  }

  /** The pod's REST endpoint: its IP and the server container's http port. */
  private static String url(Pod pod, Deployment d) {
    int port = 8080;
    for (ContainerPort p :
        Objects.requireNonNullElse(
            d.getSpec().getTemplate().getSpec().getContainers().get(0).getPorts(),
            List.<ContainerPort>of())) {
      if ("http".equals(p.getName())) {
        port = p.getContainerPort();
      }
    }
    String ip = pod.getStatus().getPodIP();
    return "http://" + (ip.contains(":") ? "[" + ip + "]" : ip) + ":" + port;
  }

  /**
   * The labels the service's NetworkPolicy admits from its own namespace, which the evaluation pod
   * must carry to reach the pods (none: every pod of the namespace is admitted).
   */
  private Map<String, String> admittedLabels(String name) {
    NetworkPolicy policy =
        client.network().v1().networkPolicies().inNamespace(namespace).withName(name).get();
    if (policy == null || policy.getSpec().getIngress() == null) {
      return Map.of();
    }
    for (var rule : policy.getSpec().getIngress()) {
      for (var peer :
          Objects.requireNonNullElse(
              rule.getFrom(),
              List.<io.fabric8.kubernetes.api.model.networking.v1.NetworkPolicyPeer>of())) {
        boolean ours =
            peer.getNamespaceSelector() == null
                || namespace.equals(
                    Objects.requireNonNullElse(
                            peer.getNamespaceSelector().getMatchLabels(), Map.<String, String>of())
                        .get("kubernetes.io/metadata.name"));
        if (ours && peer.getPodSelector() != null) {
          return Objects.requireNonNullElse(peer.getPodSelector().getMatchLabels(), Map.of());
        }
      }
    }
    return Map.of();
  }

  /** {@code NAME-gate-N-canary-RUN}, the name shortened to keep it a DNS label. */
  static String jobName(String name, int index, String target, String run) {
    String suffix = "-gate-" + index + "-" + target + "-" + run;
    String base =
        name.length() + suffix.length() > 63 ? name.substring(0, 63 - suffix.length()) : name;
    while (base.endsWith("-")) {
      base = base.substring(0, base.length() - 1);
    }
    return (base + suffix).toLowerCase(Locale.ROOT);
  }
}
