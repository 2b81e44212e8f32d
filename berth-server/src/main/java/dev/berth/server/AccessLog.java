package dev.berth.server;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * One log event per call, REST or gRPC: request id, method, path, model, version, status and
 * latency, and with tracing on the ids of its trace and of its server span. The fields travel as a
 * map in the record's parameters, so a structured formatter writes them as JSON keys and a text
 * formatter as {@code key=value}.
 */
final class AccessLog {
  static final String LOGGER = "berth.access";
  private static final Logger LOG = Logger.getLogger(LOGGER);

  private AccessLog() {}

  /**
   * @param result an HTTP status, or for gRPC the status code's name (written as {@code
   *     grpc_status}, so {@code status} is always a number)
   */
  static void log(Call call, String result, long nanos) {
    if (!LOG.isLoggable(Level.INFO)) {
      return;
    }
    Map<String, Object> fields = new LinkedHashMap<>();
    fields.put("request_id", call.id);
    fields.put("method", call.method);
    fields.put("path", call.path);
    if (call.model != null) {
      fields.put("model", call.model);
    }
    if (call.version != null) {
      fields.put("version", call.version);
    }
    if (call.grpc) {
      fields.put("protocol", "grpc");
      fields.put("grpc_status", result);
    } else {
      fields.put("status", Integer.parseInt(result));
    }
    fields.put("latency_ms", Math.round(nanos / 1e4) / 100.0);
    if (call.span != null) {
      io.opentelemetry.api.trace.SpanContext trace = call.span.spanContext();
      if (trace.isValid()) {
        fields.put("trace_id", trace.getTraceId());
        fields.put("span_id", trace.getSpanId());
      }
    }
    LogRecord record = new LogRecord(Level.INFO, "request");
    record.setLoggerName(LOGGER);
    record.setParameters(new Object[] {fields});
    LOG.log(record);
  }
}
