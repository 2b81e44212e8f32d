package dev.berth.cli;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import java.io.IOException;
import java.io.PrintStream;
import java.io.StringWriter;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.Locale;
import java.util.Map;
import java.util.logging.ConsoleHandler;
import java.util.logging.Formatter;
import java.util.logging.Handler;
import java.util.logging.Level;
import java.util.logging.LogManager;
import java.util.logging.LogRecord;
import java.util.logging.Logger;
import java.util.logging.StreamHandler;

/**
 * Routes every log record (Berth's and its libraries') to one stream, as one JSON object per line
 * or as readable text. Structured fields travel as a {@code Map} in a record's first parameter.
 */
final class LogSetup {
  private static final JsonFactory JSON = new JsonFactory();
  private static final DateTimeFormatter TIME =
      DateTimeFormatter.ofPattern("HH:mm:ss.SSS").withZone(ZoneId.systemDefault());

  enum Format {
    AUTO,
    JSON,
    TEXT
  }

  // JUL holds loggers weakly: keep the ones whose level is set here.
  private static final Logger[] QUIETED = {
    Logger.getLogger("io.helidon"), Logger.getLogger("ai.djl")
  };
  // DJL probes for CUDA on every start and warns on machines without a GPU; Berth's ONNX engine
  // chooses its execution provider from model.yaml, so that probe is not news to the user.
  private static final Logger CUDA_PROBE = Logger.getLogger("ai.djl.util.cuda");
  // The audit log (management calls, refused credentials) is kept at INFO whatever --log-level.
  private static final Logger AUDIT = Logger.getLogger("berth.audit");

  private LogSetup() {}

  /** Resolves {@code auto}: text on a terminal, JSON otherwise. */
  static Format resolve(Format format) {
    if (format != Format.AUTO) {
      return format;
    }
    return isTerminal() ? Format.TEXT : Format.JSON;
  }

  /**
   * Whether standard output is a terminal. On JDK 22+ {@code System.console()} is never null, so
   * {@code Console.isTerminal()} is asked where it exists.
   */
  static boolean isTerminal() {
    java.io.Console console = System.console();
    if (console == null) {
      return false;
    }
    try {
      return (Boolean) java.io.Console.class.getMethod("isTerminal").invoke(console);
    } catch (ReflectiveOperationException e) {
      return true; // JDK 21: a console exists only on a terminal
    }
  }

  static void configure(Format format, Level level, PrintStream out) {
    LogManager.getLogManager().reset();
    Logger root = Logger.getLogger("");
    root.setLevel(level);
    Handler handler =
        new StreamHandler(out, format == Format.JSON ? new JsonFormatter() : new TextFormatter()) {
          @Override
          public synchronized void publish(LogRecord record) {
            super.publish(record);
            flush();
          }
        };
    handler.setLevel(Level.ALL); // the loggers filter: the root at `level`, the audit log at INFO
    root.addHandler(handler);
    AUDIT.setLevel(level.intValue() < Level.INFO.intValue() ? level : Level.INFO);
    if (LogManager.getLogManager() instanceof BerthLogManager manager) {
      manager.keepHandlers();
    }
    // Quieter libraries: their INFO is not news to a Berth user.
    if (level.intValue() >= Level.INFO.intValue()) {
      for (Logger logger : QUIETED) {
        logger.setLevel(Level.WARNING);
      }
      CUDA_PROBE.setLevel(Level.SEVERE);
    }
  }

  static Level parseLevel(String level) {
    return switch (level.toLowerCase(Locale.ROOT)) {
      case "debug" -> Level.FINE;
      case "info" -> Level.INFO;
      case "warn", "warning" -> Level.WARNING;
      case "error" -> Level.SEVERE;
      default -> throw new IllegalArgumentException(level);
    };
  }

  private static String level(Level level) {
    if (level.intValue() >= Level.SEVERE.intValue()) {
      return "error";
    }
    if (level.intValue() >= Level.WARNING.intValue()) {
      return "warn";
    }
    if (level.intValue() >= Level.INFO.intValue()) {
      return "info";
    }
    return "debug";
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Object> fields(LogRecord record) {
    Object[] params = record.getParameters();
    if (params != null && params.length == 1 && params[0] instanceof Map<?, ?> m) {
      return (Map<String, Object>) m;
    }
    return Map.of();
  }

  private static String message(LogRecord record) {
    Object[] params = record.getParameters();
    if (params != null && params.length == 1 && params[0] instanceof Map) {
      return record.getMessage();
    }
    return new ConsoleHandler().getFormatter().formatMessage(record);
  }

  /** One JSON object per line: time, level, logger, message, fields, error. */
  static final class JsonFormatter extends Formatter {
    @Override
    public String format(LogRecord record) {
      StringWriter out = new StringWriter(256);
      try (JsonGenerator g = JSON.createGenerator(out)) {
        g.writeStartObject();
        g.writeStringField("time", Instant.ofEpochMilli(record.getMillis()).toString());
        g.writeStringField("level", level(record.getLevel()));
        g.writeStringField("logger", record.getLoggerName());
        g.writeStringField("message", message(record));
        for (Map.Entry<String, Object> f : fields(record).entrySet()) {
          g.writeFieldName(f.getKey());
          Object v = f.getValue();
          if (v instanceof Integer i) {
            g.writeNumber(i);
          } else if (v instanceof Long l) {
            g.writeNumber(l);
          } else if (v instanceof Double d) {
            g.writeNumber(d);
          } else if (v instanceof Boolean b) {
            g.writeBoolean(b);
          } else if (v instanceof Iterable<?> list) {
            g.writeStartArray();
            for (Object o : list) {
              g.writeString(String.valueOf(o));
            }
            g.writeEndArray();
          } else {
            g.writeString(String.valueOf(v));
          }
        }
        if (record.getThrown() != null) {
          g.writeStringField("error", record.getThrown().toString());
          StringWriter trace = new StringWriter();
          record.getThrown().printStackTrace(new java.io.PrintWriter(trace));
          g.writeStringField("stack", trace.toString());
        }
        g.writeEndObject();
      } catch (IOException e) {
        return "{\"level\":\"error\",\"message\":\"log formatting failed\"}\n";
      }
      return out.append('\n').toString();
    }
  }

  /** Readable lines: time, level, message, then key=value fields. */
  static final class TextFormatter extends Formatter {
    @Override
    public String format(LogRecord record) {
      StringBuilder b = new StringBuilder(128);
      b.append(TIME.format(Instant.ofEpochMilli(record.getMillis())))
          .append(' ')
          .append(String.format("%-5s", level(record.getLevel())))
          .append(' ')
          .append(message(record));
      fields(record).forEach((k, v) -> b.append(' ').append(k).append('=').append(v));
      b.append('\n');
      if (record.getThrown() != null) {
        StringWriter trace = new StringWriter();
        record.getThrown().printStackTrace(new java.io.PrintWriter(trace));
        b.append(trace);
      }
      return b.toString();
    }
  }
}
