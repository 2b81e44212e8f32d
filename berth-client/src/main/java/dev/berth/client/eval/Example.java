package dev.berth.client.eval;

import java.nio.file.Path;
import java.util.Objects;

/**
 * One labelled row of a data set.
 *
 * @param where where the row comes from, for messages ({@code data.csv line 7}, {@code
 *     images/cat/1.png})
 * @param label its true class as the data writes it: a class name or a class index
 * @param input what the model is given
 */
public record Example(String where, String label, Input input) {

  public Example {
    Objects.requireNonNull(where, "where");
    Objects.requireNonNull(label, "label");
    Objects.requireNonNull(input, "input");
  }

  /** What a row gives the model. */
  public sealed interface Input permits Features, Pixels, Text, ImageFile {}

  /** Numeric features, sent to the model's FP32 input as they are. */
  public record Features(float[] values) implements Input {
    public Features {
      values = values.clone();
    }

    @Override
    public float[] values() {
      return values.clone();
    }

    int size() {
      return values.length;
    }

    float get(int i) {
      return values[i];
    }
  }

  /** Unsigned 8-bit pixels (an IDX image), sent to an FP32 input scaled to [0, 1] by 1/255. */
  public record Pixels(byte[] values) implements Input {
    public Pixels {
      values = values.clone();
    }

    @Override
    public byte[] values() {
      return values.clone();
    }

    int size() {
      return values.length;
    }

    float scaled(int i) {
      return (values[i] & 0xFF) / 255f;
    }
  }

  /** A text, sent to the model's BYTES input as a string. */
  public record Text(String text) implements Input {
    public Text {
      Objects.requireNonNull(text, "text");
    }
  }

  /**
   * An image file (PNG or JPEG): its bytes go to a BYTES input as they are, else it is decoded,
   * resized and scaled for the model's FP32 input.
   */
  public record ImageFile(Path file) implements Input {
    public ImageFile {
      Objects.requireNonNull(file, "file");
    }
  }
}
