package dev.berth.store;

import java.util.Locale;
import java.util.function.Consumer;
import java.util.function.LongConsumer;

/**
 * Bytes received of one download, told as a line at most every two seconds ({@code " version 1:
 * 340.0 MB of 1.00 GB"}), so that a long download shows it is moving without flooding the log.
 */
final class Progress implements LongConsumer {
  private static final long EVERY = 2_000_000_000L;

  private final String what;
  private final long total;
  private final Consumer<String> out;
  private final java.util.function.LongSupplier clock;
  private long shown;

  Progress(String what, long total, Consumer<String> out) {
    this(what, total, out, System::nanoTime);
  }

  Progress(String what, long total, Consumer<String> out, java.util.function.LongSupplier clock) {
    this.what = what;
    this.total = total;
    this.out = out;
    this.clock = clock;
    this.shown = clock.getAsLong();
  }

  @Override
  public void accept(long got) {
    long now = clock.getAsLong();
    if (now - shown > EVERY && got < total) {
      shown = now;
      out.accept(
          String.format(
              Locale.ROOT,
              "  %s: %s of %s",
              what,
              OciModelStore.size(got),
              total < 0 ? "?" : OciModelStore.size(total)));
    }
  }
}
