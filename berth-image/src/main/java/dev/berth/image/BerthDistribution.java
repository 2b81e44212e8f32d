package dev.berth.image;

import dev.berth.api.BerthException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.jar.Attributes;
import java.util.jar.JarFile;
import java.util.regex.Pattern;

/**
 * Berth's own files, as an image carries them: the launcher jar and the libraries its manifest's
 * {@code Class-Path} names, split into Berth's own modules and third-party libraries (which change
 * far less often, so they sit in a lower layer).
 *
 * <p>An image only serves, so it carries only what {@code berth serve} needs: the launcher's
 * {@value #SERVING_ROOTS} manifest attribute names the artifacts the serve command uses directly,
 * and those jars' own {@code Class-Path} names the rest. The image builder, the Kubernetes client
 * and their libraries stay out of the image.
 *
 * @param launcher berth.jar
 * @param libraries third-party jars, native ONNX Runtime and tokenizers included
 * @param modules Berth's own module jars
 * @param version Berth's version
 */
public record BerthDistribution(
    Path launcher, List<Path> libraries, List<Path> modules, String version) {

  /** Launcher manifest attribute: artifact ids of the jars {@code berth serve} uses directly. */
  public static final String SERVING_ROOTS = "Berth-Serving-Roots";

  /**
   * Launcher manifest attribute: per engine, the artifact id of its module, as {@code
   * engine=artifact} pairs ({@code llama=berth-llm pytorch=berth-pytorch}). An image carries an
   * engine's module, its libraries and their native code only when one of its models needs that
   * engine.
   */
  public static final String ENGINE_ROOTS = "Berth-Engine-Roots";

  /**
   * Launcher manifest attribute: the artifact ids of the model store ({@code berth-store}), which
   * an image carries only when its service has models kept in a registry or object store.
   */
  public static final String STORE_ROOTS = "Berth-Store-Roots";

  public BerthDistribution {
    libraries = List.copyOf(libraries);
    modules = List.copyOf(modules);
  }

  /** The distribution a launcher jar belongs to, read from its manifest's Class-Path. */
  public static BerthDistribution ofLauncher(Path launcher, String version) {
    return ofLauncher(launcher, version, Set.of());
  }

  /**
   * The distribution a launcher jar belongs to, read from its manifest's Class-Path.
   *
   * @param engines names of the engines the image's models need ({@code llama}, {@code pytorch}):
   *     the image carries those of {@value #ENGINE_ROOTS} and no other
   */
  public static BerthDistribution ofLauncher(Path launcher, String version, Set<String> engines) {
    return ofLauncher(launcher, version, engines, false);
  }

  /**
   * The distribution a launcher jar belongs to, read from its manifest's Class-Path.
   *
   * @param engines names of the engines the image's models need
   * @param store whether the image fetches models from registries and object stores: it then
   *     carries {@value #STORE_ROOTS} too
   */
  public static BerthDistribution ofLauncher(
      Path launcher, String version, Set<String> engines, boolean store) {
    Path jar = launcher.toAbsolutePath().normalize();
    Attributes manifest = manifest(jar);
    List<Path> all = classPath(jar, manifest);
    String roots = manifest.getValue(SERVING_ROOTS);
    if (roots != null) {
      roots = roots + engineRoots(manifest.getValue(ENGINE_ROOTS), engines);
      String storeRoots = manifest.getValue(STORE_ROOTS);
      if (store && storeRoots != null) {
        roots = roots + " " + storeRoots.trim();
      }
    }
    Set<String> serving = roots == null ? null : servingJars(all, roots.trim().split("\\s+"));
    List<Path> libraries = new ArrayList<>();
    List<Path> modules = new ArrayList<>();
    for (Path lib : all) {
      String name = lib.getFileName().toString();
      if (serving == null || serving.contains(name)) {
        (name.startsWith("berth-") ? modules : libraries).add(lib);
      }
    }
    return new BerthDistribution(jar, libraries, modules, version);
  }

  /**
   * Every jar of a launcher's Class-Path: the whole installation, with what builds images, talks to
   * clusters and trains (Berth's own image, which a training Job's pod publishes with).
   */
  public static BerthDistribution whole(Path launcher, String version) {
    Path jar = launcher.toAbsolutePath().normalize();
    List<Path> libraries = new ArrayList<>();
    List<Path> modules = new ArrayList<>();
    for (Path lib : classPath(jar, manifest(jar))) {
      (lib.getFileName().toString().startsWith("berth-") ? modules : libraries).add(lib);
    }
    return new BerthDistribution(jar, libraries, modules, version);
  }

  /** The jars a launcher's manifest's Class-Path names, each checked to be there. */
  private static List<Path> classPath(Path jar, Attributes manifest) {
    String classPath = manifest == null ? null : manifest.getValue(Attributes.Name.CLASS_PATH);
    if (classPath == null) {
      throw new BerthException(
          jar + " has no Class-Path; build Berth with 'mvn package' (bin/berth does it for you)");
    }
    List<Path> all = new ArrayList<>();
    for (String entry : classPath.trim().split("\\s+")) {
      Path lib = jar.getParent().resolve(entry).normalize();
      if (!Files.isRegularFile(lib)) {
        throw new BerthException(
            lib + " (on " + jar.getFileName() + "'s Class-Path) is missing; rebuild Berth");
      }
      all.add(lib);
    }
    return all;
  }

  /** The artifact ids, each after a space, of the engines asked for. */
  private static String engineRoots(String attribute, Set<String> engines) {
    StringBuilder out = new StringBuilder();
    if (attribute == null) {
      return "";
    }
    for (String pair : attribute.trim().split("\\s+")) {
      int eq = pair.indexOf('=');
      if (eq > 0 && engines.contains(pair.substring(0, eq))) {
        out.append(' ').append(pair.substring(eq + 1));
      }
    }
    return out.toString();
  }

  /**
   * File names of the jars serving needs: the roots (matched by artifact id) and everything their
   * manifests' Class-Path names.
   */
  private static Set<String> servingJars(List<Path> classPath, String[] roots) {
    Set<String> names = new HashSet<>();
    for (String root : roots) {
      Pattern artifact = Pattern.compile(Pattern.quote(root) + "-\\d[^/]*\\.jar");
      Path jar =
          classPath.stream()
              .filter(p -> artifact.matcher(p.getFileName().toString()).matches())
              .findFirst()
              .orElseThrow(
                  () ->
                      new BerthException(
                          "the launcher's "
                              + SERVING_ROOTS
                              + " names "
                              + root
                              + ", which is not on its Class-Path; rebuild Berth"));
      names.add(jar.getFileName().toString());
      Attributes manifest = manifest(jar);
      String own = manifest == null ? null : manifest.getValue(Attributes.Name.CLASS_PATH);
      if (own != null) {
        for (String entry : own.trim().split("\\s+")) {
          names.add(Path.of(entry).getFileName().toString());
        }
      }
    }
    return names;
  }

  private static Attributes manifest(Path jar) {
    try (JarFile file = new JarFile(jar.toFile())) {
      return file.getManifest() == null ? null : file.getManifest().getMainAttributes();
    } catch (IOException e) {
      throw new BerthException("cannot read " + jar + ": " + e.getMessage(), e);
    }
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
