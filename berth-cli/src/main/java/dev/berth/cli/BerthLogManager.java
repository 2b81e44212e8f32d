package dev.berth.cli;

import java.util.logging.LogManager;

/**
 * The JDK's LogManager closes every handler from its own shutdown hook, which races with Berth's
 * drain on SIGTERM and loses the last log lines. This one resets only when Berth asks.
 */
public final class BerthLogManager extends LogManager {
  private volatile boolean resetAllowed = true;

  @Override
  public void reset() {
    if (resetAllowed) {
      super.reset();
    }
  }

  /**
   * Stops later {@link #reset()} calls (the JDK's shutdown hook among them) from closing handlers.
   */
  void keepHandlers() {
    resetAllowed = false;
  }
}
