package dev.berth.server;

import io.helidon.common.buffers.BufferData;
import io.helidon.common.buffers.DataReader;
import io.helidon.common.buffers.DataWriter;
import io.helidon.common.concurrency.limits.Limit;
import io.helidon.common.socket.HelidonSocket;
import io.helidon.common.socket.PeerInfo;
import io.helidon.webserver.ConnectionContext;
import io.helidon.webserver.ListenerContext;
import io.helidon.webserver.ProxyProtocolData;
import io.helidon.webserver.Router;
import io.helidon.webserver.http1.Http1Config;
import io.helidon.webserver.http1.Http1ConnectionSelector;
import io.helidon.webserver.spi.ServerConnection;
import io.helidon.webserver.spi.ServerConnectionSelector;
import java.time.Duration;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Supplier;

/**
 * Tells an HTTP/1.1 handler that its client closed the connection while the handler waited for an
 * answer, so that the request it queued is cancelled and its slot freed at once, not when the
 * answer fails to send.
 *
 * <p>HTTP/1.1 serves one request at a time, on its connection's thread, which reads nothing while
 * its handler waits. A handler that has waited {@link #WATCH_AFTER} starts the connection's next
 * read early, on a virtual thread of its own: the end of the stream there means the client has gone
 * (as nginx, which answers such requests 499). Bytes that arrive instead (a pipelined request) are
 * kept, and the connection's next read takes them, so nothing is lost or read twice. Only one read
 * is ever under way on a connection. A client that half-closes its side after its request counts as
 * gone.
 */
final class ClientConnections {
  /**
   * How long a handler waits before it watches its connection; quicker answers pay nothing. A watch
   * costs a virtual thread and a poller registration, and the next request then arrives through one
   * more hand-off: at 2 ms every lone MiniLM request (about 3 ms) paid it, which cost it 0.3 ms
   * (bench/serving's c=1). At 20 ms a client that leaves is still noticed, and its request taken
   * out of the queue, well within the blink of an eye.
   */
  static final Duration WATCH_AFTER = Duration.ofMillis(20);

  private static final ThreadLocal<ReadAhead> CURRENT = new ThreadLocal<>();

  private ClientConnections() {}

  /** An HTTP/1.1 connection selector whose connections let their handlers see the client leave. */
  static ServerConnectionSelector http1(Http1Config config) {
    return new Watching(Http1ConnectionSelector.builder().config(config).build());
  }

  /**
   * The future's value, or its failure as a {@link CompletionException}, as {@code join()}. When
   * the client of the current HTTP/1.1 connection goes away first, the future is cancelled and a
   * {@link ClientGoneException} thrown.
   */
  static <T> T await(CompletableFuture<T> future) {
    ReadAhead connection = CURRENT.get();
    if (connection == null || future.isDone()) {
      return future.join();
    }
    try {
      return future.get(WATCH_AFTER.toNanos(), TimeUnit.NANOSECONDS);
    } catch (TimeoutException e) {
      // still waiting: watch the connection
    } catch (ExecutionException e) {
      throw new CompletionException(e.getCause());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return future.join();
    } catch (java.util.concurrent.CancellationException e) {
      throw new CompletionException(e);
    }
    CompletableFuture<byte[]> ahead = connection.readAhead();
    CompletableFuture<Void> first = new CompletableFuture<>();
    future.whenComplete((v, e) -> first.complete(null));
    ahead.whenComplete((v, e) -> first.complete(null));
    first.join();
    if (!future.isDone() && (ahead.isCompletedExceptionally() || ahead.join() == null)) {
      future.cancel(true);
      throw new ClientGoneException();
    }
    // the client sent more (a pipelined request): it is still there
    return future.join();
  }

  /** The client closed its connection before its answer was ready; there is no one to answer. */
  static final class ClientGoneException extends RuntimeException {
    ClientGoneException() {
      super("the client closed its connection before the answer was ready", null, false, false);
    }
  }

