package dev.berth.client.bench;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.StandardSocketOptions;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;

/**
 * One thread driving many keep-alive connections through a selector, as wrk does: a wake-up serves
 * every connection with an answer waiting, where a thread per connection would cost the kernel a
 * context switch per answer (on a 2-core machine that also slowed the server beside it; see
 * BENCHMARKS.md). Each connection has one request in flight at most; answers are read with a {@link
 * ResponseParser} and recorded in this loop's own {@link Recorder}.
 *
 * <p>Closed loop: the loop's connections send their next request as soon as an answer is read,
 * until the window's end; answers that arrive within the measured time count. Open loop: a
 * scheduler thread hands in requests as they fall due ({@link #due}); a due request goes to an idle
 * connection, else to a new one while the loop has fewer than its share of connections, else waits
 * for one to free up. Its latency runs from when it was due, and it counts when it fell due within
 * the measured time.
 */
final class EventLoop implements LoadLoop.Driver {
  private static final long RECONNECT_PAUSE_NANOS = TimeUnit.MILLISECONDS.toNanos(10);
  private static final long SCAN_NANOS = TimeUnit.MILLISECONDS.toNanos(10);

  private final class Connection {
    SocketChannel channel;
    SelectionKey key;
    final ResponseParser parser = new ResponseParser();
    ByteBuffer out;
    long sentAt;
    boolean counted;
    boolean busy;
    boolean connected;
    long waiting = -1; // open loop: the request to send once connected
    int next;
    long reconnectAt = Long.MAX_VALUE;
  }

  private final LoadLoop.Window step;
  private final InetSocketAddress address;
  private final ByteBuffer[] requests;
  private final boolean open;
  private final boolean usage;
  private final int maxConnections;
  private final Recorder recorder = new Recorder();
  private final ByteBuffer readBuffer = ByteBuffer.allocateDirect(64 * 1024);
  private final List<Connection> connections = new ArrayList<>();
  private final ArrayDeque<Connection> idle = new ArrayDeque<>();
  private final ArrayDeque<Long> backlog = new ArrayDeque<>();
  private final Queue<Long> inbox = new ConcurrentLinkedQueue<>();
  private final Selector selector;
  private volatile boolean scheduleDone;
  private int peakConnections;
  private long lastScan;

  /**
   * @param requests the whole requests, encoded once (read-only; each send takes a duplicate)
   * @param connections a closed loop's connections (its share of the step's); an open loop's most
   * @param firstConnection the step-wide number of this loop's first connection: connection {@code
   *     n} starts at request {@code 37 n} and goes round, so that connections do not send the same
   *     request in step
   */
  EventLoop(
      LoadLoop.Window step,
      InetSocketAddress address,
      ByteBuffer[] requests,
      boolean open,
      int connections,
      int firstConnection,
      boolean usage)
      throws IOException {
    this.usage = usage;
    if (usage) {
      recorder.readUsage();
    }
    this.step = step;
    this.address = address;
    this.requests = requests;
    this.open = open;
    this.maxConnections = connections;
    this.selector = Selector.open();
    if (!open) {
      for (int i = 0; i < connections; i++) {
        Connection c = new Connection();
        c.next = (int) ((firstConnection + i) * 37L % requests.length);
        this.connections.add(c);
      }
    }
  }

  @Override
  public Recorder recorder() {
    return recorder;
  }

  /** The most connections it had open at once. */
  @Override
  public int connections() {
    return peakConnections;
  }

  /** Open loop: request {@code k} has fallen due (called by the scheduler thread). */
  @Override
  public void due(long k) {
    inbox.add(k);
    selector.wakeup();
  }

  /** Open loop: no more requests will fall due. */
  @Override
  public void scheduleDone() {
    scheduleDone = true;
    selector.wakeup();
  }

