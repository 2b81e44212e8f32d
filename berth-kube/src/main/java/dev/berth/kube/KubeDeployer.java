package dev.berth.kube;

import static dev.berth.kube.ManifestGenerator.CANARY_SUFFIX;
import static dev.berth.kube.ManifestGenerator.INSTANCE_LABEL;
import static dev.berth.kube.ManifestGenerator.MANAGED_BY_LABEL;
import static dev.berth.kube.ManifestGenerator.PART_OF_LABEL;
import static dev.berth.kube.ManifestGenerator.STABLE_SUFFIX;

import dev.berth.api.BerthException;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.ConfigMapBuilder;
import io.fabric8.kubernetes.api.model.EnvFromSource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.OwnerReference;
import io.fabric8.kubernetes.api.model.PodTemplateSpec;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.DeploymentCondition;
import io.fabric8.kubernetes.api.model.apps.ReplicaSet;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.gatewayapi.v1.HTTPBackendRef;
import io.fabric8.kubernetes.api.model.gatewayapi.v1.HTTPRoute;
import io.fabric8.kubernetes.api.model.gatewayapi.v1.HTTPRouteRule;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.KubernetesClientTimeoutException;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Puts a model service onto a cluster and looks after it there: server-side apply of its objects,
 * following a rollout until it is available (or saying why not), status, scale, rollback, canary
 * promotion and removal. Works on any cluster the client reaches; every call names the namespace.
 */
public final class KubeDeployer {
  /** The field manager Berth applies as. */
  public static final String FIELD_MANAGER = "berth";

  /** The annotation where the Deployment controller numbers revisions. */
  static final String REVISION_ANNOTATION = "deployment.kubernetes.io/revision";

  private final KubernetesClient client;
  private final String namespace;
  private final PrintStream progress;

  /**
   * @param client a client for the cluster
   * @param namespace the namespace every call works in
   * @param progress where progress lines go
   */
  public KubeDeployer(KubernetesClient client, String namespace, PrintStream progress) {
    this.client = client;
    this.namespace = namespace;
    this.progress = progress;
  }

  public String namespace() {
    return namespace;
  }

  /** What an apply did to one object. */
  public enum Change {
    CREATED,
    CONFIGURED,
    UNCHANGED
  }

  /** One object applied. */
  public record Applied(String kind, String name, Change change) {
    @Override
    public String toString() {
      return kind.toLowerCase(java.util.Locale.ROOT)
          + "/"
          + name
          + " "
          + change.name().toLowerCase(java.util.Locale.ROOT);
    }
  }

  /**
   * Server-side applies each object in order (field manager {@value #FIELD_MANAGER}, conflicts
   * forced, as {@code kubectl apply --server-side --force-conflicts}). Applying what is already
   * there changes nothing: the API server keeps the resource version.
   */
  public List<Applied> apply(List<HasMetadata> objects) {
    List<Applied> out = new ArrayList<>();
    for (HasMetadata o : objects) {
      HasMetadata before = client.resource(o).inNamespace(namespace).get();
      HasMetadata after;
      try {
        after =
            client
                .resource(o)
                .inNamespace(namespace)
                .fieldManager(FIELD_MANAGER)
                .forceConflicts()
                .serverSideApply();
      } catch (KubernetesClientException e) {
        if (e.getCode() == 404 && o instanceof HTTPRoute) {
          throw new BerthException(
              "the cluster does not serve HTTPRoute ("
                  + o.getApiVersion()
                  + "): install the Gateway API and a gateway controller, or deploy without a"
                  + " gateway (no --gateway, no deploy.gateway in berth.yaml) to split a canary's"
                  + " traffic by replicas");
        }
        throw e;
      }
      Change change =
          before == null
              ? Change.CREATED
              : Objects.equals(
                      before.getMetadata().getResourceVersion(),
                      after.getMetadata().getResourceVersion())
                  ? Change.UNCHANGED
                  : Change.CONFIGURED;
      Applied applied = new Applied(o.getKind(), o.getMetadata().getName(), change);
      progress.println("  " + applied);
      out.add(applied);
    }
    return out;
  }

  /** Changes a live Deployment (read, change, write back). */
  private void edit(String name, java.util.function.UnaryOperator<Deployment> change) {
    client.apps().deployments().inNamespace(namespace).withName(name).edit(change);
  }

  /** Training Jobs in this deployer's namespace. */
  public KubeTraining training() {
    return new KubeTraining(client, namespace, progress);
  }

