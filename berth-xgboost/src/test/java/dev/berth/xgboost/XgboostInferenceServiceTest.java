package dev.berth.xgboost;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.InferenceRequest;
import dev.berth.api.InferenceResponse;
import dev.berth.api.InvalidInputException;
import dev.berth.api.Tensor;
import dev.berth.runtime.Engine;
import dev.berth.runtime.EngineProvider;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.ModelContext;
import dev.berth.runtime.ModelRepository;
import dev.berth.runtime.ModelSignature;
import dev.berth.runtime.ServingMetrics;
import dev.berth.runtime.TensorEngine;
import dev.berth.xgboost.testing.XgboostModelWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** An XGBoost model served by the runtime: batched requests each get their own rows. */
class XgboostInferenceServiceTest {
  private static final int FEATURES = 5;
  private static final String YAML =
      """
      apiVersion: berth.dev/v1
      kind: Model
      labels: [low, middle, high]
      batching:
        max-batch-size: 64
        max-queue-delay: 0ms
      """;

  @TempDir Path repo;

  @Test
  void requestsJoinedIntoOneBatchEachGetTheirOwnRows() throws Exception {
    XgboostModelWriter.Trained model =
        XgboostModelWriter.objective("multi:softprob").classes(3).features(FEATURES).train();
    model.save(repo.resolve("trees/1/model.json"));
    Files.writeString(repo.resolve("trees/model.yaml"), YAML);
    float[][] expected =
        model.booster().inplace_predict(model.features(), model.rows(), FEATURES, Float.NaN);

    // The first batch waits in the engine until every other request is queued behind it, so the
    // others are joined into the next batch.
    CountDownLatch entered = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    List<Integer> batchRows = new CopyOnWriteArrayList<>();
    EngineProvider gated = gated(entered, release, batchRows);
    InferenceService service =
        InferenceService.load(new ModelRepository(repo), List.of(gated), new ServingMetrics());
    try {
      List<CompletableFuture<InferenceResponse>> answers = new ArrayList<>();
      List<Integer> firstRows = new ArrayList<>();
      int from = 0;
      for (int i = 0; i < 12; i++) {
        int rows = 1 + i % 4;
        firstRows.add(from);
        answers.add(service.infer(request("r" + i, model, from, rows)));
        from += rows;
        if (i == 0) {
          assertTrue(entered.await(10, TimeUnit.SECONDS), "the first batch reached the engine");
        }
      }
      release.countDown();
      for (int i = 0; i < answers.size(); i++) {
        InferenceResponse answer = answers.get(i).get(10, TimeUnit.SECONDS);
        assertEquals("r" + i, answer.id());
        Tensor p = answer.outputs().get(0);
        assertEquals("probabilities", p.name());
        int rows = 1 + i % 4;
        assertArrayEquals(new long[] {rows, 3}, p.shape());
        float[] got = p.floats();
        for (int r = 0; r < rows; r++) {
          assertArrayEquals(
              expected[firstRows.get(i) + r],
              Arrays.copyOfRange(got, r * 3, r * 3 + 3),
              "request " + i + " row " + r);
        }
      }
      assertEquals(2, batchRows.size(), "one batch alone, then the other eleven joined");
      assertEquals(List.of(1, from - 1), batchRows);
    } finally {
      service.close();
    }
  }

  @Test
  void aWrongFeatureCountIsRefusedNamingBothCounts() throws Exception {
    XgboostModelWriter.objective("reg:squarederror")
        .features(FEATURES)
        .train()
        .save(repo.resolve("reg/1/model.ubj"));
    InferenceService service =
        InferenceService.load(
            new ModelRepository(repo), List.of(new XgboostEngineProvider()), new ServingMetrics());
    try {
      Tensor wrong = Tensor.ofFloats("features", new long[] {1, 4}, new float[4]);
      // The runtime checks shapes against the signature before a request is queued
      InvalidInputException cause =
          assertThrows(
              InvalidInputException.class,
              () ->
                  service.infer(new InferenceRequest("r", "reg", null, List.of(wrong), List.of())));
      assertTrue(cause.getMessage().contains("[-1, 5]"), cause.getMessage());
      assertTrue(cause.getMessage().contains("[1, 4]"), cause.getMessage());

      Tensor right = Tensor.ofFloats("features", new long[] {1, 5}, new float[5]);
      InferenceResponse ok =
          service
              .infer(new InferenceRequest("r", "reg", null, List.of(right), List.of()))
              .get(10, TimeUnit.SECONDS);
      assertEquals("value", ok.outputs().get(0).name());
    } finally {
      service.close();
    }
  }

  private static InferenceRequest request(
      String id, XgboostModelWriter.Trained model, int from, int rows) {
    float[] values =
        Arrays.copyOfRange(model.features(), from * FEATURES, (from + rows) * FEATURES);
    return new InferenceRequest(
        id,
        "trees",
        null,
        List.of(Tensor.ofFloats("features", new long[] {rows, FEATURES}, values)),
        List.of());
  }

  /** The XGBoost engine behind a gate: its first run waits for {@code release}. */
  private static EngineProvider gated(
      CountDownLatch entered, CountDownLatch release, List<Integer> batchRows) {
    XgboostEngineProvider real = new XgboostEngineProvider();
    return new EngineProvider() {
      @Override
      public String name() {
        return real.name();
      }

      @Override
      public boolean canLoad(ModelContext context) {
        return real.canLoad(context);
      }

      @Override
      public Engine load(ModelContext context) {
        TensorEngine engine = (TensorEngine) real.load(context);
        return new TensorEngine() {
          @Override
          public ModelSignature signature() {
            return engine.signature();
          }

          @Override
          public Map<String, Tensor> run(Map<String, Tensor> inputs, Set<String> outputs) {
            batchRows.add((int) inputs.get("features").dim(0));
            entered.countDown();
            try {
              release.await();
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
            }
            return engine.run(inputs, outputs);
          }

          @Override
          public void close() {
            engine.close();
          }
        };
      }
    };
  }
}
