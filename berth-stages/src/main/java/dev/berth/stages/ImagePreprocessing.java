package dev.berth.stages;

import dev.berth.api.DataType;
import dev.berth.api.InvalidInputException;
import dev.berth.api.Tensor;
import dev.berth.api.TensorSpec;
import dev.berth.runtime.ConfigReader;
import dev.berth.runtime.Preprocessor;
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import javax.imageio.ImageIO;
import javax.imageio.ImageReader;
import javax.imageio.stream.ImageInputStream;

/**
 * The {@code preprocessing: {type: image}} step of model.yaml: a BYTES input whose elements are
 * image files (PNG, JPEG, BMP, GIF) is decoded, resized to the model's width and height, turned to
 * grayscale or RGB, scaled ({@code pixel / scale}, then {@code (x - mean) / std} per channel) and
 * laid out as the graph's FP32 input: {@code flat} [n, h·w·c] row-major, {@code nchw} [n, c, h, w]
 * or {@code nhwc} [n, h, w, c].
 */
final class ImagePreprocessing implements Preprocessor {
  static final String TYPE = "image";
  static final String DEFAULT_INPUT = "image";

  /** How the pixels of one image are laid out in the graph's input. */
  enum Layout {
    FLAT,
    NCHW,
    NHWC
  }

  private final String input;
  private final String graphInput;
  private final int width;
  private final int height;
  private final int channels;
  private final float scale;
  private final float[] mean;
  private final float[] std;
  private final Layout layout;

  private ImagePreprocessing(
      String input,
      String graphInput,
      int width,
      int height,
      int channels,
      float scale,
      float[] mean,
      float[] std,
      Layout layout) {
    this.input = input;
    this.graphInput = graphInput;
    this.width = width;
    this.height = height;
    this.channels = channels;
    this.scale = scale;
    this.mean = mean;
    this.std = std;
    this.layout = layout;
  }

  /**
   * Reads the section and checks it against the graph's inputs.
   *
   * @param section the preprocessing section
   * @param graphInputs the graph's inputs by name
   */
  static ImagePreprocessing load(ConfigReader section, Map<String, TensorSpec> graphInputs) {
    section.allowOnly(
        Set.of(
            "type",
            "input",
            "graph-input",
            "width",
            "height",
            "color",
            "scale",
            "mean",
            "std",
            "layout"));
    String graphInput;
    if (section.has("graph-input")) {
      graphInput = section.string("graph-input", null);
      if (!graphInputs.containsKey(graphInput)) {
        throw section.error(
            "graph-input",
            "the model has no input '" + graphInput + "'; its inputs are " + graphInputs.keySet());
      }
    } else if (graphInputs.size() == 1) {
      graphInput = graphInputs.keySet().iterator().next();
    } else {
      throw section.error(
          "graph-input",
          "is missing, and the graph has several inputs " + graphInputs.keySet() + "; name one");
    }
    TensorSpec spec = graphInputs.get(graphInput);
    if (spec.datatype() != DataType.FP32) {
      throw section.error(
          "graph-input",
          "'" + graphInput + "' is " + spec.datatype() + "; images become FP32 pixels");
    }
    String input = section.string("input", DEFAULT_INPUT);
    if (graphInputs.containsKey(input)) {
      throw section.error(
          "input", "'" + input + "' is already a model input; choose another name for the images");
    }
    int width = section.integer("width", 0, 1, 8192);
    int height = section.integer("height", 0, 1, 8192);
    if (width == 0 || height == 0) {
      throw section.error(
          width == 0 ? "width" : "height", "is missing; give the size the model takes, e.g. 224");
    }
    String color = section.string("color", "rgb").toLowerCase(Locale.ROOT);
    int channels =
        switch (color) {
          case "rgb" -> 3;
          case "grayscale" -> 1;
          default ->
              throw section.error("color", "'" + color + "' is unknown; use rgb or grayscale");
        };
    String layoutName = section.string("layout", "nchw").toLowerCase(Locale.ROOT);
    Layout layout =
        switch (layoutName) {
          case "flat" -> Layout.FLAT;
          case "nchw" -> Layout.NCHW;
          case "nhwc" -> Layout.NHWC;
          default ->
              throw section.error(
                  "layout", "'" + layoutName + "' is unknown; use flat, nchw or nhwc");
        };
    double scale = section.number("scale", 255.0);
    if (!(scale > 0)) {
      throw section.error("scale", "must be more than 0 (pixels are divided by it), e.g. 255");
    }
    float[] mean = perChannel(section, "mean", channels, 0f);
    float[] std = perChannel(section, "std", channels, 1f);
    for (float s : std) {
      if (!(s > 0)) {
        throw section.error("std", "must be more than 0 (values are divided by it)");
      }
    }
    ImagePreprocessing p =
        new ImagePreprocessing(
            input, graphInput, width, height, channels, (float) scale, mean, std, layout);
    long[] expected = p.shape(-1);
    long[] graph = spec.shape();
    boolean fits = graph.length == expected.length;
    for (int i = 1; fits && i < graph.length; i++) {
      fits = graph[i] == -1 || graph[i] == expected[i];
    }
    if (!fits) {
      throw section.error(
          "layout",
          "the images become "
              + java.util.Arrays.toString(expected)
              + " ("
              + layoutName
              + ", "
              + color
              + ", "
              + width
              + "x"
              + height
              + ") but '"
              + graphInput
              + "' is "
              + java.util.Arrays.toString(graph));
    }
    return p;
  }

