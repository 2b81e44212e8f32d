package dev.berth.onnx;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.ConfigException;
import dev.berth.api.DataType;
import dev.berth.api.InvalidInputException;
import dev.berth.api.Tensor;
import dev.berth.api.TensorSpec;
import dev.berth.onnx.testing.OnnxModelWriter;
import dev.berth.onnx.testing.OnnxModelWriter.ElemType;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelContext;
import dev.berth.runtime.StageProvider;
import dev.berth.runtime.TensorEngine;
import dev.berth.runtime.TensorPipeline;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Image files in, the graph's FP32 pixels out: decoding, resizing, colour, scaling, layout. */
class ImagePreprocessingTest {
  @TempDir Path repo;

  /** pixels FP32 [-1, dims...] in, y = pixels out. */
  private static OnnxModelWriter identity(long... dims) {
    long[] shape = new long[dims.length + 1];
    shape[0] = -1;
    System.arraycopy(dims, 0, shape, 1, dims.length);
    return OnnxModelWriter.graph("pixels")
        .input("pixels", ElemType.FLOAT, shape)
        .output("y", ElemType.FLOAT, shape)
        .node("Identity", List.of("pixels"), List.of("y"));
  }

  private TensorPipeline load(OnnxModelWriter model, String preprocessing) throws IOException {
    Path dir = repo.resolve("m");
    model.write(dir.resolve("1").resolve(OnnxEngineProvider.MODEL_FILE));
    Files.writeString(
        dir.resolve(ModelConfig.FILE_NAME),
        "apiVersion: berth.dev/v1\nkind: Model\npreprocessing:\n" + preprocessing);
    return pipeline(new ModelContext("m", "1", dir.resolve("1"), ModelConfig.load(dir)));
  }

