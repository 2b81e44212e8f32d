package dev.berth.server;

import dev.berth.api.BerthException;
import dev.berth.runtime.InferenceService;
import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * Berth's gRPC front: {@code inference.GRPCInferenceService} on its own port, over the same {@link
 * InferenceService} as REST. Calls run on the transport's event loop: ModelInfer never blocks (the
 * answer is written when the batch that holds the request completes), and the other calls only read
 * state.
 */
public final class GrpcServer implements AutoCloseable {
  /** Default gRPC port. */
  public static final int DEFAULT_PORT = 8081;

  private final Server server;
  private final String host;

  private GrpcServer(Server server, String host) {
    this.server = server;
    this.host = host;
  }

  /**
   * Starts serving.
   *
   * @param maxMessageBytes largest request message; larger ones get RESOURCE_EXHAUSTED
   */
  public static GrpcServer start(
      InferenceService service, String host, int port, long maxMessageBytes, String version) {
    return start(service, host, port, maxMessageBytes, version, Access.open());
  }

  /**
   * Starts serving, with API keys checked as {@code access} says.
   *
   * @param maxMessageBytes largest request message; larger ones get RESOURCE_EXHAUSTED
   */
  public static GrpcServer start(
      InferenceService service,
      String host,
      int port,
      long maxMessageBytes,
      String version,
      Access access) {
    Server server =
        NettyServerBuilder.forAddress(new InetSocketAddress(host, port))
            .directExecutor()
            .maxInboundMessageSize((int) Math.min(maxMessageBytes, Integer.MAX_VALUE))
            .addService(
                ServerInterceptors.intercept(
                    new GrpcInference(service, version), new GrpcAccess(access)))
            .build();
    try {
      server.start();
    } catch (IOException e) {
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
    return new GrpcServer(server, host);
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
  }

  @Override
  public void close() {
    shutdown(Duration.ofSeconds(30));
  }
}
