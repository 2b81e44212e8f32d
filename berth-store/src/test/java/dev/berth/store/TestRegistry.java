package dev.berth.store;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import org.bouncycastle.crypto.generators.OpenBSDBCrypt;
import org.junit.jupiter.api.Assumptions;

/**
 * A real CNCF distribution registry ({@code docker-registry}, Debian's package; .ci/run installs
 * it) on 127.0.0.1 and a free port, storing into a directory of its own, with or without HTTP Basic
 * authentication. Without the program the tests that need it are skipped, except under CI=true,
 * where they must run.
 */
public final class TestRegistry implements AutoCloseable {
  private final Process process;
  private final Path storage;
  private final String address;

  private TestRegistry(Process process, Path storage, String address) {
    this.process = process;
    this.storage = storage;
    this.address = address;
  }

  /** Starts one without authentication. */
  public static TestRegistry start(Path dir) throws IOException, InterruptedException {
    return start(dir, null, null);
  }

  /** Starts one that wants {@code user}'s password over HTTP Basic (when user is not null). */
  public static TestRegistry start(Path dir, String user, String password)
      throws IOException, InterruptedException {
    String program = findProgram();
    int port;
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      port = s.getLocalPort();
    }
    Path storage = Files.createDirectories(dir.resolve("storage"));
    StringBuilder config =
        new StringBuilder()
            .append("version: 0.1\n")
            .append("log: {level: error}\n")
            .append("storage:\n  filesystem: {rootdirectory: ")
            .append(storage)
            .append("}\n  delete: {enabled: true}\n")
            .append("http: {addr: '127.0.0.1:")
            .append(port)
            .append("'}\n");
    if (user != null) {
      byte[] salt = new byte[16];
      new SecureRandom().nextBytes(salt);
      Path htpasswd = dir.resolve("htpasswd");
      Files.writeString(
          htpasswd, user + ":" + OpenBSDBCrypt.generate(password.toCharArray(), salt, 5) + "\n");
      config.append("auth:\n  htpasswd: {realm: berth-test, path: ").append(htpasswd).append("}\n");
    }
    Path file = dir.resolve("config.yml");
    Files.writeString(file, config);
    Process p =
        new ProcessBuilder(program, "serve", file.toString())
            .redirectErrorStream(true)
            .redirectOutput(dir.resolve("registry.log").toFile())
            .start();
    String address = "127.0.0.1:" + port;
    HttpClient http = HttpClient.newHttpClient();
    try {
      org.awaitility.Awaitility.await()
          .atMost(Duration.ofSeconds(30))
          .pollInterval(Duration.ofMillis(50))
          .until(
              () -> {
                if (!p.isAlive()) {
                  return true; // reported below
                }
                try {
                  int code =
                      http.send(
                              HttpRequest.newBuilder(URI.create("http://" + address + "/v2/"))
                                  .build(),
                              HttpResponse.BodyHandlers.discarding())
                          .statusCode();
                  return code == 200 || code == 401;
                } catch (IOException notYet) {
                  return false;
                }
              });
    } catch (org.awaitility.core.ConditionTimeoutException e) {
      p.destroyForcibly();
    }
    if (!p.isAlive()) {
      fail(
          "the registry did not start: "
              + Files.readString(dir.resolve("registry.log"), StandardCharsets.UTF_8));
    }
    return new TestRegistry(p, storage, address);
  }

  private static String findProgram() {
    for (String dir : System.getenv().getOrDefault("PATH", "/usr/bin").split(":")) {
      Path p = Path.of(dir, "docker-registry");
      if (Files.isExecutable(p)) {
        return p.toString();
      }
    }
    String why =
        "these tests need a real OCI registry: docker-registry (apt-get install docker-registry;"
            + " .ci/run installs it)";
    if ("true".equals(System.getenv("CI"))) {
      fail(why);
    }
    Assumptions.abort(why);
    return null;
  }

  /** {@code 127.0.0.1:PORT} */
  public String address() {
    return address;
  }

  /** Where the registry keeps blob {@code sha256:HEX}. */
  public Path blobData(String digest) {
    String hex = digest.substring("sha256:".length());
    return storage.resolve(
        "docker/registry/v2/blobs/sha256/" + hex.substring(0, 2) + "/" + hex + "/data");
  }

  @Override
  public void close() {
    stop(process);
  }

  /** Stops a server process: asked first, killed after ten seconds. */
  static void stop(Process process) {
    process.destroy();
    try {
      if (!process.waitFor(10, java.util.concurrent.TimeUnit.SECONDS)) {
        process.destroyForcibly();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      process.destroyForcibly();
    }
  }
}
