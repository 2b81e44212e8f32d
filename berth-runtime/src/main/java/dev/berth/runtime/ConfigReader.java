package dev.berth.runtime;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.berth.api.ConfigException;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Typed, validating access to one section of a YAML configuration file. Every error names the file,
 * the dotted key and the fix, and unknown keys are refused (a typo must not pass silently).
 */
public final class ConfigReader {
  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
  private static final Pattern DURATION =
      Pattern.compile("(\\d+(?:\\.\\d+)?)\\s*(us|ms|s|m|h)", Pattern.CASE_INSENSITIVE);

  private final Path file;
  private final String prefix;
  private final Map<String, Object> values;

  ConfigReader(Path file, String prefix, Map<String, Object> values) {
    this.file = file;
    this.prefix = prefix;
    this.values = values == null ? Map.of() : values;
  }

  /**
   * Reads a YAML file whose root must be a mapping.
   *
   * @param shape what the root should look like, for the message when it is not a mapping
   * @return a reader over its root, or null when the file holds no document
   */
  public static ConfigReader readYaml(Path file, String shape) {
    Object parsed;
    try {
      parsed = YAML.readValue(file.toFile(), Object.class);
    } catch (JacksonException e) {
      throw new ConfigException(
          file,
          "",
          "is not valid YAML ("
              + e.getOriginalMessage()
              + " at line "
              + (e.getLocation() == null ? "?" : e.getLocation().getLineNr())
              + ")");
    } catch (IOException e) {
      throw new ConfigException(file, "", "cannot be read: " + e.getMessage());
    }
    if (parsed == null) {
      return null;
    }
    if (!(parsed instanceof Map)) {
      throw new ConfigException(file, "", "must be a YAML mapping " + shape);
    }
    @SuppressWarnings("unchecked")
    Map<String, Object> root = (Map<String, Object>) parsed;
    return root(file, root);
  }

  /**
   * Reads a Berth file of a kind ({@code apiVersion} and {@code kind} first): its root, or a
   * refusal naming the file when it is missing or empty.
   *
   * @param kind the file's kind, for the messages
   * @param what what to give instead of a missing file ({@code a berth.yaml})
   */
  public static ConfigReader readDocument(Path file, String kind, String what) {
    if (!java.nio.file.Files.isRegularFile(file)) {
      throw new ConfigException(
          file, "", "does not exist; give the path of " + what + " (kind: " + kind + ")");
    }
    ConfigReader root =
        readYaml(
            file,
            "starting with 'apiVersion: " + ModelConfig.API_VERSION + "' and 'kind: " + kind + "'");
    if (root == null) {
      throw new ConfigException(
          file, "", "is empty; start it with 'apiVersion: " + ModelConfig.API_VERSION + "'");
    }
    return root;
  }

  /** A reader over a parsed document's root. */
  public static ConfigReader root(Path file, Map<String, Object> values) {
    return new ConfigReader(file, "", values);
  }

  public Path file() {
    return file;
  }

  /** Whether the key holds a section of keys (a mapping) rather than a single value. */
  public boolean isSection(String key) {
    return values.get(key) instanceof Map;
  }

  public boolean has(String key) {
    return values.containsKey(key) && values.get(key) != null;
  }

  /**
   * Checks a file's {@code apiVersion} and {@code kind}.
   *
   * @param what what a file of that kind is, for the message ({@code a service file})
   * @throws ConfigException naming the key and the fix
   */
  public void requireHeader(String apiVersion, String kind, String what) {
    String version = string("apiVersion", null);
    if (!apiVersion.equals(version)) {
      throw error(
          "apiVersion",
          (version == null ? "is missing" : "'" + version + "' is not supported")
              + "; use 'apiVersion: "
              + apiVersion
              + "'");
    }
    String found = string("kind", null);
    if (!kind.equals(found)) {
      throw error(
          "kind",
          (found == null ? "is missing" : "'" + found + "' is not " + what)
              + "; add 'kind: "
              + kind
              + "'");
    }
  }

  /** The dotted name of a key in this section, for messages. */
  public String keyName(String key) {
    return prefix.isEmpty() ? key : prefix + "." + key;
  }

  public ConfigException error(String key, String problemAndFix) {
    return new ConfigException(file, key == null ? prefix : keyName(key), problemAndFix);
  }

  /** Refuses keys this section does not define. */
  public void allowOnly(Set<String> known) {
    for (String key : values.keySet()) {
      if (!known.contains(key)) {
        throw error(
            key,
            "unknown key; this section takes "
                + String.join(", ", new TreeSet<>(known))
                + " (keys are lower-kebab-case)");
      }
    }
  }

  public String string(String key, String defaultValue) {
    Object value = values.get(key);
    if (value == null) {
      return defaultValue;
    }
    if (value instanceof Map || value instanceof List) {
      throw error(key, "expected a single value, found " + describe(value));
    }
    return value.toString();
  }

  public String requiredString(String key, String hint) {
    String value = string(key, null);
    if (value == null || value.isBlank()) {
      throw error(key, "is missing; " + hint);
    }
    return value;
  }

