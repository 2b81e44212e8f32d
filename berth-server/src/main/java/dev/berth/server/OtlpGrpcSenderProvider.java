package dev.berth.server;

import io.opentelemetry.sdk.common.export.GrpcSender;
import io.opentelemetry.sdk.common.export.GrpcSenderConfig;
import io.opentelemetry.sdk.common.export.GrpcSenderProvider;

/**
 * The OTLP exporter's gRPC transport when {@code grpc} is the tracing protocol: Berth's own sender
 * on the grpc-java the server carries already. OpenTelemetry's senders need OkHttp and Kotlin, or a
 * channel the application builds itself. The exporter finds it through {@link
 * java.util.ServiceLoader} ({@code META-INF/services}), which is why it is public; it is no part of
 * Berth's API.
 */
public final class OtlpGrpcSenderProvider implements GrpcSenderProvider {
  @Override
  public GrpcSender createSender(GrpcSenderConfig config) {
    return new OtlpGrpcSender(config);
  }
}
