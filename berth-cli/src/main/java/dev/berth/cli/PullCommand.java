package dev.berth.cli;

import dev.berth.store.DockerCredentials;
import dev.berth.store.OciModelStore;
import dev.berth.store.OciReference;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Parameters;

/** {@code berth pull oci://REGISTRY/REPO:TAG DIR}: a model out of a registry. */
@Command(
    name = "pull",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
      "Pull a model that berth push stored in an OCI registry into a new directory. Every layer"
          + " is checked against its digest and the unpacked files against the model's sha256"
          + " manifest before DIR appears; a failed pull leaves nothing behind. Serve it with"
          + " berth serve, which checks its signature with --trust.",
      ""
    })
final class PullCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      paramLabel = "oci://REGISTRY/REPO[:TAG|@DIGEST]",
      description = "The model to pull.")
  String source;

  @Parameters(
      index = "1",
      paramLabel = "DIR",
      description = "The model directory to write; it must not exist or be empty.")
  Path dir;

  @Override
  public Integer call() {
    OciReference ref = OciReference.parse(source);
    OciModelStore store =
        new OciModelStore(DockerCredentials.fromEnvironment(), System.err::println);
    OciModelStore.Pulled pulled = store.pull(ref, dir);
    System.out.println(pulled.dir());
    return 0;
  }
}
