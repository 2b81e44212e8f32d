package dev.berth.cli;

import dev.berth.store.DockerCredentials;
import dev.berth.store.ModelArtifact;
import dev.berth.store.OciModelStore;
import dev.berth.store.OciReference;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code berth push MODEL_DIR oci://REGISTRY/REPO:TAG}: a model into a registry. */
@Command(
    name = "push",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
      "Push a model directory to an OCI registry as an artifact: one layer for model.yaml (and"
          + " its signature, if signed), one per version folder, annotated with the model's name,"
          + " versions, engine and files manifest. Pushing the same model again uploads nothing."
          + " Credentials come from the Docker credential files (docker login), as for berth"
          + " build; a registry on a loopback address is spoken to over plain HTTP.",
      ""
    })
final class PushCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      paramLabel = "MODEL_DIR",
      description =
          "The model directory, or a repository directory (one folder a model), pushed as one"
              + " image index listing each model.")
  Path modelDir;

  @Parameters(
      index = "1",
      paramLabel = "oci://REGISTRY/REPO:TAG",
      description = "Where to push it, such as oci://registry.example.com/team/minilm:1.0.")
  String target;

  @Option(
      names = "--name",
      paramLabel = "NAME",
      description = "The model's name in the annotations (default: MODEL_DIR's folder name).")
  String name;

  @Override
  public Integer call() {
    OciReference ref = OciReference.parse(target);
    Path dir = modelDir.toAbsolutePath().normalize();
    String model = name != null ? name : dir.getFileName().toString();
    OciModelStore store =
        new OciModelStore(DockerCredentials.fromEnvironment(), System.err::println);
    // a model directory (model.yaml or version folders), else a repository of them
    boolean single =
        Files.isRegularFile(dir.resolve("model.yaml"))
            || ModelArtifact.modelDirs(dir.getParent() == null ? dir : dir.getParent())
                .contains(dir);
    OciModelStore.Pushed pushed =
        single
            ? store.push(dir, model, ModelEngines.of(dir, model), ref)
            : store.pushRepository(dir, ref, ModelEngines::of);
    System.out.println(pushed.reference().withDigest(pushed.digest()));
    return 0;
  }
}
