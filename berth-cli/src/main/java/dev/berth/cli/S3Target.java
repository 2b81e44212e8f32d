package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelRepository;
import dev.berth.runtime.ServiceSpec;
import dev.berth.store.S3Models;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * {@code berth train --to s3://BUCKET/PREFIX}: a model repository in S3 (or an S3-compatible
 * store), the model under {@code PREFIX/MODEL/} as {@code berth serve s3://BUCKET/PREFIX} reads it.
 * The model as it is is downloaded into a working directory for the check and the gate; publishing
 * uploads the version's files under {@code PREFIX/MODEL/N/} (a new model's model.yaml first), and a
 * failed upload deletes what it wrote. S3 has no rename: a server polling the store may see the
 * version's files arrive one by one, and a version missing files fails to load and is tried again
 * once they are all there, the version serving before keeping on. Its own class, so that the
 * store's classes load only when a job publishes to S3.
 */
final class S3Target implements TrainCommand.Target {
  private final String model;
  private final S3Models s3;
  private final S3Models.Location location;
  private final Path work;
  private final Path modelDir;

  S3Target(String model, String reference, String endpoint) {
    this.model = model;
    this.location = S3Models.Location.parse(reference).child(model);
    this.s3 = S3Models.connect(endpoint, System.err::println);
    try {
      this.work = Files.createTempDirectory("berth-train-model-");
    } catch (IOException e) {
      s3.close();
      throw new BerthException("cannot create a working directory: " + e.getMessage(), e);
    }
    this.modelDir = work.resolve(model);
    try {
      Files.createDirectories(modelDir);
      if (s3.downloadTree(location, modelDir).isEmpty()) {
        System.err.println(location + " holds no model yet; the job's version starts it");
        Files.delete(modelDir);
      }
    } catch (IOException | RuntimeException e) {
      close();
      if (e instanceof BerthException be) {
        throw be;
      }
      throw new BerthException("cannot read " + location + ": " + e.getMessage(), e);
    }
  }

  @Override
  public Path modelDir() {
    return modelDir;
  }

  @Override
  public String where() {
    return location.toString();
  }

  @Override
  public long publish(Path output, long version, boolean next, Path newModelYaml) {
    java.util.List<String> now = s3.paths(location);
    long v = version;
    if (taken(now, v)) {
      if (!next) {
        throw new BerthException(
            "version "
                + v
                + " of model '"
                + model
                + "' appeared in "
                + location
                + " while the job ran; nothing was published");
      }
      v =
          1
              + now.stream()
                  .map(p -> p.substring(0, Math.max(0, p.indexOf('/'))))
                  .filter(ModelRepository::isValidVersion)
                  .mapToLong(Long::parseLong)
                  .max()
                  .orElse(0);
    }
    Path yaml = newModelYaml != null ? newModelYaml : modelDir.resolve(ModelConfig.FILE_NAME);
    if (!now.contains(ModelConfig.FILE_NAME)) {
      // a new model: its model.yaml goes up first, so that its first version is served with it;
      // one there must be, as berth serve knows a model folder in S3 by it
      Path alone = work.resolve("model-yaml");
      try {
        Files.createDirectories(alone);
        if (Files.isRegularFile(yaml)) {
          Files.copy(yaml, alone.resolve(ModelConfig.FILE_NAME));
        } else {
          Files.writeString(
              alone.resolve(ModelConfig.FILE_NAME),
              "apiVersion: " + ModelConfig.API_VERSION + "\nkind: " + ModelConfig.KIND + "\n");
        }
      } catch (IOException e) {
        throw new BerthException("cannot stage " + yaml + ": " + e.getMessage(), e);
      }
      s3.uploadTree(alone, location);
      try {
        s3.uploadTree(output, location.child(Long.toString(v)));
      } catch (RuntimeException e) {
        s3.delete(location, List.of(ModelConfig.FILE_NAME)); // the new model was not published
        throw e;
      }
      return v;
    }
    s3.uploadTree(output, location.child(Long.toString(v)));
    return v;
  }

  private static boolean taken(java.util.List<String> paths, long version) {
    String prefix = version + "/";
    return paths.stream().anyMatch(p -> p.startsWith(prefix));
  }

  @Override
  public void close() {
    s3.close();
    ServiceSpec.deleteTree(work);
  }
}
