package dev.berth.cli;

import static dev.berth.cli.ContainerTestEnv.berth;
import static dev.berth.cli.ContainerTestEnv.docker;
import static dev.berth.cli.ContainerTestEnv.skopeo;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.kube.testing.MockCluster;
import io.fabric8.kubernetes.api.model.apps.Deployment;
import java.net.http.HttpClient;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * Signed images end to end on the real registry and Docker engine: {@code berth build --sign} signs
 * the digest it pushed; {@code berth run --require-signed} starts that image and refuses an
 * unsigned one and one signed by another key before creating any container; {@code berth deploy
 * --require-signed} (against the mock API server) applies nothing for an unsigned image and pins a
 * signed one to its digest.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class BuildSignIT {
  private static final Pattern DIGEST = Pattern.compile("digest (sha256:[0-9a-f]{64})");
  private static final Pattern READY = Pattern.compile("is ready at (http://127\\.0\\.0\\.1:\\d+)");
  // a service name of its own: berth run names its container after it
  private static final String NAME = "signedrun";

  private ContainerTestEnv env;
  private Path work;
  private Path service;
  private String repository; // the signed image's REGISTRY/REPO
  private String digest; // its digest
  private String unsigned; // the same image in another repository, unsigned
  private String otherSigned; // ... and in a third, signed by another key
  private Path sbom; // the SBOM the build wrote

  @BeforeAll
  void buildSignedAndUnsignedImages() throws Exception {
    env = ContainerTestEnv.require();
    work = Files.createTempDirectory(Path.of("target").toAbsolutePath(), "build-sign-it-");
    berth(work, "keygen", "release.pem", "--algorithm", "ECDSA-P256").ok();
    berth(work, "keygen", "other.pem", "--algorithm", "ECDSA-P256").ok();
    String run = Long.toString(System.nanoTime(), 36);
    repository = env.registry + "/it/signed-build-" + run;
    unsigned = env.registry + "/it/unsigned-" + run + ":1";
    otherSigned = env.registry + "/it/other-signed-" + run + ":1";
    service = work.resolve("berth.yaml");
    Files.writeString(
        service,
        """
        apiVersion: berth.dev/v1
        kind: ModelService
        name: %s
        models: [{path: %s, versions: [1]}]
        image: {to: "%s:1"}
        deploy: {replicas: 1, autoscaling: {enabled: false}}
        """
            .formatted(NAME, ContainerTestEnv.examples().resolve("models/minilm"), repository));
    ContainerTestEnv.Result built =
        berth(
                work,
                "build",
                service.toString(),
                "--base",
                env.baseJava,
                "--cache-dir",
                work.resolve("cache").toString(),
                "--sign",
                work.resolve("release.pem").toString())
            .ok();
    Matcher m = DIGEST.matcher(built.out());
    assertTrue(m.find(), built.out());
    digest = m.group(1);
    assertTrue(built.out().contains("signed    " + repository + "@" + digest), built.out());
    Matcher sbomLine = Pattern.compile("(?m)^sbom   (\\S+)$").matcher(built.out());
    assertTrue(sbomLine.find(), built.out());
    sbom = Path.of(sbomLine.group(1));
    // one signature, by the build's key (tests below may add others)
    String tag = "sha256-" + digest.substring("sha256:".length()) + ".sig";
    JsonNode signatures = rawManifest(repository + ":" + tag);
    assertEquals(1, signatures.path("layers").size());
    // copies keep the manifest, so the digest, but not the signature stored beside it
    for (String copy : new String[] {unsigned, otherSigned}) {
      skopeo(
              work,
              "copy",
              "--src-tls-verify=false",
              "--dest-tls-verify=false",
              "docker://" + repository + ":1",
              "docker://" + copy)
          .ok();
    }
    berth(work, "sign-image", otherSigned, "--key", work.resolve("other.pem").toString()).ok();
  }

  @AfterAll
  void stopContainer() throws Exception {
    if (work != null) { // null when the container tests were skipped outside bin/test
      berth(work, "stop", NAME);
    }
  }

  /** A manifest or index as the registry holds it, read by skopeo. */
  private JsonNode rawManifest(String reference) throws Exception {
    return new ObjectMapper()
        .readTree(
            skopeo(work, "inspect", "--raw", "--tls-verify=false", "docker://" + reference)
                .ok()
                .out());
  }

  private String pub(String key) {
    return work.resolve(key + ".pub").toString();
  }

  @Test
  void buildSignsThePushedDigest() throws Exception {
    String verified = berth(work, "verify", repository + ":1", "--key", pub("release")).ok().out();
    assertTrue(verified.contains("verified " + repository + "@" + digest), verified);
  }

  @Test
  void theSbomIsAttachedAsAReferrerSignedWithTheImagesKey() throws Exception {
    // the registry (distribution 2.x) has no referrers API: the fallback tag lists the artifact
    String fallback = "sha256-" + digest.substring("sha256:".length());
    JsonNode index = rawManifest(repository + ":" + fallback);
    assertEquals("application/vnd.oci.image.index.v1+json", index.path("mediaType").asText());
    assertEquals(1, index.path("manifests").size(), index.toString());
    JsonNode listed = index.path("manifests").get(0);
    assertEquals("application/vnd.cyclonedx+json", listed.path("artifactType").asText());
    String artifact = listed.path("digest").asText();
    JsonNode manifest = rawManifest(repository + "@" + artifact);
    assertEquals(digest, manifest.path("subject").path("digest").asText(), manifest.toString());
    assertEquals(
        "application/vnd.cyclonedx+json",
        manifest.path("layers").get(0).path("mediaType").asText());

    // berth sbom prints what the build wrote, byte for byte
    Path printed = work.resolve("printed.cdx.json");
    berth(work, "sbom", repository + ":1", "-o", printed.toString()).ok();
    assertEquals(-1L, Files.mismatch(sbom, printed), "the attached SBOM is the build's");

    // the artifact carries a signature by the image's key, which verify checks
    String verified =
        berth(work, "verify", repository + ":1", "--key", pub("release"), "--require-sbom")
            .ok()
            .out();
    assertTrue(verified.contains("its SBOM signed by the same key"), verified);
    ContainerTestEnv.Result noSbom =
        berth(work, "verify", otherSigned, "--key", pub("other"), "--require-sbom");
    assertEquals(1, noSbom.code(), noSbom.out() + noSbom.err());
    assertTrue(noSbom.err().contains("no SBOM is attached to " + digest), noSbom.err());
    ContainerTestEnv.Result none = berth(work, "sbom", otherSigned);
    assertEquals(1, none.code(), none.out() + none.err());
    assertTrue(none.err().contains("no SBOM is attached to " + otherSigned), none.err());

    // the image signed by another key too, its SBOM not: verify with that key fails on the SBOM
    berth(work, "sign-image", repository + ":1", "--key", work.resolve("other.pem").toString())
        .ok();
    ContainerTestEnv.Result withOther =
        berth(work, "verify", repository + ":1", "--key", pub("other"));
    assertEquals(1, withOther.code(), withOther.out() + withOther.err());
    assertTrue(
        withOther.err().contains("the SBOM attached to " + digest + " (" + artifact + ")"),
        withOther.err());
  }

  @Test
  void runRequireSignedStartsTheSignedImageByDigestAndRefusesTheOthers() throws Exception {
    for (String image : new String[] {unsigned, otherSigned}) {
      ContainerTestEnv.Result refused =
          berth(
              work,
              "run",
              service.toString(),
              "--image",
              image,
              "--require-signed",
              "--trust",
              pub("release"),
              "--port",
              "0",
              "--grpc-port",
              "0");
      assertEquals(1, refused.code(), refused.out() + refused.err());
      assertTrue(
          refused.err().contains("refusing to run " + image + " (" + digest + ")"), refused.err());
      assertTrue(refused.err().contains("key " + pub("release")), refused.err());
      String containers =
          docker(work, "ps", "-a", "--filter", "name=berth-" + NAME, "--format", "{{.Names}}")
              .ok()
              .out();
      assertFalse(containers.contains("berth-" + NAME), "nothing was created: " + containers);
    }

    // berth.yaml's keys do the same: image.require-signed and image.trust
    Path required = work.resolve("required.yaml");
    Files.writeString(
        required,
        Files.readString(service)
            .replace(
                "image: {to: \"" + repository + ":1\"}",
                "image: {to: \""
                    + repository
                    + ":1\", require-signed: true, trust: ["
                    + pub("release")
                    + "]}"));
    ContainerTestEnv.Result run =
        berth(work, "run", required.toString(), "--port", "0", "--grpc-port", "0");
    try {
      run.ok();
      assertTrue(run.err().contains("verified " + repository + ":1 (" + digest + ")"), run.err());
      Matcher m = READY.matcher(run.out());
      assertTrue(m.find(), run.out());
      HttpResponse<String> r =
          BerthProcess.post(
              HttpClient.newHttpClient(),
              m.group(1) + "/v2/models/minilm/infer",
              "{\"inputs\":[{\"name\":\"text\",\"shape\":[1],\"datatype\":\"BYTES\","
                  + "\"data\":[\"hello\"]}]}");
      assertEquals(200, r.statusCode(), r.body());
      String image =
          docker(work, "inspect", "--format", "{{.Config.Image}}", "berth-" + NAME).ok().out();
      assertEquals(repository + "@" + digest, image.strip(), "runs what was verified");
    } finally {
      berth(work, "stop", NAME);
    }
  }

  @Test
  void deployRequireSignedAppliesNothingForAnUnsignedImage() throws Exception {
    try (MockCluster cluster = new MockCluster()) {
      Path kubeconfig = cluster.kubeconfig(work.resolve("kubeconfig"));
      Map<String, String> kube = Map.of("KUBECONFIG", kubeconfig.toString());
      ContainerTestEnv.Result refused =
          berth(
              work,
              kube,
              "deploy",
              service.toString(),
              "--image",
              unsigned,
              "--require-signed",
              "--trust",
              pub("release"),
              "--no-wait");
      assertEquals(1, refused.code(), refused.out() + refused.err());
      assertTrue(
          refused.err().contains("refusing to deploy " + unsigned + " (" + digest + ")"),
          refused.err());
      assertTrue(
          cluster.client().apps().deployments().inAnyNamespace().list().getItems().isEmpty(),
          "nothing applied");
      assertTrue(
          cluster.client().configMaps().inAnyNamespace().list().getItems().isEmpty(),
          "nothing applied");

      berth(
              work,
              kube,
              "deploy",
              service.toString(),
              "--require-signed",
              "--trust",
              pub("release"),
              "--no-wait")
          .ok();
      Deployment deployment =
          cluster.client().apps().deployments().inNamespace("ml").withName(NAME).get();
      assertEquals(
          repository + "@" + digest,
          deployment.getSpec().getTemplate().getSpec().getContainers().get(0).getImage(),
          "pods run the digest that was verified");
    }
  }
}
