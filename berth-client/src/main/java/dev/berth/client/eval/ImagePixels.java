package dev.berth.client.eval;

import dev.berth.api.BerthException;
import java.awt.image.BufferedImage;
import java.awt.image.IndexColorModel;
import java.awt.image.Raster;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import javax.imageio.ImageIO;

/**
 * Decodes a PNG or JPEG for a model that takes pixels: resized (bilinear) to the input's height and
 * width, grayscale or RGB as its channels say, each value scaled to [0, 1] by 1/255, laid out
 * channels-last (HWC) or channels-first (CHW) as the input's shape says.
 */
final class ImagePixels {
  private ImagePixels() {}

  /**
   * Where pixels go in a row of the model's input.
   *
   * @param height rows of pixels
   * @param width columns of pixels
   * @param channels 1 (grayscale) or 3 (RGB)
   * @param channelsFirst CHW when true, else HWC
   */
  record Layout(int height, int width, int channels, boolean channelsFirst) {
    int size() {
      return height * width * channels;
    }

    /**
     * The layout a row shape (the input's shape without its batch dimension) implies: {@code [H*W]}
     * (square, grayscale), {@code [3*H*W]} (square, RGB, HWC), {@code [H, W]}, {@code [C, H, W]} or
     * {@code [H, W, C]} with C 1 or 3.
     *
     * @return the layout, or null when the shape is not one of these
     */
    static Layout of(long[] row) {
      for (long d : row) {
        if (d <= 0 || d > 1 << 15) {
          return null;
        }
      }
      switch (row.length) {
        case 1 -> {
          int n = (int) row[0];
          int side = squareSide(n);
          if (side > 0) {
            return new Layout(side, side, 1, false);
          }
          side = n % 3 == 0 ? squareSide(n / 3) : -1;
          return side > 0 ? new Layout(side, side, 3, false) : null;
        }
        case 2 -> {
          return new Layout((int) row[0], (int) row[1], 1, false);
        }
        case 3 -> {
          if (row[0] == 1 || row[0] == 3) {
            return new Layout((int) row[1], (int) row[2], (int) row[0], true);
          }
          if (row[2] == 1 || row[2] == 3) {
            return new Layout((int) row[0], (int) row[1], (int) row[2], false);
          }
          return null;
        }
        default -> {
          return null;
        }
      }
    }

    private static int squareSide(int n) {
      int side = (int) Math.round(Math.sqrt(n));
      return side * side == n ? side : -1;
    }

    @Override
    public String toString() {
      return width
          + "x"
          + height
          + (channels == 1 ? " grayscale" : " RGB")
          + (channels == 1 ? "" : channelsFirst ? " (CHW)" : " (HWC)");
    }
  }

  /** Reads, resizes and scales an image file into {@code out} from {@code offset}. */
  static void decode(Path file, Layout layout, float[] out, int offset) {
    BufferedImage image;
    try {
      image = ImageIO.read(file.toFile());
    } catch (IOException e) {
      throw new BerthException("cannot read image " + file + ": " + e.getMessage(), e);
    }
    if (image == null) {
      throw new BerthException(file + " is not a PNG or JPEG image that Java's ImageIO can read");
    }
    float[][] planes = planes(image);
    int h = image.getHeight();
    int w = image.getWidth();
    float[][] resized = new float[planes.length][];
    for (int c = 0; c < planes.length; c++) {
      resized[c] = resize(planes[c], w, h, layout.width(), layout.height());
    }
    float[][] channels = matchChannels(resized, layout.channels());
    int pixels = layout.width() * layout.height();
    for (int c = 0; c < layout.channels(); c++) {
      for (int p = 0; p < pixels; p++) {
        int at = layout.channelsFirst() ? c * pixels + p : p * layout.channels() + c;
        out[offset + at] = channels[c][p] / 255f;
      }
    }
  }

  /**
   * The image's gray or red, green and blue samples on a 0..255 scale, read from its raster so no
   * colour-space conversion alters them (Java2D would gamma-convert a gray image).
   */
  static float[][] planes(BufferedImage image) {
    int w = image.getWidth();
    int h = image.getHeight();
    Raster raster = image.getRaster();
    int bands = raster.getNumBands();
    boolean indexed = image.getColorModel() instanceof IndexColorModel;
    if (!indexed) {
      int colours = bands >= 3 ? 3 : 1;
      float[][] planes = new float[colours][w * h];
      for (int c = 0; c < colours; c++) {
        int bits = raster.getSampleModel().getSampleSize(c);
        float max = (1 << bits) - 1;
        for (int y = 0; y < h; y++) {
          for (int x = 0; x < w; x++) {
            planes[c][y * w + x] = raster.getSample(x, y, c) * 255f / max;
          }
        }
      }
      return planes;
    }
    float[][] rgb = new float[3][w * h];
    for (int y = 0; y < h; y++) {
      for (int x = 0; x < w; x++) {
        int argb = image.getRGB(x, y);
        rgb[0][y * w + x] = (argb >> 16) & 0xFF;
        rgb[1][y * w + x] = (argb >> 8) & 0xFF;
        rgb[2][y * w + x] = argb & 0xFF;
      }
    }
    return rgb;
  }

  /** Gray from RGB with ITU-R 601 luma weights (as PIL's convert("L")), or gray copied to RGB. */
  private static float[][] matchChannels(float[][] planes, int channels) {
    if (planes.length == channels) {
      return planes;
    }
    if (channels == 1) {
      float[] gray = new float[planes[0].length];
      for (int i = 0; i < gray.length; i++) {
        gray[i] = 0.299f * planes[0][i] + 0.587f * planes[1][i] + 0.114f * planes[2][i];
      }
      return new float[][] {gray};
    }
    float[][] rgb = new float[3][];
    Arrays.fill(rgb, planes[0]);
    return rgb;
  }

  /** Bilinear resampling with pixel centres aligned (half-pixel offsets). */
  static float[] resize(float[] src, int w, int h, int tw, int th) {
    if (w == tw && h == th) {
      return src;
    }
    float[] out = new float[tw * th];
    float sx = (float) w / tw;
    float sy = (float) h / th;
    for (int y = 0; y < th; y++) {
      float fy = Math.max(0, (y + 0.5f) * sy - 0.5f);
      int y0 = Math.min((int) fy, h - 1);
      int y1 = Math.min(y0 + 1, h - 1);
      float dy = fy - y0;
      for (int x = 0; x < tw; x++) {
        float fx = Math.max(0, (x + 0.5f) * sx - 0.5f);
        int x0 = Math.min((int) fx, w - 1);
        int x1 = Math.min(x0 + 1, w - 1);
        float dx = fx - x0;
        float top = src[y0 * w + x0] * (1 - dx) + src[y0 * w + x1] * dx;
        float bottom = src[y1 * w + x0] * (1 - dx) + src[y1 * w + x1] * dx;
        out[y * tw + x] = top * (1 - dy) + bottom * dy;
      }
    }
    return out;
  }
}
