package dev.berth.server;

import java.time.Duration;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * A deadline on reading one request body, for the thread that reads it. When it passes first, it
 * interrupts that thread: a read blocked on the connection then fails (the socket channel closes).
 * {@link #end()} stops the watch and clears an interrupt the deadline delivered, so the thread
 * carries on clean either way. The interrupt and the end are serialised, so no interrupt arrives
 * after {@code end()} returns.
 */
final class BodyDeadline {
  private static final ScheduledExecutorService TIMER = timer();

  /**
   * One timer thread; a watch that ends leaves its queue at once, so the queue holds only the
   * bodies being read, not every body of the last {@code --body-timeout}.
   */
  private static ScheduledExecutorService timer() {
    java.util.concurrent.ScheduledThreadPoolExecutor timer =
        new java.util.concurrent.ScheduledThreadPoolExecutor(
            1, r -> Thread.ofPlatform().daemon().name("berth-body-deadline").unstarted(r));
    timer.setRemoveOnCancelPolicy(true);
    return timer;
  }

  private final Thread reader = Thread.currentThread();
  private final ScheduledFuture<?> task;
  private boolean ended; // guarded by this
  private boolean fired; // guarded by this

  private BodyDeadline(Duration timeout) {
    this.task = TIMER.schedule(this::fire, timeout.toNanos(), TimeUnit.NANOSECONDS);
  }

  /** Starts watching the current thread. */
  static BodyDeadline start(Duration timeout) {
    return new BodyDeadline(timeout);
  }

  private synchronized void fire() {
    if (!ended) {
      fired = true;
      reader.interrupt();
    }
  }

  /**
   * Ends the watch; call it on the reading thread, once the read is over.
   *
   * @return whether the deadline passed during the read
   */
  synchronized boolean end() {
    if (!ended) {
      ended = true;
      task.cancel(false);
      if (fired) {
        Thread.interrupted(); // the interrupt was the deadline's, not the thread's owner's
      }
    }
    return fired;
  }
}
