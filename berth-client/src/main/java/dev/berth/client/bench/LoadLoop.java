package dev.berth.client.bench;

import java.io.IOException;
import java.net.ConnectException;
import java.net.NoRouteToHostException;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.net.UnknownHostException;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * Runs one step: one platform thread per connection, each sending requests encoded once and
 * recording into its own {@link Recorder}, so the threads share nothing on the hot path.
 *
 * <p>Closed loop: {@code c} connections, each sending its next request as soon as the last is
 * answered; answers that arrive within the measured time count. Open loop: request {@code k} is due
 * at {@code start + k / rate}; a thread takes the next due request, waits for its time and sends
 * it, and its latency runs from the time it was due, so time spent waiting for a free connection
 * counts (no coordinated omission). A thread that takes a request already more than a millisecond
 * late opens another connection, up to the plan's maximum. Requests due within the measured time
 * count, however late they are answered.
 */
final class LoadLoop {
  private static final long LATE_NANOS = TimeUnit.MILLISECONDS.toNanos(1);
  private static final long RECONNECT_PAUSE_NANOS = TimeUnit.MILLISECONDS.toNanos(10);
  private static final AtomicInteger THREAD_IDS = new AtomicInteger();

  private final BenchPlan plan;
  private final byte[][] requests;
  private final Consumer<String> progress;
  private final Supplier<ServerSplit.Snapshot> scrape;

  LoadLoop(
      BenchPlan plan,
      List<byte[]> requests,
      Consumer<String> progress,
      Supplier<ServerSplit.Snapshot> scrape) {
    this.plan = plan;
    this.requests = requests.toArray(new byte[0][]);
    this.progress = progress;
    this.scrape = scrape;
  }

  /** The shared clock of one step, in System.nanoTime() units. */
  private record Window(long start, long measureStart, long end) {
    boolean measured(long at) {
      return at >= measureStart && at < end;
    }
  }

