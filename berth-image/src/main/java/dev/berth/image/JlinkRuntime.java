package dev.berth.image;

import dev.berth.api.BerthException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.spi.ToolProvider;

/**
 * A minimal Java runtime for the image, linked with {@code jlink} from the JDK Berth runs on, so
 * the image can sit on any glibc base without Java. Linked once per JDK and module set, then reused
 * from the cache. Its modules stay uncompressed: the image layer is compressed anyway, and the JVM
 * starts faster reading them as they are.
 */
public final class JlinkRuntime {
  /**
   * The modules the server needs: what {@code jdeps --print-module-deps} reports for Berth's
   * serving class path, less java.desktop (reached only through image classes of DJL and JNA that
   * serving never loads), plus jdk.management (the process CPU and open-file metrics read its
   * com.sun.management beans) and java.net.http ({@code berth eval}, which a gated canary's
   * evaluation Job runs from the image).
   */
  public static final List<String> MODULES =
      List.of(
          "java.base",
          "java.logging",
          "java.management",
          "java.naming",
          "java.net.http",
          "java.sql",
          "jdk.jfr",
          "jdk.management",
          "jdk.unsupported",
          "jdk.crypto.ec");

  /** What the model store needs besides {@link #MODULES}: S3's XML. */
  public static final List<String> STORE_MODULES = List.of("java.xml");

  private JlinkRuntime() {}

  /** The runtime for {@link #MODULES}, linked into {@code cache} if not there yet. */
  public static Path create(Path cache) {
    return create(cache, MODULES);
  }

  /**
   * The runtime for these modules (e.g. {@link #MODULES} plus java.desktop for models that decode
   * images), linked into {@code cache} if not there yet.
   */
  public static Path create(Path cache, List<String> wanted) {
    ToolProvider jlink =
        ToolProvider.findFirst("jlink")
            .orElseThrow(
                () ->
                    new BerthException(
                        "'runtime: jlink' needs a JDK (it has jlink), but Berth runs on a JRE at "
                            + System.getProperty("java.home")
                            + "; set JAVA_HOME to a JDK 21 or newer"));
    String javaVersion = Runtime.version().toString();
    List<String> modules = new ArrayList<>();
    for (String m : wanted) {
      if (hasModule(m)) {
        modules.add(m);
      }
    }
    String key =
        (javaVersion + "-t2-" + String.join(",", modules)).replaceAll("[^A-Za-z0-9.+,_-]", "_");
    Path dir =
        cache.resolve("jlink").resolve(Integer.toHexString(key.hashCode()) + "-" + javaVersion);
    if (Files.isRegularFile(dir.resolve("release"))) {
      return dir;
    }
    Path tmp = dir.resolveSibling(dir.getFileName() + ".tmp-" + ProcessHandle.current().pid());
    try {
      Files.createDirectories(dir.getParent());
      FileTrees.deleteTree(tmp);
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      PrintStream print = new PrintStream(out, true, StandardCharsets.UTF_8);
      List<String> args =
          new ArrayList<>(
              List.of(
                  "--add-modules",
                  String.join(",", modules),
                  "--strip-debug",
                  "--no-header-files",
                  "--no-man-pages",
                  "--release-info",
                  releaseInfo(),
                  "--output",
                  tmp.toString()));
      if (Runtime.version().feature() < 25) {
        // Before JDK 25, the per-image class-data archive is a dynamic CDS archive, which builds
        // on the JDK's own one; from 25 on, the AOT cache holds the JDK's classes too.
        args.add("--generate-cds-archive");
      }
      int rc = jlink.run(print, print, args.toArray(String[]::new));
      if (rc != 0) {
        throw new BerthException(
            "jlink failed (exit " + rc + "): " + out.toString(StandardCharsets.UTF_8).strip());
      }
      ClassDataArchive.setImageTimes(tmp);
      Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw new BerthException("cannot link a Java runtime into " + dir + ": " + e.getMessage(), e);
    } finally {
      FileTrees.deleteTree(tmp);
    }
    return dir;
  }

  /**
   * The JDK this runtime is linked from, for its {@code release} file (jlink writes only the Java
   * version and the modules): the JDK's own {@code JAVA_RUNTIME_VERSION}, {@code IMPLEMENTOR} and
   * {@code IMPLEMENTOR_VERSION}, so the image's SBOM can name it.
   */
  static String releaseInfo() {
    java.util.Map<String, String> from = new java.util.LinkedHashMap<>();
    from.put("JAVA_RUNTIME_VERSION", "\"" + Runtime.version() + "\"");
    Path release = Path.of(System.getProperty("java.home"), "release");
    try {
      if (Files.isRegularFile(release)) {
        for (String line : Files.readAllLines(release, StandardCharsets.UTF_8)) {
          int eq = line.indexOf('=');
          String key = eq > 0 ? line.substring(0, eq) : "";
          if (key.equals("JAVA_RUNTIME_VERSION")
              || key.equals("IMPLEMENTOR")
              || key.equals("IMPLEMENTOR_VERSION")) {
            from.put(key, line.substring(eq + 1).strip());
          }
        }
      }
    } catch (IOException e) {
      // the Java version alone, then
    }
    StringBuilder add = new StringBuilder("add");
    from.forEach(
        (key, value) -> {
          // ':' separates the pairs of jlink's option
          if (!value.contains(":")) {
            add.append(':').append(key).append('=').append(value);
          }
        });
    return add.toString();
  }

  private static boolean hasModule(String name) {
    Optional<java.lang.module.ModuleReference> ref =
        java.lang.module.ModuleFinder.ofSystem().find(name);
    return ref.isPresent();
  }
}
