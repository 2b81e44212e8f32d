package dev.berth.xgboost;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.api.ModelLoadException;
import java.io.IOException;
import java.nio.file.Path;

/**
 * What a saved XGBoost model says of its learner, read from XGBoost's JSON model schema ({@code
 * learner.objective.name} and {@code learner.learner_model_param}). Only those two small objects
 * are read; the trees ({@code learner.gradient_booster}) are skipped, not built.
 *
 * @param objective the learning objective, e.g. {@code multi:softprob}, {@code reg:squarederror}
 * @param booster the kind of booster: {@code gbtree}, {@code dart} or {@code gblinear}
 * @param numFeature features per row
 * @param numClass classes of a multi-class objective, else 0
 * @param numTarget targets of a (multi-target) regression, at least 1
 */
record LearnerParams(
    String objective, String booster, long numFeature, int numClass, int numTarget) {
  private static final ObjectMapper JSON = new ObjectMapper();

  /**
   * Reads the learner's parameters from a model in XGBoost's JSON form.
   *
   * @param json the model as XGBoost writes it ({@code Booster.toByteArray("json")})
   * @param file the model file, for messages
   * @throws ModelLoadException when the JSON lacks what every XGBoost model has
   */
  static LearnerParams read(byte[] json, Path file) {
    JsonNode objective = null;
    JsonNode params = null;
    String booster = null;
    try (JsonParser p = JsonFactory.builder().build().createParser(json)) {
      p.setCodec(JSON);
      expect(p.nextToken() == JsonToken.START_OBJECT, file, "a JSON object");
      while (p.nextToken() == JsonToken.FIELD_NAME) {
        String name = p.currentName();
        p.nextToken();
        if (!name.equals("learner") || p.currentToken() != JsonToken.START_OBJECT) {
          p.skipChildren();
          continue;
        }
        while (p.nextToken() == JsonToken.FIELD_NAME) {
          String field = p.currentName();
          p.nextToken();
          switch (field) {
            case "objective" -> objective = p.readValueAsTree();
            case "learner_model_param" -> params = p.readValueAsTree();
            case "gradient_booster" -> booster = boosterName(p);
            default -> p.skipChildren();
          }
        }
      }
    } catch (IOException e) {
      throw new ModelLoadException(
          file + " could not be read back as an XGBoost model (" + e.getMessage() + ")", e);
    }
    expect(objective != null && objective.path("name").isTextual(), file, "learner.objective.name");
    expect(params != null, file, "learner.learner_model_param");
    String name = objective.path("name").asText();
    long numFeature = number(params, "num_feature", file);
    int numClass = (int) number(params, "num_class", file);
    int numTarget = params.has("num_target") ? (int) number(params, "num_target", file) : 1;
    expect(booster != null, file, "learner.gradient_booster.name");
    return new LearnerParams(name, booster, numFeature, numClass, Math.max(1, numTarget));
  }

  /** The {@code name} of the gradient booster object the parser is at; its trees are skipped. */
  private static String boosterName(JsonParser p) throws IOException {
    if (p.currentToken() != JsonToken.START_OBJECT) {
      p.skipChildren();
      return null;
    }
    String name = null;
    while (p.nextToken() == JsonToken.FIELD_NAME) {
      String field = p.currentName();
      p.nextToken();
      if (field.equals("name") && p.currentToken() == JsonToken.VALUE_STRING) {
        name = p.getText();
      } else {
        p.skipChildren();
      }
    }
    return name;
  }

  /** XGBoost writes these numbers as JSON strings ({@code "num_class": "3"}). */
  private static long number(JsonNode params, String key, Path file) {
    JsonNode value = params.path(key);
    try {
      return Long.parseLong(value.asText().trim());
    } catch (NumberFormatException e) {
      throw new ModelLoadException(
          file
              + " is not an XGBoost model Berth can serve: learner.learner_model_param."
              + key
              + " is '"
              + value
              + "', not a whole number; save it again with XGBoost's save_model",
          e);
    }
  }

  private static void expect(boolean present, Path file, String what) {
    if (!present) {
      throw new ModelLoadException(
          file
              + " is not an XGBoost model Berth can serve: it has no "
              + what
              + "; save the model with XGBoost's save_model (JSON or UBJSON)");
    }
  }
}