  StepResult run(LoadStep step) {
    long start = System.nanoTime();
    long measureStart = start + plan.warmup().toNanos();
    Window w = new Window(start, measureStart, measureStart + plan.duration().toNanos());
    List<Recorder> recorders = new CopyOnWriteArrayList<>();
    List<Thread> threads = new CopyOnWriteArrayList<>();
    AtomicInteger connections = new AtomicInteger();
    if (step.isOpen()) {
      OpenLoop open = new OpenLoop(step.ratePerSecond(), w, recorders, threads, connections);
      open.spawn();
    } else {
      for (int i = 0; i < step.concurrency(); i++) {
        Recorder r = new Recorder();
        recorders.add(r);
        int offset = (int) ((i * 37L) % requests.length);
        threads.add(startThread(() -> closedLoop(r, offset, w)));
      }
      connections.set(step.concurrency());
    }

    String label = step.label();
    if (w.measureStart > start) {
      progress.accept(
          String.format(
              Locale.ROOT,
              "%s: warming up %s, then measuring %s",
              label,
              seconds(plan.warmup().toNanos()),
              seconds(plan.duration().toNanos())));
    }
    parkUntil(w.measureStart);
    ServerSplit.Snapshot before = scrape.get();
    long lastCount = count(recorders);
    for (long tick = w.measureStart + 1_000_000_000L; tick <= w.end; tick += 1_000_000_000L) {
      parkUntil(tick);
      long now = count(recorders);
      LatencyHistogram h = new LatencyHistogram();
      recorders.forEach(r -> h.add(r.histogram()));
      progress.accept(
          String.format(
              Locale.ROOT,
              "%s: %s/%s  %,d requests  %,.1f/s  p99 %s",
              label,
              seconds(tick - w.measureStart),
              seconds(w.end - w.measureStart),
              now,
              (double) (now - lastCount),
              Double.isNaN(h.percentileMs(99)) ? "-" : ms(h.percentileMs(99)) + " ms"));
      lastCount = now;
    }
    parkUntil(w.end);
    long waitMillis = plan.timeout().toMillis() + 5_000;
    for (Thread t : threads) {
      try {
        t.join(Math.max(1, waitMillis));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    ServerSplit.Snapshot after = scrape.get();
    Recorder.Merged m = Recorder.merge(recorders);
    long ok = m.sortedLatencies().length;
    long measuredEnd = step.isOpen() ? Math.max(w.end, m.lastCompletionNanos()) : w.end;
    double secs = (measuredEnd - w.measureStart) / 1e9;
    return new StepResult(
        step,
        connections.get(),
        secs,
        ok + m.errors(),
        ok / secs,
        LatencyStats.ofSorted(m.sortedLatencies()),
        m.errors(),
        m.errorsByStatus(),
        m.firstError(),
        before == null || after == null ? null : ServerSplit.between(before, after));
  }

  private void closedLoop(Recorder r, int offset, Window w) {
    HttpConnection c = null;
    int i = offset;
    try {
      while (true) {
        if (c == null) {
          c = connect(r, w.end, w);
          if (c == null) {
            if (System.nanoTime() >= w.end) {
              return;
            }
            continue;
          }
        }
        long t0 = System.nanoTime();
        if (t0 >= w.end) {
          return;
        }
        byte[] request = requests[i];
        if (++i == requests.length) {
          i = 0;
        }
        try {
          int status = c.exchange(request, false);
          long t1 = System.nanoTime();
          if (w.measured(t1)) {
            r.answer(status, t1 - t0, t1, c);
          }
          if (!c.keepAlive()) {
            close(c);
            c = null;
          }
        } catch (IOException e) {
          long t1 = System.nanoTime();
          if (w.measured(t1)) {
            r.failure(kind(e), message(e), t1);
          }
          close(c);
          c = null;
        }
      }
    } finally {
      close(c);
    }
  }

  /** The open loop's shared schedule and its growing set of connections. */
  private final class OpenLoop {
    private final double intervalNanos;
    private final Window w;
    private final List<Recorder> recorders;
    private final List<Thread> threads;
    private final AtomicInteger connections;
    private final AtomicLong next = new AtomicLong();

    OpenLoop(
        double rate,
        Window w,
        List<Recorder> recorders,
        List<Thread> threads,
        AtomicInteger connections) {
      this.intervalNanos = 1e9 / rate;
      this.w = w;
      this.recorders = recorders;
      this.threads = threads;
      this.connections = connections;
    }

    /** Opens one more connection, unless the plan's maximum is reached. */
    void spawn() {
      int n;
      do {
        n = connections.get();
        if (n >= plan.maxConnections()) {
          return;
        }
      } while (!connections.compareAndSet(n, n + 1));
      Recorder r = new Recorder();
      recorders.add(r);
      threads.add(startThread(() -> run(r)));
    }

    private void run(Recorder r) {
      HttpConnection c = null;
      try {
        while (true) {
          long k = next.getAndIncrement();
          long due = w.start + (long) (k * intervalNanos);
          if (due >= w.end) {
            return;
          }
          if (System.nanoTime() - due > LATE_NANOS) {
            spawn(); // every connection was busy when this request fell due
          }
          parkUntil(due);
          boolean counted = w.measured(due);
          if (c == null) {
            c = connect(counted ? r : null, due, w);
            if (c == null) {
              continue;
            }
          }
          try {
            int status = c.exchange(requests[(int) (k % requests.length)], false);
            long t1 = System.nanoTime();
            if (counted) {
              r.answer(status, t1 - due, t1, c);
            }
            if (!c.keepAlive()) {
              close(c);
              c = null;
            }
          } catch (IOException e) {
            if (counted) {
              r.failure(kind(e), message(e), System.nanoTime());
            }
            close(c);
            c = null;
          }
        }
      } finally {
        close(c);
      }
    }
  }

  /**
   * A new connection, or null after recording the failure in {@code r} (when not null and within
   * the window) and pausing briefly, so that a server that refuses connections is not hammered.
   */
  private HttpConnection connect(Recorder r, long pauseUntilAtMost, Window w) {
    try {
      return HttpConnection.open(plan.host(), plan.port(), plan.timeout());
    } catch (IOException e) {
      long now = System.nanoTime();
      if (r != null && w.measured(now)) {
        r.failure(kind(e), message(e), now);
      }
      parkUntil(Math.min(now + RECONNECT_PAUSE_NANOS, Math.max(now, pauseUntilAtMost)));
      return null;
    }
  }

  private static Thread startThread(Runnable body) {
    return Thread.ofPlatform()
        .daemon()
        .name("berth-bench-" + THREAD_IDS.incrementAndGet())
        .start(body);
  }

  /** The kind of a transport failure, as reports count it. */
  static String kind(IOException e) {
    if (e instanceof SocketTimeoutException) {
      return "timeout";
    }
    if (e instanceof ConnectException
        || e instanceof NoRouteToHostException
        || e instanceof UnknownHostException) {
      return "refused";
    }
    if (e instanceof java.io.EOFException) {
      return "closed";
    }
    String m = e.getMessage() == null ? "" : e.getMessage().toLowerCase(Locale.ROOT);
    if (e instanceof SocketException && (m.contains("reset") || m.contains("broken pipe"))) {
      return "reset";
    }
    return "io";
  }

  private static String message(IOException e) {
    return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
  }

  private static long count(List<Recorder> recorders) {
    long n = 0;
    for (Recorder r : recorders) {
      n += r.completed();
    }
    return n;
  }

  /** Waits until {@code deadline} (System.nanoTime), or until the thread is interrupted. */
  static void parkUntil(long deadline) {
    long left;
    while ((left = deadline - System.nanoTime()) > 0 && !Thread.currentThread().isInterrupted()) {
      LockSupport.parkNanos(left);
    }
  }

  private static void close(HttpConnection c) {
    if (c != null) {
      try {
        c.close();
      } catch (IOException e) {
        // closing a broken connection: nothing left to do
      }
    }
  }

  private static String seconds(long nanos) {
    double s = nanos / 1e9;
    return s == Math.rint(s)
        ? String.format(Locale.ROOT, "%ds", (long) s)
        : String.format(Locale.ROOT, "%.1fs", s);
  }

  static String ms(double ms) {
    return String.format(Locale.ROOT, ms < 10 ? "%.2f" : ms < 100 ? "%.1f" : "%.0f", ms);
  }
}
