package dev.berth.tensorflow;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

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
import dev.berth.tensorflow.testing.SavedModelWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.ServiceLoader;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** SavedModels served through the whole runtime: repository, batcher, pipeline, engine. */
class TensorflowServiceTest {
  @TempDir Path repo;
  private InferenceService service;

  @AfterEach
  void close() {
    if (service != null) {
      service.close();
    }
  }

  /**
   * The TensorFlow engine, each of whose engines counts the rows of every batch it runs and holds
   * its first run until {@link #release} opens.
   */
  static final class GatedEngines implements EngineProvider {
    final List<Long> batches = new CopyOnWriteArrayList<>();
    final CountDownLatch release = new CountDownLatch(1);
    private final EngineProvider tensorflow = new TensorflowEngineProvider();

    @Override
    public String name() {
      return tensorflow.name();
    }

    @Override
    public boolean canLoad(ModelContext context) {
      return tensorflow.canLoad(context);
    }

    @Override
    public Engine load(ModelContext context) {
      TensorEngine engine = (TensorEngine) tensorflow.load(context);
      return new TensorEngine() {
        @Override
        public ModelSignature signature() {
          return engine.signature();
        }

        @Override
        public Map<String, Tensor> run(Map<String, Tensor> inputs, Set<String> outputs) {
          batches.add(inputs.values().iterator().next().dim(0));
          try {
            if (!release.await(30, TimeUnit.SECONDS)) {
              throw new IllegalStateException("the test never released the engine");
            }
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
          }
          return engine.run(inputs, outputs);
        }

        @Override
        public void close() {
          engine.close();
        }
      };
    }
  }

  @Test
  void theProviderIsFoundThroughServiceLoader() {
    List<String> names = new ArrayList<>();
    ServiceLoader.load(EngineProvider.class).forEach(p -> names.add(p.name()));
    assertEquals(List.of("tensorflow"), names);
  }

  @Test
  void concurrentRequestsAreBatchedAndEachGetsItsOwnRows() throws Exception {
    SavedModelWriter.mlp(TensorflowModels.savedModel(repo, "fashion"), 3);
    Files.writeString(
        repo.resolve("fashion/model.yaml"),
        """
        apiVersion: berth.dev/v1
        kind: Model
        batching: {max-batch-size: 7, max-queue-delay: 1ms}
        """);
    GatedEngines engines = new GatedEngines();
    service =
        InferenceService.load(new ModelRepository(repo), List.of(engines), new ServingMetrics());

    Random random = new Random(1);
    List<float[]> pixels = new ArrayList<>();
    List<CompletableFuture<InferenceResponse>> answers = new ArrayList<>();
    for (int i = 0; i < 8; i++) {
      float[] p = new float[SavedModelWriter.PIXELS];
      for (int k = 0; k < p.length; k++) {
        p[k] = random.nextFloat();
      }
      pixels.add(p);
      answers.add(service.infer(request(p)));
      if (i == 0) {
        // the first request runs alone and holds the engine while the others queue
        await().atMost(Duration.ofSeconds(10)).until(() -> engines.batches.size() == 1);
      }
    }
    await().atMost(Duration.ofSeconds(10)).until(() -> service.inflight() == 8);
    engines.release.countDown();

    List<float[]> batched = new ArrayList<>();
    for (CompletableFuture<InferenceResponse> a : answers) {
      batched.add(a.get(30, TimeUnit.SECONDS).outputs().get(0).floats());
    }
    assertEquals(List.of(1L, 7L), engines.batches);
    for (int i = 0; i < pixels.size(); i++) {
      float[] alone =
          service.infer(request(pixels.get(i))).get(30, TimeUnit.SECONDS).outputs().get(0).floats();
      assertArrayEquals(alone, batched.get(i), 1e-6f, "request " + i);
    }
  }

  @Test
  void aRequestTheModelRefusesIsAnInvalidInput() {
    SavedModelWriter.bert(TensorflowModels.savedModel(repo, "text"), 100, 4, 1);
    service =
        InferenceService.load(
            new ModelRepository(repo),
            List.of(new TensorflowEngineProvider()),
            new ServingMetrics());
    long[] shape = {1, 2};
    InferenceRequest request =
        new InferenceRequest(
            "r",
            "text",
            null,
            List.of(
                Tensor.ofLongs("input_ids", shape, new long[] {5, 100}),
                Tensor.ofLongs("attention_mask", shape, new long[] {1, 1}),
                Tensor.ofLongs("token_type_ids", shape, new long[] {0, 0})),
            List.of());

    ExecutionException e =
        assertThrows(
            ExecutionException.class, () -> service.infer(request).get(30, TimeUnit.SECONDS));
    assertInstanceOf(InvalidInputException.class, e.getCause());
    assertEquals(true, service.modelReady("text", "1"));
  }

  private static InferenceRequest request(float[] pixels) {
    return new InferenceRequest(
        null,
        "fashion",
        null,
        List.of(Tensor.ofFloats("pixels", new long[] {1, pixels.length}, pixels)),
        List.of("probabilities"));
  }
}
