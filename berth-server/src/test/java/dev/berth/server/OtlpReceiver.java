package dev.berth.server;

import com.sun.net.httpserver.HttpServer;
import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import io.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
import io.opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse;
import io.opentelemetry.proto.collector.trace.v1.TraceServiceGrpc;
import io.opentelemetry.proto.common.v1.AnyValue;
import io.opentelemetry.proto.common.v1.KeyValue;
import io.opentelemetry.proto.trace.v1.ResourceSpans;
import io.opentelemetry.proto.trace.v1.ScopeSpans;
import io.opentelemetry.proto.trace.v1.Span;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.function.Predicate;
import java.util.zip.GZIPInputStream;
import org.awaitility.Awaitility;

/**
 * An OTLP trace receiver for the tests (berth-llm's too, through the test jar), on 127.0.0.1 and a
 * free port: {@code POST /v1/traces} (http/protobuf) or {@code
 * opentelemetry.proto.collector.trace.v1.TraceService/Export} (grpc). It decodes what it gets with
 * OpenTelemetry's published protobuf definitions and keeps every span with its resource's {@code
 * service.name}.
 */
public final class OtlpReceiver implements AutoCloseable {
  private static final HexFormat HEX = HexFormat.of();

  /** One span as received. */
  public record Received(String service, Span span) {
    public String name() {
      return span.getName();
    }

    public String traceId() {
      return HEX.formatHex(span.getTraceId().toByteArray());
    }

    public String spanId() {
      return HEX.formatHex(span.getSpanId().toByteArray());
    }

    /** The parent's span id, or "" for a root span. */
    public String parentId() {
      return HEX.formatHex(span.getParentSpanId().toByteArray());
    }

    /** The (trace id, span id) of each link, as {@code TRACE/SPAN}. */
    public List<String> links() {
      return span.getLinksList().stream()
          .map(
              l ->
                  HEX.formatHex(l.getTraceId().toByteArray())
                      + "/"
                      + HEX.formatHex(l.getSpanId().toByteArray()))
          .toList();
    }

    public Optional<AnyValue> attribute(String key) {
      return attribute(span.getAttributesList(), key);
    }

    public String string(String key) {
      return attribute(key).map(AnyValue::getStringValue).orElse(null);
    }

    public long integer(String key) {
      return attribute(key)
          .map(AnyValue::getIntValue)
          .orElseThrow(() -> new AssertionError(name() + " has no attribute " + key));
    }

    static Optional<AnyValue> attribute(List<KeyValue> attributes, String key) {
      return attributes.stream()
          .filter(a -> a.getKey().equals(key))
          .map(KeyValue::getValue)
          .findFirst();
    }
  }

  private final List<Received> spans = new ArrayList<>();
  private final String endpoint;
  private final Runnable stop;

  private OtlpReceiver(String endpoint, Runnable stop) {
    this.endpoint = endpoint;
    this.stop = stop;
  }

  /** A receiver of OTLP http/protobuf. */
  public static OtlpReceiver http() {
    try {
      HttpServer http = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
      OtlpReceiver receiver =
          new OtlpReceiver("http://127.0.0.1:" + http.getAddress().getPort(), () -> http.stop(0));
      http.createContext(
          "/v1/traces",
          exchange -> {
            try (exchange) {
              InputStream body = exchange.getRequestBody();
              if ("gzip".equals(exchange.getRequestHeaders().getFirst("Content-Encoding"))) {
                body = new GZIPInputStream(body);
              }
              boolean ok =
                  exchange.getRequestMethod().equals("POST")
                      && "application/x-protobuf"
                          .equals(exchange.getRequestHeaders().getFirst("Content-Type"));
              if (ok) {
                receiver.add(ExportTraceServiceRequest.parseFrom(body));
              }
              byte[] answer = ExportTraceServiceResponse.getDefaultInstance().toByteArray();
              exchange.getResponseHeaders().add("Content-Type", "application/x-protobuf");
              exchange.sendResponseHeaders(ok ? 200 : 400, answer.length);
              exchange.getResponseBody().write(answer);
            }
          });
      http.start();
      return receiver;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** A receiver of OTLP over gRPC, in plaintext. */
  public static OtlpReceiver grpc() {
    List<OtlpReceiver> self = new ArrayList<>(1);
    Server server =
        NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
            .addService(
                new TraceServiceGrpc.TraceServiceImplBase() {
                  @Override
                  public void export(
                      ExportTraceServiceRequest request,
                      StreamObserver<ExportTraceServiceResponse> out) {
                    self.get(0).add(request);
                    out.onNext(ExportTraceServiceResponse.getDefaultInstance());
                    out.onCompleted();
                  }
                })
            .build();
    try {
      server.start();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    OtlpReceiver receiver =
        new OtlpReceiver("http://127.0.0.1:" + server.getPort(), server::shutdownNow);
    self.add(receiver);
    return receiver;
  }

  /** The address to export to: {@code http://127.0.0.1:PORT}. */
  public String endpoint() {
    return endpoint;
  }

  private synchronized void add(ExportTraceServiceRequest request) {
    for (ResourceSpans r : request.getResourceSpansList()) {
      String service =
          Received.attribute(r.getResource().getAttributesList(), "service.name")
              .map(AnyValue::getStringValue)
              .orElse(null);
      for (ScopeSpans scope : r.getScopeSpansList()) {
        for (Span s : scope.getSpansList()) {
          spans.add(new Received(service, s));
        }
      }
    }
  }

  /** Every span received so far. */
  public synchronized List<Received> spans() {
    return List.copyOf(spans);
  }

  /** The spans received, once {@code done} holds for them (waiting 30 s at most). */
  public List<Received> await(Predicate<List<Received>> done) {
    Awaitility.await().atMost(Duration.ofSeconds(30)).until(() -> done.test(spans()));
    return spans();
  }

  /** The spans of one trace received so far. */
  public List<Received> trace(String traceId) {
    return spans().stream().filter(s -> s.traceId().equals(traceId)).toList();
  }

  @Override
  public void close() {
    stop.run();
  }
}