  private static float[] perChannel(ConfigReader section, String key, int channels, float def) {
    float[] out = new float[channels];
    java.util.Arrays.fill(out, def);
    List<String> values = section.strings(key);
    if (values.isEmpty()) {
      return out;
    }
    if (values.size() != channels) {
      throw section.error(key, "give one value per channel (" + channels + "), not " + values);
    }
    for (int i = 0; i < channels; i++) {
      try {
        out[i] = Float.parseFloat(values.get(i));
      } catch (NumberFormatException e) {
        throw section.error(key, "'" + values.get(i) + "' is not a number");
      }
    }
    return out;
  }

  /** Name of the BYTES input clients send images on. */
  String input() {
    return input;
  }

  /** The graph input this step fills. */
  String graphInput() {
    return graphInput;
  }

  /** The graph input's shape for {@code rows} images. */
  long[] shape(long rows) {
    return switch (layout) {
      case FLAT -> new long[] {rows, (long) height * width * channels};
      case NCHW -> new long[] {rows, channels, height, width};
      case NHWC -> new long[] {rows, height, width, channels};
    };
  }

  /** Any thread: decoding and resizing keep no state between calls. */
  @Override
  public boolean runsOnAnyThread() {
    return true;
  }

  @Override
  public List<TensorSpec> inputs() {
    return List.of(new TensorSpec(input, DataType.BYTES, new long[] {-1}));
  }

  @Override
  public List<Map<String, Tensor>> apply(List<Map<String, Tensor>> requests) {
    List<Map<String, Tensor>> out = new ArrayList<>(requests.size());
    for (Map<String, Tensor> request : requests) {
      Tensor images = request.get(input);
      if (images == null) {
        out.add(request);
        continue;
      }
      if (request.size() > 1) {
        throw new InvalidInputException(
            "send either '" + input + "' (image files) or '" + graphInput + "' (pixels), not both");
      }
      Map<String, Tensor> pixels = new LinkedHashMap<>();
      pixels.put(graphInput, decode(images));
      out.add(pixels);
    }
    return out;
  }

  /** Decodes the images of one request into the graph's input tensor. */
  Tensor decode(Tensor images) {
    if (images.datatype() != DataType.BYTES || images.rank() != 1) {
      throw new InvalidInputException(
          "input '"
              + input
              + "' must be BYTES image files, one per row (shape [n]), got "
              + images.datatype()
              + " of rank "
              + images.rank());
    }
    List<byte[]> files = images.elements();
    int pixels = width * height;
    float[] out = new float[files.size() * pixels * channels];
    for (int r = 0; r < files.size(); r++) {
      float[][] planes = resize(read(files.get(r), r));
      int base = r * pixels * channels;
      for (int p = 0; p < pixels; p++) {
        if (channels == 1) {
          float gray =
              planes.length == 1
                  ? planes[0][p]
                  : 0.299f * planes[0][p] + 0.587f * planes[1][p] + 0.114f * planes[2][p];
          out[base + p] = (gray / scale - mean[0]) / std[0];
        } else {
          for (int k = 0; k < 3; k++) {
            float v =
                ((planes.length == 1 ? planes[0][p] : planes[k][p]) / scale - mean[k]) / std[k];
            out[base + (layout == Layout.NCHW ? k * pixels + p : p * 3 + k)] = v;
          }
        }
      }
    }
    return Tensor.ofFloats(graphInput, shape(files.size()), out);
  }

