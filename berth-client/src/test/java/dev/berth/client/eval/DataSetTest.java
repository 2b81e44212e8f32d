package dev.berth.client.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.BerthException;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.zip.GZIPOutputStream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Each data layout, from small files the test writes. */
class DataSetTest {
  @TempDir Path dir;

  @Test
  void csvWithFeatureColumns() throws IOException {
    Path csv =
        Files.writeString(dir.resolve("iris.csv"), "f1,f2,label,f3\n1.5,2,setosa,-3e-1\n0,0,1,7\n");

    DataSet data = DataSet.reader(csv).read();

    assertEquals(DataFormat.CSV, data.format());
    assertEquals(2, data.size());
    Example first = data.examples().get(0);
    assertEquals("setosa", first.label());
    assertEquals("iris.csv line 2", first.where());
    assertArrayEquals(
        new float[] {1.5f, 2f, -0.3f},
        assertInstanceOf(Example.Features.class, first.input()).values());
    assertEquals("1", data.examples().get(1).label());
    assertEquals("iris.csv line 3", data.examples().get(1).where());
  }

  @Test
  void csvWithATextColumnQuotedAsRfc4180Says() throws IOException {
    Path csv =
        Files.writeString(
            dir.resolve("reviews.csv"),
            "id,text,sentiment\r\n"
                + "1,\"Great, \"\"really\"\" great\",pos\r\n"
                + "2,\"two\nlines\",neg\r\n"
                + "3,plain,neg\r\n");

    DataSet data = DataSet.reader(csv).labelColumn("sentiment").read();

    assertEquals(3, data.size());
    assertEquals(new Example.Text("Great, \"really\" great"), data.examples().get(0).input());
    assertEquals(new Example.Text("two\nlines"), data.examples().get(1).input());
    assertEquals("neg", data.examples().get(1).label());
    assertEquals("reviews.csv line 5", data.examples().get(2).where());
  }

  @Test
  void csvErrorsNameTheFileRowAndFix() throws IOException {
    Path noLabel = Files.writeString(dir.resolve("a.csv"), "x,y\n1,2\n");
    BerthException e = assertThrows(BerthException.class, () -> DataSet.reader(noLabel).read());
    assertTrue(e.getMessage().contains("no column 'label'"), e.getMessage());
    assertTrue(e.getMessage().contains("--label-column"), e.getMessage());

    Path notNumber = Files.writeString(dir.resolve("b.csv"), "x,label\n1,a\nfoo,b\n");
    e = assertThrows(BerthException.class, () -> DataSet.reader(notNumber).read());
    assertTrue(
        e.getMessage().contains("b.csv line 3, column 'x': 'foo' is not a number"), e.getMessage());

    Path ragged = Files.writeString(dir.resolve("c.csv"), "x,label\n1,a,3\n");
    e = assertThrows(BerthException.class, () -> DataSet.reader(ragged).read());
    assertTrue(e.getMessage().contains("c.csv line 2 has 3 fields"), e.getMessage());
  }

  @Test
  void jsonlWithTextAndWithFeatures() throws IOException {
    Path text =
        Files.writeString(
            dir.resolve("s.jsonl"),
            "{\"text\": \"good film\", \"label\": \"pos\"}\n\n{\"text\": \"bad\", \"label\": 0}\n");
    Path features =
        Files.writeString(
            dir.resolve("f.ndjson"), "{\"features\": [[1, 2], [3, 4.5]], \"label\": \"x\"}\n");

    DataSet t = DataSet.reader(text).read();
    DataSet f = DataSet.reader(features).read();

    assertEquals(DataFormat.JSONL, t.format());
    assertEquals(List.of("pos", "0"), t.examples().stream().map(Example::label).toList());
    assertEquals(new Example.Text("bad"), t.examples().get(1).input());
    assertEquals("s.jsonl line 3", t.examples().get(1).where());
    assertArrayEquals(
        new float[] {1, 2, 3, 4.5f},
        assertInstanceOf(Example.Features.class, f.examples().get(0).input()).values());
  }

  @Test
  void jsonlErrorsNameTheLine() throws IOException {
    Path bad =
        Files.writeString(
            dir.resolve("bad.jsonl"), "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\"}\n");
    BerthException e = assertThrows(BerthException.class, () -> DataSet.reader(bad).read());
    assertTrue(e.getMessage().contains("bad.jsonl line 2 has no 'label'"), e.getMessage());
  }

