package dev.berth.client.eval;

import dev.berth.api.BerthException;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * CSV with a header row (RFC 4180: quoted fields may hold commas, quotes as {@code ""} and line
 * breaks). One column is the label; a {@code text} column makes text rows, otherwise every other
 * column is a numeric feature.
 */
final class CsvData {
  private CsvData() {}

  static List<Example> read(Path file, String labelColumn) throws IOException {
    try (Reader in = new InputStreamReader(DataSet.open(file), StandardCharsets.UTF_8)) {
      Records records = new Records(in);
      List<String> header = records.next();
      if (header == null) {
        throw new BerthException(file + " is empty; a CSV data set starts with a header row");
      }
      if (!header.isEmpty() && header.get(0).startsWith("\uFEFF")) {
        header.set(0, header.get(0).substring(1));
      }
      header.replaceAll(String::strip);
      int label = header.indexOf(labelColumn);
      if (label < 0) {
        throw new BerthException(
            file
                + " has no column '"
                + labelColumn
                + "' (its header: "
                + String.join(",", header)
                + "); name the label column with --label-column");
      }
      int text = header.indexOf("text");
      List<Example> rows = new ArrayList<>();
      List<String> fields;
      while (true) {
        int line = records.line();
        fields = records.next();
        if (fields == null) {
          break;
        }
        if (fields.size() == 1 && fields.get(0).isBlank()) {
          continue;
        }
        String where = file.getFileName() + " line " + line;
        if (fields.size() != header.size()) {
          throw new BerthException(
              where
                  + " has "
                  + fields.size()
                  + " fields but the header has "
                  + header.size()
                  + " columns");
        }
        String value = fields.get(label).strip();
        if (value.isEmpty()) {
          throw new BerthException(where + " has an empty '" + labelColumn + "'");
        }
        rows.add(new Example(where, value, input(where, header, fields, label, text)));
      }
      return rows;
    }
  }

  private static Example.Input input(
      String where, List<String> header, List<String> fields, int label, int text) {
    if (text >= 0) {
      return new Example.Text(fields.get(text));
    }
    if (header.size() < 2) {
      throw new BerthException(
          where + " has only the label column; add a 'text' column or numeric feature columns");
    }
    float[] features = new float[header.size() - 1];
    int j = 0;
    for (int i = 0; i < header.size(); i++) {
      if (i == label) {
        continue;
      }
      String value = fields.get(i).strip();
      try {
        features[j++] = Float.parseFloat(value);
      } catch (NumberFormatException e) {
        throw new BerthException(
            where
                + ", column '"
                + header.get(i)
                + "': '"
                + value
                + "' is not a number; CSV rows need a 'text' column or numeric feature columns",
            e);
      }
    }
    return new Example.Features(features);
  }

  /** Splits a character stream into CSV records, counting lines. */
  static final class Records {
    private final Reader in;
    private int line = 1;
    private int pushedBack = -2;

    Records(Reader in) {
      this.in = in;
    }

    /** The line the next record starts on (1-based). */
    int line() {
      return line;
    }

    private int read() throws IOException {
      if (pushedBack != -2) {
        int c = pushedBack;
        pushedBack = -2;
        return c;
      }
      return in.read();
    }

    /** The next record's fields, or null at the end. */
    List<String> next() throws IOException {
      int c = read();
      if (c == -1) {
        return null;
      }
      List<String> fields = new ArrayList<>();
      StringBuilder field = new StringBuilder();
      boolean quoted = false;
      int startLine = line;
      while (true) {
        if (quoted) {
          if (c == -1) {
            throw new BerthException(
                "a quoted field that starts on line " + startLine + " is never closed");
          }
          if (c == '"') {
            int d = read();
            if (d == '"') {
              field.append('"');
            } else {
              quoted = false;
              c = d;
              continue;
            }
          } else {
            if (c == '\n') {
              line++;
            }
            field.append((char) c);
          }
        } else if (c == '"' && field.isEmpty()) {
          quoted = true;
        } else if (c == ',') {
          fields.add(field.toString());
          field.setLength(0);
        } else if (c == '\n' || c == -1) {
          if (c == '\n') {
            line++;
          }
          fields.add(field.toString());
          return fields;
        } else if (c == '\r') {
          int d = read();
          if (d != '\n') {
            pushedBack = d;
          }
          line++;
          fields.add(field.toString());
          return fields;
        } else {
          field.append((char) c);
        }
        c = read();
      }
    }
  }
}
