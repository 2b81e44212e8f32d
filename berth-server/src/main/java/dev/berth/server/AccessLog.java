package dev.berth.server;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * One log event per request: request id, method, path, model, version, status and latency. The
 * fields travel as a map in the record's parameters, so a structured formatter writes them as JSON
 * keys and a text formatter as {@code key=value}.
 */
final class AccessLog {
  static final String LOGGER = "berth.access";
  private static final Logger LOG = Logger.getLogger(LOGGER);

  private AccessLog() {}

  static void log(
      String requestId,
      String method,
      String path,
      String model,
      String version,
      int status,
      long nanos) {
    if (!LOG.isLoggable(Level.INFO)) {
      return;
    }
    Map<String, Object> fields = new LinkedHashMap<>();
    fields.put("request_id", requestId);
    fields.put("method", method);
    fields.put("path", path);
    if (model != null) {
      fields.put("model", model);
    }
    if (version != null) {
      fields.put("version", version);
    }
    fields.put("status", status);
    fields.put("latency_ms", Math.round(nanos / 1e4) / 100.0);
    LogRecord record = new LogRecord(Level.INFO, "request");
    record.setLoggerName(LOGGER);
    record.setParameters(new Object[] {fields});
    LOG.log(record);
  }
}
