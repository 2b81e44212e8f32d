package dev.berth.client.eval;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;
import dev.berth.api.BerthException;
import dev.berth.api.DataType;
import dev.berth.api.TensorSpec;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Which model input a data set's rows go to, and how a batch of them is written: texts as JSON
 * strings to a BYTES input; features and IDX pixels (scaled by 1/255) as JSON numbers to the FP32
 * input that takes that many values a row; image files as their bytes to a BYTES input with the
 * binary tensor extension, or decoded for an FP32 input when the model has no BYTES input.
 */
final class InputPlan {
  private static final JsonFactory JSON = new JsonFactory();

  /** How rows become tensor data. */
  enum Mode {
    TEXT,
    FEATURES,
    IMAGE_BYTES,
    IMAGE_PIXELS
  }

  /** An encoded request: the body, and the JSON header's length when binary data follows. */
  record Body(byte[] bytes, int jsonLength) {}

  private final TensorSpec input;
  private final Mode mode;
  private final long[] rowShape;
  private final int rowSize;
  private final ImagePixels.Layout layout;
  private final String output;

  private InputPlan(
      TensorSpec input,
      Mode mode,
      long[] rowShape,
      int rowSize,
      ImagePixels.Layout layout,
      String output) {
    this.input = input;
    this.mode = mode;
    this.rowShape = rowShape;
    this.rowSize = rowSize;
    this.layout = layout;
    this.output = output;
  }

  TensorSpec input() {
    return input;
  }

  Mode mode() {
    return mode;
  }

  /** The largest batch the input takes: its first dimension when that is fixed, else no limit. */
  int maxBatch() {
    long first = input.shape().length == 0 ? -1 : input.shape()[0];
    return first > 0 ? (int) first : Integer.MAX_VALUE;
  }

  /** What the plan sends, for the summary line. */
  String describe() {
    return switch (mode) {
      case TEXT -> "texts to BYTES input '" + input.name() + "'";
      case FEATURES ->
          rowSize
              + " values a row to FP32 input '"
              + input.name()
              + "' as [N, "
              + String.join(", ", Arrays.stream(rowShape).mapToObj(Long::toString).toList())
              + "]";
      case IMAGE_BYTES ->
          "image files to BYTES input '" + input.name() + "' (binary tensor extension)";
      case IMAGE_PIXELS ->
          "images as " + layout + " pixels scaled by 1/255 to FP32 input '" + input.name() + "'";
    };
  }

  /**
   * Picks the input for rows like {@code first}.
   *
   * @param inputName the input to use, or null to pick one
   * @param output the output to ask for
   */
  static InputPlan choose(
      ModelSignature model, String inputName, List<Example> rows, String output) {
    Example first = rows.get(0);
    for (Example e : rows) {
      if (e.input().getClass() != first.input().getClass()) {
        throw new BerthException(
            e.where()
                + " is "
                + kind(e.input())
                + " but "
                + first.where()
                + " is "
                + kind(first.input())
                + "; every row of a data set must be of one kind");
      }
    }
    List<TensorSpec> candidates =
        inputName != null ? List.of(model.input(inputName)) : model.inputs();
    return switch (first.input()) {
      case Example.Text t -> text(model, candidates, output);
      case Example.Features f -> features(model, candidates, rows, f.size(), output);
      case Example.Pixels p -> features(model, candidates, rows, p.size(), output);
      case Example.ImageFile i -> image(model, candidates, output);
    };
  }

  private static String kind(Example.Input input) {
    return switch (input) {
      case Example.Text t -> "text";
      case Example.Features f -> "numeric features";
      case Example.Pixels p -> "pixels";
      case Example.ImageFile i -> "an image file";
    };
  }

  private static InputPlan text(ModelSignature model, List<TensorSpec> candidates, String output) {
    for (TensorSpec s : candidates) {
      if (s.datatype() == DataType.BYTES) {
        return new InputPlan(s, Mode.TEXT, oneElementRow(s), 1, null, output);
      }
    }
    throw new BerthException(
        "model '"
            + model.name()
            + "' has no BYTES input for text rows; its inputs: "
            + ModelSignature.describe(model.inputs())
            + ". Text needs a model that takes strings (model.yaml 'preprocessing: {type:"
            + " tokenize}'); give numeric features otherwise");
  }

  private static InputPlan features(
      ModelSignature model,
      List<TensorSpec> candidates,
      List<Example> rows,
      int size,
      String output) {
    for (Example e : rows) {
      int n =
          switch (e.input()) {
            case Example.Features f -> f.size();
            case Example.Pixels p -> p.size();
            default -> size;
          };
      if (n != size) {
        throw new BerthException(
            e.where()
                + " has "
                + n
                + " values but "
                + rows.get(0).where()
                + " has "
                + size
                + "; every row needs the same number of features");
      }
    }
    List<TensorSpec> fp32 = candidates.stream().filter(s -> s.datatype() == DataType.FP32).toList();
    for (TensorSpec s : fp32) {
      long[] row = rowShape(s, size);
      if (row != null) {
        return new InputPlan(s, Mode.FEATURES, row, size, null, output);
      }
    }
    throw new BerthException(
        "model '"
            + model.name()
            + "' has no FP32 input that takes "
            + size
            + " values a row, as the data's rows have; its inputs: "
            + ModelSignature.describe(model.inputs())
            + (candidates.size() == 1 ? "" : "; name one with --input"));
  }

