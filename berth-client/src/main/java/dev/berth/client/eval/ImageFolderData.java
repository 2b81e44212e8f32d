package dev.berth.client.eval;

import dev.berth.api.BerthException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;

/**
 * A folder with one sub-folder per class, named as the class (its name or index), holding PNG or
 * JPEG images. Files are read when their batch is sent.
 */
final class ImageFolderData {
  private ImageFolderData() {}

  static boolean isImage(Path file) {
    String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
    return name.endsWith(".png") || name.endsWith(".jpg") || name.endsWith(".jpeg");
  }

  static List<Example> read(Path root) throws IOException {
    List<Path> classes;
    try (Stream<Path> s = Files.list(root)) {
      classes = s.filter(Files::isDirectory).sorted().toList();
    }
    if (classes.isEmpty()) {
      throw new BerthException(
          root
              + " has no sub-folders; an image data set has one sub-folder per class"
              + " (DIR/<class>/*.png|jpg)");
    }
    List<Example> rows = new ArrayList<>();
    for (Path dir : classes) {
      String label = dir.getFileName().toString();
      List<Path> images;
      try (Stream<Path> s = Files.list(dir)) {
        images = s.filter(Files::isRegularFile).filter(ImageFolderData::isImage).sorted().toList();
      }
      for (Path image : images) {
        rows.add(
            new Example(
                root.getFileName() + "/" + label + "/" + image.getFileName(),
                label,
                new Example.ImageFile(image)));
      }
    }
    if (rows.isEmpty()) {
      throw new BerthException(
          root + " has class folders but no .png, .jpg or .jpeg images in them");
    }
    return rows;
  }
}
