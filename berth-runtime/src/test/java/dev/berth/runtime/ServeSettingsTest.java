package dev.berth.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

class ServeSettingsTest {
  @Test
  void defaultsParseAsTheirTypes() {
    ServeSettings none = ServeSettings.none();
    assertEquals(8080, none.integer(ServeSettings.PORT));
    assertEquals(32L << 20, none.size(ServeSettings.MAX_BODY_SIZE));
    assertEquals(Duration.ofMinutes(5), none.duration(ServeSettings.MAX_REQUEST_TIMEOUT));
    assertTrue(none.flag(ServeSettings.STRICT_READINESS));
    assertFalse(none.flag(ServeSettings.MANAGEMENT));
    assertEquals(null, none.duration(ServeSettings.POLL_REPOSITORY));
    assertEquals(List.of(), none.paths(ServeSettings.TRUST));
    for (ServeSettings.Setting s : ServeSettings.ALL) {
      if (s.defaultValue() != null) {
        assertEquals(s.defaultValue(), s.check(s.defaultValue()), s.name());
      }
      assertTrue(s.environmentVariable().matches("BERTH_[A-Z0-9_]+"), s.environmentVariable());
    }
  }

  @Test
  void optionsWinOverTheEnvironmentWhichWinsOverTheFile() {
    ServeSettings file =
        ServeSettings.of(Map.of(ServeSettings.PORT, "9000", ServeSettings.LOG_LEVEL, "warn"));
    ServeSettings environment =
        ServeSettings.fromEnvironment(
            Map.of("BERTH_PORT", "9100", "BERTH_MAX_BODY_SIZE", "1MiB", "BERTH_HOME", "/x"));
    ServeSettings options = ServeSettings.of(Map.of(ServeSettings.PORT, "9200"));
    ServeSettings merged = options.over(environment.over(file));
    assertEquals(9200, merged.integer(ServeSettings.PORT));
    assertEquals(1L << 20, merged.size(ServeSettings.MAX_BODY_SIZE));
    assertEquals("warn", merged.text(ServeSettings.LOG_LEVEL));
    assertEquals("16KiB", merged.text(ServeSettings.MAX_HEADER_SIZE)); // the default
  }

  @Test
  void badValuesNameWhatIsExpected() {
    IllegalArgumentException size =
        assertThrows(
            IllegalArgumentException.class,
            () -> ServeSettings.of(Map.of(ServeSettings.MAX_BODY_SIZE, "lots")));
    assertTrue(size.getMessage().contains("32MiB"), size.getMessage());
    IllegalArgumentException variable =
        assertThrows(
            IllegalArgumentException.class,
            () -> ServeSettings.fromEnvironment(Map.of("BERTH_GRPC_PORT", "70000")));
    assertTrue(variable.getMessage().startsWith("BERTH_GRPC_PORT "), variable.getMessage());
    assertThrows(
        IllegalArgumentException.class,
        () -> ServeSettings.of(Map.of(ServeSettings.LOG_FORMAT, "xml")));
    assertThrows(
        IllegalArgumentException.class,
        () -> ServeSettings.of(Map.of(ServeSettings.DRAIN_TIMEOUT, "0s")));
    assertThrows(
        IllegalArgumentException.class,
        () -> ServeSettings.of(Map.of(ServeSettings.TRACING_SAMPLE_RATIO, "1.5")));
    assertEquals(
        "0.25",
        ServeSettings.of(Map.of(ServeSettings.TRACING_SAMPLE_RATIO, "0.25"))
            .text(ServeSettings.TRACING_SAMPLE_RATIO));
    assertEquals(
        "http/protobuf",
        ServeSettings.fromEnvironment(Map.of("BERTH_TRACING_PROTOCOL", "HTTP/Protobuf"))
            .text(ServeSettings.TRACING_PROTOCOL));
  }

  @Test
  void theCommandLineGivesBackTheValuesButNoSecret() {
    Map<ServeSettings.Setting, String> values = new LinkedHashMap<>();
    values.put(ServeSettings.PORT, "9000");
    values.put(ServeSettings.STRICT_READINESS, "false");
    values.put(ServeSettings.TRUST, "/k/a.pub,/k/b.pub");
    values.put(ServeSettings.MANAGEMENT_TOKEN, "a-token-of-sixteen-chars");
    ServeSettings settings = ServeSettings.of(values);
    assertEquals(
        List.of("--port=9000", "--strict-readiness=false", "--trust=/k/a.pub", "--trust=/k/b.pub"),
        settings.arguments());
  }

  /** The docs table of berth serve lists every setting: its option, variable and default. */
  @Test
  void theDocsTableAgreesWithTheDefinitions() throws Exception {
    String docs = Files.readString(Path.of("..", "docs", "configuration.md"));
    int section = docs.indexOf("## `berth serve`");
    int table = docs.indexOf("| Option | Environment | Default | Meaning |", section);
    assertTrue(section > 0 && table > 0, "docs/configuration.md has the berth serve table");
    List<String> rows = new ArrayList<>();
    for (String line : docs.substring(table).split("\n")) {
      if (!line.startsWith("|")) {
        break;
      }
      rows.add(line);
    }
    Pattern option = Pattern.compile("^\\| [^|]*`--(?:\\[no-\\])?([a-z0-9-]+)`");
    Map<String, String[]> documented = new LinkedHashMap<>();
    for (String row : rows.subList(2, rows.size())) {
      Matcher m = option.matcher(row);
      if (m.find()) {
        documented.put(m.group(1), row.split(" \\| "));
      }
    }
    List<String> defined = ServeSettings.ALL.stream().map(ServeSettings.Setting::name).toList();
    assertEquals(defined, List.copyOf(documented.keySet()), "options in the docs, in order");
    for (ServeSettings.Setting s : ServeSettings.ALL) {
      String[] cells = documented.get(s.name());
      assertEquals("`" + s.environmentVariable() + "`", cells[1].trim(), s.name());
      String shown = cells[2].trim();
      String expected =
          s.type() == ServeSettings.Type.SWITCH
              ? (Boolean.parseBoolean(s.defaultValue()) ? "on" : "off")
              : s.defaultValue() == null ? null : "`" + s.defaultValue() + "`";
      if (expected == null) {
        assertTrue(
            shown.startsWith("none") || shown.startsWith("off"),
            s.name() + ": no default, but the docs say " + shown);
      } else {
        assertEquals(expected, shown, s.name() + ": default");
      }
    }
  }
}
