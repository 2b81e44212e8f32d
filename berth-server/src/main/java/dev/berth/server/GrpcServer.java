package dev.berth.server;

import dev.berth.api.BerthException;
import dev.berth.runtime.InferenceService;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.ServerCredentials;
import io.grpc.ServerInterceptors;
import io.grpc.TlsServerCredentials;
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
  public static final int DEFAULT_PORT =
      dev.berth.runtime.ServeSettings.none().integer(dev.berth.runtime.ServeSettings.GRPC_PORT);

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
    return start(
        service, host, port, maxMessageBytes, ServerLimits.DEFAULTS, version, Access.open(), null);
  }

  /** Starts serving, with API keys checked as {@code access} says, in plaintext. */
  public static GrpcServer start(
      InferenceService service,
      String host,
      int port,
      long maxMessageBytes,
      String version,
      Access access) {
    return start(
        service, host, port, maxMessageBytes, ServerLimits.DEFAULTS, version, access, null);
  }

  /** Starts serving over TLS when {@code tls} is given, with inference open. */
  public static GrpcServer start(
      InferenceService service,
      String host,
      int port,
      long maxMessageBytes,
      String version,
      TlsCredentials tls) {
    return start(
        service, host, port, maxMessageBytes, ServerLimits.DEFAULTS, version, Access.open(), tls);
  }

  /** Starts serving in plaintext with the given limits, with inference open. */
  public static GrpcServer start(
      InferenceService service,
      String host,
      int port,
      long maxMessageBytes,
      ServerLimits limits,
      String version) {
    return start(service, host, port, maxMessageBytes, limits, version, Access.open(), null);
  }

  /**
   * Starts serving: with the given limits (tensor sizes, deadline cap, calls per connection,
   * metadata size); API keys checked as {@code access} says; over TLS when {@code tls} is given
   * (client certificates required when it names client CAs), else in plaintext.
   *
   * @param maxMessageBytes largest request message; larger ones get RESOURCE_EXHAUSTED
   */
  public static GrpcServer start(
      InferenceService service,
      String host,
      int port,
      long maxMessageBytes,
      ServerLimits limits,
      String version,
      Access access,
      TlsCredentials tls) {
    return start(service, host, port, maxMessageBytes, limits, version, access, tls, Tracing.off());
  }

  /**
   * Starts serving as {@link #start(InferenceService, String, int, long, ServerLimits, String,
   * Access, TlsCredentials)} does, recording a server span per call, and its steps, as {@code
   * tracing} says (the caller closes it once the server has stopped).
   */
  public static GrpcServer start(
      InferenceService service,
      String host,
      int port,
      long maxMessageBytes,
      ServerLimits limits,
      String version,
      Access access,
      TlsCredentials tls,
      Tracing tracing) {
    CallPolicy policy = new CallPolicy(service, limits, access, tracing);
    GrpcCalls calls = new GrpcCalls(policy, limits.maxHeaderBytes(), tls != null);
    Server server =
        NettyServerBuilder.forAddress(new InetSocketAddress(host, port), credentials(tls))
            .directExecutor()
            .maxInboundMessageSize((int) Math.min(maxMessageBytes, Integer.MAX_VALUE))
            .maxConcurrentCallsPerConnection(limits.maxConcurrentCallsPerConnection())
            .maxInboundMetadataSize(GrpcRequestChecks.codecHeaderCeiling(limits.maxHeaderBytes()))
            .addService(
                ServerInterceptors.intercept(
                    GrpcRequestChecks.checkedParsing(
                        new GrpcInference(policy, version).bindService()),
                    calls))
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
    calls.port(server.getPort());
    return new GrpcServer(server, host);
  }

  private static ServerCredentials credentials(TlsCredentials tls) {
    if (tls == null) {
      return InsecureServerCredentials.create();
    }
    TlsServerCredentials.Builder b =
        TlsServerCredentials.newBuilder().keyManager(tls.keyManagers());
    tls.clientTrustManagers()
        .ifPresent(
            trust -> b.trustManager(trust).clientAuth(TlsServerCredentials.ClientAuth.REQUIRE));
    return b.build();
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