  public int integer(String key, int defaultValue, int min, int max) {
    Object value = values.get(key);
    if (value == null) {
      return defaultValue;
    }
    long parsed;
    if (value instanceof Number n && n.doubleValue() == Math.rint(n.doubleValue())) {
      parsed = n.longValue();
    } else {
      try {
        parsed = Long.parseLong(value.toString().trim());
      } catch (NumberFormatException e) {
        throw error(key, "expected a whole number, found '" + value + "'");
      }
    }
    if (parsed < min || parsed > max) {
      throw error(key, "must be between " + min + " and " + max + ", found " + parsed);
    }
    return (int) parsed;
  }

  /** A number, or {@code defaultValue} when the key is absent. */
  public double number(String key, double defaultValue) {
    Object value = values.get(key);
    if (value == null) {
      return defaultValue;
    }
    if (value instanceof Number n) {
      return n.doubleValue();
    }
    try {
      return Double.parseDouble(value.toString().trim());
    } catch (NumberFormatException e) {
      throw error(key, "expected a number, found '" + value + "'");
    }
  }

  public boolean bool(String key, boolean defaultValue) {
    Object value = values.get(key);
    if (value == null) {
      return defaultValue;
    }
    if (value instanceof Boolean b) {
      return b;
    }
    return switch (value.toString().toLowerCase(Locale.ROOT)) {
      case "true", "on", "yes" -> true;
      case "false", "off", "no" -> false;
      default -> throw error(key, "expected true or false, found '" + value + "'");
    };
  }

  /** A duration written with its unit: {@code 500us}, {@code 2ms}, {@code 30s}, {@code 1m}. */
  public Duration duration(String key, Duration defaultValue) {
    Object value = values.get(key);
    if (value == null) {
      return defaultValue;
    }
    return parseDuration(value.toString())
        .orElseThrow(
            () ->
                error(
                    key,
                    "expected a duration with its unit (e.g. 500us, 2ms, 30s, 1m), found '"
                        + value
                        + "'"));
  }

  /** Parses {@code 500us}, {@code 2ms}, {@code 30s}, {@code 1m}, {@code 1h}. */
  public static java.util.Optional<Duration> parseDuration(String text) {
    Matcher m = DURATION.matcher(text.trim());
    if (!m.matches()) {
      return java.util.Optional.empty();
    }
    double amount = Double.parseDouble(m.group(1));
    double nanosPerUnit =
        switch (m.group(2).toLowerCase(Locale.ROOT)) {
          case "us" -> 1e3;
          case "ms" -> 1e6;
          case "s" -> 1e9;
          case "m" -> 60e9;
          default -> 3600e9;
        };
    return java.util.Optional.of(Duration.ofNanos(Math.round(amount * nanosPerUnit)));
  }

  /** A nested section; an absent one reads as empty. */
  @SuppressWarnings("unchecked")
  public ConfigReader section(String key) {
    Object value = values.get(key);
    if (value == null) {
      return new ConfigReader(file, keyName(key), Map.of());
    }
    if (!(value instanceof Map)) {
      throw error(key, "expected a section of keys, found " + describe(value));
    }
    return new ConfigReader(file, keyName(key), (Map<String, Object>) value);
  }

  /** A list of sections, e.g. tensor declarations. */
  @SuppressWarnings("unchecked")
  public List<ConfigReader> sections(String key) {
    Object value = values.get(key);
    if (value == null) {
      return List.of();
    }
    if (!(value instanceof List<?> list)) {
      throw error(key, "expected a list, found " + describe(value));
    }
    List<ConfigReader> out = new ArrayList<>();
    for (int i = 0; i < list.size(); i++) {
      if (!(list.get(i) instanceof Map)) {
        throw error(
            key + "[" + i + "]", "expected a section of keys, found " + describe(list.get(i)));
      }
      out.add(
          new ConfigReader(file, keyName(key) + "[" + i + "]", (Map<String, Object>) list.get(i)));
    }
    return out;
  }

  /** A list of plain values as strings, empty when the key is absent. */
  public List<String> strings(String key) {
    if (!has(key)) {
      return List.of();
    }
    Object value = values.get(key);
    if (!(value instanceof List<?> list)) {
      throw error(key, "expected a list such as [a, b]");
    }
    List<String> out = new ArrayList<>();
    for (Object o : list) {
      if (o == null || o instanceof Map || o instanceof List) {
        throw error(key, "expected a list of plain values, found '" + o + "'");
      }
      out.add(o.toString());
    }
    return out;
  }

  /** A list of whole numbers. */
  public long[] longs(String key) {
    Object value = values.get(key);
    if (!(value instanceof List<?> list)) {
      throw error(
          key, "expected a list of whole numbers such as [-1, 384], found " + describe(value));
    }
    long[] out = new long[list.size()];
    for (int i = 0; i < out.length; i++) {
      if (!(list.get(i) instanceof Number n) || n.doubleValue() != Math.rint(n.doubleValue())) {
        throw error(key, "expected whole numbers (-1 for any size), found '" + list.get(i) + "'");
      }
      out[i] = n.longValue();
      if (out[i] < -1) {
        throw error(key, "dimensions are -1 (any size) or >= 0, found " + out[i]);
      }
    }
    return out;
  }

  /** The raw values of this section, for engines that read their own options. */
  public Map<String, Object> values() {
    return new LinkedHashMap<>(values);
  }

  private static String describe(Object value) {
    if (value == null) {
      return "nothing";
    }
    if (value instanceof Map) {
      return "a section";
    }
    if (value instanceof List) {
      return "a list";
    }
    return "'" + value + "'";
  }
}
