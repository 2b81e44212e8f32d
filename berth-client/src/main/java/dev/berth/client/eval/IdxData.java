package dev.berth.client.eval;

import dev.berth.api.BerthException;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * IDX files (MNIST, Fashion-MNIST): an images file of unsigned bytes with dimensions {@code [n,
 * rows, cols]} and a labels file of unsigned bytes {@code [n]}, either gzipped. Pixels go to the
 * model as they are read, scaled to [0, 1] by 1/255 when sent.
 */
final class IdxData {
  private static final int UNSIGNED_BYTE = 0x08;

  private IdxData() {}

  /**
   * The labels file beside an images file: {@code images-idx3} replaced by {@code labels-idx1},
   * gzipped or not.
   */
  static Path labelsBeside(Path images) {
    String name = images.getFileName().toString();
    String labels =
        name.replace("images-idx3", "labels-idx1").replace("images.idx3", "labels.idx1");
    if (labels.equals(name)) {
      throw new BerthException(
          "cannot find the labels of "
              + images
              + ": its name has no 'images-idx3' to replace with 'labels-idx1'; pass"
              + " --data-labels FILE");
    }
    Path beside = images.resolveSibling(labels);
    if (!Files.isRegularFile(beside)) {
      // the images gzipped and the labels not, or the other way round
      Path other =
          images.resolveSibling(
              labels.endsWith(".gz") ? labels.substring(0, labels.length() - 3) : labels + ".gz");
      if (Files.isRegularFile(other)) {
        return other;
      }
      throw new BerthException(
          "no labels file beside "
              + images
              + " (looked for "
              + beside
              + "); pass --data-labels FILE");
    }
    return beside;
  }

  static List<Example> read(Path images, Path labels) throws IOException {
    Path labelFile = labels != null ? labels : labelsBeside(images);
    if (!Files.isRegularFile(labelFile)) {
      throw new BerthException("labels file " + labelFile + " does not exist");
    }
    Idx pixels = Idx.read(images);
    Idx classes = Idx.read(labelFile);
    if (pixels.dims().length < 2) {
      throw new BerthException(
          images + " holds " + pixels.dims().length + "-dimensional data, not a set of images");
    }
    if (classes.dims().length != 1) {
      throw new BerthException(
          labelFile
              + " holds data of shape "
              + Arrays.toString(classes.dims())
              + "; an IDX labels file has one dimension");
    }
    int n = pixels.dims()[0];
    if (classes.dims()[0] != n) {
      throw new BerthException(
          images
              + " holds "
              + n
              + " images but "
              + labelFile
              + " "
              + classes.dims()[0]
              + " labels");
    }
    int size = pixels.data().length / Math.max(n, 1);
    String name = images.getFileName().toString();
    List<Example> rows = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      rows.add(
          new Example(
              name + " image " + i,
              Integer.toString(classes.data()[i] & 0xFF),
              new Example.Pixels(Arrays.copyOfRange(pixels.data(), i * size, (i + 1) * size))));
    }
    return rows;
  }

  /** The dimensions and bytes of one IDX file of unsigned bytes. */
  record Idx(int[] dims, byte[] data) {
    static Idx read(Path file) throws IOException {
      try (DataInputStream in = new DataInputStream(DataSet.open(file))) {
        int zero = in.readUnsignedShort();
        int type = in.readUnsignedByte();
        int rank = in.readUnsignedByte();
        if (zero != 0 || rank == 0) {
          throw new BerthException(file + " is not an IDX file (its magic number is wrong)");
        }
        if (type != UNSIGNED_BYTE) {
          throw new BerthException(
              file
                  + " holds IDX type 0x"
                  + Integer.toHexString(type)
                  + "; Berth reads IDX files of unsigned bytes (0x08), as MNIST ships them");
        }
        int[] dims = new int[rank];
        long count = 1;
        for (int i = 0; i < rank; i++) {
          dims[i] = in.readInt();
          count *= dims[i];
        }
        if (count > Integer.MAX_VALUE - 16) {
          throw new BerthException(file + " is too large: " + count + " values");
        }
        byte[] data = new byte[(int) count];
        try {
          in.readFully(data);
        } catch (EOFException e) {
          throw new BerthException(
              file + " is cut short: its header says " + Arrays.toString(dims), e);
        }
        return new Idx(dims, data);
      }
    }
  }
}
