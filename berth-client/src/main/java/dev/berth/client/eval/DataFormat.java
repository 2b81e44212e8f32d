package dev.berth.client.eval;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/** The layouts a labelled data set can come in. */
public enum DataFormat {
  /** Comma-separated values with a header: a label column, and a text column or feature columns. */
  CSV,
  /** One JSON object per line: a label, and {@code text} or {@code features}. */
  JSONL,
  /** IDX files as MNIST and Fashion-MNIST ship them: images and labels, gzipped or not. */
  IDX,
  /** A directory with one sub-directory of PNG/JPEG images per class. */
  IMAGES;

  /**
   * The format a path's name says: a directory is {@link #IMAGES}; {@code .csv}; {@code .jsonl} or
   * {@code .ndjson}; IDX names ({@code ...-idx3-ubyte[.gz]}).
   *
   * @return the format, or null when the name says none
   */
  public static DataFormat of(Path path) {
    if (Files.isDirectory(path)) {
      return IMAGES;
    }
    Path fileName = path.getFileName();
    String name = fileName == null ? "" : fileName.toString().toLowerCase(Locale.ROOT);
    if (name.endsWith(".gz")) {
      name = name.substring(0, name.length() - 3);
    }
    if (name.endsWith(".csv")) {
      return CSV;
    }
    if (name.endsWith(".jsonl") || name.endsWith(".ndjson")) {
      return JSONL;
    }
    if (name.contains("idx") || name.endsWith("-ubyte") || name.endsWith(".idx")) {
      return IDX;
    }
    return null;
  }
}