  /** The gated-canary evaluation in this deployer's namespace. */
  public CanaryGate canaryGate() {
    return new CanaryGate(client, namespace, progress);
  }

  /** The live Deployment, or null. */
  public Deployment deployment(String name) {
    return client.apps().deployments().inNamespace(namespace).withName(name).get();
  }

  private Deployment existing(String name) {
    Deployment d = deployment(name);
    if (d == null) {
      throw new BerthException(
          "no model service '"
              + name
              + "' in namespace "
              + namespace
              + "; deploy it with 'berth deploy berth.yaml' or pick the namespace with -n");
    }
    return d;
  }

  /**
   * Replicas for a canary that takes about {@code percent}% of requests beside the stable
   * Deployment's pods (one Service spreads requests over every ready pod alike).
   */
  public int canaryReplicas(String name, int percent) {
    if (percent < 1 || percent > 99) {
      throw new BerthException("--canary takes a percentage from 1 to 99, not " + percent);
    }
    Deployment stable = deployment(name);
    if (stable == null) {
      throw new BerthException(
          "there is no stable '"
              + name
              + "' in namespace "
              + namespace
              + " to run a canary beside; deploy it without --canary first");
    }
    int replicas = desiredReplicas(stable);
    return Math.max(1, (int) Math.round(replicas * percent / (100.0 - percent)));
  }

  private static int desiredReplicas(Deployment d) {
    Integer replicas = d.getSpec().getReplicas();
    return replicas != null ? replicas : 1;
  }

  /**
   * Follows a Deployment's rollout, printing each step, until every replica runs the new template
   * and is available.
   *
   * @throws BerthException when the rollout stalls past its progress deadline or {@code timeout}
   *     passes, with what the cluster says is in the way (pull errors, crashes, failing probes)
   */
  public Deployment awaitRollout(String name, Duration timeout) {
    existing(name);
    AtomicReference<String> last = new AtomicReference<>("");
    AtomicReference<String> failure = new AtomicReference<>();
    Deployment done;
    try {
      done =
          client
              .apps()
              .deployments()
              .inNamespace(namespace)
              .withName(name)
              .waitUntilCondition(
                  d -> {
                    if (d == null) {
                      failure.set("deployment/" + name + " was deleted during the rollout");
                      return true;
                    }
                    Rollout r = rollout(d);
                    if (!r.message().equals(last.get())) {
                      last.set(r.message());
                      progress.println("  " + r.message());
                    }
                    if (r.failed()) {
                      failure.set(r.message());
                    }
                    return r.done() || r.failed();
                  },
                  timeout.toMillis(),
                  TimeUnit.MILLISECONDS);
    } catch (KubernetesClientTimeoutException e) {
      throw new BerthException(
          "deployment/"
              + name
              + " did not become available within "
              + timeout.toSeconds()
              + "s ("
              + last.get()
              + ")"
              + diagnosis(name));
    }
    if (failure.get() != null) {
      throw new BerthException(failure.get() + diagnosis(name));
    }
    return done;
  }

  /** Where a rollout stands, as {@code kubectl rollout status} reads it. */
  record Rollout(boolean done, boolean failed, String message) {}

  static Rollout rollout(Deployment d) {
    String name = "deployment/" + d.getMetadata().getName();
    var status = d.getStatus();
    long generation = Objects.requireNonNullElse(d.getMetadata().getGeneration(), 0L);
    long observed =
        status == null ? -1 : Objects.requireNonNullElse(status.getObservedGeneration(), -1L);
    if (status == null || observed < generation) {
      return new Rollout(false, false, name + ": waiting for the controller to see the change");
    }
    for (DeploymentCondition c :
        Objects.requireNonNullElse(status.getConditions(), List.<DeploymentCondition>of())) {
      if ("Progressing".equals(c.getType()) && "ProgressDeadlineExceeded".equals(c.getReason())) {
        return new Rollout(
            false, true, name + " exceeded its progress deadline: " + c.getMessage());
      }
    }
    int desired = desiredReplicas(d);
    int updated = Objects.requireNonNullElse(status.getUpdatedReplicas(), 0);
    int total = Objects.requireNonNullElse(status.getReplicas(), 0);
    int available = Objects.requireNonNullElse(status.getAvailableReplicas(), 0);
    if (updated < desired) {
      return new Rollout(
          false, false, name + ": " + updated + " of " + desired + " new replicas updated");
    }
    if (total > updated) {
      return new Rollout(
          false, false, name + ": " + (total - updated) + " old replicas pending termination");
    }
    if (available < updated) {
      return new Rollout(
          false, false, name + ": " + available + " of " + updated + " updated replicas available");
    }
    return new Rollout(true, false, name + ": " + available + " of " + desired + " available");
  }

