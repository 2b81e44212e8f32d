package dev.berth.kube;

import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A Sigstore policy-controller {@code ClusterImagePolicy} that admits the service's image only when
 * it carries a cosign signature by one of the trusted keys: what {@code berth deploy
 * --require-signed} checks before it applies, enforced again by the cluster at every pod start.
 *
 * <p>Each key is a {@code key} authority with no transparency log ({@code berth sign-image} signs
 * with a key and records nothing in Rekor), so the controller checks the signature against the key
 * alone. The policy matches the image's repository, any tag or digest. It applies in namespaces
 * labelled {@value #INCLUDE_LABEL}{@code =true}, as policy-controller requires.
 */
public final class ImagePolicy {
  public static final String API_VERSION = "policy.sigstore.dev/v1beta1";
  public static final String KIND = "ClusterImagePolicy";

  /** The namespace label under which policy-controller checks pods. */
  public static final String INCLUDE_LABEL = "policy.sigstore.dev/include";

  private static final String DOCKER_HUB = "index.docker.io";

  private ImagePolicy() {}

  /**
   * The policy for one service.
   *
   * @param service the service's name; the policy is {@code berth-NAME-signed}
   * @param image the image reference the deployment runs (tag or digest)
   * @param publicKeys PEM public keys ({@code -----BEGIN PUBLIC KEY-----}), any of which may sign
   */
  public static GenericKubernetesResource of(
      String service, String image, List<String> publicKeys) {
    if (publicKeys.isEmpty()) {
      throw new IllegalArgumentException("a signature policy needs at least one trusted key");
    }
    List<Map<String, Object>> authorities = new ArrayList<>();
    for (int i = 0; i < publicKeys.size(); i++) {
      String pem = publicKeys.get(i).strip() + "\n";
      if (!pem.startsWith("-----BEGIN PUBLIC KEY-----")) {
        throw new IllegalArgumentException(
            "trusted key " + (i + 1) + " is not a PEM public key (-----BEGIN PUBLIC KEY-----)");
      }
      Map<String, Object> key = new LinkedHashMap<>();
      key.put("data", pem);
      key.put("hashAlgorithm", "sha256");
      Map<String, Object> authority = new LinkedHashMap<>();
      authority.put("name", "key-" + (i + 1));
      authority.put("key", key);
      authorities.add(authority);
    }
    Map<String, Object> spec = new LinkedHashMap<>();
    spec.put("images", List.of(Map.of("glob", glob(image))));
    spec.put("authorities", authorities);
    GenericKubernetesResource policy = new GenericKubernetesResource();
    policy.setApiVersion(API_VERSION);
    policy.setKind(KIND);
    policy.setMetadata(
        new ObjectMetaBuilder()
            .withName("berth-" + service + "-signed")
            .withLabels(Map.of("app.kubernetes.io/managed-by", "berth"))
            .build());
    policy.setAdditionalProperty("spec", spec);
    return policy;
  }

  /**
   * The glob policy-controller matches against the image's full name with its tag or digest: {@code
   * REGISTRY/REPOSITORY*}, where {@code *} takes {@code :TAG} or {@code @sha256:...} (it stops at a
   * slash). Images on Docker Hub are named as the controller names them, under {@value
   * #DOCKER_HUB}.
   */
  static String glob(String image) {
    String ref = image.replaceFirst("^docker://", "");
    int at = ref.indexOf('@');
    String name = at >= 0 ? ref.substring(0, at) : ref;
    int slash = name.lastIndexOf('/');
    int colon = name.lastIndexOf(':');
    if (colon > slash) {
      name = name.substring(0, colon);
    }
    int first = name.indexOf('/');
    String host = first < 0 ? "" : name.substring(0, first);
    boolean hasRegistry =
        first >= 0 && (host.contains(".") || host.contains(":") || host.equals("localhost"));
    if (!hasRegistry) {
      name = DOCKER_HUB + "/" + (first < 0 ? "library/" + name : name);
    } else if (host.equals("docker.io")) {
      name = DOCKER_HUB + name.substring(first);
    }
    return name + "*";
  }

  /**
   * Writes the policy and a kustomization for it into {@code dir}; the files are rewritten on every
   * export.
   *
   * @param header the comment lines that open each file
   * @return the files written
   */
  static List<Path> kustomize(
      String service, String image, List<String> publicKeys, Path dir, String header)
      throws IOException {
    Files.createDirectories(dir);
    String yaml = new KubernetesSerialization().asYaml(of(service, image, publicKeys));
    yaml = yaml.startsWith("---\n") ? yaml.substring(4) : yaml;
    String note =
        "# Needs Sigstore policy-controller in the cluster; it checks pods in namespaces labelled\n"
            + "#   kubectl label namespace NAMESPACE "
            + INCLUDE_LABEL
            + "=true\n";
    Path policy = Files.writeString(dir.resolve("clusterimagepolicy.yaml"), header + note + yaml);
    Path kustomization =
        Files.writeString(
            dir.resolve("kustomization.yaml"),
            header
                + note
                + "apiVersion: "
                + ManifestExport.KUSTOMIZE_API_VERSION
                + "\nkind: Kustomization\nresources:\n- clusterimagepolicy.yaml\n");
    return List.of(policy, kustomization);
  }
}
