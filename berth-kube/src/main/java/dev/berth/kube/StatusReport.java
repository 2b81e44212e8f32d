package dev.berth.kube;

import io.fabric8.kubernetes.api.model.apps.Deployment;
import io.fabric8.kubernetes.api.model.apps.DeploymentCondition;
import io.fabric8.kubernetes.api.model.autoscaling.v2.HorizontalPodAutoscaler;
import io.fabric8.kubernetes.api.model.autoscaling.v2.MetricStatus;
import io.fabric8.kubernetes.api.model.gatewayapi.v1.HTTPBackendRef;
import io.fabric8.kubernetes.api.model.gatewayapi.v1.HTTPRoute;
import io.fabric8.kubernetes.api.model.gatewayapi.v1.HTTPRouteRule;
import io.fabric8.kubernetes.api.model.gatewayapi.v1.ParentReference;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/** {@code berth status}: a service's Deployments, image, models and autoscaler, as text. */
public final class StatusReport {
  private StatusReport() {}

  public static String format(KubeDeployer.ServiceState state) {
    Deployment stable = state.stable();
    StringBuilder out = new StringBuilder();
    out.append(stable.getMetadata().getName())
        .append("  (namespace ")
        .append(state.namespace())
        .append(")\n");
    deployment(out, "stable", stable);
    if (state.canary() != null) {
      deployment(out, "canary", state.canary());
      int s = ready(stable);
      int c = ready(state.canary());
      if (s + c > 0) {
        out.append(
            String.format(
                java.util.Locale.ROOT,
                "  %-11s %d of %d ready pods are the canary: about %d%% of requests%s%n",
                "traffic",
                c,
                s + c,
                Math.round(100.0 * c / (s + c)),
                state.route() == null ? "" : " to Service " + stable.getMetadata().getName()));
      }
    }
    if (state.route() != null) {
      route(out, state.route());
    }
    HorizontalPodAutoscaler hpa = state.autoscaler();
    if (hpa != null) {
      var spec = hpa.getSpec();
      var status = hpa.getStatus();
      out.append(
          String.format(
              java.util.Locale.ROOT,
              "  %-11s %s..%d replicas, now %s (wants %s)%s%n",
              "autoscaler",
              spec.getMinReplicas() == null ? "1" : spec.getMinReplicas().toString(),
              spec.getMaxReplicas(),
              status == null ? "?" : String.valueOf(status.getCurrentReplicas()),
              status == null ? "?" : String.valueOf(status.getDesiredReplicas()),
              status == null ? "" : metrics(status.getCurrentMetrics())));
    }
    return out.toString();
  }

  /** The gateway route's parent and weights: {@code gateway infra/public: minilm-stable 90%...}. */
  private static void route(StringBuilder out, HTTPRoute route) {
    List<String> parents = new ArrayList<>();
    for (ParentReference p :
        Objects.requireNonNullElse(route.getSpec().getParentRefs(), List.<ParentReference>of())) {
      parents.add(p.getNamespace() == null ? p.getName() : p.getNamespace() + "/" + p.getName());
    }
    List<HTTPBackendRef> backends = new ArrayList<>();
    for (HTTPRouteRule rule :
        Objects.requireNonNullElse(route.getSpec().getRules(), List.<HTTPRouteRule>of())) {
      backends.addAll(Objects.requireNonNullElse(rule.getBackendRefs(), List.of()));
    }
    int total = 0;
    for (HTTPBackendRef b : backends) {
      total += b.getWeight() == null ? 1 : b.getWeight();
    }
    List<String> shares = new ArrayList<>();
    for (HTTPBackendRef b : backends) {
      int w = b.getWeight() == null ? 1 : b.getWeight();
      shares.add(b.getName() + " " + (total == 0 ? 0 : Math.round(100.0 * w / total)) + "%");
    }
    out.append(
        String.format(
            java.util.Locale.ROOT,
            "  %-11s httproute/%s on gateway %s: %s%n",
            "gateway",
            route.getMetadata().getName(),
            String.join(", ", parents),
            String.join(", ", shares)));
  }

  private static int ready(Deployment d) {
    return d.getStatus() == null
        ? 0
        : Objects.requireNonNullElse(d.getStatus().getReadyReplicas(), 0);
  }

  private static void deployment(StringBuilder out, String role, Deployment d) {
    var status = d.getStatus();
    int desired = d.getSpec().getReplicas() == null ? 1 : d.getSpec().getReplicas();
    out.append(
        String.format(
            java.util.Locale.ROOT,
            "  %-11s deployment/%s  desired %d · updated %d · ready %d · available %d%s%n",
            role,
            d.getMetadata().getName(),
            desired,
            status == null ? 0 : Objects.requireNonNullElse(status.getUpdatedReplicas(), 0),
            ready(d),
            status == null ? 0 : Objects.requireNonNullElse(status.getAvailableReplicas(), 0),
            revision(d)));
    var containers = d.getSpec().getTemplate().getSpec().getContainers();
    if (!containers.isEmpty()) {
      out.append(
          String.format(
              java.util.Locale.ROOT, "  %-11s %s%n", "image", containers.get(0).getImage()));
    }
    Map<String, String> annotations = d.getMetadata().getAnnotations();
    if (annotations != null && annotations.containsKey(ManifestGenerator.MODELS_ANNOTATION)) {
      out.append(
          String.format(
              java.util.Locale.ROOT,
              "  %-11s %s%n",
              "models",
              annotations.get(ManifestGenerator.MODELS_ANNOTATION)));
    }
    if (status != null && status.getConditions() != null) {
      List<String> conditions = new ArrayList<>();
      for (DeploymentCondition c : status.getConditions()) {
        conditions.add(
            c.getType()
                + "="
                + c.getStatus()
                + (c.getReason() == null ? "" : " (" + c.getReason() + ")"));
      }
      out.append(
          String.format(
              java.util.Locale.ROOT, "  %-11s %s%n", "conditions", String.join(", ", conditions)));
    }
  }

  private static String revision(Deployment d) {
    Map<String, String> a = d.getMetadata().getAnnotations();
    String r = a == null ? null : a.get(KubeDeployer.REVISION_ANNOTATION);
    return r == null ? "" : "  revision " + r;
  }

  private static String metrics(List<MetricStatus> metrics) {
    if (metrics == null || metrics.isEmpty()) {
      return "";
    }
    List<String> out = new ArrayList<>();
    for (MetricStatus m : metrics) {
      if (m.getResource() != null && m.getResource().getCurrent() != null) {
        var cur = m.getResource().getCurrent();
        out.add(
            m.getResource().getName()
                + " "
                + (cur.getAverageUtilization() != null
                    ? cur.getAverageUtilization() + "%"
                    : String.valueOf(cur.getAverageValue())));
      } else if (m.getPods() != null && m.getPods().getCurrent() != null) {
        out.add(
            m.getPods().getMetric().getName() + " " + m.getPods().getCurrent().getAverageValue());
      }
    }
    return out.isEmpty() ? "" : "; " + String.join(", ", out);
  }
}
