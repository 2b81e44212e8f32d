package dev.berth.client.eval;

import dev.berth.api.BerthException;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import java.util.zip.GZIPInputStream;

/**
 * A labelled data set, read from a file or directory.
 *
 * <pre>{@code
 * DataSet data = DataSet.reader(Path.of("t10k-images-idx3-ubyte.gz")).read();
 * DataSet reviews = DataSet.reader(Path.of("reviews.csv")).labelColumn("sentiment").read();
 * }</pre>
 *
 * @param source the file or directory it was read from
 * @param format its layout
 * @param examples its rows, in file order
 */
public record DataSet(Path source, DataFormat format, List<Example> examples) {

  public DataSet {
    Objects.requireNonNull(source, "source");
    Objects.requireNonNull(format, "format");
    examples = List.copyOf(examples);
  }

  /** Number of rows. */
  public int size() {
    return examples.size();
  }

  /** Starts reading the data set at {@code path}. */
  public static Reader reader(Path path) {
    return new Reader(path);
  }

  /** Reads a data set; every setting has a default. */
  public static final class Reader {
    private final Path path;
    private DataFormat format;
    private String labelColumn = "label";
    private Path idxLabels;

    private Reader(Path path) {
      this.path = Objects.requireNonNull(path, "path");
    }

    /** The layout (default: from the name, see {@link DataFormat#of}). */
    public Reader format(DataFormat format) {
      this.format = format;
      return this;
    }

    /** The CSV column or JSONL field holding the label (default {@code label}). */
    public Reader labelColumn(String labelColumn) {
      this.labelColumn = Objects.requireNonNull(labelColumn, "labelColumn");
      return this;
    }

    /**
     * The IDX labels file (default: the images file's name with {@code images-idx3} replaced by
     * {@code labels-idx1}, in the same directory).
     */
    public Reader idxLabels(Path idxLabels) {
      this.idxLabels = idxLabels;
      return this;
    }

    /**
     * Reads every row.
     *
     * @throws BerthException naming the file, row and fix when the data cannot be read
     */
    public DataSet read() {
      if (!Files.exists(path)) {
        throw new BerthException(
            "data " + path + " does not exist; --data takes a CSV, JSONL or IDX file or a folder");
      }
      DataFormat f = format != null ? format : DataFormat.of(path);
      if (f == null) {
        throw new BerthException(
            "cannot tell the format of "
                + path
                + " from its name (.csv, .jsonl, IDX '...-idx3-ubyte[.gz]' or a folder); pass"
                + " --format csv|jsonl|idx|images");
      }
      if (f == DataFormat.IMAGES) {
        if (!Files.isDirectory(path)) {
          throw new BerthException(
              path + " is a file; the images format takes a folder with one sub-folder per class");
        }
      } else if (!Files.isRegularFile(path)) {
        throw new BerthException(
            path
                + " is a folder; --format "
                + f.name().toLowerCase(java.util.Locale.ROOT)
                + " takes a file");
      }
      try {
        List<Example> examples =
            switch (f) {
              case CSV -> CsvData.read(path, labelColumn);
              case JSONL -> JsonlData.read(path, labelColumn);
              case IDX -> IdxData.read(path, idxLabels);
              case IMAGES -> ImageFolderData.read(path);
            };
        if (examples.isEmpty()) {
          throw new BerthException(path + " holds no labelled rows");
        }
        return new DataSet(path, f, examples);
      } catch (IOException e) {
        throw new BerthException("cannot read " + path + ": " + e, e);
      }
    }
  }

  /** Opens a file for reading, gunzipping it when it starts with the gzip magic bytes. */
  static InputStream open(Path file) throws IOException {
    InputStream in = new BufferedInputStream(Files.newInputStream(file), 1 << 16);
    in.mark(2);
    int b0 = in.read();
    int b1 = in.read();
    in.reset();
    if (b0 == 0x1f && b1 == 0x8b) {
      return new BufferedInputStream(new GZIPInputStream(in, 1 << 16), 1 << 16);
    }
    return in;
  }
}
