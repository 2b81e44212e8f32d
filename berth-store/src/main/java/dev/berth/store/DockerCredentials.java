package dev.berth.store;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.api.BerthException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * Registry credentials from the files {@code docker login} and {@code podman login} write, read the
 * way the Docker CLI reads them (and {@code berth build} with it): {@code
 * $DOCKER_CONFIG/config.json} or {@code ~/.docker/config.json}, then {@code $REGISTRY_AUTH_FILE} or
 * {@code $XDG_RUNTIME_DIR/containers/auth.json}. For a registry, a {@code credHelpers} entry wins,
 * then an {@code auths} entry with credentials, then the {@code credsStore} helper; a helper is the
 * program {@code docker-credential-NAME}, asked with {@code get}.
 */
public final class DockerCredentials {
  /** A user name and its password or token. */
  public record Credentials(String username, String secret) {
    @Override
    public String toString() {
      return "Credentials[" + username + ", ****]";
    }
  }

  private static final ObjectMapper JSON = new ObjectMapper();
  private final List<Path> files;
  private final Map<String, String> env;

  DockerCredentials(List<Path> files, Map<String, String> env) {
    this.files = List.copyOf(files);
    this.env = env;
  }

  /** The files of this user's environment. */
  public static DockerCredentials fromEnvironment() {
    Map<String, String> env = System.getenv();
    List<Path> files = new ArrayList<>();
    String dockerConfig = env.get("DOCKER_CONFIG");
    files.add(
        dockerConfig != null
            ? Path.of(dockerConfig, "config.json")
            : Path.of(System.getProperty("user.home"), ".docker", "config.json"));
    if (env.get("REGISTRY_AUTH_FILE") != null) {
      files.add(Path.of(env.get("REGISTRY_AUTH_FILE")));
    } else if (env.get("XDG_RUNTIME_DIR") != null) {
      files.add(Path.of(env.get("XDG_RUNTIME_DIR"), "containers", "auth.json"));
    }
    return new DockerCredentials(files, env);
  }

  /** No credentials at all: every registry is asked anonymously. */
  public static DockerCredentials none() {
    return new DockerCredentials(List.of(), Map.of());
  }

  /** The files read, in order. */
  public List<Path> files() {
    return files;
  }

  /**
   * The credentials for a registry host ({@code registry.example.com}, {@code 127.0.0.1:5000}), or
   * empty when no file has any: the registry is then asked anonymously.
   */
  public Optional<Credentials> forRegistry(String registry) {
    for (Path file : files) {
      if (!Files.isRegularFile(file)) {
        continue;
      }
      JsonNode config;
      try {
        config = JSON.readTree(file.toFile());
      } catch (IOException e) {
        throw new BerthException(
            "cannot read registry credentials from " + file + ": " + e.getMessage(), e);
      }
      String helper = config.path("credHelpers").path(registry).asText(null);
      if (helper != null) {
        return fromHelper(helper, registry, file);
      }
      Optional<Credentials> inline = fromAuths(config.path("auths"), registry, file);
      if (inline.isPresent()) {
        return inline;
      }
      String store = config.path("credsStore").asText(null);
      if (store != null && !store.isEmpty()) {
        Optional<Credentials> stored = fromHelper(store, registry, file);
        if (stored.isPresent()) {
          return stored;
        }
      }
    }
    return Optional.empty();
  }

  private static Optional<Credentials> fromAuths(JsonNode auths, String registry, Path file) {
    for (Map.Entry<String, JsonNode> e : auths.properties()) {
      if (!hostOf(e.getKey()).equals(registry)) {
        continue;
      }
      JsonNode entry = e.getValue();
      String auth = entry.path("auth").asText("");
      if (!auth.isEmpty()) {
        String decoded;
        try {
          decoded = new String(Base64.getDecoder().decode(auth), StandardCharsets.UTF_8);
        } catch (IllegalArgumentException bad) {
          throw new BerthException(
              "the credentials for "
                  + registry
                  + " in "
                  + file
                  + " are not base64; log in again with docker login "
                  + registry);
        }
        int colon = decoded.indexOf(':');
        if (colon < 0) {
          throw new BerthException(
              "the credentials for "
                  + registry
                  + " in "
                  + file
                  + " are not user:password; log in again with docker login "
                  + registry);
        }
        return Optional.of(
            new Credentials(decoded.substring(0, colon), decoded.substring(colon + 1)));
      }
      if (entry.hasNonNull("username") && entry.hasNonNull("password")) {
        return Optional.of(
            new Credentials(entry.get("username").asText(), entry.get("password").asText()));
      }
    }
    return Optional.empty();
  }

  private static byte[] readAll(java.io.InputStream in) {
    try (in) {
      return in.readAllBytes();
    } catch (IOException e) {
      return new byte[0];
    }
  }

  /** {@code https://host:port/v1/} and {@code host:port} alike: the host and port. */
  static String hostOf(String key) {
    String k = key;
    int scheme = k.indexOf("://");
    if (scheme >= 0) {
      k = k.substring(scheme + 3);
    }
    int slash = k.indexOf('/');
    return slash >= 0 ? k.substring(0, slash) : k;
  }

  private Optional<Credentials> fromHelper(String helper, String registry, Path file) {
    String program = "docker-credential-" + helper;
    ProcessBuilder pb = new ProcessBuilder(program, "get");
    pb.environment().putAll(env);
    try {
      Process p = pb.start();
      try (var in = p.getOutputStream()) {
        in.write(registry.getBytes(StandardCharsets.UTF_8));
      }
      // both streams read beside the wait, so a helper that hangs (a keychain prompt) times out
      // and one that writes much to stderr cannot block on a full pipe
      var stdout =
          java.util.concurrent.CompletableFuture.supplyAsync(() -> readAll(p.getInputStream()));
      var stderr =
          java.util.concurrent.CompletableFuture.supplyAsync(() -> readAll(p.getErrorStream()));
      if (!p.waitFor(30, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new BerthException(
            program + " (the credential helper " + file + " names) did not answer in 30 s");
      }
      byte[] out = stdout.join();
      byte[] err = stderr.join();
      if (p.exitValue() != 0) {
        String said =
            (new String(out, StandardCharsets.UTF_8) + new String(err, StandardCharsets.UTF_8))
                .strip();
        if (said.toLowerCase(java.util.Locale.ROOT).contains("not found")) {
          return Optional.empty();
        }
        throw new BerthException(
            program + " failed for " + registry + " (exit " + p.exitValue() + "): " + said);
      }
      JsonNode answer = JSON.readTree(out);
      return Optional.of(
          new Credentials(answer.path("Username").asText(), answer.path("Secret").asText()));
    } catch (IOException e) {
      throw new BerthException(
          file
              + " names the credential helper '"
              + helper
              + "' for "
              + registry
              + ", but "
              + program
              + " cannot be run ("
              + e.getMessage()
              + "); install it or remove the entry",
          e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new BerthException("interrupted while asking " + program + " for credentials", e);
    }
  }
}
