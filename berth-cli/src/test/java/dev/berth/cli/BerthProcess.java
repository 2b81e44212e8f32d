package dev.berth.cli;

import static org.awaitility.Awaitility.await;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** Runs the packaged {@code berth} jar as a separate process, as a user would. */
final class BerthProcess implements AutoCloseable {
  private static final Pattern URL = Pattern.compile("\"url\":\"(https?://[^\"]+)\"");

  final Process process;
  final Path stderr;
  final Path stdout;
  private String url;

  private BerthProcess(Process process, Path stdout, Path stderr) {
    this.process = process;
    this.stdout = stdout;
    this.stderr = stderr;
  }

  static Path jar() {
    return Path.of("target", "berth.jar").toAbsolutePath();
  }

  static Path examples() {
    return Path.of(System.getProperty("berth.examples", "../examples"))
        .resolve("models")
        .toAbsolutePath();
  }

  static String java() {
    return ProcessHandle.current().info().command().orElse("java");
  }

  /**
   * Where berth unpacks DJL's natives (the tokenizers', and libtorch's 430 MB for TorchScript
   * models): the test JVM's own {@code DJL_CACHE_DIR} (failsafe sets one under target/, shared by
   * every test, so libtorch unpacks once a build), else a folder of {@code workDir}.
   */
  static Path djlCache(Path workDir) {
    String shared = System.getenv("DJL_CACHE_DIR");
    return shared == null || shared.isBlank() ? workDir.resolve("djl") : Path.of(shared);
  }

  /** The command line that runs berth with the given arguments. */
  static List<String> command(String... args) {
    List<String> cmd = new ArrayList<>();
    cmd.add(java());
    cmd.add("--enable-native-access=ALL-UNNAMED");
    cmd.add("-jar");
    cmd.add(jar().toString());
    cmd.addAll(List.of(args));
    return cmd;
  }

  static BerthProcess start(Path workDir, String... args) throws IOException {
    return start(workDir, java.util.Map.of(), args);
  }

  /** The same, with these environment variables added. */
  static BerthProcess start(Path workDir, java.util.Map<String, String> env, String... args)
      throws IOException {
    Path out = workDir.resolve("stdout.log");
    Path err = workDir.resolve("stderr.log");
    ProcessBuilder pb = new ProcessBuilder(command(args));
    pb.environment().putAll(env);
    pb.environment().put("ORT_DISABLE_TELEMETRY", "1");
    pb.environment().put("OPT_OUT_TRACKING", "true");
    pb.environment().put("DJL_CACHE_DIR", djlCache(workDir).toString());
    pb.redirectOutput(out.toFile()).redirectError(err.toFile());
    return new BerthProcess(pb.start(), out, err);
  }

  /** What a berth command that ran to its end printed, and its exit code. */
  record Finished(int code, String out, String err) {}

  /**
   * Runs berth with these arguments to its end, its output captured in files under {@code workDir};
   * fails the test when it runs longer than {@code timeout}.
   */
  static Finished run(Path workDir, Duration timeout, String... args) throws Exception {
    Path out = workDir.resolve(args[0] + ".out");
    Path err = workDir.resolve(args[0] + ".err");
    ProcessBuilder pb = new ProcessBuilder(command(args));
    pb.environment().put("ORT_DISABLE_TELEMETRY", "1");
    pb.environment().put("OPT_OUT_TRACKING", "true");
    pb.environment().put("DJL_CACHE_DIR", djlCache(workDir).toString());
    pb.redirectOutput(out.toFile()).redirectError(err.toFile());
    Process p = pb.start();
    if (!p.waitFor(timeout.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS)) {
      p.destroyForcibly();
      throw new AssertionError("berth " + args[0] + " did not finish within " + timeout);
    }
    return new Finished(
        p.exitValue(),
        Files.readString(out, java.nio.charset.StandardCharsets.UTF_8),
        Files.readString(err, java.nio.charset.StandardCharsets.UTF_8));
  }

  /** Copies a directory tree (a model) to {@code to}, which must not exist yet. */
  static Path copyTree(Path from, Path to) throws IOException {
    try (java.util.stream.Stream<Path> walk = Files.walk(from)) {
      for (Path p : walk.toList()) {
        Path t = to.resolve(from.relativize(p).toString());
        if (Files.isDirectory(p)) {
          Files.createDirectories(t);
        } else {
          Files.copy(p, t);
        }
      }
    }
    return to;
  }

  /** Waits for the "serving" log line and returns the URL it names. */
  String awaitServing() {
    await()
        .atMost(Duration.ofSeconds(120))
        .pollInterval(Duration.ofMillis(100))
        .until(
            () -> {
              if (!process.isAlive()) {
                throw new IllegalStateException("berth exited early:\n" + Files.readString(stderr));
              }
              Matcher m = URL.matcher(Files.readString(stderr));
              if (m.find()) {
                url = m.group(1);
                return true;
              }
              return false;
            });
    return url;
  }

  String url() {
    return url;
  }

  static HttpResponse<String> get(HttpClient http, String url)
      throws IOException, InterruptedException {
    return http.send(
        HttpRequest.newBuilder(URI.create(url)).GET().build(),
        HttpResponse.BodyHandlers.ofString());
  }

  static HttpResponse<String> post(HttpClient http, String url, String json)
      throws IOException, InterruptedException {
    return http.send(
        HttpRequest.newBuilder(URI.create(url))
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(json))
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }

  @Override
  public void close() {
    process.destroyForcibly();
  }
}
