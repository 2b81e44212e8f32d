package dev.berth.cli;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;

/** The first rows of the Fashion-MNIST test set as a pair of IDX files, for {@code berth eval}. */
final class IdxSlice {
  static final Path DATA = Path.of("/usr/share/datasets/fashion-mnist");

  private IdxSlice() {}

  /**
   * Writes {@code dir/slice-images-idx3-ubyte.gz} and {@code dir/slice-labels-idx1-ubyte.gz} with
   * the first {@code rows} test images and labels, and returns the images file.
   */
  static Path testSlice(Path dir, int rows) throws IOException {
    Files.createDirectories(dir);
    Path images = dir.resolve("slice-images-idx3-ubyte.gz");
    writeGzip(images, idxSlice(DATA.resolve("t10k-images-idx3-ubyte.gz"), rows, 784));
    writeGzip(
        dir.resolve("slice-labels-idx1-ubyte.gz"),
        idxSlice(DATA.resolve("t10k-labels-idx1-ubyte.gz"), rows, 1));
    return images;
  }

  /** The first {@code rows} records of an IDX file (gzip), header included. */
  static byte[] idxSlice(Path file, int rows, int rowBytes) throws IOException {
    try (DataInputStream in =
        new DataInputStream(new GZIPInputStream(Files.newInputStream(file)))) {
      int magic = in.readInt();
      int dims = magic & 0xff;
      int[] shape = new int[dims];
      for (int i = 0; i < dims; i++) {
        shape[i] = in.readInt();
      }
      shape[0] = rows;
      ByteArrayOutputStream bytes = new ByteArrayOutputStream();
      try (DataOutputStream out = new DataOutputStream(bytes)) {
        out.writeInt(magic);
        for (int d : shape) {
          out.writeInt(d);
        }
        out.write(in.readNBytes(rows * rowBytes));
      }
      return bytes.toByteArray();
    }
  }

  private static void writeGzip(Path file, byte[] data) throws IOException {
    try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(file))) {
      out.write(data);
    }
  }
}
