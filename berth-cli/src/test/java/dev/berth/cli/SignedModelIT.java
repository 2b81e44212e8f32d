package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.http.HttpClient;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code berth keygen}, {@code berth sign}, then {@code berth serve --require-signed --trust}: a
 * signed model serves, one changed after signing is refused with the file named, and bad keys are
 * usage errors.
 */
class SignedModelIT {
  private static final Duration TIMEOUT = Duration.ofSeconds(60);

  @TempDir Path work;

  /** A copy of the bundled MiniLM: its own model.yaml, the large files linked. */
  private Path minilm(Path repo, String name) throws Exception {
    Path example = BerthProcess.examples().resolve("minilm");
    Path dir = repo.resolve(name);
    Files.createDirectories(dir.resolve("1"));
    Files.copy(example.resolve("model.yaml"), dir.resolve("model.yaml"));
    for (String f : new String[] {"model.onnx", "tokenizer.json"}) {
      Files.createSymbolicLink(dir.resolve("1").resolve(f), example.resolve("1").resolve(f));
    }
    return dir;
  }

  private static void ok(BerthProcess.Finished r) {
    assertEquals(0, r.code(), r.out() + r.err());
  }

  @Test
  void signedModelServesAndTamperedOneIsRefusedWhileTheOtherServes() throws Exception {
    Path repo = work.resolve("repo");
    Path good = minilm(repo, "good");
    Path bad = minilm(repo, "bad");
    ok(BerthProcess.run(work, TIMEOUT, "keygen", work.resolve("key.pem").toString()));
    BerthProcess.Finished signed =
        BerthProcess.run(
            work, TIMEOUT, "sign", good.toString(), "--key", work.resolve("key.pem").toString());
    ok(signed);
    assertTrue(signed.out().contains("signed 3 files"), signed.out());
    ok(
        BerthProcess.run(
            work, TIMEOUT, "sign", bad.toString(), "--key", work.resolve("key.pem").toString()));
    assertTrue(Files.readString(good.resolve("berth.sig")).contains("\"algorithm\" : \"Ed25519\""));
    // one changed setting after signing
    Files.writeString(
        bad.resolve("model.yaml"),
        Files.readString(bad.resolve("model.yaml")).replace("instances: 2", "instances: 1"));

    try (BerthProcess serve =
        BerthProcess.start(
            work,
            "serve",
            repo.toString(),
            "--port",
            "0",
            "--grpc-port",
            "0",
            "--log-format",
            "json",
            "--require-signed",
            "--trust",
            work.resolve("key.pub").toString())) {
      String url = serve.awaitServing();
      HttpClient http = HttpClient.newHttpClient();
      assertEquals(200, BerthProcess.get(http, url + "/v2/models/good/ready").statusCode());
      HttpResponse<String> infer =
          BerthProcess.post(
              http,
              url + "/v2/models/good/infer",
              "{\"inputs\":[{\"name\":\"text\",\"shape\":[1],\"datatype\":\"BYTES\","
                  + "\"data\":[\"signed models serve\"]}]}");
      assertEquals(200, infer.statusCode(), infer.body());
      assertTrue(infer.body().contains("\"embedding\""), infer.body());
      assertNotEquals(200, BerthProcess.get(http, url + "/v2/models/bad/ready").statusCode());
      HttpResponse<String> refused =
          BerthProcess.post(
              http,
              url + "/v2/models/bad/infer",
              "{\"inputs\":[{\"name\":\"text\",\"shape\":[1],\"datatype\":\"BYTES\","
                  + "\"data\":[\"x\"]}]}");
      assertEquals(503, refused.statusCode(), refused.body());
      String log = Files.readString(serve.stderr);
      assertTrue(
          log.contains("model 'bad' version 1 not loaded: model.yaml differs from the signed"),
          log);
      assertTrue(log.contains("expected sha256 "), log);
    }
  }

  @Test
  void unsignedModelIsRefusedWhenSignaturesAreRequired() throws Exception {
    Path repo = work.resolve("repo");
    minilm(repo, "plain");
    ok(BerthProcess.run(work, TIMEOUT, "keygen", work.resolve("k.pem").toString()));
    try (BerthProcess serve =
        BerthProcess.start(
            work,
            "serve",
            repo.toString(),
            "--port",
            "0",
            "--grpc-port",
            "0",
            "--log-format",
            "json",
            "--require-signed",
            "--trust",
            work.resolve("k.pub").toString())) {
      String url = serve.awaitServing();
      assertNotEquals(
          200,
          BerthProcess.get(HttpClient.newHttpClient(), url + "/v2/models/plain/ready")
              .statusCode());
      String log = Files.readString(serve.stderr);
      assertTrue(log.contains("the model is not signed"), log);
    }
  }

  @Test
  void badKeysAndMissingTrustAreUsageErrors() throws Exception {
    Path repo = work.resolve("repo");
    Path model = minilm(repo, "m");
    ok(
        BerthProcess.run(
            work,
            TIMEOUT,
            "keygen",
            work.resolve("ec.pem").toString(),
            "--algorithm",
            "ECDSA-P256"));
    String pub = work.resolve("ec.pub").toString();
    String priv = work.resolve("ec.pem").toString();

    BerthProcess.Finished r =
        BerthProcess.run(work, TIMEOUT, "sign", model.toString(), "--key", pub);
    assertEquals(2, r.code());
    assertTrue(r.err().contains("this is a public key, give the private key"), r.err());

    r = BerthProcess.run(work, TIMEOUT, "serve", repo.toString(), "--require-signed");
    assertEquals(2, r.code());
    assertTrue(r.err().contains("--require-signed needs at least one --trust"), r.err());

    r = BerthProcess.run(work, TIMEOUT, "serve", repo.toString(), "--trust", priv);
    assertEquals(2, r.code());
    assertTrue(r.err().contains("--trust " + priv), r.err());
    assertTrue(r.err().contains("give its public key"), r.err());

    r = BerthProcess.run(work, TIMEOUT, "keygen", priv);
    assertEquals(2, r.code());
    assertTrue(r.err().contains("already exists"), r.err());

    r =
        BerthProcess.run(
            work,
            TIMEOUT,
            "sign",
            model.toString(),
            "--key",
            priv,
            "--out",
            model.resolve("1/other.sig").toString());
    assertEquals(2, r.code());
    assertTrue(r.err().contains("inside the model directory"), r.err());

    ok(BerthProcess.run(work, TIMEOUT, "sign", model.toString(), "--key", priv));
    assertTrue(Files.readString(model.resolve("berth.sig")).contains("ECDSA-P256"));
  }
}