  @Test
  void idxImagesWithTheirLabelsFileBeside() throws IOException {
    byte[] pixels = {0, 127, (byte) 255, 1, 2, 3, 4, 5};
    writeIdx(dir.resolve("t10k-images-idx3-ubyte.gz"), true, 0x08, new int[] {2, 2, 2}, pixels);
    writeIdx(dir.resolve("t10k-labels-idx1-ubyte"), false, 0x08, new int[] {2}, new byte[] {9, 3});

    DataSet data = DataSet.reader(dir.resolve("t10k-images-idx3-ubyte.gz")).read();

    assertEquals(DataFormat.IDX, data.format());
    assertEquals(2, data.size());
    assertEquals("9", data.examples().get(0).label());
    assertEquals("3", data.examples().get(1).label());
    Example.Pixels first = assertInstanceOf(Example.Pixels.class, data.examples().get(0).input());
    assertArrayEquals(new byte[] {0, 127, (byte) 255, 1}, first.values());
    assertEquals(1f, first.scaled(2));
    assertEquals(127 / 255f, first.scaled(1));
  }

  @Test
  void idxLabelsNamedOnTheCommandLineAndCountsThatDisagree() throws IOException {
    Path images = dir.resolve("digits.idx");
    writeIdx(images, false, 0x08, new int[] {3, 1, 2}, new byte[6]);
    Path labels = dir.resolve("answers.idx");
    writeIdx(labels, false, 0x08, new int[] {3}, new byte[] {1, 2, 3});
    Path short2 = dir.resolve("short.idx");
    writeIdx(short2, false, 0x08, new int[] {2}, new byte[] {1, 2});

    assertEquals(3, DataSet.reader(images).idxLabels(labels).read().size());
    BerthException noBeside =
        assertThrows(BerthException.class, () -> DataSet.reader(images).read());
    assertTrue(noBeside.getMessage().contains("--data-labels"), noBeside.getMessage());
    BerthException mismatch =
        assertThrows(BerthException.class, () -> DataSet.reader(images).idxLabels(short2).read());
    assertTrue(mismatch.getMessage().contains("3 images but"), mismatch.getMessage());
  }

  @Test
  void imageFolderWithOneSubFolderPerClass() throws IOException {
    writePng(dir.resolve("pets/cat/1.png"), 0x000000);
    writePng(dir.resolve("pets/cat/2.PNG"), 0x101010);
    writePng(dir.resolve("pets/dog/a.png"), 0xffffff);
    Files.writeString(dir.resolve("pets/dog/README.txt"), "not an image");

    DataSet data = DataSet.reader(dir.resolve("pets")).read();

    assertEquals(DataFormat.IMAGES, data.format());
    assertEquals(
        List.of("cat", "cat", "dog"), data.examples().stream().map(Example::label).toList());
    assertEquals("pets/dog/a.png", data.examples().get(2).where());
    assertEquals(
        new Example.ImageFile(dir.resolve("pets/cat/1.png")), data.examples().get(0).input());
  }

  @Test
  void missingFilesAndUnknownFormatsSayWhatToDo() throws IOException {
    BerthException missing =
        assertThrows(BerthException.class, () -> DataSet.reader(dir.resolve("nope.csv")).read());
    assertTrue(missing.getMessage().contains("does not exist"), missing.getMessage());

    Path odd = Files.writeString(dir.resolve("data.parquet"), "x");
    BerthException unknown = assertThrows(BerthException.class, () -> DataSet.reader(odd).read());
    assertTrue(
        unknown.getMessage().contains("--format csv|jsonl|idx|images"), unknown.getMessage());

    Path empty = Files.createDirectories(dir.resolve("empty"));
    BerthException noClasses =
        assertThrows(BerthException.class, () -> DataSet.reader(empty).read());
    assertTrue(noClasses.getMessage().contains("one sub-folder per class"), noClasses.getMessage());
  }

  static void writeIdx(Path file, boolean gzip, int type, int[] dims, byte[] data)
      throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.writeShort(0);
      out.writeByte(type);
      out.writeByte(dims.length);
      for (int d : dims) {
        out.writeInt(d);
      }
      out.write(data);
    }
    try (OutputStream out =
        gzip ? new GZIPOutputStream(Files.newOutputStream(file)) : Files.newOutputStream(file)) {
      out.write(bytes.toByteArray());
    }
  }

  static void writePng(Path file, int rgb) throws IOException {
    Files.createDirectories(file.getParent());
    BufferedImage image = new BufferedImage(2, 2, BufferedImage.TYPE_INT_RGB);
    for (int y = 0; y < 2; y++) {
      for (int x = 0; x < 2; x++) {
        image.setRGB(x, y, rgb);
      }
    }
    ImageIO.write(image, "png", file.toFile());
  }
}
