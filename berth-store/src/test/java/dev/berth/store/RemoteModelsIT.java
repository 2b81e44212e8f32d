package dev.berth.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.api.BerthException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Models served from a registry through the model cache: hits, moved tags, failures, sharing. */
class RemoteModelsIT {
  @TempDir static Path shared;
  private static TestRegistry registry;

  @TempDir Path work;
  private final List<String> progress = new ArrayList<>();

  @BeforeAll
  static void start() throws Exception {
    registry = TestRegistry.start(Files.createDirectories(shared.resolve("registry")));
  }

  @AfterAll
  static void stop() {
    if (registry != null) {
      registry.close();
    }
  }

  private OciModelStore store() {
    return new OciModelStore(new DockerCredentials(List.of(), Map.of()), progress::add);
  }

  private OciReference ref(String repoAndTag) {
    return OciReference.parse("oci://" + registry.address() + "/" + repoAndTag);
  }

  private RemoteModels remote(OciReference ref, ModelCache cache) throws Exception {
    return new RemoteModels(
        List.of(ModelSource.oci(ref, store())), cache, Files.createTempDirectory(work, "repo-"));
  }

  private static List<String> files(Path dir) throws Exception {
    try (Stream<Path> walk = Files.walk(dir)) {
      return walk.filter(Files::isRegularFile)
          .map(p -> dir.relativize(p).toString())
          .sorted()
          .toList();
    }
  }

  @Test
  void aSecondServerOnTheSameCacheDownloadsNothing() throws Exception {
    Path model = OciModelStoreIT.writeModel(work.resolve("m"), 11);
    OciReference ref = ref("cache/minilm:1");
    store().push(model, "minilm", "onnx", ref);
    ModelCache cache = new ModelCache(work.resolve("cache"), Long.MAX_VALUE);
    try (RemoteModels first = remote(ref, cache)) {
      assertEquals(List.of("minilm"), first.refresh(true));
      Path served = first.repository().resolve("minilm");
      assertTrue(Files.isSymbolicLink(served));
      assertEquals(files(model), files(served.toRealPath()));
      assertArrayEquals(
          Files.readAllBytes(model.resolve("2/model.onnx")),
          Files.readAllBytes(served.resolve("2/model.onnx")));
      assertEquals(List.of(), first.refresh(true), "the tag did not move");
    }
    progress.clear();
    try (RemoteModels second = remote(ref, new ModelCache(work.resolve("cache"), Long.MAX_VALUE))) {
      assertEquals(List.of("minilm"), second.refresh(true));
      assertTrue(
          progress.stream().noneMatch(l -> l.startsWith("pulling")),
          "nothing is downloaded: " + progress);
    }
  }

  @Test
  void aMovedTagIsPulledAndSwitchedAndAFailedRefreshKeepsWhatServes() throws Exception {
    OciReference ref = ref("moving/model:stable");
    Path v1 = OciModelStoreIT.writeModel(work.resolve("v1"), 21);
    String d1 = store().push(v1, "model", null, ref).digest();
    ModelCache cache = new ModelCache(work.resolve("cache"), Long.MAX_VALUE);
    try (RemoteModels remote = remote(ref, cache)) {
      remote.refresh(true);
      assertEquals(d1, remote.digest("model").orElseThrow());

      Path v2 = OciModelStoreIT.writeModel(work.resolve("v2"), 22);
      String d2 = store().push(v2, "model", null, ref).digest();
      assertEquals(List.of("model"), remote.refresh(false));
      assertEquals(d2, remote.digest("model").orElseThrow());
      Path served = remote.repository().resolve("model");
      assertArrayEquals(
          Files.readAllBytes(v2.resolve("1/model.onnx")),
          Files.readAllBytes(served.resolve("1/model.onnx")));

      // a third push whose version layer is damaged in the registry
      Path v3 = OciModelStoreIT.writeModel(work.resolve("v3"), 23);
      OciModelStore.Pushed p3 = store().push(v3, "model", null, ref);
      String manifest = new String(store().resolve(ref).manifest().bytes(), StandardCharsets.UTF_8);
      String layer =
          new ObjectMapper().readTree(manifest).path("layers").get(1).path("digest").asText();
      Path data = registry.blobData(layer);
      byte[] bytes = Files.readAllBytes(data);
      bytes[10] ^= 1;
      Files.write(data, bytes);
      assertEquals(List.of(), remote.refresh(false));
      assertEquals(d2, remote.digest("model").orElseThrow(), "still serving the second push");
      String problem = remote.problems().get("model");
      assertTrue(problem != null && problem.contains("does not match its manifest"), problem);
      assertFalse(cache.has(p3.digest()), "no entry for content that did not verify");
      try (Stream<Path> tmp = Files.list(cache.root().resolve("tmp"))) {
        assertEquals(List.of(), tmp.toList(), "nothing half-written left behind");
      }
    }
  }

