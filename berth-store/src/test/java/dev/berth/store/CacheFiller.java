package dev.berth.store;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * A second server in its own process, for the test of two servers filling one cache: resolves an
 * oci:// reference into the cache and prints whether it downloaded and where the model is.
 */
public final class CacheFiller {
  private CacheFiller() {}

  public static void main(String[] args) throws Exception {
    ModelCache cache = new ModelCache(Path.of(args[0]), Long.MAX_VALUE);
    OciModelStore store = new OciModelStore(new DockerCredentials(List.of(), Map.of()), l -> {});
    OciModelStore.Resolved resolved = store.resolve(OciReference.parse(args[1]));
    try (ModelCache.Entry e =
        cache.open(resolved.digest(), tree -> store.download(resolved, tree))) {
      System.out.println("filled=" + e.filled() + " dir=" + e.dir());
    }
  }
}