  /**
   * The bytes of one connection, read on its own thread, or once ahead of it while its handler
   * waits. Only the connection's thread calls in.
   */
  private static final class ReadAhead implements Supplier<byte[]> {
    private final DataReader source;
    private final HelidonSocket socket;
    private CompletableFuture<byte[]> ahead;

    ReadAhead(DataReader source, HelidonSocket socket) {
      this.source = source;
      this.socket = socket;
    }

    /** The next bytes, or null at the end of the stream. */
    @Override
    public byte[] get() {
      CompletableFuture<byte[]> pending = ahead;
      if (pending == null) {
        return read();
      }
      ahead = null;
      try {
        return pending.get();
      } catch (InterruptedException e) {
        // the connection is being closed: closing the socket ends the read ahead at once
        socket.close();
        Thread.currentThread().interrupt();
        return pending.handle((v, t) -> v).join();
      } catch (ExecutionException e) {
        throw e.getCause() instanceof RuntimeException r
            ? r
            : new CompletionException(e.getCause());
      }
    }

    /** Starts the next read on a virtual thread, unless one is under way. */
    CompletableFuture<byte[]> readAhead() {
      if (ahead == null) {
        CompletableFuture<byte[]> next = new CompletableFuture<>();
        Thread.ofVirtual()
            .name("berth-read-ahead")
            .start(
                () -> {
                  try {
                    next.complete(read());
                  } catch (Throwable t) {
                    next.completeExceptionally(t);
                  }
                });
        ahead = next;
      }
      return ahead;
    }

    private byte[] read() {
      try {
        if (source.available() == 0) {
          source.pullData();
        }
        return source.readBytes(source.available());
      } catch (DataReader.InsufficientDataAvailableException e) {
        return null;
      }
    }
  }

  private record Watching(ServerConnectionSelector delegate) implements ServerConnectionSelector {
    @Override
    public int bytesToIdentifyConnection() {
      return delegate.bytesToIdentifyConnection();
    }

    @Override
    public Support supports(BufferData data) {
      return delegate.supports(data);
    }

    @Override
    public Set<String> supportedApplicationProtocols() {
      return delegate.supportedApplicationProtocols();
    }

    @Override
    public ServerConnection connection(ConnectionContext ctx) {
      ReadAhead reads = new ReadAhead(ctx.dataReader(), ctx.serverSocket());
      return new Known(delegate.connection(new Context(ctx, DataReader.create(reads))), reads);
    }
  }

  /** A connection that makes its reads known to its thread while it serves. */
  private record Known(ServerConnection delegate, ReadAhead reads) implements ServerConnection {
    @Override
    public void handle(Limit limit) throws InterruptedException {
      CURRENT.set(reads);
      try {
        delegate.handle(limit);
      } finally {
        CURRENT.remove();
      }
    }

    @Override
    public Duration idleTime() {
      return delegate.idleTime();
    }

    @Override
    public void close(boolean interrupt) {
      delegate.close(interrupt);
    }
  }

  /** The web server's connection context, reading through a {@link ReadAhead}. */
  private record Context(ConnectionContext delegate, DataReader reader)
      implements ConnectionContext {
    @Override
    public DataReader dataReader() {
      return reader;
    }

    @Override
    public DataWriter dataWriter() {
      return delegate.dataWriter();
    }

    @Override
    public ListenerContext listenerContext() {
      return delegate.listenerContext();
    }

    @Override
    public ExecutorService executor() {
      return delegate.executor();
    }

    @Override
    public Router router() {
      return delegate.router();
    }

    @Override
    public Optional<ProxyProtocolData> proxyProtocolData() {
      return delegate.proxyProtocolData();
    }

    @Override
    public HelidonSocket serverSocket() {
      return delegate.serverSocket();
    }

    @Override
    public PeerInfo remotePeer() {
      return delegate.remotePeer();
    }

    @Override
    public PeerInfo localPeer() {
      return delegate.localPeer();
    }

    @Override
    public boolean isSecure() {
      return delegate.isSecure();
    }

    @Override
    public String socketId() {
      return delegate.socketId();
    }

    @Override
    public String childSocketId() {
      return delegate.childSocketId();
    }
  }
}
