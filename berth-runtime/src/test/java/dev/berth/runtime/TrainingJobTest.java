package dev.berth.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.ConfigException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

class TrainingJobTest {
  private static final String HEADER = "apiVersion: berth.dev/v1\nkind: TrainingJob\n";

  @TempDir Path dir;

  private TrainingJob load(String yaml) throws IOException {
    Files.createDirectories(dir.resolve("data"));
    Files.writeString(
        dir.resolve("data/model.yaml"),
        "apiVersion: berth.dev/v1\nkind: Model\ngate: {data: gate/t.csv, min: 0.5}\n");
    Files.writeString(
        dir.resolve("data/bad.yaml"), "apiVersion: berth.dev/v1\nkind: Model\nbatchin: 1\n");
    Path file = dir.resolve("train.yaml");
    Files.writeString(file, yaml);
    return TrainingJob.load(file);
  }

  @Test
  void readsEveryKeyWithPathsRelativeToTheFile() throws IOException {
    TrainingJob job =
        load(
            HEADER
                + "name: mnist-train\nmodel: mnist\nversion: 4\n"
                + "image: registry.example.com/team/trainer:1\n"
                + "command: [python, train.py]\nargs: [--epochs, \"3\"]\n"
                + "env: {SEED: \"7\"}\n"
                + "data: [{path: data, mount: /data}]\n"
                + "resources: {cpu: 1.5, memory: 2Gi}\n"
                + "time-limit: 20m\noutput: /out\nto: repo\nmodel-yaml: data/model.yaml\n");
    assertEquals("mnist-train", job.name());
    assertEquals("mnist", job.model());
    assertEquals(4, job.version());
    assertEquals(List.of("python", "train.py"), job.command());
    assertEquals(List.of("--epochs", "3"), job.args());
    assertEquals(Map.of("SEED", "7"), job.env());
    assertEquals(List.of(new TrainingJob.DataSet(dir.resolve("data"), "/data")), job.data());
    assertEquals(1.5, job.cpus());
    assertEquals(2L << 30, job.memoryBytes());
    assertEquals(Duration.ofMinutes(20), job.timeLimit());
    assertEquals("/out", job.output());
    assertEquals(dir.resolve("repo").toString(), job.to());
    assertEquals(dir.resolve("data/model.yaml"), job.modelYaml());
  }

  @Test
  void aClaimAndGpusAreForTheCluster() throws IOException {
    TrainingJob job =
        load(
            HEADER
                + "name: t\nmodel: m\nimage: i\n"
                + "data: [{pvc: fashion-data, sub-path: v3, mount: /data}]\n"
                + "resources: {gpus: 2}\n");
    assertEquals(List.of(new TrainingJob.DataSet(null, "/data", "fashion-data", "v3")), job.data());
    assertEquals(2, job.gpus());
  }

  @Test
  void defaults() throws IOException {
    TrainingJob job = load(HEADER + "name: t\nmodel: m\nimage: trainer:1\n");
    assertEquals(0, job.version(), "the next version");
    assertEquals(TrainingJob.DEFAULT_OUTPUT, job.output());
    assertEquals(TrainingJob.DEFAULT_TIME_LIMIT, job.timeLimit());
    assertEquals(0, job.cpus());
    assertEquals(0, job.memoryBytes());
    assertEquals(null, job.to());
    assertTrue(job.command().isEmpty() && job.args().isEmpty());
  }

  @Test
  void aJavaTrainerIsNamedByItsSourceAndPackedAsTheJobsImage() throws IOException {
    Files.writeString(dir.resolve("Train.java"), "class Train {}");
    Files.createDirectories(dir.resolve("lib"));
    TrainingJob job =
        load(
            HEADER
                + "name: t\nmodel: m\n"
                + "java: {source: Train.java, class-path: [\"lib/*.jar\"], jvm-options: [-Xmx1g]}\n"
                + "args: [--epochs, 3]\n");
    assertEquals("Train", job.java().mainClass());
    assertEquals(dir.resolve("Train.java"), job.java().source());
    assertEquals(List.of(dir.resolve("lib/*.jar")), job.java().classPath());
    assertEquals(List.of("-Xmx1g"), job.java().jvmOptions());
    assertEquals(TrainingJob.Java.DEFAULT_BASE, job.java().base());
    assertEquals("berth-train/t:latest", job.image());
    assertEquals(List.of("--epochs", "3"), job.args());
  }