  /**
   * The image's pixel values (0-255) at the model's size, as planes of {@code width·height} floats:
   * one for a grey image, read from its raster as stored (no colour conversion), else red, green
   * and blue. Resized bilinearly, pixel centres aligned.
   */
  private float[][] resize(BufferedImage image) {
    int w = image.getWidth();
    int h = image.getHeight();
    var raster = image.getRaster();
    float[][] source;
    if (raster.getNumBands() <= 2
        && image.getColorModel().getColorSpace().getType() == java.awt.color.ColorSpace.TYPE_GRAY) {
      int bits = image.getColorModel().getComponentSize(0);
      float[] gray = new float[w * h];
      for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
          int v = raster.getSample(x, y, 0);
          gray[y * w + x] = bits == 8 ? v : v * 255f / ((1 << bits) - 1);
        }
      }
      source = new float[][] {gray};
    } else {
      source = new float[3][w * h];
      for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
          int v = image.getRGB(x, y);
          source[0][y * w + x] = (v >> 16) & 0xff;
          source[1][y * w + x] = (v >> 8) & 0xff;
          source[2][y * w + x] = v & 0xff;
        }
      }
    }
    if (w == width && h == height) {
      return source;
    }
    float[][] out = new float[source.length][width * height];
    for (int y = 0; y < height; y++) {
      float sy = Math.clamp((y + 0.5f) * h / height - 0.5f, 0f, h - 1f);
      int y0 = (int) sy;
      int y1 = Math.min(y0 + 1, h - 1);
      float fy = sy - y0;
      for (int x = 0; x < width; x++) {
        float sx = Math.clamp((x + 0.5f) * w / width - 0.5f, 0f, w - 1f);
        int x0 = (int) sx;
        int x1 = Math.min(x0 + 1, w - 1);
        float fx = sx - x0;
        for (int k = 0; k < source.length; k++) {
          float[] s = source[k];
          float top = s[y0 * w + x0] * (1 - fx) + s[y0 * w + x1] * fx;
          float bottom = s[y1 * w + x0] * (1 - fx) + s[y1 * w + x1] * fx;
          out[k][y * width + x] = top * (1 - fy) + bottom * fy;
        }
      }
    }
    return out;
  }

  /** Largest image Berth decodes, in pixels: a small file can claim an enormous size. */
  static final long MAX_PIXELS = 64L << 20;

  private BufferedImage read(byte[] file, int row) {
    ImageIO.setUseCache(false); // decode in memory, never through temporary files
    try (ImageInputStream in = ImageIO.createImageInputStream(new ByteArrayInputStream(file))) {
      Iterator<ImageReader> readers = in == null ? null : ImageIO.getImageReaders(in);
      if (readers != null && readers.hasNext()) {
        ImageReader reader = readers.next();
        try {
          reader.setInput(in, true, true);
          long w = reader.getWidth(0);
          long h = reader.getHeight(0);
          if (w * h > MAX_PIXELS) {
            throw new InvalidInputException(
                "input '"
                    + input
                    + "' row "
                    + row
                    + " is a "
                    + w
                    + "x"
                    + h
                    + " image; Berth decodes images of at most "
                    + MAX_PIXELS
                    + " pixels: resize it first");
          }
          return reader.read(0);
        } finally {
          reader.dispose();
        }
      }
    } catch (IOException | RuntimeException e) {
      if (e instanceof InvalidInputException invalid) {
        throw invalid;
      }
      // not an image: said below
    }
    throw new InvalidInputException(
        "input '"
            + input
            + "' row "
            + row
            + " is not an image Berth can read ("
            + file.length
            + " bytes); send PNG, JPEG, BMP or GIF files");
  }
}
