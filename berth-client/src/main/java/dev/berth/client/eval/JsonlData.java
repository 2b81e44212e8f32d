package dev.berth.client.eval;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.api.BerthException;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * One JSON object per line: {@code {"text": "...", "label": ...}} or {@code {"features": [...],
 * "label": ...}}; the label is a class name or index, {@code features} an array of numbers (nested
 * arrays are read row-major).
 */
final class JsonlData {
  private static final ObjectMapper JSON = new ObjectMapper();

  private JsonlData() {}

  static List<Example> read(Path file, String labelField) throws IOException {
    List<Example> rows = new ArrayList<>();
    try (BufferedReader in =
        new BufferedReader(new InputStreamReader(DataSet.open(file), StandardCharsets.UTF_8))) {
      int lineNumber = 0;
      String line;
      while ((line = in.readLine()) != null) {
        lineNumber++;
        if (line.isBlank()) {
          continue;
        }
        String where = file.getFileName() + " line " + lineNumber;
        JsonNode row;
        try {
          row = JSON.readTree(line);
        } catch (JsonProcessingException e) {
          throw new BerthException(
              where + " is not JSON (" + e.getOriginalMessage() + "); JSONL has one object a line",
              e);
        }
        if (!row.isObject()) {
          throw new BerthException(where + " is not a JSON object");
        }
        JsonNode label = row.get(labelField);
        if (label == null || !(label.isTextual() || label.isIntegralNumber())) {
          throw new BerthException(
              where
                  + " has no '"
                  + labelField
                  + "' (a class name or index); name the label field with --label-column");
        }
        rows.add(new Example(where, label.asText(), input(where, row)));
      }
    }
    return rows;
  }

  private static Example.Input input(String where, JsonNode row) {
    JsonNode text = row.get("text");
    if (text != null && text.isTextual()) {
      return new Example.Text(text.asText());
    }
    JsonNode features = row.get("features");
    if (features != null && features.isArray()) {
      List<Float> values = new ArrayList<>();
      flatten(where, features, values);
      float[] array = new float[values.size()];
      for (int i = 0; i < array.length; i++) {
        array[i] = values.get(i);
      }
      return new Example.Features(array);
    }
    throw new BerthException(
        where + " has neither \"text\" (a string) nor \"features\" (an array of numbers)");
  }

  private static void flatten(String where, JsonNode node, List<Float> out) {
    for (JsonNode v : node) {
      if (v.isArray()) {
        flatten(where, v, out);
      } else if (v.isNumber()) {
        out.add(v.floatValue());
      } else {
        throw new BerthException(where + ": \"features\" holds " + v + ", which is not a number");
      }
    }
  }
}
