package dev.berth.cli;

import static dev.berth.cli.ContainerTestEnv.berth;
import static dev.berth.cli.ContainerTestEnv.docker;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;

/**
 * {@code berth train} on a real Docker engine: a job whose output is published as the next version,
 * and jobs that fail, write nothing, write a model that does not load, run past their time limit or
 * are stopped, none of which publishes anything. The training image is the test base (Debian) with
 * a shell command for a trainer: what is tested is the run around it.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class TrainCommandIT {
  private Path work;
  private Path repo;
  private ContainerTestEnv env;
  private final Path data = BerthProcess.examples().resolve("minilm/1");

  @BeforeAll
  void setUp() throws Exception {
    env = ContainerTestEnv.require();
    work = Files.createTempDirectory(Path.of("target").toAbsolutePath(), "train-it-");
    repo = Files.createDirectories(work.resolve("repo"));
  }

  /** A job file running {@code script} in the test base, with MiniLM's files at /data. */
  private Path job(String name, String script, String extra) throws Exception {
    Path file = work.resolve(name + ".yaml");
    Files.writeString(
        file,
        "apiVersion: berth.dev/v1\n"
            + "kind: TrainingJob\n"
            + "name: "
            + name
            + "\n"
            + "model: embedder\n"
            + "image: "
            + env.base
            + "\n"
            + "command: [sh, -c]\n"
            + "args: ['"
            + script
            + "']\n"
            + "data: [{path: "
            + data
            + ", mount: /data}]\n"
            + "resources: {cpu: 1, memory: 512Mi}\n"
            + extra);
    return file;
  }

  private ContainerTestEnv.Result train(Path job) throws Exception {
    return berth(work, "train", job.toString(), "--to", repo.toString());
  }

  @Test
  void aJobsOutputIsPublishedAsTheNextVersionOnceItLoads() throws Exception {
    Path job = job("good", "echo reading /data; cp /data/model.onnx /output/ && echo trained", "");
    ContainerTestEnv.Result first = train(job).ok();
    assertTrue(first.err().contains("trained"), "the job's logs stream: " + first.err());
    assertTrue(
        first.out().contains("published model 'embedder' version 1 to " + repo), first.out());
    assertArrayEquals(
        Files.readAllBytes(data.resolve("model.onnx")),
        Files.readAllBytes(repo.resolve("embedder/1/model.onnx")));
    ContainerTestEnv.Result second = train(job).ok();
    assertTrue(second.out().contains("version 2"), second.out());
    assertTrue(Files.isRegularFile(repo.resolve("embedder/2/model.onnx")));

    // a version that exists is refused before anything runs
    ContainerTestEnv.Result again = train(job("pinned", "true", "version: 1\n"));
    assertEquals(2, again.code(), again.err());
    assertTrue(again.err().contains("version 1 of model 'embedder' exists already"), again.err());
  }

  @Test
  void aJobPublishesIntoARegistryAsTheModelsNextVersionUnderTheSameTag() throws Exception {
    try (dev.berth.store.TestRegistry registry =
        dev.berth.store.TestRegistry.start(Files.createDirectories(work.resolve("registry")))) {
      String ref = "oci://" + registry.address() + "/models/embedder:prod";
      Path job = job("pushed", "cp /data/model.onnx /data/tokenizer.json /output/", "");
      for (int version = 1; version <= 2; version++) {
        ContainerTestEnv.Result r = berth(work, "train", job.toString(), "--to", ref).ok();
        assertTrue(
            r.out().contains("published model 'embedder' version " + version + " to " + ref),
            r.out() + r.err());
      }
      var pulled =
          new dev.berth.store.OciModelStore(dev.berth.store.DockerCredentials.none(), line -> {})
              .find(dev.berth.store.OciReference.parse(ref))
              .orElseThrow();
      assertEquals("1,2", pulled.annotations().get(dev.berth.store.ModelArtifact.VERSIONS));
      assertEquals("onnx", pulled.annotations().get(dev.berth.store.ModelArtifact.ENGINE));
    }
  }

  @Test
  void aJobPublishesIntoAnS3RepositoryAsTheModelsNextVersion() throws Exception {
    try (dev.berth.store.TestS3 s3 =
        dev.berth.store.TestS3.start(Files.createDirectories(work.resolve("s3")))) {
      s3.client().createBucket(b -> b.bucket("models"));
      java.util.Map<String, String> aws = dev.berth.store.TestS3.clientEnvironment(work);
      Path job = job("s3", "cp /data/model.onnx /data/tokenizer.json /output/", "");
      String[] train = {
        "train", job.toString(), "--to", "s3://models/team", "--s3-endpoint", s3.endpoint()
      };
      for (int version = 1; version <= 2; version++) {
        ContainerTestEnv.Result r = berth(work, aws, train).ok();
        assertTrue(
            r.out()
                .contains(
                    "published model 'embedder' version "
                        + version
                        + " to s3://models/team/embedder"),
            r.out() + r.err());
      }
      ContainerTestEnv.Result failed =
          berth(
              work,
              aws,
              "train",
              job("s3-fails", "exit 1", "").toString(),
              "--to",
              "s3://models/team",
              "--s3-endpoint",
              s3.endpoint());
      assertEquals(1, failed.code(), failed.err());
      List<String> keys =
          s3.client().listObjectsV2(b -> b.bucket("models")).contents().stream()
              .map(software.amazon.awssdk.services.s3.model.S3Object::key)
              .filter(k -> !k.endsWith("/")) // S3Proxy's file store lists its folders
              .sorted()
              .toList();
      assertEquals(
          List.of(
              "team/embedder/1/model.onnx",
              "team/embedder/1/tokenizer.json",
              "team/embedder/2/model.onnx",
              "team/embedder/2/tokenizer.json",
              "team/embedder/model.yaml"),
          keys);
      byte[] uploaded =
          s3.client()
              .getObjectAsBytes(b -> b.bucket("models").key("team/embedder/2/model.onnx"))
              .asByteArray();
      assertArrayEquals(Files.readAllBytes(data.resolve("model.onnx")), uploaded);
    }
  }

  @Test
  void aJavaTrainerIsPackedIntoAnImageOfItsOwnAndRun() throws Exception {
    Path source = work.resolve("CopyTrainer.java");
    Files.writeString(
        source,
        "import java.nio.file.*;\n"
            + "public class CopyTrainer {\n"
            + "  public static void main(String[] args) throws Exception {\n"
            + "    Files.copy(Path.of(\"/data/model.onnx\"), Path.of(args[0], \"model.onnx\"));\n"
            + "    System.out.println(\"trained on Java \" + Runtime.version().feature());\n"
            + "  }\n"
            + "}\n");
    Path job = work.resolve("java-job.yaml");
    Files.writeString(
        job,
        "apiVersion: berth.dev/v1\nkind: TrainingJob\nname: java-trainer\nmodel: packed\n"
            + "java: {source: CopyTrainer.java}\n"
            + "args: [/output]\n"
            + "data: [{path: "
            + data
            + ", mount: /data}]\n");
    ContainerTestEnv.Result r =
        berth(
                work,
                "train",
                job.toString(),
                "--to",
                repo.toString(),
                "--base",
                env.baseJava,
                "--cache-dir",
                work.resolve("cache").toString())
            .ok();
    assertTrue(r.err().contains("compiling " + source), r.err());
    assertTrue(r.err().contains("trained on Java"), r.err());
    assertTrue(r.out().contains("published model 'packed' version 1"), r.out());
    assertArrayEquals(
        Files.readAllBytes(data.resolve("model.onnx")),
        Files.readAllBytes(repo.resolve("packed/1/model.onnx")));

    // a trainer that does not compile runs nothing
    Files.writeString(source, "public class CopyTrainer { broken }\n");
    ContainerTestEnv.Result broken =
        berth(work, "train", job.toString(), "--to", repo.toString(), "--base", env.baseJava);
    assertEquals(2, broken.code(), broken.err());
    assertTrue(broken.err().contains("does not compile"), broken.err());
  }

  @Test
  void theGateInModelYamlRefusesAWorseModelWithExitCode3AndPublishesNothing() throws Exception {
    // three-class models y = x + [0, 0, bias] and rows labelled by their largest value: a zero bias
    // is right on every row, 0.5 gets the 10 close rows wrong (0.9), 5 answers c always (0.3)
    Path models = Files.createDirectories(work.resolve("classifiers"));
    for (var m : java.util.Map.of("good", 0f, "close", 0.5f, "bad", 5f).entrySet()) {
      dev.berth.onnx.testing.OnnxModelWriter.graph(m.getKey())
          .input("x", dev.berth.onnx.testing.OnnxModelWriter.ElemType.FLOAT, -1, 3)
          .output("y", dev.berth.onnx.testing.OnnxModelWriter.ElemType.FLOAT, -1, 3)
          .initializer("c", new long[] {3}, 0f, 0f, m.getValue())
          .node("Add", java.util.List.of("x", "c"), java.util.List.of("y"))
          .write(models.resolve(m.getKey() + ".onnx"));
    }
    StringBuilder csv = new StringBuilder("x0,x1,x2,label\n");
    for (int i = 0; i < 30; i++) {
      csv.append("1,0,0,a\n0,1,0,b\n0,0,1,c\n");
    }
    csv.append("1,0,0.8,a\n".repeat(10));
    Path gateData = Files.writeString(work.resolve("gate.csv"), csv);
    Path modelYaml =
        Files.writeString(
            work.resolve("classifier-model.yaml"),
            "apiVersion: berth.dev/v1\nkind: Model\nlabels: [a, b, c]\n"
                + "gate: {data: "
                + gateData
                + ", min: 0.8, max-drop: 0.05}\n");
    java.util.function.Function<String, Path> job =
        model -> {
          try {
            return Files.writeString(
                work.resolve("gated-" + model + ".yaml"),
                "apiVersion: berth.dev/v1\nkind: TrainingJob\nname: gated-"
                    + model
                    + "\nmodel: classifier\nimage: "
                    + env.base
                    + "\ncommand: [sh, -c]\nargs: ['cp /data/"
                    + model
                    + ".onnx /output/model.onnx']\n"
                    + "data: [{path: "
                    + models
                    + ", mount: /data}]\nmodel-yaml: "
                    + modelYaml
                    + "\n");
          } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
          }
        };

    ContainerTestEnv.Result good = train(job.apply("good")).ok();
    assertTrue(good.err().contains("passed the gate: accuracy 1.0000 >= 0.8000"), good.err());
    assertTrue(good.out().contains("published model 'classifier' version 1"), good.out());
    assertArrayEquals(
        Files.readAllBytes(modelYaml), Files.readAllBytes(repo.resolve("classifier/model.yaml")));

    ContainerTestEnv.Result bad = train(job.apply("bad"));
    assertEquals(3, bad.code(), bad.err());
    assertTrue(bad.err().contains("refused by the gate"), bad.err());
    assertTrue(bad.err().contains("accuracy 0.3000 < 0.9500"), bad.err());

    ContainerTestEnv.Result close = train(job.apply("close"));
    assertEquals(3, close.code(), close.err());
    assertTrue(
        close.err().contains("accuracy 0.9000 < 0.9500")
            && close.err().contains("version 1 serving at 1.0000"),
        close.err());
    assertEquals(2, TrainCommand.nextVersion(repo.resolve("classifier")), "nothing published");

    // a gate whose data are gone stops the job before it runs
    Files.delete(gateData);
    ContainerTestEnv.Result noData = train(job.apply("good"));
    assertEquals(2, noData.code(), noData.err());
    assertTrue(noData.err().contains("gate.csv, which does not exist"), noData.err());
    assertFalse(noData.err().contains("pulling"), noData.err());
  }

  @Test
  void aFailedJobPublishesNothingAndShowsItsLastLines() throws Exception {
    long next = TrainCommand.nextVersion(repo.resolve("embedder"));
    ContainerTestEnv.Result failed = train(job("fails", "echo data is corrupt >&2; exit 3", ""));
    assertEquals(1, failed.code(), failed.err());
    assertTrue(failed.err().contains("failed with exit code 3"), failed.err());
    assertTrue(failed.err().contains("  data is corrupt"), failed.err());

    ContainerTestEnv.Result empty = train(job("empty", "echo done", ""));
    assertEquals(1, empty.code(), empty.err());
    assertTrue(empty.err().contains("wrote nothing to /output"), empty.err());

    ContainerTestEnv.Result broken =
        train(job("broken", "echo not a graph > /output/model.onnx", ""));
    assertEquals(1, broken.code(), broken.err());
    assertTrue(broken.err().contains("does not load"), broken.err());

    // a link would be read on this machine, not in the container
    ContainerTestEnv.Result linked =
        train(job("linked", "ln -s /etc/passwd /output/model.onnx", ""));
    assertEquals(1, linked.code(), linked.err());
    assertTrue(linked.err().contains("/output/model.onnx, which is a symbolic link"), linked.err());

    assertEquals(next, TrainCommand.nextVersion(repo.resolve("embedder")), "nothing published");
    assertNoPartial();
    assertNoContainer("fails");
  }

  @Test
  void aContainerAKilledRunLeftBehindIsRemovedFirst() throws Exception {
    docker(
            work,
            "create",
            "--name",
            "berth-train-leftover",
            "--label",
            TrainCommand.JOB_LABEL + "=leftover",
            env.base,
            "true")
        .ok();
    Path job = job("leftover", "cp /data/model.onnx /output/", "");
    ContainerTestEnv.Result r =
        berth(work, "train", job.toString(), "--to", work.resolve("repo-leftover").toString()).ok();
    assertTrue(r.out().contains("published model 'embedder'"), r.out());
    assertNoContainer("leftover");
  }

  @Test
  void aJobPastItsTimeLimitIsStopped() throws Exception {
    long start = System.nanoTime();
    ContainerTestEnv.Result slow = train(job("slow", "sleep 600", "time-limit: 2s\n"));
    assertEquals(1, slow.code(), slow.err());
    assertTrue(slow.err().contains("ran past its time limit"), slow.err());
    assertTrue(System.nanoTime() - start < Duration.ofSeconds(60).toNanos());
    assertNoContainer("slow");
  }

  @Test
  void ctrlCStopsTheJobAndRemovesItsContainer() throws Exception {
    Path job = job("stopped", "echo started; sleep 600", "");
    try (BerthProcess train =
        BerthProcess.start(
            Files.createDirectories(work.resolve("stopped-run")),
            "train",
            job.toString(),
            "--to",
            repo.toString())) {
      await()
          .atMost(Duration.ofSeconds(120))
          .until(() -> Files.readString(train.stderr).contains("started"));
      train.process.destroy(); // SIGTERM, as Ctrl-C's SIGINT
      assertTrue(train.process.waitFor(60, java.util.concurrent.TimeUnit.SECONDS));
      assertEquals(130, train.process.exitValue(), Files.readString(train.stderr));
    }
    assertNoContainer("stopped");
  }

  private void assertNoPartial() throws Exception {
    Path model = repo.resolve("embedder");
    if (!Files.isDirectory(model)) {
      return;
    }
    try (var s = Files.list(model)) {
      for (Path p : s.toList()) {
        assertFalse(p.getFileName().toString().startsWith("."), "a partial version is left: " + p);
      }
    }
  }

  private void assertNoContainer(String job) throws Exception {
    String all = docker(work, "ps", "-a", "--format", "{{.Names}}").ok().out();
    assertFalse(all.contains("berth-train-" + job), all);
  }
}