  /**
   * What the cluster says stands in the way of a Deployment's pods: waiting and crashed containers,
   * unschedulable pods and the warning events about them, most recent last.
   */
  String diagnosis(String name) {
    Deployment d = deployment(name);
    if (d == null) {
      return "";
    }
    Set<String> reasons = new java.util.LinkedHashSet<>();
    if (d.getStatus() != null && d.getStatus().getConditions() != null) {
      for (DeploymentCondition c : d.getStatus().getConditions()) {
        if ("False".equals(c.getStatus())) {
          reasons.add(c.getType() + " is False: " + c.getReason() + ": " + c.getMessage());
        }
      }
    }
    Map<String, String> selector = d.getSpec().getSelector().getMatchLabels();
    Set<String> involved = new HashSet<>();
    involved.add(name);
    for (var pod : client.pods().inNamespace(namespace).withLabels(selector).list().getItems()) {
      String p = pod.getMetadata().getName();
      involved.add(p);
      var status = pod.getStatus();
      if (status == null) {
        continue;
      }
      for (var c :
          Objects.requireNonNullElse(
              status.getConditions(), List.<io.fabric8.kubernetes.api.model.PodCondition>of())) {
        if ("PodScheduled".equals(c.getType()) && "False".equals(c.getStatus())) {
          reasons.add("pod " + p + " cannot be scheduled: " + c.getMessage());
        }
      }
      for (var c :
          Objects.requireNonNullElse(
              status.getContainerStatuses(),
              List.<io.fabric8.kubernetes.api.model.ContainerStatus>of())) {
        var state = c.getState();
        if (state != null
            && state.getWaiting() != null
            && !Set.of("ContainerCreating", "PodInitializing")
                .contains(state.getWaiting().getReason())) {
          reasons.add(
              "pod "
                  + p
                  + ": "
                  + state.getWaiting().getReason()
                  + (state.getWaiting().getMessage() == null
                      ? ""
                      : ": " + state.getWaiting().getMessage()));
        }
        var lastState = c.getLastState();
        if (lastState != null && lastState.getTerminated() != null) {
          var t = lastState.getTerminated();
          reasons.add(
              "pod "
                  + p
                  + ": container "
                  + c.getName()
                  + " exited with code "
                  + t.getExitCode()
                  + (t.getReason() == null ? "" : " (" + t.getReason() + ")")
                  + " "
                  + Objects.requireNonNullElse(c.getRestartCount(), 0)
                  + " time(s)");
        }
      }
    }
    for (String rs : ownedReplicaSets(d).stream().map(r -> r.getMetadata().getName()).toList()) {
      involved.add(rs);
    }
    List<io.fabric8.kubernetes.api.model.Event> events =
        new ArrayList<>(
            client.v1().events().inNamespace(namespace).list().getItems().stream()
                .filter(e -> "Warning".equals(e.getType()))
                .filter(
                    e ->
                        e.getInvolvedObject() != null
                            && involved.contains(e.getInvolvedObject().getName()))
                .toList());
    events.sort(Comparator.comparing(KubeDeployer::eventTime));
    for (var e : events) {
      reasons.add(
          e.getInvolvedObject().getKind().toLowerCase(java.util.Locale.ROOT)
              + " "
              + e.getInvolvedObject().getName()
              + ": "
              + e.getReason()
              + ": "
              + e.getMessage());
    }
    if (reasons.isEmpty()) {
      return "";
    }
    StringBuilder out = new StringBuilder("\nwhat the cluster says:");
    reasons.stream()
        .skip(Math.max(0, reasons.size() - 12))
        .forEach(r -> out.append("\n  ").append(r));
    return out.toString();
  }

  private static String eventTime(io.fabric8.kubernetes.api.model.Event e) {
    String t =
        e.getLastTimestamp() != null
            ? e.getLastTimestamp()
            : e.getEventTime() != null ? e.getEventTime().getTime() : null;
    return t == null ? "" : t;
  }

