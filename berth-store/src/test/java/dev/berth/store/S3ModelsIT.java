package dev.berth.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.BerthException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.sync.RequestBody;

/** Models in a real S3 API server (S3Proxy): one model, a repository, new objects, refusals. */
class S3ModelsIT {
  @TempDir static Path shared;
  private static TestS3 s3;
  private static Path model;

  @TempDir Path work;
  private final List<String> progress = new ArrayList<>();

  @BeforeAll
  static void start() throws Exception {
    s3 = TestS3.start(Files.createDirectories(shared.resolve("s3")));
    model = OciModelStoreIT.writeModel(shared.resolve("minilm"), 51);
    s3.upload(model, "models", "team/minilm");
    s3.upload(OciModelStoreIT.writeModel(shared.resolve("a"), 52), "models", "repo/a");
    s3.upload(OciModelStoreIT.writeModel(shared.resolve("b"), 53), "models", "repo/b");
  }

  @AfterAll
  static void stop() {
    if (s3 != null) {
      s3.close();
    }
  }

  private S3Models connect(String secret) {
    return S3Models.connect(
        s3.endpoint(),
        StaticCredentialsProvider.create(AwsBasicCredentials.create(TestS3.ACCESS_KEY, secret)),
        Map.of(),
        progress::add);
  }

  private RemoteModels remote(List<ModelSource> sources, Path cache) throws Exception {
    return new RemoteModels(
        sources, new ModelCache(cache, Long.MAX_VALUE), Files.createTempDirectory(work, "repo-"));
  }

  @Test
  void aModelUnderAPrefixIsServedAndARestartDownloadsNothing() throws Exception {
    try (S3Models store = connect(TestS3.SECRET_KEY)) {
      List<ModelSource> sources =
          store.sources(S3Models.Location.parse("s3://models/team/minilm/"));
      assertEquals(List.of("minilm"), sources.stream().map(ModelSource::name).toList());
      Path cache = work.resolve("cache");
      try (RemoteModels remote = remote(sources, cache)) {
        assertEquals(List.of("minilm"), remote.refresh(true));
        Path served = remote.repository().resolve("minilm");
        for (String f :
            List.of("model.yaml", "berth.sig", "1/model.onnx", "2/tokenizer/tokenizer.json")) {
          assertArrayEquals(
              Files.readAllBytes(model.resolve(f)), Files.readAllBytes(served.resolve(f)), f);
        }
        assertTrue(
            progress.stream().anyMatch(l -> l.startsWith("pulling s3://models/team/minilm")),
            progress.toString());
      }
      progress.clear();
      try (RemoteModels again = remote(sources, cache)) {
        assertEquals(List.of("minilm"), again.refresh(true));
        assertTrue(progress.stream().noneMatch(l -> l.startsWith("pulling")), progress.toString());
      }
    }
  }

  @Test
  void aPrefixOfModelFoldersServesEachAndANewObjectIsPickedUp() throws Exception {
    Path copy = OciModelStoreIT.writeModel(work.resolve("c"), 54);
    s3.upload(copy, "changing", "m");
    try (S3Models store = connect(TestS3.SECRET_KEY)) {
      assertEquals(
          List.of("a", "b"),
          store.sources(S3Models.Location.parse("s3://models/repo")).stream()
              .map(ModelSource::name)
              .toList());
      try (RemoteModels remote =
          remote(
              store.sources(S3Models.Location.parse("s3://changing/m")), work.resolve("cache"))) {
        remote.refresh(true);
        String before = remote.digest("m").orElseThrow();
        assertEquals(List.of(), remote.refresh(false), "nothing changed");
        byte[] changed = "a new version of the weights".getBytes();
        s3.client()
            .putObject(
                b -> b.bucket("changing").key("m/1/model.onnx"), RequestBody.fromBytes(changed));
        assertEquals(List.of("m"), remote.refresh(false));
        assertTrue(!before.equals(remote.digest("m").orElseThrow()));
        assertArrayEquals(
            changed, Files.readAllBytes(remote.repository().resolve("m/1/model.onnx")));
      }
    }
  }

  @Test
  void refusalsNameTheSourceAndWhatToDo() {
    try (S3Models wrong = connect("not-the-secret")) {
      BerthException e =
          assertThrows(
              BerthException.class,
              () -> wrong.sources(S3Models.Location.parse("s3://models/team/minilm")));
      assertTrue(e.getMessage().contains("s3://models/team/minilm"), e.getMessage());
      assertTrue(e.getMessage().contains("AWS_ACCESS_KEY_ID"), e.getMessage());
    }
    try (S3Models store = connect(TestS3.SECRET_KEY)) {
      BerthException bucket =
          assertThrows(
              BerthException.class,
              () -> store.sources(S3Models.Location.parse("s3://no-such-bucket/m")));
      assertTrue(bucket.getMessage().contains("bucket does not exist"), bucket.getMessage());
      BerthException empty =
          assertThrows(
              BerthException.class,
              () -> store.sources(S3Models.Location.parse("s3://models/nothing")));
      assertTrue(empty.getMessage().contains("holds no model"), empty.getMessage());
    }
    assertThrows(
        dev.berth.api.InvalidInputException.class, () -> S3Models.Location.parse("s3://A_B/m"));
  }
}
