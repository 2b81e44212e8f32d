package dev.berth.image;

import dev.berth.api.BerthException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.jar.Attributes;
import java.util.jar.JarFile;

/**
 * Berth's own files, as an image carries them: the launcher jar and the libraries its manifest's
 * {@code Class-Path} names, split into Berth's own modules and third-party libraries (which change
 * far less often, so they sit in a lower layer).
 *
 * @param launcher berth.jar
 * @param libraries third-party jars, native ONNX Runtime and tokenizers included
 * @param modules Berth's own module jars
 * @param version Berth's version
 */
public record BerthDistribution(
    Path launcher, List<Path> libraries, List<Path> modules, String version) {

  public BerthDistribution {
    libraries = List.copyOf(libraries);
    modules = List.copyOf(modules);
  }

  /** The distribution a launcher jar belongs to, read from its manifest's Class-Path. */
  public static BerthDistribution ofLauncher(Path launcher, String version) {
    Path jar = launcher.toAbsolutePath().normalize();
    String classPath;
    try (JarFile file = new JarFile(jar.toFile())) {
      classPath =
          file.getManifest() == null
              ? null
              : file.getManifest().getMainAttributes().getValue(Attributes.Name.CLASS_PATH);
    } catch (IOException e) {
      throw new BerthException("cannot read " + jar + ": " + e.getMessage(), e);
    }
    if (classPath == null) {
      throw new BerthException(
          jar + " has no Class-Path; build Berth with 'mvn package' (bin/berth does it for you)");
    }
    List<Path> libraries = new ArrayList<>();
    List<Path> modules = new ArrayList<>();
    for (String entry : classPath.trim().split("\\s+")) {
      Path lib = jar.getParent().resolve(entry).normalize();
      if (!Files.isRegularFile(lib)) {
        throw new BerthException(
            lib + " (on " + jar.getFileName() + "'s Class-Path) is missing; rebuild Berth");
      }
      (lib.getFileName().toString().startsWith("berth-") ? modules : libraries).add(lib);
    }
    return new BerthDistribution(jar, libraries, modules, version);
  }

  /** The launcher jar this class was loaded from. */
  public static Path currentLauncher(Class<?> mainClass) {
    try {
      Path p = Path.of(mainClass.getProtectionDomain().getCodeSource().getLocation().toURI());
      if (!Files.isRegularFile(p) || !p.toString().endsWith(".jar")) {
        throw new BerthException(
            "Berth runs from " + p + ", not from its jar; build it with 'mvn package' first");
      }
      return p;
    } catch (java.net.URISyntaxException e) {
      throw new BerthException("cannot locate Berth's jar: " + e.getMessage(), e);
    }
  }
}
