package dev.berth.server;

import dev.berth.api.BerthException;
import dev.berth.runtime.InferenceService;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;

/**
 * Berth's gRPC front: {@code inference.GRPCInferenceService} on its own port, over the same {@link
 * InferenceService} as REST. Calls run on virtual threads.
 */
public final class GrpcServer implements AutoCloseable {
  /** Default gRPC port. */
  public static final int DEFAULT_PORT = 8081;

  private final Server server;
  private final ExecutorService executor;
  private final String host;

  private GrpcServer(Server server, ExecutorService executor, String host) {
    this.server = server;
    this.executor = executor;
    this.host = host;
  }

  /**
   * Starts serving.
   *
   * @param maxMessageBytes largest request message; larger ones get RESOURCE_EXHAUSTED
   */
  public static GrpcServer start(
      InferenceService service, String host, int port, long maxMessageBytes, String version) {
    return start(service, host, port, maxMessageBytes, ServerLimits.DEFAULTS, version);
  }

  /**
   * Starts serving with the given limits (tensor sizes, deadline cap, calls per connection,
   * metadata size).
   *
   * @param maxMessageBytes largest request message; larger ones get RESOURCE_EXHAUSTED
   */
  public static GrpcServer start(
      InferenceService service,
      String host,
      int port,
      long maxMessageBytes,
      ServerLimits limits,
      String version) {
    ExecutorService executor = Executors.newVirtualThreadPerTaskExecutor();
    Server server =
        NettyServerBuilder.forAddress(new InetSocketAddress(host, port))
            .directExecutor()
            .maxInboundMessageSize((int) Math.min(maxMessageBytes, Integer.MAX_VALUE))
            .maxConcurrentCallsPerConnection(limits.maxConcurrentCallsPerConnection())
            .maxInboundMetadataSize(limits.maxHeaderBytes())
            .addService(new GrpcInference(service, limits, version))
            .build();
    try {
      server.start();
    } catch (IOException e) {
      executor.shutdown();
      throw new BerthException(
          "cannot listen for gRPC on "
              + host
              + ":"
              + port
              + " ("
              + e.getMessage()
              + "); pick another with --grpc-port",
          e);
    }
    return new GrpcServer(server, executor, host);
  }

  public int port() {
    return server.getPort();
  }

  public String host() {
    return host;
  }

  /** Stops taking calls and waits for running ones (up to the timeout). */
  public void shutdown(Duration timeout) {
    server.shutdown();
    try {
      if (!server.awaitTermination(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        server.shutdownNow();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      server.shutdownNow();
    }
    executor.shutdown();
  }

  @Override
  public void close() {
    shutdown(Duration.ofSeconds(30));
  }
}