  private static byte[] png(BufferedImage image) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ImageIO.write(image, "png", out);
    return out.toByteArray();
  }

  /** A w×h image whose pixel (x, y) is grey level (y·w + x)·10. */
  private static BufferedImage ramp(int w, int h) {
    BufferedImage image = new BufferedImage(w, h, BufferedImage.TYPE_BYTE_GRAY);
    for (int y = 0; y < h; y++) {
      for (int x = 0; x < w; x++) {
        int v = (y * w + x) * 10;
        image.getRaster().setSample(x, y, 0, v);
      }
    }
    return image;
  }

  private static float[] floats(Tensor t) {
    FloatBuffer b = t.data().asFloatBuffer();
    float[] out = new float[b.remaining()];
    b.get(out);
    return out;
  }

  @Test
  void grayscaleImagesBecomeFlatPixelsScaledToOne() throws IOException {
    try (TensorPipeline engine =
        load(
            identity(6),
            "  {type: image, input: image, width: 3, height: 2, color: grayscale, layout: flat}\n")) {
      assertEquals(
          new TensorSpec("image", DataType.BYTES, new long[] {-1}),
          engine.signature().inputs().get(0));
      Tensor images =
          Tensor.ofBytes("image", new long[] {2}, List.of(png(ramp(3, 2)), png(ramp(3, 2))));
      Tensor y = engine.run(List.of(List.of(images)), Set.of("y")).get(0).get(0);
      assertArrayEquals(new long[] {2, 6}, y.shape());
      float[] v = floats(y);
      for (int i = 0; i < 6; i++) {
        assertEquals(i * 10 / 255f, v[i], 1e-6f, "row-major, divided by 255");
        assertEquals(v[i], v[6 + i], 0f);
      }
    }
  }

  @Test
  void rgbImagesAreResizedAndLaidOutChannelFirst_withMeanAndStd() throws IOException {
    BufferedImage red = new BufferedImage(8, 8, BufferedImage.TYPE_INT_RGB);
    for (int y = 0; y < 8; y++) {
      for (int x = 0; x < 8; x++) {
        red.setRGB(x, y, 0xff0000);
      }
    }
    try (TensorPipeline engine =
        load(
            identity(3, 2, 2),
            "  {type: image, width: 2, height: 2, scale: 255, mean: [0.5, 0, 0], std: [0.5, 1, 1]}\n")) {
      Tensor images = Tensor.ofBytes("image", new long[] {1}, List.of(png(red)));
      Tensor y = engine.run(List.of(List.of(images)), Set.of("y")).get(0).get(0);
      assertArrayEquals(new long[] {1, 3, 2, 2}, y.shape());
      assertArrayEquals(
          new float[] {1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0}, floats(y), 1e-6f, "red plane first");
    }
  }

  @Test
  void pixelsMayStillBeSentDirectly() throws IOException {
    try (TensorPipeline engine =
        load(
            identity(6),
            "  {type: image, width: 3, height: 2, color: grayscale, layout: flat}\n")) {
      Tensor pixels = Tensor.ofFloats("pixels", new long[] {1, 6}, new float[] {1, 2, 3, 4, 5, 6});
      Tensor y = engine.run(List.of(List.of(pixels)), Set.of("y")).get(0).get(0);
      assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, floats(y), 0f);
    }
  }

  @Test
  void bytesThatAreNoImageAreTheClientsError() throws IOException {
    try (TensorPipeline engine =
        load(
            identity(6),
            "  {type: image, width: 3, height: 2, color: grayscale, layout: flat}\n")) {
      Tensor junk = Tensor.ofBytes("image", new long[] {1}, List.of("not a png".getBytes()));
      InvalidInputException e =
          assertThrows(
              InvalidInputException.class, () -> engine.run(List.of(List.of(junk)), Set.of("y")));
      assertTrue(e.getMessage().contains("row 0 is not an image"), e.getMessage());
    }
  }

  @Test
  void anImageClaimingAHugeSizeIsRefusedBeforeItIsDecoded() throws IOException {
    // a valid PNG header that claims 100000 x 100000 pixels, and no pixel data
    ByteArrayOutputStream png = new ByteArrayOutputStream();
    png.write(new byte[] {(byte) 0x89, 'P', 'N', 'G', 13, 10, 26, 10});
    java.nio.ByteBuffer ihdr = java.nio.ByteBuffer.allocate(13);
    ihdr.putInt(100_000)
        .putInt(100_000)
        .put((byte) 8)
        .put((byte) 0)
        .put((byte) 0)
        .put((byte) 0)
        .put((byte) 0);
    java.util.zip.CRC32 crc = new java.util.zip.CRC32();
    crc.update("IHDR".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
    crc.update(ihdr.array());
    png.write(java.nio.ByteBuffer.allocate(4).putInt(13).array());
    png.write("IHDR".getBytes(java.nio.charset.StandardCharsets.US_ASCII));
    png.write(ihdr.array());
    png.write(java.nio.ByteBuffer.allocate(4).putInt((int) crc.getValue()).array());
    try (TensorPipeline engine =
        load(
            identity(6),
            "  {type: image, width: 3, height: 2, color: grayscale, layout: flat}\n")) {
      Tensor bomb = Tensor.ofBytes("image", new long[] {1}, List.of(png.toByteArray()));
      InvalidInputException e =
          assertThrows(
              InvalidInputException.class, () -> engine.run(List.of(List.of(bomb)), Set.of("y")));
      assertTrue(e.getMessage().contains("100000x100000"), e.getMessage());
    }
  }

  @Test
  void aSizeThatDoesNotFitTheGraphIsRefusedAtLoad() {
    ConfigException e =
        assertThrows(
            ConfigException.class,
            () -> load(identity(784), "  {type: image, width: 28, height: 28, layout: flat}\n"));
    assertTrue(e.getMessage().contains("[-1, 2352]"), e.getMessage());
    assertTrue(e.getMessage().contains("'pixels' is [-1, 784]"), e.getMessage());
  }

  /** The engine behind the steps its model.yaml names, as the runtime builds it. */
  static TensorPipeline pipeline(ModelContext context) {
    java.util.List<StageProvider> stages = new java.util.ArrayList<>();
    java.util.ServiceLoader.load(StageProvider.class).forEach(stages::add);
    return TensorPipeline.load(
        context, (TensorEngine) new OnnxEngineProvider().load(context), stages);
  }
}
