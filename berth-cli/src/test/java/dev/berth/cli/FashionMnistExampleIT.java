package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.awt.image.BufferedImage;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.GZIPInputStream;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Fashion-MNIST example end to end on a slice of the real data set: {@code
 * examples/fashion-mnist/train} trains a short run, {@code berth serve} serves what it wrote, and
 * {@code berth eval} must count exactly the test images the trainer counted right, whether it sends
 * the IDX pixels or PNG files that the server decodes.
 */
class FashionMnistExampleIT {
  private static final Path DATA = IdxSlice.DATA;
  private static final int SLICE = 1000;
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path work;
  private static BerthProcess server;
  private static String url;
  private static int trainerCorrect;

  @BeforeAll
  static void trainAndServe() throws Exception {
    assertTrue(
        Files.isRegularFile(DATA.resolve("t10k-images-idx3-ubyte.gz")),
        "the Fashion-MNIST data set is missing: apt-get install dataset-fashion-mnist");
    Path script = BerthProcess.examples().resolveSibling("fashion-mnist").resolve("train");
    Path repo = work.resolve("repo");
    ProcessBuilder pb =
        new ProcessBuilder(
            "bash",
            script.toString(),
            repo.toString(),
            "--epochs",
            "2",
            "--train-limit",
            "12000",
            "--test-limit",
            Integer.toString(SLICE));
    pb.environment()
        .put("JAVA_HOME", Path.of(BerthProcess.java()).getParent().getParent().toString());
    pb.redirectErrorStream(true);
    pb.redirectOutput(work.resolve("train.log").toFile());
    Process train = pb.start();
    assertTrue(train.waitFor(300, TimeUnit.SECONDS), "training did not finish");
    String log = Files.readString(work.resolve("train.log"), StandardCharsets.UTF_8);
    assertEquals(0, train.exitValue(), log);
    Matcher m = Pattern.compile("test accuracy [0-9.]+ \\((\\d+) of " + SLICE + "\\)").matcher(log);
    assertTrue(m.find(), log);
    trainerCorrect = Integer.parseInt(m.group(1));
    assertTrue(trainerCorrect > 0.7 * SLICE, "two short epochs already learn most of it: " + log);

    Path serverWork = Files.createDirectories(work.resolve("server"));
    server =
        BerthProcess.start(
            serverWork,
            "serve",
            repo.toString(),
            "--port",
            "0",
            "--grpc-port",
            "0",
            "--log-format",
            "json");
    url = server.awaitServing();
  }

  @AfterAll
  static void stop() {
    if (server != null) {
      server.close();
    }
  }

  private static BerthProcess.Finished eval(String... args) throws Exception {
    List<String> all = new ArrayList<>(List.of("eval", url, "--model", "fashion-mnist"));
    all.addAll(List.of(args));
    return BerthProcess.run(work, Duration.ofSeconds(120), all.toArray(String[]::new));
  }

  @Test
  void evalOfTheIdxSliceCountsWhatTheTrainerCounted_withTheModelsClassNames() throws Exception {
    Path images = IdxSlice.testSlice(work.resolve("idx"), SLICE);
    Path report = work.resolve("report");

    BerthProcess.Finished r = eval("--data", images.toString(), "--report", report.toString());

    assertEquals(0, r.code(), r.err());
    JsonNode metrics = JSON.readTree(report.resolve("metrics.json").toFile());
    assertEquals((double) trainerCorrect / SLICE, metrics.get("accuracy").asDouble(), 1e-12);
    assertEquals("Ankle boot", metrics.get("labels").get(9).asText(), "names from model.yaml");
    long total = 0;
    for (JsonNode row : metrics.get("confusion_matrix")) {
      for (JsonNode cell : row) {
        total += cell.asLong();
      }
    }
    assertEquals(SLICE, total);
    assertTrue(r.out().contains("T-shirt/top"), r.out());
    assertTrue(Files.readString(report.resolve("index.html")).contains("Ankle boot"));
  }

  @Test
  void pngFilesDecodedByTheServerGiveTheSameAnswers() throws Exception {
    Path folder = work.resolve("png");
    byte[] images;
    byte[] labels;
    try (InputStream in =
        new GZIPInputStream(Files.newInputStream(DATA.resolve("t10k-images-idx3-ubyte.gz")))) {
      in.readNBytes(16);
      images = in.readNBytes(SLICE * 784);
    }
    try (InputStream in =
        new GZIPInputStream(Files.newInputStream(DATA.resolve("t10k-labels-idx1-ubyte.gz")))) {
      in.readNBytes(8);
      labels = in.readNBytes(SLICE);
    }
    for (int i = 0; i < SLICE; i++) {
      BufferedImage image = new BufferedImage(28, 28, BufferedImage.TYPE_BYTE_GRAY);
      for (int p = 0; p < 784; p++) {
        image.getRaster().setSample(p % 28, p / 28, 0, images[i * 784 + p] & 0xff);
      }
      // folders named by class index: "T-shirt/top" cannot be a folder name
      Path file = folder.resolve(Integer.toString(labels[i])).resolve(i + ".png");
      Files.createDirectories(file.getParent());
      ImageIO.write(image, "png", file.toFile());
    }

    BerthProcess.Finished r = eval("--data", folder.toString());

    assertEquals(0, r.code(), r.err());
    assertTrue(r.out().contains("BYTES input 'image'"), r.out());
    Matcher m = Pattern.compile("(?m)^accuracy\\s+([0-9.]+)\\s+" + SLICE).matcher(r.out());
    assertTrue(m.find(), r.out());
    assertEquals(
        String.format(java.util.Locale.ROOT, "%.3f", (double) trainerCorrect / SLICE), m.group(1));
  }
}
