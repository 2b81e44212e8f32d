package dev.berth.server;

import static dev.berth.server.MiniLmServer.cosine;
import static dev.berth.server.MiniLmServer.maxAbsDiff;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Many clients at once: the batcher combines their requests into engine calls, and every client
 * still gets the embedding of its own sentence.
 */
class ConcurrencyIT {
  private static final int CLIENTS = 64;
  private static final int ROUNDS = 3;

  /** One topic per client, so no two clients' sentences mean nearly the same. */
  private static final String[] TOPICS =
      ("guitars, volcanoes, tax law, penguins, bread baking, chess, glaciers, opera, "
              + "bicycles, vaccines, jazz, submarines, tulips, bitcoin, earthquakes, knitting, "
              + "satellites, sushi, basketball, thunderstorms, pottery, elections, coral reefs, "
              + "typewriters, marathons, honey bees, railways, poetry, solar panels, cheese, "
              + "skiing, dinosaurs, mortgages, violins, deserts, robots, tea ceremonies, "
              + "lighthouses, surgery, origami, wolves, airports, mushrooms, photography, "
              + "hurricanes, chocolate, sailing, castles, cryptography, gardening, tennis, "
              + "black holes, perfume, fishing, vinyl records, wind turbines, ballet, pirates, "
              + "coffee, pyramids, skateboards, rainforests, yoga, fireworks")
          .split(", ");

  @TempDir static Path dir;
  private static MiniLmServer batched;
  private static MiniLmServer unbatched;
  private static List<String> sentences;
  private static List<float[]> expected;

  @BeforeAll
  static void start() throws Exception {
    batched =
        MiniLmServer.start(MiniLmServer.repository(Files.createDirectory(dir.resolve("batched"))));
    unbatched =
        MiniLmServer.start(
            MiniLmServer.repository(
                Files.createDirectory(dir.resolve("unbatched")),
                MiniLmServer.modelYaml("{max-batch-size: 1}", "30s")));
    sentences = new ArrayList<>();
    for (int i = 0; i < CLIENTS; i++) {
      sentences.add(sentence(i));
    }
    expected = new ArrayList<>();
    try (MiniLmServer.ReferenceEmbedder reference = new MiniLmServer.ReferenceEmbedder()) {
      sentences.forEach(s -> expected.add(reference.embed(s)));
    }
  }

  @AfterAll
  static void stop() {
    batched.close();
    unbatched.close();
  }

  /** Client i's sentence: its topic, said 1 + i times, so no two clients send the same length. */
  private static String sentence(int i) {
    StringBuilder b = new StringBuilder("This note is about ").append(TOPICS[i]);
    for (int k = 0; k < i; k++) {
      b.append(", ").append(TOPICS[i]);
    }
    return b.append('.').toString();
  }

  /** Every client sends its sentence at the same time; answers come back in client order. */
  private static List<float[]> round(MiniLmServer server) throws Exception {
    try (ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor()) {
      List<Future<float[]>> answers = new ArrayList<>();
      for (String s : sentences) {
        answers.add(clients.submit(() -> server.embed(List.of(s))[0]));
      }
      List<float[]> out = new ArrayList<>();
      for (Future<float[]> f : answers) {
        out.add(f.get());
      }
      return out;
    }
  }

  @Test
  void everyClientGetsItsOwnEmbeddingWhileRequestsAreBatched() throws Exception {
    double rowsBefore = batchSize(batched, "sum");
    double callsBefore = batchSize(batched, "count");
    for (int r = 0; r < ROUNDS; r++) {
      List<float[]> answers = round(batched);
      for (int i = 0; i < CLIENTS; i++) {
        float[] answer = answers.get(i);
        double diff = maxAbsDiff(answer, expected.get(i));
        assertTrue(
            diff <= MiniLmServer.BATCHED_TOLERANCE,
            "round " + r + ", client " + i + ": off the reference by " + diff);
        // and nearer its own sentence than any other client's: no answer went to the wrong client
        for (int j = 0; j < CLIENTS; j++) {
          if (j != i) {
            assertTrue(
                cosine(answer, expected.get(i)) > cosine(answer, expected.get(j)),
                "round "
                    + r
                    + ", client "
                    + i
                    + " got an answer nearer client "
                    + j
                    + "'s sentence");
          }
        }
      }
    }
    double rows = batchSize(batched, "sum") - rowsBefore;
    double calls = batchSize(batched, "count") - callsBefore;
    assertEquals(ROUNDS * CLIENTS, rows, "every sentence is one row of some engine call");
    assertTrue(rows / calls > 1, "no engine call took more than one request: " + calls + " calls");
  }

  @Test
  void batchedAndUnbatchedServersAgree() throws Exception {
    List<float[]> fromBatched = round(batched);
    List<float[]> fromUnbatched = round(unbatched);
    for (int i = 0; i < CLIENTS; i++) {
      // Unbatched, each sentence runs alone: exactly the reference's computation.
      assertTrue(maxAbsDiff(fromUnbatched.get(i), expected.get(i)) <= 1e-5, "client " + i);
      double diff = maxAbsDiff(fromBatched.get(i), fromUnbatched.get(i));
      assertTrue(
          diff <= MiniLmServer.BATCHED_TOLERANCE,
          "client " + i + ": batched and unbatched answers differ by " + diff);
    }
    assertEquals(
        batchSize(unbatched, "count"),
        batchSize(unbatched, "sum"),
        "with max-batch-size 1 every engine call holds one row");
  }

  /** berth_batch_size_sum or _count of the model. */
  private static double batchSize(MiniLmServer server, String suffix) {
    return MiniLmServer.value(
        server.metrics(), "berth_batch_size_" + suffix, Map.of("model", "minilm", "version", "1"));
  }
}