  /** The ReplicaSets a Deployment owns, newest revision first. */
  List<ReplicaSet> ownedReplicaSets(Deployment d) {
    String uid = d.getMetadata().getUid();
    List<ReplicaSet> out = new ArrayList<>();
    for (ReplicaSet rs :
        client
            .apps()
            .replicaSets()
            .inNamespace(namespace)
            .withLabels(d.getSpec().getSelector().getMatchLabels())
            .list()
            .getItems()) {
      for (OwnerReference ref :
          Objects.requireNonNullElse(
              rs.getMetadata().getOwnerReferences(), List.<OwnerReference>of())) {
        if (Objects.equals(ref.getUid(), uid)) {
          out.add(rs);
        }
      }
    }
    out.sort(Comparator.comparingLong(KubeDeployer::revision).reversed());
    return out;
  }

  private static long revision(HasMetadata o) {
    Map<String, String> a = o.getMetadata().getAnnotations();
    String r = a == null ? null : a.get(REVISION_ANNOTATION);
    try {
      return r == null ? 0 : Long.parseLong(r);
    } catch (NumberFormatException e) {
      return 0;
    }
  }

  /**
   * The stable Deployment, its canary (or null), autoscaler (or null) and gateway route (or null).
   */
  public record ServiceState(
      String namespace,
      Deployment stable,
      Deployment canary,
      HorizontalPodAutoscaler autoscaler,
      HTTPRoute route) {}

  /** Where a service stands in the cluster. */
  public ServiceState state(String name) {
    Deployment stable = existing(name);
    return new ServiceState(
        namespace,
        stable,
        deployment(name + CANARY_SUFFIX),
        client
            .autoscaling()
            .v2()
            .horizontalPodAutoscalers()
            .inNamespace(namespace)
            .withName(name)
            .get(),
        route(name));
  }

  /** The service's gateway route, or null (also on a cluster without the Gateway API). */
  private HTTPRoute route(String name) {
    HTTPRoute route = client.resources(HTTPRoute.class).inNamespace(namespace).withName(name).get();
    return route != null
            && route.getMetadata().getLabels() != null
            && "berth".equals(route.getMetadata().getLabels().get(MANAGED_BY_LABEL))
        ? route
        : null;
  }

  /**
   * Sets the stable Deployment's replicas.
   *
   * @throws BerthException when an autoscaler owns the replica count
   */
  public void scale(String name, int replicas) {
    if (replicas < 0) {
      throw new BerthException("replicas must be 0 or more, not " + replicas);
    }
    existing(name);
    HorizontalPodAutoscaler hpa =
        client
            .autoscaling()
            .v2()
            .horizontalPodAutoscalers()
            .inNamespace(namespace)
            .withName(name)
            .get();
    if (hpa != null) {
      throw new BerthException(
          name
              + " is autoscaled between "
              + hpa.getSpec().getMinReplicas()
              + " and "
              + hpa.getSpec().getMaxReplicas()
              + " replicas by its HorizontalPodAutoscaler, which would undo a manual scale;"
              + " change deploy.autoscaling (min-replicas, max-replicas) in berth.yaml and deploy"
              + " again, or set 'enabled: false' there to scale by hand");
    }
    edit(
        name,
        d -> {
          d.getSpec().setReplicas(replicas);
          return d;
        });
  }

  /**
   * Goes back: drops the canary when there is one; otherwise puts the stable Deployment's previous
   * revision (its ReplicaSet's pod template, as {@code kubectl rollout undo}) back.
   *
   * @return what was done, for the user
   */
  public String rollback(String name) {
    Deployment stable = existing(name);
    if (deployment(name + CANARY_SUFFIX) != null) {
      dropCanary(name);
      return "dropped the canary " + name + CANARY_SUFFIX + "; " + name + " serves everything";
    }
    long current = revision(stable);
    List<ReplicaSet> history = ownedReplicaSets(stable);
    if (current == 0 && !history.isEmpty()) {
      current = revision(history.get(0));
    }
    long now = current;
    ReplicaSet previous =
        history.stream()
            .filter(rs -> revision(rs) > 0 && revision(rs) < now)
            .findFirst()
            .orElseThrow(
                () ->
                    new BerthException(
                        name
                            + " has no earlier revision to roll back to (revision "
                            + now
                            + " is its first, or the cluster kept no older ReplicaSets)"));
    PodTemplateSpec template = copy(previous.getSpec().getTemplate(), PodTemplateSpec.class);
    template.getMetadata().getLabels().remove("pod-template-hash");
    edit(
        name,
        d -> {
          d.getSpec().setTemplate(template);
          return d;
        });
    return "rolled "
        + name
        + " back from revision "
        + now
        + " to revision "
        + revision(previous)
        + " (image "
        + template.getSpec().getContainers().get(0).getImage()
        + ")";
  }

