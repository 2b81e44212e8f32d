package dev.berth.server;

import io.grpc.CallOptions;
import io.grpc.Channel;
import io.grpc.ChannelCredentials;
import io.grpc.ClientInterceptors;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.MethodDescriptor;
import io.grpc.Status;
import io.grpc.TlsChannelCredentials;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.netty.channel.ChannelOption;
import io.grpc.stub.ClientCalls;
import io.grpc.stub.MetadataUtils;
import io.grpc.stub.StreamObserver;
import io.opentelemetry.sdk.common.CompletableResultCode;
import io.opentelemetry.sdk.common.export.GrpcResponse;
import io.opentelemetry.sdk.common.export.GrpcSender;
import io.opentelemetry.sdk.common.export.GrpcSenderConfig;
import io.opentelemetry.sdk.common.export.GrpcStatusCode;
import io.opentelemetry.sdk.common.export.MessageWriter;
import io.opentelemetry.sdk.common.export.RetryPolicy;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.URI;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;

/**
 * OTLP over gRPC on grpc-java: one channel to the collector, the exporter's timeout as each call's
 * deadline, its headers as metadata, gzip when asked for, and its retry policy as grpc-java's own
 * retries on the statuses OTLP calls retryable. Client certificates are not supported (the exporter
 * hands over a finished {@code SSLContext}); {@link Tracing} refuses them for grpc.
 */
final class OtlpGrpcSender implements GrpcSender {
  private static final List<String> RETRYABLE =
      List.of(
          "CANCELLED",
          "DEADLINE_EXCEEDED",
          "RESOURCE_EXHAUSTED",
          "ABORTED",
          "OUT_OF_RANGE",
          "UNAVAILABLE",
          "DATA_LOSS");

