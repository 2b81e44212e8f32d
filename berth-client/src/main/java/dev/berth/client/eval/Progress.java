package dev.berth.client.eval;

import java.time.Duration;

/**
 * How far an evaluation has come.
 *
 * @param done rows sent and answered (or failed)
 * @param total rows in the data set
 * @param failed rows whose request failed
 * @param elapsed time since the first request
 */
public record Progress(long done, long total, long failed, Duration elapsed) {

  /** Rows answered a second so far. */
  public double rowsPerSecond() {
    double seconds = elapsed.toNanos() / 1e9;
    return seconds <= 0 ? 0 : done / seconds;
  }
}