  @Override
  public void run() {
    try {
      for (Connection c : connections) {
        connect(c);
      }
      while (!finished()) {
        long now = System.nanoTime();
        long wait = SCAN_NANOS;
        if (!open && now < step.end()) {
          wait = Math.min(wait, step.end() - now);
        }
        selector.select(this::ready, Math.max(1, TimeUnit.NANOSECONDS.toMillis(wait)));
        now = System.nanoTime();
        if (open) {
          takeDue();
        }
        if (now - lastScan >= SCAN_NANOS) {
          lastScan = now;
          scan(now);
        }
      }
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    } finally {
      for (Connection c : connections) {
        close(c);
      }
      try {
        selector.close();
      } catch (IOException e) {
        // nothing left to do
      }
    }
  }

  private boolean finished() {
    for (Connection c : connections) {
      if (c.busy || c.waiting >= 0) {
        return false;
      }
    }
    if (open) {
      return scheduleDone && inbox.isEmpty() && backlog.isEmpty();
    }
    return System.nanoTime() >= step.end();
  }

  /** Timeouts, and reconnections whose pause is over. */
  private void scan(long now) {
    for (Connection c : List.copyOf(connections)) {
      boolean pending = c.busy || (c.channel != null && !c.connected);
      if (pending && now - c.sentAt > step.timeoutNanos()) {
        fail(c, "timeout", "no answer within " + step.timeoutNanos() / 1_000_000 + " ms", now);
      } else if (c.channel == null && c.reconnectAt <= now) {
        c.reconnectAt = Long.MAX_VALUE;
        if (open ? c.waiting >= 0 : now < step.end()) {
          connect(c);
        } else {
          connections.remove(c);
        }
      }
    }
  }

  private void takeDue() {
    Long k;
    while ((k = inbox.poll()) != null) {
      Connection c = idle.pollFirst();
      if (c != null) {
        send(c, k);
      } else if (connections.size() < maxConnections) {
        c = new Connection();
        c.waiting = k;
        connections.add(c);
        connect(c);
      } else {
        backlog.addLast(k);
      }
    }
  }

  private void connect(Connection c) {
    try {
      c.connected = false;
      c.channel = SocketChannel.open();
      c.channel.configureBlocking(false);
      c.channel.setOption(StandardSocketOptions.TCP_NODELAY, true);
      c.sentAt = System.nanoTime(); // a connect attempt times out like a request
      boolean now = c.channel.connect(address);
      c.key = c.channel.register(selector, now ? SelectionKey.OP_READ : SelectionKey.OP_CONNECT, c);
      peakConnections = Math.max(peakConnections, openCount());
      if (now) {
        connected(c);
      }
    } catch (IOException e) {
      fail(c, LoadLoop.kind(e), LoadLoop.message(e), System.nanoTime());
    }
  }

  private int openCount() {
    int n = 0;
    for (Connection c : connections) {
      if (c.channel != null) {
        n++;
      }
    }
    return n;
  }

  private void connected(Connection c) {
    c.connected = true;
    if (open) {
      if (c.waiting >= 0) {
        long k = c.waiting;
        c.waiting = -1;
        send(c, k);
      } else {
        nextOpen(c);
      }
    } else {
      nextClosed(c);
    }
  }

  private void ready(SelectionKey key) {
    Connection c = (Connection) key.attachment();
    try {
      if (key.isConnectable()) {
        if (c.channel.finishConnect()) {
          key.interestOps(SelectionKey.OP_READ);
          connected(c);
        }
        return;
      }
      if (key.isWritable()) {
        c.channel.write(c.out);
        if (!c.out.hasRemaining()) {
          key.interestOps(SelectionKey.OP_READ);
        }
      }
      if (key.isReadable()) {
        readBuffer.clear();
        int n = c.channel.read(readBuffer);
        if (n < 0) {
          if (!c.busy) { // an idle connection the server closed
            drop(c);
            return;
          }
          c.parser.endOfStream();
          answered(c);
          return;
        }
        if (!c.busy) {
          throw new IOException("the server sent " + n + " bytes nobody asked for");
        }
        readBuffer.flip();
        c.parser.feed(readBuffer);
        if (c.parser.done()) {
          answered(c);
        }
      }
    } catch (IOException e) {
      fail(c, LoadLoop.kind(e), LoadLoop.message(e), System.nanoTime());
    }
  }

