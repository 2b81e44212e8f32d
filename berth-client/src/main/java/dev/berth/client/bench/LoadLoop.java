package dev.berth.client.bench;

import java.io.IOException;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.net.NoRouteToHostException;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * Runs one step: a few {@link Driver}s (one per core, at most one per connection) share the step's
 * connections, each recording into its own {@link Recorder}, so they share nothing on the hot path:
 * {@link EventLoop}s for HTTP, {@link GrpcDriver}s for gRPC. Requests are encoded once; each
 * connection starts at another one and goes round. An open loop adds a scheduler thread that hands
 * each request to a driver when it falls due, at {@code start + k / rate}.
 */
final class LoadLoop {
  private static final AtomicInteger THREAD_IDS = new AtomicInteger();

  /**
   * The clock of one step, in System.nanoTime() units.
   *
   * @param start when the warm-up starts
   * @param measureStart when the measured time starts
   * @param end when it ends
   * @param intervalNanos an open loop's time between requests; 0 for a closed loop
   * @param timeoutNanos longest wait for a connection or an answer
   */
  record Window(long start, long measureStart, long end, double intervalNanos, long timeoutNanos) {
    boolean measured(long at) {
      return at >= measureStart && at < end;
    }

    /** When an open loop's request {@code k} falls due. */
    long due(long k) {
      return start + (long) (k * intervalNanos);
    }
  }

  /** Drives a share of a step's load on its own thread ({@link #run} returns when done). */
  interface Driver extends Runnable {
    Recorder recorder();

    /** The connections it used (the most it had open at once). */
    int connections();

    /** Open loop: request {@code k} has fallen due. */
    void due(long k);

    /** Open loop: no more requests will fall due. */
    void scheduleDone();
  }

  /** Makes the drivers of a step. */
  interface Drivers {
    /**
     * @param connections a closed loop's connections (or calls in flight) for this driver; an open
     *     loop's most
     * @param firstConnection the step-wide number of the driver's first connection
     */
    Driver create(Window w, boolean open, int connections, int firstConnection) throws IOException;
  }

  private final BenchPlan plan;
  private final Drivers drivers;
  private final Consumer<String> progress;
  private final Supplier<ServerSplit.Snapshot> scrape;
  private final int cores;

  LoadLoop(
      BenchPlan plan,
      Drivers drivers,
      Consumer<String> progress,
      Supplier<ServerSplit.Snapshot> scrape) {
    this.plan = plan;
    this.drivers = drivers;
    this.progress = progress;
    this.scrape = scrape;
    this.cores = Runtime.getRuntime().availableProcessors();
  }

  /** HTTP drivers for requests encoded as whole HTTP requests. */
  static Drivers http(BenchPlan plan, List<byte[]> requests) {
    ByteBuffer[] buffers = new ByteBuffer[requests.size()];
    for (int i = 0; i < buffers.length; i++) {
      byte[] r = requests.get(i);
      buffers[i] = ByteBuffer.allocateDirect(r.length).put(r).flip().asReadOnlyBuffer();
    }
    InetSocketAddress address = new InetSocketAddress(plan.host(), plan.port());
    // a language model's answers say how many tokens they carry: read them
    boolean usage = plan.protocol() == Protocol.OPENAI;
    return (w, open, connections, first) ->
        new EventLoop(w, address, buffers, open, connections, first, usage);
  }

  StepResult run(LoadStep step) {
    long start = System.nanoTime();
    long measureStart = start + plan.warmup().toNanos();
    long end = measureStart + plan.duration().toNanos();
    Window w =
        new Window(
            start,
            measureStart,
            end,
            step.isOpen() ? 1e9 / step.ratePerSecond() : 0,
            plan.timeout().toNanos());
    int connections = step.isOpen() ? plan.maxConnections() : step.concurrency();
    int n = Math.max(1, Math.min(cores, connections));
    List<Driver> loops = new ArrayList<>();
    List<Thread> threads = new ArrayList<>();
    try {
      int first = 0;
      for (int i = 0; i < n; i++) {
        int share = connections / n + (i < connections % n ? 1 : 0);
        loops.add(drivers.create(w, step.isOpen(), share, first));
        first += share;
      }
    } catch (IOException e) {
      throw new java.io.UncheckedIOException("cannot start the load: " + e.getMessage(), e);
    }
    for (Driver loop : loops) {
      threads.add(start(loop));
    }
    if (step.isOpen()) {
      threads.add(start(() -> schedule(w, loops)));
    }

    String label = step.label();
    if (measureStart > start) {
      progress.accept(
          String.format(
              Locale.ROOT,
              "%s: warming up %s, then measuring %s",
              label,
              seconds(plan.warmup().toNanos()),
              seconds(plan.duration().toNanos())));
    }
    parkUntil(w.measureStart());
    ServerSplit.Snapshot before = scrape.get();
    long lastCount = count(loops);
    for (long tick = measureStart + 1_000_000_000L; tick <= end; tick += 1_000_000_000L) {
      parkUntil(tick);
      long now = count(loops);
      LatencyHistogram h = new LatencyHistogram();
      loops.forEach(l -> h.add(l.recorder().histogram()));
      progress.accept(
          String.format(
              Locale.ROOT,
              "%s: %s/%s  %,d requests  %,.1f/s  p99 %s",
              label,
              seconds(tick - measureStart),
              seconds(end - measureStart),
              now,
              (double) (now - lastCount),
              Double.isNaN(h.percentileMs(99)) ? "-" : ms(h.percentileMs(99)) + " ms"));
      lastCount = now;
    }
    parkUntil(end);
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
    Recorder.Merged m = Recorder.merge(loops.stream().map(Driver::recorder).toList());
    long ok = m.sortedLatencies().length;
    long measuredEnd = step.isOpen() ? Math.max(end, m.lastCompletionNanos()) : end;
    double secs = (measuredEnd - measureStart) / 1e9;
    int peak = loops.stream().mapToInt(Driver::connections).sum();
    return new StepResult(
        step,
        step.isOpen() ? peak : step.concurrency(),
        secs,
        ok + m.errors(),
        ok / secs,
        LatencyStats.ofSorted(m.sortedLatencies()),
        m.errors(),
        m.errorsByStatus(),
        m.firstError(),
        before == null || after == null ? null : ServerSplit.between(before, after),
        m.promptTokens(),
        m.completionTokens(),
        m.longestSequence());
  }

  /** Open loop: hands request k to a loop when it falls due, until the step's end. */
  private static void schedule(Window w, List<Driver> loops) {
    try {
      for (long k = 0; ; k++) {
        long due = w.due(k);
        if (due >= w.end()) {
          return;
        }
        parkUntil(due);
        loops.get((int) (k % loops.size())).due(k);
      }
    } finally {
      loops.forEach(Driver::scheduleDone);
    }
  }

  private static Thread start(Runnable body) {
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
    if (m.contains("connection reset") || m.contains("broken pipe")) {
      return "reset";
    }
    return "io";
  }

  static String message(IOException e) {
    return e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
  }

  private static long count(List<Driver> loops) {
    long n = 0;
    for (Driver l : loops) {
      n += l.recorder().completed();
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
