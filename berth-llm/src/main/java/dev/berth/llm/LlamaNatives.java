package dev.berth.llm;

import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Why llama.cpp's native libraries did not load, in words a user can act on: the usual reason is a
 * base image without the C++ runtime ({@code libstdc++.so.6}), which distroless Java images and
 * some minimal bases lack.
 */
final class LlamaNatives {
  /** The shared libraries llama.cpp's Linux build needs beyond glibc. */
  static final List<Library> NEEDED =
      List.of(
          new Library("libstdc++.so.6", "libstdc++6", "libstdc++", "the C++ runtime"),
          new Library("libgcc_s.so.1", "libgcc-s1", "libgcc", "GCC's support library"));

  record Library(String soname, String debian, String fedora, String what) {}

  private LlamaNatives() {}

  /** The message for a model that failed to load because the binding's library did not link. */
  static String explain(LinkageError e) {
    if (!System.getProperty("os.name", "").toLowerCase(Locale.ROOT).contains("linux")) {
      return "llama.cpp's native library did not load on "
          + System.getProperty("os.name")
          + "/"
          + System.getProperty("os.arch")
          + " ("
          + e
          + ")";
    }
    return explain(e, libraryDirectories(System.getenv("LD_LIBRARY_PATH")));
  }

  static String explain(LinkageError e, List<Path> searched) {
    List<Library> missing = missing(searched);
    StringBuilder b = new StringBuilder("llama.cpp's native library did not load");
    if (missing.isEmpty()) {
      return b.append(" (")
          .append(e.getMessage())
          .append("); the libraries it needs (")
          .append(String.join(", ", NEEDED.stream().map(Library::soname).toList()))
          .append(") were found, so the dynamic loader's reason above is the one to act on")
          .toString();
    }
    b.append(": ");
    for (int i = 0; i < missing.size(); i++) {
      Library l = missing.get(i);
      b.append(i == 0 ? "" : ", ").append(l.soname()).append(" (").append(l.what()).append(")");
    }
    b.append(missing.size() == 1 ? " is" : " are")
        .append(" missing from ")
        .append(String.join(":", searched.stream().map(Path::toString).toList()))
        .append(". Install ")
        .append(String.join(" ", missing.stream().map(Library::debian).toList()))
        .append(" (Debian, Ubuntu) or ")
        .append(String.join(" ", missing.stream().map(Library::fedora).toList()))
        .append(
            " (Fedora, RHEL); for a Berth image, set image.base to an image that has them, for"
                + " example one built FROM eclipse-temurin:21-jre, which has them");
    return b.toString();
  }

  /** The libraries of {@link #NEEDED} that none of the directories holds. */
  static List<Library> missing(List<Path> searched) {
    List<Library> out = new ArrayList<>();
    for (Library l : NEEDED) {
      if (searched.stream().noneMatch(d -> Files.exists(d.resolve(l.soname())))) {
        out.add(l);
      }
    }
    return out;
  }

  /** Where the dynamic loader looks: LD_LIBRARY_PATH, then the usual system directories. */
  static List<Path> libraryDirectories(String ldLibraryPath) {
    Set<Path> dirs = new LinkedHashSet<>();
    if (ldLibraryPath != null) {
      for (String d : ldLibraryPath.split(File.pathSeparator)) {
        if (!d.isBlank()) {
          dirs.add(Path.of(d));
        }
      }
    }
    String arch = System.getProperty("os.arch");
    String triplet =
        (arch.equals("amd64") || arch.equals("x86_64") ? "x86_64" : arch) + "-linux-gnu";
    for (String d :
        List.of(
            "/lib/" + triplet, "/usr/lib/" + triplet, "/lib64", "/usr/lib64", "/lib", "/usr/lib")) {
      dirs.add(Path.of(d));
    }
    return dirs.stream().filter(Files::isDirectory).toList();
  }
}