  static Stream<Arguments> wrongFiles() {
    return Stream.of(
        Arguments.of("apiVersion: berth.dev/v1\nkind: Model\n", "kind", "not a training job"),
        Arguments.of(HEADER + "model: m\nimage: i\n", "name", "name the job"),
        Arguments.of(HEADER + "name: T_1\nmodel: m\nimage: i\n", "name", "DNS label"),
        Arguments.of(HEADER + "name: t\nimage: i\n", "model", "name the model"),
        Arguments.of(HEADER + "name: t\nmodel: m\n", "image", "training image"),
        Arguments.of(
            HEADER + "name: t\nmodel: m\nimage: i\ndata: [{path: nowhere, mount: /d}]\n",
            "data[0].path",
            "does not exist"),
        Arguments.of(
            HEADER + "name: t\nmodel: m\nimage: i\ndata: [{path: data, mount: d}]\n",
            "data[0].mount",
            "absolute"),
        Arguments.of(
            HEADER + "name: t\nmodel: m\nimage: i\nresources: {memory: lots}\n",
            "resources.memory",
            "at least 64Mi"),
        Arguments.of(
            HEADER + "name: t\nmodel: m\nimage: i\nresources: {cpu: 0}\n",
            "resources.cpu",
            "above 0"),
        Arguments.of(
            HEADER + "name: t\nmodel: m\nimage: i\ntime-limit: soon\n", "time-limit", "duration"),
        Arguments.of(HEADER + "name: t\nmodel: m\nimage: i\noutput: out\n", "output", "absolute"),
        Arguments.of(
            HEADER + "name: t\nmodel: m\nimage: i\nto: \"https://example.com/models\"\n",
            "to",
            "s3://BUCKET/PREFIX"),
        Arguments.of(
            HEADER + "name: t\nmodel: m\nimage: i\nenv: {COUNTRY: no}\n",
            "env.COUNTRY",
            "quote it"),
        Arguments.of(
            HEADER + "name: t\nmodel: m\nimage: i\nargs: [--version, 1.10]\n", "args", "quote it"),
        Arguments.of(
            HEADER + "name: t\nmodel: m\nimage: i\nresources: {memory: 99999999999999999999}\n",
            "resources.memory",
            "at least 64Mi"),
        Arguments.of(
            HEADER + "name: t\nmodel: m\nimage: i\njava: {main-class: X, class-path: [data]}\n",
            "image",
            "both given"),
        Arguments.of(
            HEADER + "name: t\nmodel: m\njava: {main-class: X, class-path: [data]}\ncommand: [x]\n",
            "command",
            "args"),
        Arguments.of(
            HEADER + "name: t\nmodel: m\njava: {class-path: [data]}\n",
            "java.main-class",
            "is missing"),
        Arguments.of(
            HEADER + "name: t\nmodel: m\njava: {main-class: X}\n", "java.class-path", "is missing"),
        Arguments.of(
            HEADER + "name: t\nmodel: m\nimage: i\nmodel-yaml: data/none.yaml\n",
            "model-yaml",
            "is not a file"),
        Arguments.of(
            HEADER + "name: t\nmodel: m\nimage: i\nmodel-yaml: data/bad.yaml\n",
            "model-yaml",
            "batchin"),
        Arguments.of(
            HEADER + "name: t\nmodel: m\nimage: i\ndata: [{pvc: c, path: data, mount: /d}]\n",
            "data[0].pvc",
            "local path or a claim"),
        Arguments.of(
            HEADER + "name: t\nmodel: m\nimage: i\ndata: [{pvc: Bad_Name, mount: /d}]\n",
            "data[0].pvc",
            "not a PersistentVolumeClaim name"),
        Arguments.of(
            HEADER + "name: t\nmodel: m\nimage: i\nresources: {gpus: -1}\n",
            "resources.gpus",
            "between 0"),
        Arguments.of(HEADER + "name: t\nmodel: m\nimage: i\ngpu: 1\n", "gpu", "unknown key"));
  }

  @ParameterizedTest
  @MethodSource("wrongFiles")
  void aWrongFileNamesTheKeyAndTheFix(String yaml, String key, String hint) {
    ConfigException e = assertThrows(ConfigException.class, () -> load(yaml));
    assertEquals(key, e.key(), e.getMessage());
    assertTrue(e.getMessage().contains(hint), e.getMessage());
  }
}