  /**
   * Makes the canary the stable version: the stable Deployment takes the canary's pod template (and
   * a copy of its serving config under the stable name), then the canary goes.
   */
  public void promote(String name) {
    Deployment stable = existing(name);
    Deployment canary = deployment(name + CANARY_SUFFIX);
    if (canary == null) {
      throw new BerthException(
          name
              + " has no canary to promote; start one with 'berth deploy berth.yaml --canary"
              + " 10'");
    }
    PodTemplateSpec template = copy(canary.getSpec().getTemplate(), PodTemplateSpec.class);
    template.getMetadata().getLabels().put(INSTANCE_LABEL, name);
    String canaryPrefix = name + CANARY_SUFFIX + "-serving-";
    for (var c : template.getSpec().getContainers()) {
      for (EnvFromSource from :
          Objects.requireNonNullElse(c.getEnvFrom(), List.<EnvFromSource>of())) {
        if (from.getConfigMapRef() != null
            && from.getConfigMapRef().getName().startsWith(canaryPrefix)) {
          String canaryConfig = from.getConfigMapRef().getName();
          String stableConfig = name + "-serving-" + canaryConfig.substring(canaryPrefix.length());
          copyConfigMap(canaryConfig, stableConfig, name);
          from.getConfigMapRef().setName(stableConfig);
        }
      }
    }
    Map<String, String> annotations =
        new LinkedHashMap<>(
            Objects.requireNonNullElse(stable.getMetadata().getAnnotations(), Map.of()));
    Map<String, String> canaryAnnotations =
        Objects.requireNonNullElse(canary.getMetadata().getAnnotations(), Map.of());
    for (String key : List.of(ManifestGenerator.MODELS_ANNOTATION, CanaryGate.GATED_ANNOTATION)) {
      if (canaryAnnotations.containsKey(key)) {
        annotations.put(key, canaryAnnotations.get(key));
      } else {
        annotations.remove(key);
      }
    }
    edit(
        name,
        d -> {
          d.getSpec().setTemplate(template);
          d.getMetadata().setAnnotations(annotations);
          return d;
        });
    progress.println("  deployment/" + name + " now runs the canary's template");
    dropCanary(name);
  }

  private void copyConfigMap(String from, String to, String instance) {
    if (client.configMaps().inNamespace(namespace).withName(to).get() != null) {
      return;
    }
    ConfigMap source = client.configMaps().inNamespace(namespace).withName(from).get();
    if (source == null) {
      throw new BerthException(
          "the canary's config " + from + " is missing in namespace " + namespace);
    }
    Map<String, String> labels = new LinkedHashMap<>(source.getMetadata().getLabels());
    labels.put(INSTANCE_LABEL, instance);
    client
        .resource(
            new ConfigMapBuilder()
                .withNewMetadata()
                .withName(to)
                .withNamespace(namespace)
                .withLabels(labels)
                .endMetadata()
                .withImmutable(true)
                .withData(source.getData())
                .build())
        .inNamespace(namespace)
        .fieldManager(FIELD_MANAGER)
        .forceConflicts()
        .serverSideApply();
    progress.println("  configmap/" + to + " created");
  }

  private void dropCanary(String name) {
    String canary = name + CANARY_SUFFIX;
    // the gateway stops sending to the canary before it goes
    HTTPRoute route = route(name);
    if (route != null) {
      client
          .resources(HTTPRoute.class)
          .inNamespace(namespace)
          .withName(name)
          .edit(
              r -> {
                for (HTTPRouteRule rule : r.getSpec().getRules()) {
                  List<HTTPBackendRef> kept = new ArrayList<>();
                  for (HTTPBackendRef b : rule.getBackendRefs()) {
                    if (b.getName().equals(name + STABLE_SUFFIX)) {
                      b.setWeight(100);
                      kept.add(b);
                    } else if (!b.getName().equals(canary)) {
                      kept.add(b);
                    }
                  }
                  rule.setBackendRefs(kept);
                }
                return r;
              });
      progress.println("  httproute/" + name + " sends every request to " + name + STABLE_SUFFIX);
      client.services().inNamespace(namespace).withName(canary).delete();
      progress.println("  service/" + canary + " deleted");
    }
    client.apps().deployments().inNamespace(namespace).withName(canary).delete();
    progress.println("  deployment/" + canary + " deleted");
    for (ConfigMap cm :
        client
            .configMaps()
            .inNamespace(namespace)
            .withLabel(INSTANCE_LABEL, canary)
            .withLabel(MANAGED_BY_LABEL, "berth")
            .list()
            .getItems()) {
      client.resource(cm).inNamespace(namespace).delete();
      progress.println("  configmap/" + cm.getMetadata().getName() + " deleted");
    }
  }

