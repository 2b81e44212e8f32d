package dev.berth.client.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.api.BerthException;
import dev.berth.api.DataType;
import dev.berth.api.TensorSpec;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Which input rows go to, and the request bodies: JSON, and the binary tensor extension. */
class InputPlanTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  @TempDir Path dir;

  private static ModelSignature model(TensorSpec... inputs) {
    return new ModelSignature(
        "m",
        List.of("1"),
        List.of(inputs),
        List.of(new TensorSpec("probs", DataType.FP32, new long[] {-1, 3})),
        List.of());
  }

  private static Example features(float... values) {
    return new Example("row", "0", new Example.Features(values));
  }

  @Test
  void featuresGoToTheFp32InputThatTakesThatManyValues() throws IOException {
    ModelSignature m =
        model(
            new TensorSpec("ids", DataType.INT64, new long[] {-1, 4}),
            new TensorSpec("small", DataType.FP32, new long[] {-1, 2}),
            new TensorSpec("x", DataType.FP32, new long[] {-1, 2, 2}));

    InputPlan plan =
        InputPlan.choose(m, null, List.of(features(1, 2, 3, 4), features(5, 6, 7, 8)), "probs");
    InputPlan.Body body = plan.encode(List.of(features(1, 2, 3, 4), features(5, 6, 7, 8)));

    assertEquals("x", plan.input().name());
    assertEquals(-1, body.jsonLength());
    JsonNode json = JSON.readTree(body.bytes());
    assertEquals(
        JSON.readTree(
            """
            {"inputs": [{"name": "x", "shape": [2, 2, 2], "datatype": "FP32",
                         "data": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]}],
             "outputs": [{"name": "probs"}]}
            """),
        json);
  }

  @Test
  void idxPixelsAreScaledByOneOver255() throws IOException {
    ModelSignature m = model(new TensorSpec("x", DataType.FP32, new long[] {-1, -1}));
    Example row = new Example("r", "1", new Example.Pixels(new byte[] {0, (byte) 255, 51}));

    InputPlan.Body body = InputPlan.choose(m, null, List.of(row), "probs").encode(List.of(row));

    JsonNode input = JSON.readTree(body.bytes()).at("/inputs/0");
    assertEquals(JSON.readTree("[1, 3]"), input.get("shape"));
    assertEquals(0.0, input.at("/data/0").floatValue());
    assertEquals(1.0f, input.at("/data/1").floatValue());
    assertEquals(0.2f, input.at("/data/2").floatValue());
  }

  @Test
  void textGoesAsJsonStringsToTheBytesInput() throws IOException {
    ModelSignature m = model(new TensorSpec("text", DataType.BYTES, new long[] {-1}));
    List<Example> rows =
        List.of(
            new Example("a", "pos", new Example.Text("fine \"film\"")),
            new Example("b", "neg", new Example.Text("日本語")));

    InputPlan.Body body = InputPlan.choose(m, null, rows, "probs").encode(rows);

    assertEquals(
        JSON.readTree(
            """
            {"inputs": [{"name": "text", "shape": [2], "datatype": "BYTES",
                         "data": ["fine \\"film\\"", "日本語"]}],
             "outputs": [{"name": "probs"}]}
            """),
        JSON.readTree(body.bytes()));
  }

  @Test
  void imageFilesGoAsTheirBytesWithTheBinaryTensorExtension() throws IOException {
    Path a = Files.write(dir.resolve("a.png"), new byte[] {1, 2, 3});
    Path b = Files.write(dir.resolve("b.png"), new byte[] {9, 8, 7, 6, 5});
    ModelSignature m =
        model(
            new TensorSpec("x", DataType.FP32, new long[] {-1, 4}),
            new TensorSpec("image", DataType.BYTES, new long[] {-1}));
    List<Example> rows =
        List.of(
            new Example("a", "0", new Example.ImageFile(a)),
            new Example("b", "1", new Example.ImageFile(b)));

    InputPlan.Body body = InputPlan.choose(m, null, rows, "probs").encode(rows);

    JsonNode header =
        JSON.readTree(new String(body.bytes(), 0, body.jsonLength(), StandardCharsets.UTF_8));
    assertEquals(
        JSON.readTree(
            """
            {"inputs": [{"name": "image", "shape": [2], "datatype": "BYTES",
                         "parameters": {"binary_data_size": 16}}],
             "outputs": [{"name": "probs"}]}
            """),
        header);
    ByteBuffer raw =
        ByteBuffer.wrap(body.bytes(), body.jsonLength(), body.bytes().length - body.jsonLength())
            .order(ByteOrder.LITTLE_ENDIAN);
    assertEquals(16, raw.remaining());
    assertEquals(3, raw.getInt());
    byte[] first = new byte[3];
    raw.get(first);
    assertArrayEquals(new byte[] {1, 2, 3}, first);
    assertEquals(5, raw.getInt());
    byte[] second = new byte[5];
    raw.get(second);
    assertArrayEquals(new byte[] {9, 8, 7, 6, 5}, second);
  }

  @Test
  void imagesAreDecodedForAModelWithoutABytesInput() throws IOException {
    // a 2x2 grayscale PNG: Java2D would gamma-convert these values, the raster keeps them
    BufferedImage gray = new BufferedImage(2, 2, BufferedImage.TYPE_BYTE_GRAY);
    gray.getRaster().setSamples(0, 0, 2, 2, 0, new int[] {0, 51, 102, 255});
    Path file = dir.resolve("g.png");
    ImageIO.write(gray, "png", file.toFile());
    ModelSignature m = model(new TensorSpec("x", DataType.FP32, new long[] {-1, 1, 2, 2}));
    Example row = new Example("g.png", "0", new Example.ImageFile(file));

    InputPlan plan = InputPlan.choose(m, null, List.of(row), "probs");
    JsonNode input = JSON.readTree(plan.encode(List.of(row)).bytes()).at("/inputs/0");

    assertEquals(InputPlan.Mode.IMAGE_PIXELS, plan.mode());
    assertEquals(JSON.readTree("[1, 1, 2, 2]"), input.get("shape"));
    float[] values = new float[4];
    for (int i = 0; i < 4; i++) {
      values[i] = input.get("data").get(i).floatValue();
    }
    assertArrayEquals(new float[] {0f, 0.2f, 0.4f, 1f}, values, 1e-6f);
  }

  @Test
  void rgbImagesAreResizedAndConvertedToTheInputsChannels() throws IOException {
    BufferedImage rgb = new BufferedImage(4, 4, BufferedImage.TYPE_INT_RGB);
    for (int y = 0; y < 4; y++) {
      for (int x = 0; x < 4; x++) {
        rgb.setRGB(x, y, 0xFF0000); // pure red
      }
    }
    Path file = dir.resolve("red.png");
    ImageIO.write(rgb, "png", file.toFile());
    float[] gray = new float[4];
    float[] hwc = new float[12];

    ImagePixels.decode(file, ImagePixels.Layout.of(new long[] {4}), gray, 0);
    ImagePixels.decode(file, ImagePixels.Layout.of(new long[] {2, 2, 3}), hwc, 0);

    float luma = 0.299f; // ITU-R 601 weight of red
    assertArrayEquals(new float[] {luma, luma, luma, luma}, gray, 1e-6f);
    assertArrayEquals(new float[] {1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0}, hwc, 1e-6f);
  }

  @Test
  void imageLayoutsFromInputShapes() {
    assertEquals(new ImagePixels.Layout(28, 28, 1, false), ImagePixels.Layout.of(new long[] {784}));
    assertEquals(
        new ImagePixels.Layout(28, 28, 1, false), ImagePixels.Layout.of(new long[] {28, 28}));
    assertEquals(
        new ImagePixels.Layout(224, 224, 3, true), ImagePixels.Layout.of(new long[] {3, 224, 224}));
    assertEquals(
        new ImagePixels.Layout(32, 32, 3, false), ImagePixels.Layout.of(new long[] {32, 32, 3}));
    assertEquals(new ImagePixels.Layout(8, 8, 3, false), ImagePixels.Layout.of(new long[] {192}));
    assertNull(ImagePixels.Layout.of(new long[] {-1, 28}));
    assertNull(ImagePixels.Layout.of(new long[] {10}));
  }

  @Test
  void resizingKeepsAConstantImageConstantAndAveragesNeighbours() {
    float[] flat = new float[16];
    Arrays.fill(flat, 7f);
    assertArrayEquals(new float[] {7, 7, 7, 7}, ImagePixels.resize(flat, 4, 4, 2, 2), 1e-6f);
    // 2x1 -> 1x1 samples the middle: the mean of the two
    assertArrayEquals(new float[] {5}, ImagePixels.resize(new float[] {0, 10}, 2, 1, 1, 1), 1e-6f);
  }

  @Test
  void rowShapesSolveOneUnknownDimension() {
    TensorSpec s = new TensorSpec("x", DataType.FP32, new long[] {-1, -1, 4});
    assertArrayEquals(new long[] {3, 4}, InputPlan.rowShape(s, 12));
    assertNull(InputPlan.rowShape(s, 10));
    assertNull(InputPlan.rowShape(new TensorSpec("x", DataType.FP32, new long[] {-1, 5}), 4));
  }

  @Test
  void dataThatFitsNoInputIsAClearError() {
    ModelSignature m = model(new TensorSpec("x", DataType.FP32, new long[] {-1, 4}));

    BerthException wrongSize =
        assertThrows(
            BerthException.class,
            () -> InputPlan.choose(m, null, List.of(features(1, 2, 3)), "probs"));
    BerthException text =
        assertThrows(
            BerthException.class,
            () ->
                InputPlan.choose(
                    m, null, List.of(new Example("r", "0", new Example.Text("t"))), "probs"));
    BerthException ragged =
        assertThrows(
            BerthException.class,
            () ->
                InputPlan.choose(m, null, List.of(features(1, 2, 3, 4), features(1, 2)), "probs"));

    assertTrue(
        wrongSize.getMessage().contains("no FP32 input that takes 3 values"),
        wrongSize.getMessage());
    assertTrue(wrongSize.getMessage().contains("x FP32[-1, 4]"), wrongSize.getMessage());
    assertTrue(text.getMessage().contains("no BYTES input for text"), text.getMessage());
    assertTrue(ragged.getMessage().contains("same number of features"), ragged.getMessage());
  }
}