  @Test
  void aRepositoryIndexServesEachModelAndOnlyAChangedOneReloads() throws Exception {
    Path repo = work.resolve("repo");
    OciModelStoreIT.writeModel(repo.resolve("alpha"), 71);
    OciModelStoreIT.writeModel(repo.resolve("beta"), 72);
    OciReference ref = ref("index/models:live");
    store().pushRepository(repo, ref, (dir, name) -> null);
    List<ModelSource> sources = ModelSource.ociAll(ref, store());
    assertEquals(List.of("alpha", "beta"), sources.stream().map(ModelSource::name).toList());
    try (RemoteModels remote =
        new RemoteModels(
            sources,
            new ModelCache(work.resolve("cache"), Long.MAX_VALUE),
            Files.createDirectories(work.resolve("served")))) {
      assertEquals(List.of("alpha", "beta"), remote.refresh(true));
      // a new beta, alpha unchanged
      OciModelStoreIT.deleteTree(repo.resolve("beta"));
      OciModelStoreIT.writeModel(repo.resolve("beta"), 73);
      store().pushRepository(repo, ref, (dir, name) -> null);
      assertEquals(List.of("beta"), remote.refresh(false));
      assertArrayEquals(
          Files.readAllBytes(repo.resolve("beta/1/model.onnx")),
          Files.readAllBytes(remote.repository().resolve("beta/1/model.onnx")));
    }
  }

  @Test
  void aMissingSourceStopsTheStartWithItsName() throws Exception {
    ModelCache cache = new ModelCache(work.resolve("cache"), Long.MAX_VALUE);
    try (RemoteModels remote = remote(ref("absent/model:1"), cache)) {
      BerthException e = assertThrows(BerthException.class, () -> remote.refresh(true));
      assertTrue(e.getMessage().contains("absent/model:1 does not exist"), e.getMessage());
    }
  }

