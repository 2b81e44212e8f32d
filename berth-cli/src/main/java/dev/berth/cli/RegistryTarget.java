package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.runtime.ServiceSpec;
import dev.berth.store.DockerCredentials;
import dev.berth.store.OciModelStore;
import dev.berth.store.OciReference;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * {@code berth train --to oci://...}: the model as the registry holds it at that tag, pulled into a
 * working directory; publishing adds the new version and pushes the whole model back under the same
 * tag, whose manifest moves last, so a server following the tag sees the old model or the new one.
 * A model not pushed yet starts empty. Its own class, so that the store's classes load only when a
 * job publishes to a registry.
 */
final class RegistryTarget implements TrainCommand.Target {
  private final String model;
  private final OciReference ref;
  private final OciModelStore store;
  private final Path work;
  private final Path modelDir;
  // the manifest the model was pulled at (null: none yet), to refuse a push over a tag that moved
  private final String pulledDigest;

  RegistryTarget(String model, String reference) {
    this.model = model;
    this.ref = OciReference.parse(reference);
    this.store = new OciModelStore(DockerCredentials.fromEnvironment(), System.err::println);
    try {
      this.work = Files.createTempDirectory("berth-train-model-");
    } catch (IOException e) {
      throw new BerthException("cannot create a working directory: " + e.getMessage(), e);
    }
    this.modelDir = work.resolve(model);
    try {
      var current = store.find(ref);
      if (current.isPresent()) {
        String name = current.get().annotations().get(dev.berth.store.ModelArtifact.NAME);
        if (name != null && !name.equals(model)) {
          throw new BerthException(
              ref
                  + " holds model '"
                  + name
                  + "', not '"
                  + model
                  + "'; publish the job's model under a tag of its own");
        }
        System.err.println("pulling " + ref + " (the model as it is) ...");
        store.download(current.get(), Files.createDirectories(modelDir));
        pulledDigest = current.get().digest();
      } else {
        System.err.println(ref + " holds no model yet; the job's version starts it");
        pulledDigest = null;
      }
    } catch (IOException | RuntimeException e) {
      close();
      if (e instanceof BerthException be) {
        throw be;
      }
      throw new BerthException("cannot read " + ref + ": " + e.getMessage(), e);
    }
  }

  @Override
  public Path modelDir() {
    return modelDir;
  }

  @Override
  public String where() {
    return ref.toString();
  }

  @Override
  public long publish(Path output, long version, boolean next, Path newModelYaml) {
    String now = store.find(ref).map(OciModelStore.Resolved::digest).orElse(null);
    if (!java.util.Objects.equals(now, pulledDigest)) {
      throw new BerthException(
          ref
              + " moved while the job ran (another push or training); run the job again so that"
              + " its version joins the model as it is now");
    }
    if (newModelYaml != null) {
      try {
        Files.createDirectories(modelDir);
        Files.copy(newModelYaml, modelDir.resolve(dev.berth.runtime.ModelConfig.FILE_NAME));
      } catch (IOException e) {
        throw new BerthException("cannot stage " + newModelYaml + ": " + e.getMessage(), e);
      }
    }
    TrainCommand.publish(output, modelDir.resolve(Long.toString(version)));
    store.push(modelDir, model, ModelEngines.of(modelDir, model), ref);
    return version;
  }

  @Override
  public void close() {
    ServiceSpec.deleteTree(work);
  }
}
