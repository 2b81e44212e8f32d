package dev.berth.image;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * dpkg's package database as text: stanzas of {@code Field: value} lines separated by blank lines,
 * a line starting with a space continuing the field before it ({@code /var/lib/dpkg/status}, and
 * the one-package files of {@code /var/lib/dpkg/status.d/} that distroless images carry).
 */
final class DebianStatus {
  private DebianStatus() {}

  /** The stanzas of a status file, each field's first line only (continuations are skipped). */
  static List<Map<String, String>> parse(byte[] text) {
    List<Map<String, String>> out = new ArrayList<>();
    Map<String, String> stanza = new LinkedHashMap<>();
    for (String line : new String(text, StandardCharsets.UTF_8).split("\n", -1)) {
      String l = line.endsWith("\r") ? line.substring(0, line.length() - 1) : line;
      if (l.isBlank()) {
        if (!stanza.isEmpty()) {
          out.add(stanza);
          stanza = new LinkedHashMap<>();
        }
      } else if (!l.startsWith(" ") && !l.startsWith("\t")) {
        int colon = l.indexOf(':');
        if (colon > 0) {
          stanza.put(l.substring(0, colon).strip(), l.substring(colon + 1).strip());
        }
      }
    }
    if (!stanza.isEmpty()) {
      out.add(stanza);
    }
    return out;
  }
}
