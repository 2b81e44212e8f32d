package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * The real container components bin/test starts (a Docker engine, a registry on 127.0.0.1:5000 and
 * three base images built on this machine). Without them the tests are skipped, except under
 * CI=true, where they must run.
 */
final class ContainerTestEnv {
  final String dockerHost = System.getenv("DOCKER_HOST");
  final String registry = System.getenv("BERTH_TEST_REGISTRY");

  /** A glibc base without Java (Debian minbase). */
  final String base = System.getenv("BERTH_TEST_BASE");

  /** The same base with a Java runtime at /opt/java/openjdk, like eclipse-temurin's images. */
  final String baseJava = System.getenv("BERTH_TEST_BASE_JAVA");

  /** The Java base plus the OpenMP runtime (libgomp1), which XGBoost's library needs. */
  final String baseLlm = System.getenv("BERTH_TEST_BASE_LLM");

  static ContainerTestEnv require() {
    ContainerTestEnv env = new ContainerTestEnv();
    if (env.dockerHost == null
        || env.registry == null
        || env.base == null
        || env.baseJava == null
        || env.baseLlm == null) {
      String why =
          "the container tests need the Docker engine, registry and base images that bin/test"
              + " starts (DOCKER_HOST, BERTH_TEST_REGISTRY, BERTH_TEST_BASE, BERTH_TEST_BASE_JAVA,"
              + " BERTH_TEST_BASE_LLM);"
              + " run them through bin/test";
      if ("true".equals(System.getenv("CI"))) {
        fail(why);
      }
      Assumptions.abort(why);
    }
    return env;
  }

  record Result(int code, String out, String err) {
    Result ok() {
      assertTrue(code == 0, "exit " + code + "\nstdout:\n" + out + "\nstderr:\n" + err);
      return this;
    }
  }

  /** Runs a command to completion (at most 10 minutes), with DOCKER_HOST set. */
  static Result exec(Path workDir, List<String> command) throws IOException, InterruptedException {
    return exec(workDir, java.util.Map.of(), command);
  }

  /** The same, with these environment variables besides. */
  static Result exec(Path workDir, java.util.Map<String, String> env, List<String> command)
      throws IOException, InterruptedException {
    ProcessBuilder pb = new ProcessBuilder(command).directory(workDir.toFile());
    pb.environment().putAll(env);
    pb.environment().put("ORT_DISABLE_TELEMETRY", "1");
    pb.environment().put("OPT_OUT_TRACKING", "true");
    pb.environment().put("DOCKER_BUILDKIT", "0");
    Path out = workDir.resolve("cmd-" + System.nanoTime() + ".out");
    Path err = workDir.resolve("cmd-" + System.nanoTime() + ".err");
    pb.redirectOutput(out.toFile()).redirectError(err.toFile());
    Process p = pb.start();
    if (!p.waitFor(10, TimeUnit.MINUTES)) {
      p.destroyForcibly();
      fail("timed out: " + command);
    }
    return new Result(
        p.exitValue(),
        java.nio.file.Files.readString(out, StandardCharsets.UTF_8),
        java.nio.file.Files.readString(err, StandardCharsets.UTF_8));
  }

  /** Runs {@code berth ARGS}. */
  static Result berth(Path workDir, String... args) throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>(BerthProcess.command(args));
    return exec(workDir, cmd);
  }

  /** Runs {@code berth ARGS} with these environment variables besides. */
  static Result berth(Path workDir, java.util.Map<String, String> env, String... args)
      throws IOException, InterruptedException {
    return exec(workDir, env, new ArrayList<>(BerthProcess.command(args)));
  }

  /** Runs {@code docker ARGS} (the client on PATH; DOCKER_HOST picks the engine). */
  static Result docker(Path workDir, String... args) throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>();
    cmd.add("docker");
    cmd.addAll(List.of(args));
    return exec(workDir, cmd);
  }

  /** Runs {@code skopeo ARGS} against the plain-HTTP test registry. */
  static Result skopeo(Path workDir, String... args) throws IOException, InterruptedException {
    List<String> cmd = new ArrayList<>();
    cmd.add("skopeo");
    cmd.addAll(List.of(args));
    return exec(workDir, cmd);
  }

  /** The examples/ folder of the checkout. */
  static Path examples() {
    return Path.of(System.getProperty("berth.examples", "../examples")).toAbsolutePath();
  }
}
