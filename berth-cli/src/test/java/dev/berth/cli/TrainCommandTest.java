package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.TrainingJob;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What a training job's {@code model-yaml} becomes, without running a job. */
class TrainCommandTest {
  @TempDir Path dir;

  private TrainingJob job(String gateData) throws IOException {
    Files.createDirectories(dir.resolve("jobs/data"));
    Files.writeString(
        dir.resolve("jobs/model.yaml"),
        "apiVersion: berth.dev/v1\nkind: Model\nlabels: [a, b]\n"
            + "gate: {data: "
            + gateData
            + ", min: 0.5}\n");
    Files.writeString(
        dir.resolve("jobs/train.yaml"),
        "apiVersion: berth.dev/v1\nkind: TrainingJob\nname: t\nmodel: m\nimage: i\n"
            + "model-yaml: model.yaml\nto: ../repo\n");
    return TrainingJob.load(dir.resolve("jobs/train.yaml"));
  }

  @Test
  void aNewModelsGateReadsTheFilesTheJobFileNamedWhereverItsModelYamlLies() throws IOException {
    TrainingJob job = job("data/test.csv");
    Path modelDir = dir.resolve("repo/m");
    Path workspace = Files.createDirectories(dir.resolve("work"));

    // what berth train gates with before publishing
    assertEquals(
        dir.resolve("jobs/data/test.csv").toAbsolutePath(),
        TrainCommand.gate(job, modelDir).data());
    // what the published model holds: the same file, named absolutely
    Path written = TrainCommand.newModelYaml(job, modelDir, workspace);
    Files.createDirectories(modelDir);
    Files.copy(written, modelDir.resolve("model.yaml"));
    assertEquals(
        dir.resolve("jobs/data/test.csv").toAbsolutePath(),
        ModelConfig.load(modelDir).gate().data());
    assertEquals(java.util.List.of("a", "b"), ModelConfig.load(modelDir).labels());

    // a model that exists keeps its own model.yaml, or none
    Files.delete(modelDir.resolve("model.yaml"));
    assertNull(TrainCommand.newModelYaml(job, modelDir, workspace));
    assertNull(TrainCommand.gate(job, modelDir));
  }

  @Test
  void anAbsoluteGateLeavesTheJobsFileAsItIs() throws IOException {
    TrainingJob job = job("/usr/share/datasets/t.csv");
    assertEquals(
        job.modelYaml(),
        TrainCommand.newModelYaml(
            job, dir.resolve("repo/m"), Files.createDirectories(dir.resolve("w"))));
  }
}
