package dev.berth.client.bench;

import java.util.Locale;

/**
 * One step of a benchmark: a closed loop of {@code concurrency} callers, each sending its next
 * request when the last is answered, or an open loop sending {@code ratePerSecond} requests per
 * second on a fixed schedule whatever the server does.
 *
 * @param concurrency callers of a closed loop; 0 for an open loop
 * @param ratePerSecond requests per second of an open loop; 0 for a closed loop
 */
public record LoadStep(int concurrency, double ratePerSecond) {

  public LoadStep {
    if ((concurrency > 0) == (ratePerSecond > 0)) {
      throw new IllegalArgumentException(
          "a step has either a concurrency or a rate above 0, got "
              + concurrency
              + "/"
              + ratePerSecond);
    }
  }

  /** A closed loop of {@code callers} connections. */
  public static LoadStep closed(int callers) {
    return new LoadStep(callers, 0);
  }

  /** An open loop of {@code perSecond} requests per second. */
  public static LoadStep open(double perSecond) {
    return new LoadStep(0, perSecond);
  }

  public boolean isOpen() {
    return ratePerSecond > 0;
  }

  /** {@code c=16} or {@code rate=250/s}. */
  public String label() {
    return isOpen() ? "rate=" + formatRate(ratePerSecond) + "/s" : "c=" + concurrency;
  }

  static String formatRate(double rate) {
    return rate == Math.rint(rate)
        ? Long.toString((long) rate)
        : String.format(Locale.ROOT, "%.2f", rate).replaceAll("0+$", "");
  }
}