  private static InputPlan image(ModelSignature model, List<TensorSpec> candidates, String output) {
    for (TensorSpec s : candidates) {
      if (s.datatype() == DataType.BYTES) {
        return new InputPlan(s, Mode.IMAGE_BYTES, oneElementRow(s), 1, null, output);
      }
    }
    for (TensorSpec s : candidates) {
      long[] shape = s.shape();
      if (s.datatype() == DataType.FP32 && shape.length >= 2) {
        long[] row = Arrays.copyOfRange(shape, 1, shape.length);
        ImagePixels.Layout layout = ImagePixels.Layout.of(row);
        if (layout != null) {
          return new InputPlan(s, Mode.IMAGE_PIXELS, row, layout.size(), layout, output);
        }
      }
    }
    throw new BerthException(
        "model '"
            + model.name()
            + "' has no input for images: neither a BYTES input (encoded images, decoded by the"
            + " server) nor an FP32 input of fixed image shape ([N,H*W], [N,H,W], [N,C,H,W] or"
            + " [N,H,W,C]); its inputs: "
            + ModelSignature.describe(model.inputs()));
  }

  /** A BYTES input's row shape: one element a row, whatever dimensions it declares. */
  private static long[] oneElementRow(TensorSpec s) {
    long[] shape = s.shape();
    long[] row = shape.length <= 1 ? new long[0] : Arrays.copyOfRange(shape, 1, shape.length);
    for (int i = 0; i < row.length; i++) {
      row[i] = 1;
    }
    return row;
  }

  /**
   * The row shape of {@code s} that holds {@code size} values: its dimensions after the batch
   * dimension, one unknown dimension solved; null when it cannot hold them.
   */
  static long[] rowShape(TensorSpec s, int size) {
    long[] shape = s.shape();
    if (shape.length < 2) {
      return shape.length == 1 && size == 1 ? new long[0] : null;
    }
    long[] row = Arrays.copyOfRange(shape, 1, shape.length);
    long known = 1;
    int unknown = -1;
    for (int i = 0; i < row.length; i++) {
      if (row[i] < 0) {
        if (unknown >= 0) {
          return null;
        }
        unknown = i;
      } else {
        known *= row[i];
      }
    }
    if (unknown >= 0) {
      if (known == 0 || size % known != 0) {
        return null;
      }
      row[unknown] = size / known;
      return row;
    }
    return known == size ? row : null;
  }

  /** Writes the request for a batch of rows. */
  Body encode(List<Example> rows) {
    try {
      return switch (mode) {
        case TEXT, FEATURES, IMAGE_PIXELS -> json(rows);
        case IMAGE_BYTES -> binary(rows);
      };
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private void startInput(JsonGenerator g, int n) throws IOException {
    g.writeStartObject();
    g.writeArrayFieldStart("inputs");
    g.writeStartObject();
    g.writeStringField("name", input.name());
    g.writeArrayFieldStart("shape");
    g.writeNumber(n);
    for (long d : rowShape) {
      g.writeNumber(d);
    }
    g.writeEndArray();
    g.writeStringField("datatype", input.datatype().name());
  }

  private void endRequest(JsonGenerator g) throws IOException {
    g.writeEndObject();
    g.writeEndArray();
    g.writeArrayFieldStart("outputs");
    g.writeStartObject();
    g.writeStringField("name", output);
    g.writeEndObject();
    g.writeEndArray();
    g.writeEndObject();
  }

  private Body json(List<Example> rows) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream(64 + rows.size() * rowSize * 8);
    float[] pixels = mode == Mode.IMAGE_PIXELS ? new float[rowSize] : null;
    try (JsonGenerator g = JSON.createGenerator(out)) {
      startInput(g, rows.size());
      g.writeArrayFieldStart("data");
      for (Example e : rows) {
        switch (e.input()) {
          case Example.Text t -> g.writeString(t.text());
          case Example.Features f -> {
            for (int i = 0; i < rowSize; i++) {
              g.writeNumber(f.get(i));
            }
          }
          case Example.Pixels p -> {
            for (int i = 0; i < rowSize; i++) {
              g.writeNumber(p.scaled(i));
            }
          }
          case Example.ImageFile i -> {
            ImagePixels.decode(i.file(), layout, pixels, 0);
            for (float v : pixels) {
              g.writeNumber(v);
            }
          }
        }
      }
      g.writeEndArray();
      endRequest(g);
    }
    return new Body(out.toByteArray(), -1);
  }

  private Body binary(List<Example> rows) throws IOException {
    List<byte[]> files = new ArrayList<>(rows.size());
    long size = 0;
    for (Example e : rows) {
      Path file = ((Example.ImageFile) e.input()).file();
      byte[] bytes;
      try {
        bytes = Files.readAllBytes(file);
      } catch (IOException ex) {
        throw new BerthException("cannot read image " + file + ": " + ex.getMessage(), ex);
      }
      files.add(bytes);
      size += 4 + bytes.length;
    }
    ByteArrayOutputStream header = new ByteArrayOutputStream(256);
    try (JsonGenerator g = JSON.createGenerator(header)) {
      startInput(g, rows.size());
      g.writeObjectFieldStart("parameters");
      g.writeNumberField("binary_data_size", size);
      g.writeEndObject();
      endRequest(g);
    }
    int jsonLength = header.size();
    if (jsonLength + size > Integer.MAX_VALUE - 16) {
      throw new BerthException("a batch of images is over 2 GB; lower --batch-size");
    }
    ByteBuffer body = ByteBuffer.allocate((int) (jsonLength + size)).order(ByteOrder.LITTLE_ENDIAN);
    body.put(header.toByteArray());
    for (byte[] f : files) {
      body.putInt(f.length);
      body.put(f);
    }
    return new Body(body.array(), jsonLength);
  }
}
