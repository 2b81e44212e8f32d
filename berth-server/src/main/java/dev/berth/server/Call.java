package dev.berth.server;

/**
 * One call through the front door, whatever its protocol: its request id, what it acted on, who
 * made it and how it ended. {@link CallPolicy} opens and closes it; the protocol adapters fill in
 * the model and version as they learn them.
 */
final class Call {
  /** The request id: the client's {@code X-Request-Id} (gRPC {@code x-request-id}) or a new one. */
  final String id;

  /** The HTTP method ({@code POST} for every gRPC call). */
  final String method;

  /** The path: {@code /v2/models/m/infer}, or a gRPC method's {@code /service/Method}. */
  final String path;

  /** Whether the call came over gRPC. */
  final boolean grpc;

  /** The caller's address, worked out only when an audit event needs it. */
  final java.util.function.Supplier<String> remote;

  /** {@link System#nanoTime()} when the call began. */
  final long start = System.nanoTime();

  /** The protocol label of an inference call ({@code rest}, {@code grpc}, ...); null otherwise. */
  String protocol;

  String model;
  String version;

  /** Who made the call, once a credential was checked. */
  String caller;

  /** Whether the call is a management call: audited whatever its outcome. */
  boolean audited;

  /** The error message answered, if any. */
  String error;

  /** The call's server span; null when tracing is off. */
  RequestSpan span;

  private boolean finished;

  Call(
      String id,
      String method,
      String path,
      boolean grpc,
      java.util.function.Supplier<String> remote) {
    this.id = id;
    this.method = method;
    this.path = path;
    this.grpc = grpc;
    this.remote = remote;
  }

  /** Sets the model and version the call acts on (either may be null). */
  void target(String model, String version) {
    this.model = model;
    this.version = version;
  }

  /**
   * The trace the runtime reports the call's steps into: its span while that is sampled, else null
   * (tracing off, or this call not sampled), so the runtime does no tracing work for it.
   */
  dev.berth.runtime.RequestTrace trace() {
    RequestSpan s = span;
    return s != null && s.recording() ? s : null;
  }

  /** True the first time only: a call is logged and counted once. */
  synchronized boolean finish() {
    if (finished) {
      return false;
    }
    finished = true;
    return true;
  }
}
