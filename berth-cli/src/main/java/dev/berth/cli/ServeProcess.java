package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.runtime.ServeSettings;
import dev.berth.runtime.ServiceSpec;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A service file's models served by a child {@code berth serve} process on a free loopback port,
 * for {@code berth bench SERVICE}: a separate JVM, so the server's threads, heap and JIT do not mix
 * with the load generator's, as in production. Its repository is a temporary directory of links to
 * the model versions with each model's {@code model.yaml} as the service runs it (the service's
 * overrides applied). {@link #close()} stops it with SIGTERM (an orderly drain) and removes the
 * directory.
 */
final class ServeProcess implements AutoCloseable {
  private static final Pattern SERVING =
      Pattern.compile("Berth is serving on (http://\\S+) \\(gRPC on \\S+:(\\d+)\\)");
  private static final Duration START_TIMEOUT = Duration.ofMinutes(3);

  private final Process process;
  private final Path work;
  private final URI url;
  private final int grpcPort;
  private final Duration drainTimeout;
  private final Thread killOnExit;

  private ServeProcess(
      Process process, Path work, Serving serving, Duration drainTimeout, Thread killOnExit) {
    this.process = process;
    this.work = work;
    this.url = serving.url();
    this.grpcPort = serving.grpcPort();
    this.drainTimeout = drainTimeout;
    this.killOnExit = killOnExit;
  }

  /**
   * How the server process is started besides its arguments.
   *
   * @param prefix a command the server runs under, e.g. {@code taskset -c 1} to pin it to CPUs
   * @param jvmOptions JVM options added to the server's, e.g. {@code -XX:ActiveProcessorCount=1}
   */
  record Launch(List<String> prefix, List<String> jvmOptions) {
    static final Launch PLAIN = new Launch(List.of(), List.of());

    Launch {
      prefix = List.copyOf(prefix);
      jvmOptions = List.copyOf(jvmOptions);
    }
  }

  /** Starts {@code berth serve} on the service's models and waits until it is ready. */
  static ServeProcess start(ServiceSpec service, Consumer<String> progress) {
    return start(service, progress, Launch.PLAIN);
  }

  /** As {@link #start(ServiceSpec, Consumer)}, the server started as {@code launch} says. */
  static ServeProcess start(ServiceSpec service, Consumer<String> progress, Launch launch) {
    Path work;
    try {
      work = Files.createTempDirectory("berth-bench-");
    } catch (IOException e) {
      throw new BerthException("cannot create a temporary directory: " + e.getMessage(), e);
    }
    Process process = null;
    Thread killOnExit = null;
    try {
      Path repo = service.writeRepository(work.resolve("models"));
      if (!service.remoteModels().isEmpty()) {
        // models fetched from their sources: served through a service file naming them beside the
        // staged ones (without the service's own settings, which the command line gives)
        Path file = work.resolve(ServiceSpec.FILE_NAME);
        ServiceSpec.writeYaml(file, service.servedFile());
        repo = file;
      }
      // the service's settings, on free loopback ports, without its secrets (a benchmark calls
      // without credentials) and with the warnings only
      ServeSettings settings =
          ServeSettings.onFreeLoopbackPorts("text")
              .with(ServeSettings.LOG_LEVEL, "warn")
              .over(service.serving().settings().without(ServeSettings.SECRET_FILES));
      List<String> args = new ArrayList<>(List.of("serve", repo.toString()));
      args.addAll(settings.arguments());
      Path log = work.resolve("serve.log");
      List<String> command = new ArrayList<>(launch.prefix());
      List<String> berth = TelemetryOptOut.berthCommand(args);
      // after this JVM's own options, so that they win
      int classPath = berth.indexOf("-cp");
      command.addAll(berth.subList(0, classPath));
      command.addAll(launch.jvmOptions());
      command.addAll(berth.subList(classPath, berth.size()));
      ProcessBuilder pb =
          new ProcessBuilder(command)
              .redirectError(log.toFile())
              .redirectInput(ProcessBuilder.Redirect.from(nullDevice()));
      pb.environment().putAll(TelemetryOptOut.ENVIRONMENT);
      progress.accept(
          "starting service '"
              + service.name()
              + "' from "
              + service.file()
              + " (berth serve on a free loopback port)...");
      long started = System.nanoTime();
      process = pb.start();
      Process child = process;
      killOnExit =
          Thread.ofPlatform()
              .unstarted(
                  () -> {
                    // berth bench interrupted (Ctrl-C): the server must not outlive it
                    child.destroy();
                    try {
                      if (!child.waitFor(10, TimeUnit.SECONDS)) {
                        child.destroyForcibly();
                      }
                    } catch (InterruptedException e) {
                      child.destroyForcibly();
                    }
                  });
      Runtime.getRuntime().addShutdownHook(killOnExit);
      Serving ready = awaitServing(process, log);
      progress.accept(
          String.format(
              java.util.Locale.ROOT,
              "service ready at %s (gRPC port %d) in %.1fs (pid %d)",
              ready.url(),
              ready.grpcPort(),
              (System.nanoTime() - started) / 1e9,
              process.pid()));
      return new ServeProcess(
          process, work, ready, settings.duration(ServeSettings.DRAIN_TIMEOUT), killOnExit);
    } catch (IOException e) {
      stopQuietly(process, killOnExit);
      deleteTree(work);
      throw new BerthException("cannot start berth serve: " + e.getMessage(), e);
    } catch (RuntimeException e) {
      stopQuietly(process, killOnExit);
      deleteTree(work);
      throw e;
    }
  }

  URI url() {
    return url;
  }

  int grpcPort() {
    return grpcPort;
  }

  long pid() {
    return process.pid();
  }

  /** Stops the server with SIGTERM (it drains), force-stops it past the drain timeout. */
  @Override
  public void close() {
    try {
      Runtime.getRuntime().removeShutdownHook(killOnExit);
    } catch (IllegalStateException e) {
      // already shutting down: the hook stops the server
    }
    process.destroy();
    try {
      if (!process.waitFor(drainTimeout.toMillis() + 10_000, TimeUnit.MILLISECONDS)) {
        process.destroyForcibly();
        process.waitFor(10, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
    deleteTree(work);
  }

  /** The exit code, once {@link #close()} has stopped it. */
  int exitValue() {
    return process.exitValue();
  }

  /** Where the started server listens. */
  private record Serving(URI url, int grpcPort) {}

  private static Serving awaitServing(Process process, Path log) {
    CompletableFuture<Serving> found = new CompletableFuture<>();
    Thread.ofPlatform()
        .daemon()
        .name("berth-serve-stdout")
        .start(
            () -> {
              // reads the child's stdout to its end, so the child never blocks writing to it
              try (BufferedReader in =
                  new BufferedReader(
                      new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null) {
                  Matcher m = SERVING.matcher(line);
                  if (m.find()) {
                    found.complete(
                        new Serving(URI.create(m.group(1)), Integer.parseInt(m.group(2))));
                  }
                }
              } catch (IOException e) {
                found.completeExceptionally(e);
              }
              found.completeExceptionally(new IOException("berth serve closed its output"));
            });
    process.onExit().thenRun(() -> found.completeExceptionally(new IOException("exited")));
    try {
      return found.get(START_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    } catch (ExecutionException e) {
      throw new BerthException(
          "berth serve stopped before it was ready"
              + (process.isAlive() ? "" : " (exit code " + process.exitValue() + ")")
              + "; its log:\n"
              + tail(log));
    } catch (TimeoutException e) {
      throw new BerthException(
          "berth serve was not ready within "
              + START_TIMEOUT.toSeconds()
              + "s; its log:\n"
              + tail(log));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new BerthException("interrupted while waiting for berth serve", e);
    }
  }

  private static String tail(Path log) {
    try {
      List<String> lines = Files.readAllLines(log, StandardCharsets.UTF_8);
      return String.join("\n", lines.subList(Math.max(0, lines.size() - 30), lines.size()));
    } catch (IOException e) {
      return "(no log: " + e.getMessage() + ")";
    }
  }

  private static java.io.File nullDevice() {
    return new java.io.File(
        System.getProperty("os.name").startsWith("Windows") ? "NUL" : "/dev/null");
  }

  private static void stopQuietly(Process process, Thread hook) {
    if (hook != null) {
      try {
        Runtime.getRuntime().removeShutdownHook(hook);
      } catch (IllegalStateException e) {
        // shutting down already
      }
    }
    if (process != null) {
      process.destroyForcibly();
      try {
        process.waitFor(10, TimeUnit.SECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  private static void deleteTree(Path dir) {
    try (Stream<Path> files = Files.walk(dir)) {
      List<Path> all = new ArrayList<>(files.sorted(Comparator.reverseOrder()).toList());
      for (Path p : all) {
        Files.deleteIfExists(p); // links are removed, never followed
      }
    } catch (IOException e) {
      // a temporary directory left behind is harmless
    }
  }
}