  private void answered(Connection c) {
    long t = System.nanoTime();
    if (open ? c.counted : step.measured(t)) {
      recorder.answer(c.parser.status(), t - c.sentAt, t, c.parser);
    }
    c.busy = false;
    if (!c.parser.keepAlive()) {
      close(c);
      if (open) {
        connections.remove(c);
        if (!backlog.isEmpty()) {
          Connection fresh = new Connection();
          fresh.waiting = backlog.pollFirst();
          connections.add(fresh);
          connect(fresh);
        }
      } else if (t < step.end()) {
        connect(c);
      }
      return;
    }
    if (open) {
      nextOpen(c);
    } else {
      nextClosed(c);
    }
  }

  private void nextClosed(Connection c) {
    long now = System.nanoTime();
    if (now >= step.end()) {
      close(c);
      return;
    }
    ByteBuffer request = requests[c.next];
    if (++c.next == requests.length) {
      c.next = 0;
    }
    write(c, request, now, false);
  }

  private void nextOpen(Connection c) {
    Long k = backlog.pollFirst();
    if (k != null) {
      send(c, k);
    } else {
      idle.addLast(c);
    }
  }

  /** Open loop: sends request {@code k}, its latency counted from when it fell due. */
  private void send(Connection c, long k) {
    long due = step.due(k);
    write(c, requests[(int) (k % requests.length)], due, step.measured(due));
  }

  private void write(Connection c, ByteBuffer request, long sentAt, boolean counted) {
    c.out = request.duplicate();
    c.parser.start(usage);
    c.sentAt = sentAt;
    c.counted = counted;
    c.busy = true;
    try {
      c.channel.write(c.out);
      if (c.out.hasRemaining()) {
        c.key.interestOps(SelectionKey.OP_READ | SelectionKey.OP_WRITE);
      }
    } catch (IOException e) {
      fail(c, LoadLoop.kind(e), LoadLoop.message(e), System.nanoTime());
    }
  }

  /** A request (or connect) failed: counted, the connection closed and, unless done, reopened. */
  private void fail(Connection c, String kind, String message, long at) {
    if (failureCounts(c, at)) {
      recorder.failure(kind, message, at);
    }
    boolean refused = !c.connected;
    close(c);
    c.busy = false;
    idle.remove(c);
    if (open) {
      c.waiting = -1;
      // a request waiting for a connection gets one; the failed one is not sent again
      if (!backlog.isEmpty()) {
        c.waiting = backlog.pollFirst();
        c.reconnectAt = at + RECONNECT_PAUSE_NANOS;
      } else {
        connections.remove(c);
      }
    } else if (at < step.end()) {
      if (refused) {
        c.reconnectAt = at + RECONNECT_PAUSE_NANOS; // do not hammer a server that refuses
      } else {
        connect(c);
      }
    }
  }

  /**
   * Whether a failure on {@code c} at {@code at} is one of the step's: in a closed loop, a request
   * or connect that failed within the measured time; in an open loop, a request that fell due
   * within it (sent, or waiting for this connection).
   */
  private boolean failureCounts(Connection c, long at) {
    if (!open) {
      return (c.busy || !c.connected) && step.measured(at);
    }
    if (c.busy) {
      return c.counted;
    }
    return c.waiting >= 0 && step.measured(step.due(c.waiting));
  }

  /** An idle connection the server closed: open loop forgets it, closed loop reopens it. */
  private void drop(Connection c) {
    close(c);
    idle.remove(c);
    if (open) {
      connections.remove(c);
    } else if (System.nanoTime() < step.end()) {
      connect(c);
    }
  }

  private static void close(Connection c) {
    if (c.channel != null) {
      try {
        c.channel.close();
      } catch (IOException e) {
        // closing a broken connection: nothing left to do
      }
      c.channel = null;
      c.key = null;
    }
  }
}