  /**
   * Deletes the serving ConfigMaps of a Deployment that neither its template nor any ReplicaSet it
   * keeps for rollback names any more.
   */
  public void pruneConfigs(String deploymentName) {
    Deployment d = deployment(deploymentName);
    if (d == null) {
      return;
    }
    Set<String> used = new HashSet<>(configRefs(d.getSpec().getTemplate()));
    for (ReplicaSet rs : ownedReplicaSets(d)) {
      used.addAll(configRefs(rs.getSpec().getTemplate()));
    }
    for (ConfigMap cm :
        client
            .configMaps()
            .inNamespace(namespace)
            .withLabel(INSTANCE_LABEL, deploymentName)
            .withLabel(MANAGED_BY_LABEL, "berth")
            .list()
            .getItems()) {
      if (!used.contains(cm.getMetadata().getName())) {
        client.resource(cm).inNamespace(namespace).delete();
        progress.println("  configmap/" + cm.getMetadata().getName() + " pruned (no longer used)");
      }
    }
  }

  private static List<String> configRefs(PodTemplateSpec template) {
    List<String> out = new ArrayList<>();
    for (var c : template.getSpec().getContainers()) {
      for (EnvFromSource from :
          Objects.requireNonNullElse(c.getEnvFrom(), List.<EnvFromSource>of())) {
        if (from.getConfigMapRef() != null) {
          out.add(from.getConfigMapRef().getName());
        }
      }
    }
    return out;
  }

  /**
   * Deletes every object Berth made for a service (canary included).
   *
   * @return the objects deleted, as {@code kind/name}
   */
  public List<String> undeploy(String name) {
    Map<String, String> labels = Map.of(PART_OF_LABEL, name, MANAGED_BY_LABEL, "berth");
    List<HasMetadata> found = new ArrayList<>();
    found.addAll(
        client
            .autoscaling()
            .v2()
            .horizontalPodAutoscalers()
            .inNamespace(namespace)
            .withLabels(labels)
            .list()
            .getItems());
    found.addAll(
        client.apps().deployments().inNamespace(namespace).withLabels(labels).list().getItems());
    found.addAll(client.services().inNamespace(namespace).withLabels(labels).list().getItems());
    found.addAll(
        client
            .policy()
            .v1()
            .podDisruptionBudget()
            .inNamespace(namespace)
            .withLabels(labels)
            .list()
            .getItems());
    found.addAll(
        client
            .network()
            .v1()
            .networkPolicies()
            .inNamespace(namespace)
            .withLabels(labels)
            .list()
            .getItems());
    found.addAll(client.configMaps().inNamespace(namespace).withLabels(labels).list().getItems());
    found.addAll(
        client.serviceAccounts().inNamespace(namespace).withLabels(labels).list().getItems());
    try {
      found.addAll(
          0,
          client
              .resources(HTTPRoute.class)
              .inNamespace(namespace)
              .withLabels(labels)
              .list()
              .getItems());
    } catch (KubernetesClientException e) {
      if (e.getCode() != 404) { // 404: the cluster has no Gateway API, so no routes
        throw e;
      }
    }
    if (found.isEmpty()) {
      throw new BerthException(
          "nothing Berth deployed as '"
              + name
              + "' in namespace "
              + namespace
              + "; 'berth status "
              + name
              + " -n NAMESPACE' looks elsewhere");
    }
    List<String> deleted = new ArrayList<>();
    for (HasMetadata o : found) {
      client.resource(o).inNamespace(namespace).delete();
      String what =
          o.getKind().toLowerCase(java.util.Locale.ROOT) + "/" + o.getMetadata().getName();
      progress.println("  " + what + " deleted");
      deleted.add(what);
    }
    return deleted;
  }

  private static <T> T copy(Object o, Class<T> type) {
    KubernetesSerialization s = new KubernetesSerialization();
    return s.unmarshal(s.asJson(o), type);
  }
}
