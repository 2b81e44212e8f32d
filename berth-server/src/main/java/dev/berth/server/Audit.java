package dev.berth.server;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.logging.Level;
import java.util.logging.LogRecord;
import java.util.logging.Logger;

/**
 * The audit log (logger {@code berth.audit}): one event for every management call, whatever its
 * outcome, and for every call refused for want of a valid credential or role. Each says who (the
 * API key's name, {@code management-token}, {@code anonymous} or {@code unknown-credential}), from
 * where, what (action and target), and the result; the log line's time says when. It is written at
 * INFO or above whatever the access log's level, so {@code --log-level warn} keeps it (refusals are
 * WARNING).
 */
final class Audit {
  static final String LOGGER = "berth.audit";
  private static final Logger LOG = Logger.getLogger(LOGGER);

  private Audit() {}

  /**
   * @param who the caller's name
   * @param remote the caller's address
   * @param action e.g. {@code POST /v2/repository/models/m/load} or a gRPC method name
   * @param model the model acted on, or null
   * @param result e.g. {@code 200} or {@code UNAUTHENTICATED}
   * @param refused whether the call was refused for its credential
   * @param detail the error message, or null
   */
  static void log(
      String who,
      String remote,
      String action,
      String model,
      String result,
      boolean refused,
      String detail) {
    Map<String, Object> fields = new LinkedHashMap<>();
    fields.put("who", who);
    fields.put("remote", remote);
    fields.put("action", action);
    if (model != null) {
      fields.put("model", model);
    }
    fields.put("result", result);
    if (detail != null) {
      fields.put("detail", detail);
    }
    LogRecord record =
        new LogRecord(refused ? Level.WARNING : Level.INFO, refused ? "access refused" : "audit");
    record.setLoggerName(LOGGER);
    record.setParameters(new Object[] {fields});
    LOG.log(record);
  }
}
