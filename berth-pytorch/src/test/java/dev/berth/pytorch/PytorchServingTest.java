package dev.berth.pytorch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.InferenceRequest;
import dev.berth.api.InferenceResponse;
import dev.berth.api.Tensor;
import dev.berth.runtime.Engine;
import dev.berth.runtime.EngineProvider;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.ModelContext;
import dev.berth.runtime.ModelRepository;
import dev.berth.runtime.ModelSignature;
import dev.berth.runtime.ServingMetrics;
import dev.berth.runtime.TensorEngine;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The Fashion-MNIST MLP served by the whole runtime: found by its file, batched, answered. */
class PytorchServingTest {
  @TempDir Path repo;

  /** The real provider, its engine's first run held until released, its batch sizes counted. */
  static final class GatedProvider implements EngineProvider {
    final PytorchEngineProvider real = new PytorchEngineProvider();
    final CountDownLatch started = new CountDownLatch(1);
    final CountDownLatch release = new CountDownLatch(1);
    final AtomicInteger largestBatch = new AtomicInteger();
    final AtomicInteger runs = new AtomicInteger();

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
          if (runs.getAndIncrement() == 0) {
            started.countDown();
            try {
              release.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
            }
          }
          largestBatch.accumulateAndGet((int) inputs.get("pixels").dim(0), Math::max);
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
  void concurrentRequestsAreBatchedAndEachGetsItsOwnRows() throws Exception {
    TestModels.model(
        repo,
        "fashion",
        "mlp.pt",
        TestModels.MLP_YAML + "batching:\n  max-batch-size: 64\n  max-queue-delay: 2ms\n");
    GatedProvider provider = new GatedProvider();
    try (InferenceService service =
        InferenceService.load(new ModelRepository(repo), List.of(provider), new ServingMetrics())) {
      assertEquals("pytorch_libtorch", service.metadata("fashion", null).platform());
      List<float[]> inputs = new ArrayList<>();
      List<CompletableFuture<InferenceResponse>> answers = new ArrayList<>();
      for (int i = 0; i < 9; i++) {
        float[] pixels = PytorchEngineRunTest.pixels(1, 500 + i);
        inputs.add(pixels);
        answers.add(
            service.infer(
                new InferenceRequest(
                    "r" + i,
                    "fashion",
                    null,
                    List.of(Tensor.ofFloats("pixels", new long[] {1, 784}, pixels)),
                    List.of())));
        if (i == 0) {
          assertTrue(provider.started.await(10, TimeUnit.SECONDS)); // the worker holds request 0
        }
      }
      provider.release.countDown();
      for (int i = 0; i < answers.size(); i++) {
        InferenceResponse response = answers.get(i).get(10, TimeUnit.SECONDS);
        assertEquals("r" + i, response.id());
        Tensor p = response.outputs().get(0);
        assertEquals("probabilities", p.name());
        assertArrayEquals(new long[] {1, 10}, p.shape());
        assertArrayEquals(TestModels.WEIGHTS.probabilities(inputs.get(i)), p.floats(), 1e-5f);
      }
      assertTrue(provider.largestBatch.get() > 1, "largest batch " + provider.largestBatch);
      assertTrue(provider.runs.get() < answers.size(), provider.runs + " runs");
    }
  }
}
