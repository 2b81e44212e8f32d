package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.kube.KubeDeployer;
import dev.berth.kube.ManifestExport;
import dev.berth.kube.ManifestGenerator;
import dev.berth.runtime.ServiceSpec;
import dev.berth.store.ImageSignatures;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "deploy",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
      "Deploy a model service (berth.yaml) onto Kubernetes: ServiceAccount, ConfigMap,"
          + " Deployment, Service, HorizontalPodAutoscaler, PodDisruptionBudget and"
          + " NetworkPolicy, applied server-side; then follow the rollout until it is available.",
      "The image is berth.yaml's image.to (build and push it with 'berth build' first), pinned"
          + " to the digest built on this machine when there is one."
    })
final class DeployCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "SERVICE", description = "The service file (berth.yaml).")
  Path serviceFile;

  @Option(
      names = "--dry-run",
      description = "Print the objects as multi-document YAML instead of applying them.")
  boolean dryRun;

  @Option(
      names = {"-o", "--output-dir"},
      paramLabel = "DIR",
      description = "Write one YAML file per object into DIR instead of applying them.")
  Path outputDir;

  @Option(
      names = "--export",
      arity = "1..2",
      paramLabel = "FORMAT [DIR]",
      description = {
        "Write the service for other tooling instead of applying it:",
        "  kustomize DIR  a base (the objects --dry-run prints), an example overlay,"
            + " DIR/overlays/production, and DIR/monitoring (alert rules, PodMonitor, Grafana"
            + " dashboard ConfigMap)",
        "  kserve [DIR]   a KServe ServingRuntime running the Berth image and an"
            + " InferenceService (printed, or written to DIR/NAME-kserve.yaml)",
        "  compose DIR    a local stack: the service, Prometheus scraping it with the alert"
            + " rules loaded, and Grafana with the dashboard (DIR/compose.yaml)",
        "  monitoring DIR alert rules (DIR/NAME-rules.yaml for Prometheus, NAME-prometheusrule.yaml"
            + " and a NAME-podmonitor.yaml for the Prometheus Operator; runbooks in"
            + " docs/monitoring.md) and a Grafana dashboard (NAME-dashboard.json)"
      })
  List<String> export;

  @Option(
      names = "--image",
      paramLabel = "REF",
      description = "The image pods run (default: berth.yaml's image.to).")
  String image;

  @Option(
      names = "--canary",
      paramLabel = "PERCENT",
      description =
          "Run this version beside the stable one as NAME-canary, with about PERCENT%% of the"
              + " requests (by its share of the Service's pods); 'berth promote NAME' makes it"
              + " stable, 'berth rollback NAME' drops it.")
  Integer canary;

  @Option(
      names = "--gate",
      description =
          "With --canary: once the canary is available, evaluate it and the stable version on"
              + " each model's model.yaml gate (as 'berth promote --gate'), then promote it or"
              + " roll it back on the result (exit code 3 when refused).")
  boolean gate;

  @Option(
      names = "--gateway",
      paramLabel = "NAME[/NAMESPACE]",
      description =
          "Route REST requests through this Gateway API gateway (default: berth.yaml's"
              + " deploy.gateway): an HTTPRoute NAME sends them to the Service NAME-stable, and"
              + " with --canary splits them by weight, PERCENT%% to NAME-canary.")
  String gateway;

  @Option(
      names = "--timeout",
      paramLabel = "DURATION",
      description = "How long to follow the rollout (default: ${DEFAULT-VALUE}).",
      defaultValue = "10m",
      converter = ServeCommand.DurationConverter.class)
  Duration timeout;

  @Option(
      names = "--require-signed",
      description =
          "Before applying anything (or writing it with --dry-run, -o or --export), resolve the"
              + " image to its digest and verify its cosign signature by a --trust key; pods then"
              + " run the image by that digest. Refused with the image, the digest and what failed"
              + " otherwise (exit code 1). berth.yaml: image.require-signed.")
  boolean requireSigned;

  @Option(
      names = "--trust",
      paramLabel = "KEY.pub",
      description =
          "A public key (ECDSA P-256 PEM) whose cosign signature on the image is trusted;"
              + " repeatable (default: berth.yaml's image.trust). With --export kustomize, also"
              + " writes DIR/policy: a Sigstore policy-controller ClusterImagePolicy that admits"
              + " the image only when one of these keys signed it.")
  List<Path> trust = new java.util.ArrayList<>();

  @Option(names = "--no-wait", description = "Apply, and do not follow the rollout.")
  boolean noWait;

  @Option(
      names = "--cache-dir",
      paramLabel = "DIR",
      description =
          "Where 'berth build' recorded the digests it pushed (default: ${DEFAULT-VALUE}).",
      defaultValue = "${env:XDG_CACHE_HOME:-${sys:user.home}/.cache}/berth")
  Path cacheDir;

  @Mixin KubeOptions kube;

  @Override
  public Integer call() throws IOException {
    ServiceSpec service = ServiceSpec.load(serviceFile);
    if (export != null && export.get(0).equals("compose")) {
      if (SignedImages.required(requireSigned, service)) {
        throw new BerthException(
            "--export compose runs the image from the local container engine, where no signature"
                + " is kept; for a verified image use 'berth run "
                + serviceFile
                + " --image REGISTRY/REPO:TAG --require-signed --trust KEY.pub', or leave"
                + " --require-signed (image.require-signed) out of the compose export");
      }
      return exportCompose(service);
    }
    String asked = imageReference(service);
    String ref =
        SignedImages.required(requireSigned, service)
            ? SignedImages.require(
                asked, SignedImages.trusted(trust, service), "deploy", System.err)
            : asked;
    String localNamespace = kube.namespace != null ? kube.namespace : service.deploy().namespace();
    if (gate && (canary == null || noWait || dryRun || outputDir != null || export != null)) {
      throw new BerthException(
          "--gate evaluates a canary once it is available: give it with --canary PERCENT, and"
              + " without --no-wait, --dry-run, -o or --export");
    }
    if (export != null) {
      return export(generator(service, ref, localNamespace), service);
    }
    if (dryRun || outputDir != null) {
      ManifestGenerator generator = generator(service, ref, localNamespace);
      if (canary != null) {
        // no cluster to ask: size the canary against the replicas berth.yaml asks for
        int stable =
            service.deploy().autoscaling().enabled()
                ? service.deploy().autoscaling().minReplicas()
                : service.deploy().replicas();
        generator = generator.canary(canaryReplicas(stable, canary), canary);
      }
      if (outputDir != null) {
        for (Path file : generator.writeFiles(outputDir)) {
          System.out.println("wrote " + file);
        }
      }
      if (dryRun) {
        System.out.print(generator.yaml());
      }
      return 0;
    }
    return kube.withDeployer(service.deploy().namespace(), d -> apply(d, service, ref));
  }

  private ManifestGenerator generator(ServiceSpec service, String ref, String namespace) {
    ManifestGenerator generator = ManifestGenerator.of(service, ref, namespace);
    if (gateway != null) {
      try {
        generator = generator.gateway(ServiceSpec.Gateway.parse(gateway));
      } catch (IllegalArgumentException e) {
        throw new BerthException("--gateway: " + e.getMessage());
      }
    }
    return generator;
  }

  /** The local stack: the image runs on the local engine, so any reference will do. */
  private int exportCompose(ServiceSpec service) throws IOException {
    if (canary != null) {
      throw new BerthException("--export writes the stable service; leave out --canary");
    }
    if (export.size() < 2) {
      throw new BerthException("--export compose needs a directory: --export compose DIR");
    }
    Path dir = Path.of(export.get(1));
    String ref = image != null ? image : RunCommand.localReference(service);
    ref = ref.replaceFirst("^docker://", "");
    for (Path file : ComposeExport.write(service, ref, dir)) {
      System.out.println("wrote " + file);
    }
    System.out.println(
        "start with 'docker compose -f "
            + dir.resolve("compose.yaml")
            + " up -d' once the image "
            + ref
            + " is on this engine ('berth build "
            + serviceFile
            + " --to docker://"
            + ref
            + "')");
    return 0;
  }

  private int export(ManifestGenerator generator, ServiceSpec service) throws IOException {
    if (canary != null) {
      throw new BerthException("--export writes the stable service; leave out --canary");
    }
    String format = export.get(0);
    Path dir = export.size() > 1 ? Path.of(export.get(1)) : null;
    switch (format) {
      case "kustomize" -> {
        if (dir == null) {
          throw new BerthException("--export kustomize needs a directory: --export kustomize DIR");
        }
        List<String> keys = trustedKeys(service);
        for (Path file : ManifestExport.kustomize(generator, dir, keys)) {
          System.out.println("wrote " + file);
        }
        System.out.println(
            "render with 'kubectl kustomize "
                + dir.resolve("base")
                + "', apply with 'kubectl apply -k "
                + dir.resolve("overlays/production")
                + "'; where the Prometheus Operator runs, 'kubectl apply -k "
                + dir.resolve("monitoring")
                + "' adds the alert rules, the PodMonitor and the Grafana dashboard"
                + (keys.isEmpty()
                    ? ""
                    : "; where Sigstore policy-controller runs, 'kubectl apply -k "
                        + dir.resolve("policy")
                        + "' admits the image only when signed by a trusted key (label the"
                        + " namespace "
                        + dev.berth.kube.ImagePolicy.INCLUDE_LABEL
                        + "=true)"));
      }
      case "kserve" -> {
        String yaml = ManifestExport.kserveYaml(generator);
        if (dir == null) {
          System.out.print(yaml);
        } else {
          Files.createDirectories(dir);
          Path file = dir.resolve(generator.name() + "-kserve.yaml");
          Files.writeString(file, yaml);
          System.out.println("wrote " + file);
        }
      }
      case "monitoring" -> {
        if (dir == null) {
          throw new BerthException(
              "--export monitoring needs a directory: --export monitoring DIR");
        }
        for (Path file :
            dev.berth.kube.Monitoring.export(generator.name(), generator.namespace(), dir)) {
          System.out.println("wrote " + file);
        }
      }
      default ->
          throw new BerthException(
              "--export takes kustomize DIR, kserve [DIR], compose DIR or monitoring DIR, not '"
                  + format
                  + "'");
    }
    return 0;
  }

  /** The PEM text of each trusted key (--trust, else berth.yaml's image.trust), P-256 each. */
  private List<String> trustedKeys(ServiceSpec service) {
    List<String> keys = new java.util.ArrayList<>();
    for (Path file : SignedImages.trusted(trust, service)) {
      keys.add(dev.berth.runtime.SigningKeys.pem(ImageSignatures.verifyingKey(file)));
    }
    return keys;
  }

  private int apply(KubeDeployer deployer, ServiceSpec service, String ref) {
    ManifestGenerator generator = generator(service, ref, deployer.namespace());
    if (canary != null) {
      generator = generator.canary(deployer.canaryReplicas(service.name(), canary), canary);
    }
    String name = generator.deploymentName();
    System.err.println(
        "applying "
            + (generator.isCanary() ? "canary " : "")
            + name
            + " to namespace "
            + deployer.namespace()
            + " (server-side apply, field manager "
            + KubeDeployer.FIELD_MANAGER
            + ")");
    List<KubeDeployer.Applied> applied = deployer.apply(generator.objects());
    boolean changed = applied.stream().anyMatch(a -> a.change() != KubeDeployer.Change.UNCHANGED);
    if (!changed) {
      System.err.println("nothing changed");
    }
    if (noWait) {
      System.out.println(name + " applied; follow it with 'berth status " + service.name() + "'");
      return 0;
    }
    System.err.println("following the rollout (up to " + timeout.toSeconds() + "s)");
    deployer.awaitRollout(name, timeout);
    deployer.pruneConfigs(name);
    if (generator.isCanary()) {
      var state = deployer.state(service.name());
      int stable = ready(state.stable());
      int c = ready(state.canary());
      long byPods = stable + c == 0 ? 0 : Math.round(100.0 * c / (stable + c));
      if (generator.gateway() == null) {
        System.out.printf(
            "canary %s is available: %d pod(s) beside %d stable, about %d%% of requests%n",
            name, c, stable, byPods);
      } else {
        System.out.printf(
            "canary %s is available: %d pod(s) beside %d stable; httproute/%s sends it %d%% of"
                + " the requests through gateway %s (calls to Service %s inside the cluster:"
                + " about %d%%, by pods)%n",
            name,
            c,
            stable,
            service.name(),
            canary,
            gatewayName(generator.gateway(), deployer.namespace()),
            service.name(),
            byPods);
      }
      if (gate) {
        if (!PromoteCommand.passesGate(deployer, service.name(), timeout)) {
          return PromoteCommand.CanaryDecision.rollBack(deployer, service.name());
        }
        deployer.promote(service.name());
        deployer.awaitRollout(service.name(), timeout);
        deployer.pruneConfigs(service.name());
        System.out.println(service.name() + " promoted: the canary passed its gate");
        return 0;
      }
      System.out.printf(
          "  'berth promote %s' makes it stable, 'berth rollback %s' drops it%n",
          service.name(), service.name());
    } else {
      System.out.printf(
          "%s is available in namespace %s: http://%s.%s.svc:%d (OIP v2, REST), grpc port %d%n",
          name,
          deployer.namespace(),
          name,
          deployer.namespace(),
          service.serving().port(),
          service.serving().grpcPort());
      if (generator.gateway() != null) {
        System.out.printf(
            "  and through gateway %s (REST, httproute/%s)%n",
            gatewayName(generator.gateway(), deployer.namespace()), name);
      }
    }
    return 0;
  }

  private static String gatewayName(ServiceSpec.Gateway g, String namespace) {
    return (g.namespace() == null ? namespace : g.namespace()) + "/" + g.name();
  }

  private static int ready(io.fabric8.kubernetes.api.model.apps.Deployment d) {
    return d == null || d.getStatus() == null || d.getStatus().getReadyReplicas() == null
        ? 0
        : d.getStatus().getReadyReplicas();
  }

  static int canaryReplicas(int stable, int percent) {
    if (percent < 1 || percent > 99) {
      throw new BerthException("--canary takes a percentage from 1 to 99, not " + percent);
    }
    return Math.max(1, (int) Math.round(stable * percent / (100.0 - percent)));
  }

  /** The image pods run: --image, else image.to pinned to the digest last built here. */
  private String imageReference(ServiceSpec service) {
    String ref = image != null ? image : service.image().to();
    if (ref.startsWith("docker://") || ref.startsWith("tar:")) {
      throw new BerthException(
          "a cluster pulls images from a registry, and "
              + (image != null ? "--image" : "berth.yaml's image.to")
              + " is "
              + ref
              + "; push with 'berth build "
              + serviceFile
              + " --to REGISTRY/NAME:TAG' and pass --image REGISTRY/NAME:TAG");
    }
    if (ref.contains("@sha256:")) {
      return ref;
    }
    var record = BuildRecords.find(cacheDir, ref);
    if (record.isPresent()) {
      System.err.println(
          "image "
              + ref
              + " pinned to "
              + record.get().digest()
              + (record.get().builtAt() == null
                  ? ""
                  : " (built here " + record.get().builtAt() + ")"));
      return ref + "@" + record.get().digest();
    }
    System.err.println(
        "image "
            + ref
            + " is not pinned to a digest (no 'berth build' of it on this machine): pods run"
            + " whatever the tag names when they start; pass --image "
            + ref
            + "@sha256:... to pin it");
    return ref;
  }
}
