package dev.berth.cli;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Berth opens no connection its user did not configure. ONNX Runtime's native library starts a
 * telemetry client unless {@code ORT_DISABLE_TELEMETRY=1} is in the process environment when it
 * loads, and DJL reports usage unless {@code OPT_OUT_TRACKING=true}. A JVM cannot change its own
 * environment, so when Berth is started without them (say {@code java -jar berth.jar}), it runs
 * itself again as a child with them set, passing signals on and returning the child's exit code.
 */
final class TelemetryOptOut {
  static final Map<String, String> ENVIRONMENT =
      Map.of("ORT_DISABLE_TELEMETRY", "1", "OPT_OUT_TRACKING", "true");

  private TelemetryOptOut() {}

  static boolean inEffect() {
    return ENVIRONMENT.entrySet().stream()
        .allMatch(e -> e.getValue().equals(System.getenv(e.getKey())));
  }

  /**
   * The command that runs Berth again as this JVM runs it (same Java, JVM options and class path),
   * with {@code args}. The caller puts {@link #ENVIRONMENT} into the child's environment.
   */
  static List<String> berthCommand(List<String> args) {
    List<String> command = new ArrayList<>();
    command.add(ProcessHandle.current().info().command().orElse("java"));
    command.addAll(ManagementFactory.getRuntimeMXBean().getInputArguments());
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    command.add(Main.class.getName());
    command.addAll(args);
    return command;
  }

  /** Runs this same command in a child JVM with the opt-outs set; returns its exit code. */
  static int rerunOptedOut(String[] args) throws IOException, InterruptedException {
    ProcessBuilder pb = new ProcessBuilder(berthCommand(List.of(args))).inheritIO();
    pb.environment().putAll(ENVIRONMENT);
    Process child = pb.start();
    Runtime.getRuntime()
        .addShutdownHook(
            Thread.ofPlatform()
                .unstarted(
                    () -> {
                      // SIGTERM/SIGINT reached this wrapper: pass it on, then leave as the child
                      // did.
                      child.destroy();
                      try {
                        Runtime.getRuntime().halt(child.waitFor());
                      } catch (InterruptedException e) {
                        Runtime.getRuntime().halt(1);
                      }
                    }));
    return child.waitFor();
  }
}
