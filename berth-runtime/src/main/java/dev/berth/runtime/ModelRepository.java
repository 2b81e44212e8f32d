package dev.berth.runtime;

import dev.berth.api.BerthException;
import dev.berth.api.ConfigException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A model repository on disk: {@code REPO/<model>/<version>/<model file>} plus an optional {@code
 * REPO/<model>/model.yaml}. Versions are positive whole numbers; the highest ready one answers when
 * a request names none.
 */
public final class ModelRepository {
  private static final Pattern MODEL_NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,127}");
  private static final Pattern VERSION = Pattern.compile("[1-9][0-9]{0,17}");

  private final Path root;

  public ModelRepository(Path root) {
    this.root = root.toAbsolutePath().normalize();
  }

  public Path root() {
    return root;
  }

  /** Whether a string is a valid model name (no paths, no traversal). */
  public static boolean isValidModelName(String name) {
    return name != null && MODEL_NAME.matcher(name).matches() && !name.contains("..");
  }

  /** Whether a string is a valid version (a positive whole number). */
  public static boolean isValidVersion(String version) {
    return version != null && VERSION.matcher(version).matches();
  }

  /**
   * One model found in the repository.
   *
   * @param name model name (the directory name)
   * @param dir the model's directory
   * @param config its model.yaml, or null when that file is unusable
   * @param configError why model.yaml is unusable, or null
   * @param versions its version directories, lowest first
   */
  public record ModelSource(
      String name,
      Path dir,
      ModelConfig config,
      ConfigException configError,
      List<Version> versions) {
    public ModelSource {
      versions = List.copyOf(versions);
    }
  }

  /** One version directory of a model. */
  public record Version(long number, Path dir) {
    public String label() {
      return Long.toString(number);
    }
  }

  /**
   * Lists the models in the repository. A model whose model.yaml is broken is still listed, with
   * the error, so it can be reported while the others load.
   *
   * @throws BerthException when the repository itself cannot be read
   */
  public List<ModelSource> scan() {
    if (!Files.isDirectory(root)) {
      throw new BerthException(
          "model repository "
              + root
              + " is not a directory; give a directory that holds"
              + " <model>/<version>/model.onnx");
    }
    List<ModelSource> models = new ArrayList<>();
    for (Path dir : children(root)) {
      if (isModelDir(dir)) {
        models.add(source(dir));
      }
    }
    return models;
  }

  /** The names of the model directories in the repository, without reading them. */
  public List<String> modelNames() {
    if (!Files.isDirectory(root)) {
      return List.of();
    }
    return children(root).stream()
        .filter(ModelRepository::isModelDir)
        .map(p -> p.getFileName().toString())
        .toList();
  }

  /**
   * Reads one model of the repository.
   *
   * @return the model, or empty when the repository has no directory of that name
   */
  public Optional<ModelSource> find(String name) {
    if (!isValidModelName(name)) {
      return Optional.empty();
    }
    Path dir = root.resolve(name);
    return isModelDir(dir) ? Optional.of(source(dir)) : Optional.empty();
  }

  private static boolean isModelDir(Path dir) {
    String name = dir.getFileName().toString();
    return !name.startsWith(".") && Files.isDirectory(dir) && isValidModelName(name);
  }

  private static ModelSource source(Path dir) {
    ModelConfig config = null;
    ConfigException error = null;
    try {
      config = ModelConfig.load(dir);
    } catch (ConfigException e) {
      error = e;
    }
    List<Version> versions =
        children(dir).stream()
            .filter(Files::isDirectory)
            .filter(p -> isValidVersion(p.getFileName().toString()))
            .map(p -> new Version(Long.parseLong(p.getFileName().toString()), p))
            .sorted(Comparator.comparingLong(Version::number))
            .toList();
    return new ModelSource(dir.getFileName().toString(), dir, config, error, versions);
  }

  /**
   * What a version directory holds now (names, sizes and modification times of its files), to tell
   * whether it changed since a load failed.
   */
  static String fingerprint(Path versionDir) {
    try (Stream<Path> files =
        Files.walk(versionDir, 4, java.nio.file.FileVisitOption.FOLLOW_LINKS)) {
      StringBuilder out = new StringBuilder();
      for (Path f : files.sorted().toList()) {
        if (Files.isRegularFile(f)) {
          out.append(versionDir.relativize(f))
              .append(' ')
              .append(Files.size(f))
              .append(' ')
              .append(Files.getLastModifiedTime(f).toMillis())
              .append('\n');
        }
      }
      return out.toString();
    } catch (IOException | java.io.UncheckedIOException e) {
      return "unreadable: " + e;
    }
  }

  private static List<Path> children(Path dir) {
    try (Stream<Path> s = Files.list(dir)) {
      return s.sorted().toList();
    } catch (IOException e) {
      throw new BerthException("cannot list " + dir + ": " + e.getMessage(), e);
    }
  }
}