  @Test
  void twoServersFillingOneCacheAtOnceDownloadOnce() throws Exception {
    Path model = OciModelStoreIT.writeModel(work.resolve("m"), 31);
    OciReference ref = ref("shared/model:1");
    store().push(model, "model", null, ref);
    Path cache = work.resolve("cache");
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    List<Process> servers = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      servers.add(
          new ProcessBuilder(
                  java,
                  "-cp",
                  System.getProperty("java.class.path"),
                  CacheFiller.class.getName(),
                  cache.toString(),
                  ref.toString())
              .redirectErrorStream(true)
              .start());
    }
    List<String> said = new ArrayList<>();
    for (Process p : servers) {
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
      assertTrue(p.waitFor(2, TimeUnit.MINUTES));
      assertEquals(0, p.exitValue(), out);
      said.add(out);
    }
    assertEquals(
        1, said.stream().filter(s -> s.startsWith("filled=true")).count(), said.toString());
    assertEquals(said.get(0).split(" dir=")[1], said.get(1).split(" dir=")[1]);
    assertEquals(files(model), files(Path.of(said.get(0).split(" dir=")[1])));
  }

  @Test
  void theCacheBoundEvictsTheLeastRecentlyUsedModelNobodyServes() throws Exception {
    ModelCache cache = new ModelCache(work.resolve("cache"), 2_000, Duration.ZERO);
    String a = "sha256:" + "a".repeat(64);
    String b = "sha256:" + "b".repeat(64);
    String c = "sha256:" + "c".repeat(64);
    ModelCache.Filler kilobyte = dir -> write(dir.resolve("f"), 1_500);
    cache.open(a, kilobyte).close();
    ModelCache.Entry held = cache.open(b, kilobyte);
    assertFalse(cache.has(a), "a was least recently used and nobody held it");
    try (ModelCache.Entry third = cache.open(c, kilobyte)) {
      assertTrue(cache.has(b), "b is held by a server: never evicted");
      assertTrue(third.filled());
    }
    held.close();
    ModelCache.Entry again = cache.open(b, kilobyte);
    assertFalse(again.filled(), "b was still cached");
    again.close();
  }

  private static String probe(Path lockFile) throws Exception {
    Process p =
        new ProcessBuilder(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp",
                System.getProperty("java.class.path"),
                LockProbe.class.getName(),
                lockFile.toString())
            .redirectErrorStream(true)
            .start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
    assertTrue(p.waitFor(1, TimeUnit.MINUTES));
    return out;
  }

  @Test
  void anEntryThisProcessServesStaysLockedWhateverElseItOpensOrEvicts() throws Exception {
    Path root = work.resolve("cache");
    ModelCache cache = new ModelCache(root, 2_000, Duration.ZERO);
    String a = "sha256:" + "1".repeat(64);
    String b = "sha256:" + "2".repeat(64);
    Path lockA = root.resolve("sha256/" + "1".repeat(64) + ".lock");
    ModelCache.Filler bytes = dir -> write(dir.resolve("f"), 1_500);
    ModelCache.Entry first = cache.open(a, bytes);
    ModelCache.Entry same = cache.open(a, bytes); // two models with the same files
    assertEquals(first.dir(), same.dir());
    // a fill over the bound tries to evict: it must neither evict a nor drop this process's lock
    try (ModelCache.Entry other = new ModelCache(root, 2_000, Duration.ZERO).open(b, bytes)) {
      assertTrue(other.filled());
      assertTrue(cache.has(a));
      assertEquals("held", probe(lockA), "another server sees the entry in use");
    }
    first.close();
    assertEquals("held", probe(lockA), "still used by the second model");
    same.close();
    assertEquals("free", probe(lockA));
  }

  @Test
  void whatAServerThatStoppedMidFillLeftIsSweptAtTheNextStart() throws Exception {
    Path root = work.resolve("cache");
    new ModelCache(root, Long.MAX_VALUE);
    Path leftover = root.resolve("tmp/" + "e".repeat(64) + "-12345/model/1");
    Files.createDirectories(leftover);
    Files.writeString(leftover.resolve("model.onnx"), "half");
    new ModelCache(root, Long.MAX_VALUE);
    try (Stream<Path> tmp = Files.list(root.resolve("tmp"))) {
      assertEquals(List.of(), tmp.toList());
    }
  }

  @Test
  void aDownloadThatFailsHalfWayLeavesNoEntry() throws Exception {
    ModelCache cache = new ModelCache(work.resolve("cache"), Long.MAX_VALUE);
    String d = "sha256:" + "d".repeat(64);
    assertThrows(
        BerthException.class,
        () ->
            cache.open(
                d,
                dir -> {
                  write(dir.resolve("half"), 100);
                  throw new BerthException("the connection dropped");
                }));
    assertFalse(cache.has(d));
    try (Stream<Path> tmp = Files.list(cache.root().resolve("tmp"))) {
      assertEquals(List.of(), tmp.toList());
    }
    try (ModelCache.Entry e = cache.open(d, dir -> write(dir.resolve("whole"), 100))) {
      assertTrue(e.filled());
      assertTrue(Files.exists(e.dir().resolve("whole")));
    }
  }

  private static void write(Path file, int bytes) {
    try {
      Files.write(file, new byte[bytes]);
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }
}
