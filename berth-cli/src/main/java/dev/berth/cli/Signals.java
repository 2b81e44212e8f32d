package dev.berth.cli;

import java.util.logging.Handler;
import java.util.logging.Logger;

/**
 * SIGTERM and SIGINT start an orderly stop. The JVM runs shutdown hooks on either signal; the hook
 * drains the server and then ends the process with exit code 0 (rather than the JVM's 143 or 130),
 * because a drained stop is a clean one for a container runtime or a terminal.
 */
final class Signals {
  private Signals() {}

  static void onTerminate(Runnable stop) {
    Runtime.getRuntime()
        .addShutdownHook(
            Thread.ofPlatform()
                .name("berth-shutdown")
                .unstarted(
                    () -> {
                      stop.run();
                      for (Handler h : Logger.getLogger("").getHandlers()) {
                        h.flush();
                      }
                      System.out.flush();
                      Runtime.getRuntime().halt(0);
                    }));
  }
}