  /** Writes the exporter's message as it is: it is the protobuf request already. */
  private static final MethodDescriptor.Marshaller<MessageWriter> REQUEST =
      new MethodDescriptor.Marshaller<>() {
        @Override
        public InputStream stream(MessageWriter message) {
          ByteArrayOutputStream out = new ByteArrayOutputStream(message.getContentLength());
          try {
            message.writeMessage(out);
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
          return new ByteArrayInputStream(out.toByteArray());
        }

        @Override
        public MessageWriter parse(InputStream stream) {
          throw new UnsupportedOperationException("requests are only sent");
        }
      };

  private static final MethodDescriptor.Marshaller<byte[]> RESPONSE =
      new MethodDescriptor.Marshaller<>() {
        @Override
        public InputStream stream(byte[] value) {
          return new ByteArrayInputStream(value);
        }

        @Override
        public byte[] parse(InputStream stream) {
          try {
            return stream.readAllBytes();
          } catch (IOException e) {
            throw new UncheckedIOException(e);
          }
        }
      };

  private record Response(GrpcStatusCode getStatusCode, String getStatusDescription, byte[] body)
      implements GrpcResponse {
    @Override
    public byte[] getResponseMessage() {
      return body == null ? new byte[0] : body;
    }
  }

  private final GrpcSenderConfig config;
  private final ManagedChannel channel;
  private final MethodDescriptor<MessageWriter, byte[]> method;

  OtlpGrpcSender(GrpcSenderConfig config) {
    this.config = config;
    URI endpoint = config.getEndpoint();
    boolean tls = "https".equals(endpoint.getScheme());
    ChannelCredentials credentials = InsecureChannelCredentials.create();
    if (tls) {
      TlsChannelCredentials.Builder b = TlsChannelCredentials.newBuilder();
      if (config.getTrustManager() != null) {
        b.trustManager(config.getTrustManager());
      }
      credentials = b.build();
    }
    int port = endpoint.getPort() >= 0 ? endpoint.getPort() : tls ? 443 : 80;
    String fullMethodName = config.getFullMethodName();
    NettyChannelBuilder b =
        NettyChannelBuilder.forAddress(endpoint.getHost(), port, credentials)
            .withOption(
                ChannelOption.CONNECT_TIMEOUT_MILLIS,
                (int) Math.min(Integer.MAX_VALUE, config.getConnectTimeout().toMillis()))
            .maxInboundMessageSize(
                (int) Math.min(Integer.MAX_VALUE, config.getMaxResponseBodySize()));
    if (config.getExecutorService() != null) {
      b.executor(config.getExecutorService());
    }
    RetryPolicy retry = config.getRetryPolicy();
    if (retry != null) {
      String service = MethodDescriptor.extractFullServiceName(fullMethodName);
      Map<String, Object> policy =
          Map.of(
              "maxAttempts", (double) retry.getMaxAttempts(),
              "initialBackoff", seconds(retry.getInitialBackoff()),
              "maxBackoff", seconds(retry.getMaxBackoff()),
              "backoffMultiplier", retry.getBackoffMultiplier(),
              "retryableStatusCodes", RETRYABLE);
      Map<String, Object> methodConfig =
          Map.of(
              "name",
              List.of(
                  Map.of(
                      "service",
                      service,
                      "method",
                      fullMethodName.substring(service.length() + 1))),
              "retryPolicy",
              policy);
      b.defaultServiceConfig(Map.of("methodConfig", List.of(methodConfig))).enableRetry();
    } else {
      b.disableRetry();
    }
    this.channel = b.build();
    this.method =
        MethodDescriptor.newBuilder(REQUEST, RESPONSE)
            .setType(MethodDescriptor.MethodType.UNARY)
            .setFullMethodName(fullMethodName)
            .build();
  }

  /** A duration as gRPC's service config writes one: decimal seconds, {@code 0.0001s}. */
  static String seconds(Duration d) {
    return java.math.BigDecimal.valueOf(d.getSeconds())
            .add(java.math.BigDecimal.valueOf(d.getNano(), 9))
            .stripTrailingZeros()
            .toPlainString()
        + "s";
  }

  @Override
  public void send(
      MessageWriter message, Consumer<GrpcResponse> onResponse, Consumer<Throwable> onError) {
    Metadata headers = new Metadata();
    Map<String, List<String>> given = config.getHeadersSupplier().get();
    if (given != null) {
      given.forEach(
          (name, values) -> {
            Metadata.Key<String> key = Metadata.Key.of(name, Metadata.ASCII_STRING_MARSHALLER);
            values.forEach(v -> headers.put(key, v));
          });
    }
    Channel target =
        ClientInterceptors.intercept(channel, MetadataUtils.newAttachHeadersInterceptor(headers));
    CallOptions options =
        CallOptions.DEFAULT.withDeadlineAfter(
            Math.min(config.getTimeout().toNanos(), Long.MAX_VALUE / 2), TimeUnit.NANOSECONDS);
    if (config.getCompressor() != null) {
      options = options.withCompression(config.getCompressor().getEncoding());
    }
    ClientCalls.asyncUnaryCall(
        target.newCall(method, options),
        message,
        new StreamObserver<>() {
          private byte[] body;

          @Override
          public void onNext(byte[] value) {
            body = value;
          }

          @Override
          public void onError(Throwable t) {
            Status status = Status.fromThrowable(t);
            if (status.getCode() == Status.Code.UNKNOWN && status.getCause() != null) {
              onError.accept(status.getCause());
              return;
            }
            String description = status.getDescription();
            if (status.getCause() != null) {
              description = (description == null ? "" : description + ": ") + status.getCause();
            }
            onResponse.accept(
                new Response(
                    GrpcStatusCode.fromValue(status.getCode().value()), description, null));
          }

          @Override
          public void onCompleted() {
            onResponse.accept(new Response(GrpcStatusCode.OK, null, body));
          }
        });
  }

  @Override
  public CompletableResultCode shutdown() {
    channel.shutdown();
    try {
      if (!channel.awaitTermination(5, TimeUnit.SECONDS)) {
        channel.shutdownNow();
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      channel.shutdownNow();
    }
    return CompletableResultCode.ofSuccess();
  }
}
