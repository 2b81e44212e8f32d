package dev.berth.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.DataType;
import dev.berth.api.InferenceRequest;
import dev.berth.api.InferenceResponse;
import dev.berth.api.InvalidInputException;
import dev.berth.api.ModelLoadException;
import dev.berth.api.ModelNotFoundException;
import dev.berth.api.ModelNotReadyException;
import dev.berth.api.Tensor;
import dev.berth.api.TensorSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The data plane over a fake engine that adds its version number to its input. */
class InferenceServiceTest {
  @TempDir Path repo;
  private InferenceService service;

  /** Loads directories holding a file named "fake"; a file named "broken" fails to load. */
  static class FakeEngines implements EngineProvider {
    @Override
    public String name() {
      return "fake";
    }

    @Override
    public boolean canLoad(ModelContext context) {
      return Files.exists(context.versionDir().resolve("fake"))
          || Files.exists(context.versionDir().resolve("broken"))
          || Files.exists(context.versionDir().resolve("faulty"));
    }

    @Override
    public Engine load(ModelContext context) {
      if (Files.exists(context.versionDir().resolve("broken"))) {
        throw new ModelLoadException("cannot read the weights");
      }
      float add = Float.parseFloat(context.version());
      // "faulty": loads, then its engine fails every call as a lost device or a native fault would
      boolean faulty = Files.exists(context.versionDir().resolve("faulty"));
      ModelSignature signature =
          new ModelSignature(
              "fake",
              List.of(new TensorSpec("x", DataType.FP32, new long[] {-1, 2})),
              List.of(
                  new TensorSpec("y", DataType.FP32, new long[] {-1, 2}),
                  new TensorSpec("z", DataType.FP32, new long[] {-1, 2})),
              true);
      return new TensorEngine() {
        @Override
        public ModelSignature signature() {
          return signature;
        }

        @Override
        public Map<String, Tensor> run(Map<String, Tensor> inputs, Set<String> outputs) {
          if (faulty) {
            throw new IllegalStateException("the engine's device was lost");
          }
          Tensor x = inputs.get("x");
          float[] v = x.floats();
          for (int i = 0; i < v.length; i++) {
            v[i] += add;
          }
          return Map.of(
              "y", Tensor.ofFloats("y", x.shape(), v),
              "z", Tensor.ofFloats("z", x.shape(), new float[v.length]));
        }

        @Override
        public void close() {}
      };
    }
  }

  @BeforeEach
  void load() throws IOException {
    for (String dir : new String[] {"m/1", "m/3", "other/1", "bad/1", "empty"}) {
      Files.createDirectories(repo.resolve(dir));
    }
    Files.writeString(repo.resolve("m/1/fake"), "");
    Files.writeString(repo.resolve("m/3/fake"), "");
    Files.writeString(repo.resolve("other/1/fake"), "");
    Files.writeString(repo.resolve("bad/1/broken"), "");
    service =
        InferenceService.load(
            new ModelRepository(repo), List.of(new FakeEngines()), new ServingMetrics());
  }

  @AfterEach
  void close() {
    service.close();
  }

  private InferenceResponse infer(String model, String version, List<String> outputs, Tensor... in)
      throws Exception {
    return service
        .infer(new InferenceRequest("r1", model, version, List.of(in), outputs))
        .get(5, TimeUnit.SECONDS);
  }

  private static Tensor x(float... v) {
    return Tensor.ofFloats("x", new long[] {v.length / 2, 2}, v);
  }

  @Test
  void whileModelsLoadTheServiceIsNotReadyAndModelsAreNotReadyRatherThanMissing() throws Exception {
    java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
    EngineProvider slow =
        new FakeEngines() {
          @Override
          public Engine load(ModelContext context) {
            try {
              release.await();
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
            }
            return super.load(context);
          }
        };
    InferenceService loading =
        InferenceService.create(new ModelRepository(repo), List.of(slow), new ServingMetrics());
    Thread loader = Thread.ofPlatform().start(loading::loadModels);
    try {
      org.awaitility.Awaitility.await()
          .atMost(java.time.Duration.ofSeconds(10))
          .until(() -> loading.index().stream().anyMatch(s -> s.name().equals("m")));
      assertFalse(loading.ready());
      assertFalse(loading.modelReady("m", null));
      Throwable refused =
          assertThrows(
              Exception.class,
              () ->
                  loading
                      .infer(new InferenceRequest("r", "m", "3", List.of(x(1, 2)), List.of()))
                      .get(5, TimeUnit.SECONDS));
      if (refused instanceof java.util.concurrent.ExecutionException) {
        refused = refused.getCause();
      }
      assertTrue(refused instanceof dev.berth.api.ModelNotReadyException, refused.toString());
    } finally {
      release.countDown();
      loader.join();
    }
    assertTrue(loading.serving());
    assertTrue(loading.modelReady("m", "3"));
    loading.close();
  }

  @Test
  void highestVersionAnswersUnlessOneIsNamed() throws Exception {
    InferenceResponse latest = infer("m", null, List.of("y"), x(1, 2));
    assertEquals("3", latest.version());
    assertArrayEquals(new float[] {4, 5}, latest.outputs().get(0).floats());
    InferenceResponse first = infer("m", "1", List.of("y"), x(1, 2));
    assertEquals("1", first.version());
    assertArrayEquals(new float[] {2, 3}, first.outputs().get(0).floats());
    assertEquals("r1", first.id());
  }

  @Test
  void outputsSelectionIsHonoured() throws Exception {
    assertEquals(
        List.of("z"),
        infer("m", null, List.of("z"), x(1, 2)).outputs().stream().map(Tensor::name).toList());
    assertEquals(
        List.of("y", "z"),
        infer("m", null, List.of(), x(1, 2)).outputs().stream().map(Tensor::name).toList());
    InvalidInputException e =
        assertThrows(InvalidInputException.class, () -> infer("m", null, List.of("nope"), x(1, 2)));
    assertTrue(e.getMessage().contains("no output 'nope'"), e.getMessage());
  }

  @Test
  void unknownModelOrVersionIsNotFound() {
    assertThrows(ModelNotFoundException.class, () -> infer("nope", null, List.of(), x(1, 2)));
    assertThrows(ModelNotFoundException.class, () -> infer("m", "2", List.of(), x(1, 2)));
  }

  @Test
  void failedModelIsReportedAndOthersServe() throws Exception {
    ModelStatus bad = service.statuses("bad").get(0);
    assertEquals(ServingMetrics.ModelState.UNAVAILABLE, bad.state());
    assertTrue(bad.reason().contains("cannot read the weights"), bad.reason());
    assertThrows(ModelNotReadyException.class, () -> infer("bad", null, List.of(), x(1, 2)));
    assertFalse(service.modelReady("bad", null));
    assertTrue(service.statuses("empty").get(0).reason().contains("no version directories"));
    assertEquals("1", infer("other", null, List.of(), x(1, 2)).version());
  }

  @Test
  void strictReadinessWaitsForEveryServedModel() {
    // "bad" failed to load and "empty" has no version: a replica that cannot answer for them
    assertEquals(List.of("bad", "empty"), service.unreadyModels());
    assertTrue(service.serving());
    assertFalse(service.ready());

    service.strictReadiness(false);
    assertTrue(service.ready());
    service.strictReadiness(true);

    // models unloaded on request are not served, so they do not count
    service.unloadModel("bad");
    service.unloadModel("empty");
    assertEquals(List.of(), service.unreadyModels());
    assertTrue(service.ready());
  }

  @Test
  void inputsAreCheckedAgainstTheSignature() {
    InvalidInputException name =
        assertThrows(
            InvalidInputException.class,
            () ->
                infer("m", null, List.of(), Tensor.ofFloats("w", new long[] {1, 2}, new float[2])));
    assertTrue(
        name.getMessage().contains("no input 'w'") && name.getMessage().contains("x FP32[-1, 2]"),
        name.getMessage());
    InvalidInputException type =
        assertThrows(
            InvalidInputException.class,
            () -> infer("m", null, List.of(), Tensor.ofLongs("x", new long[] {1, 2}, new long[2])));
    assertTrue(type.getMessage().contains("must be FP32, got INT64"), type.getMessage());
    InvalidInputException shape =
        assertThrows(
            InvalidInputException.class,
            () ->
                infer("m", null, List.of(), Tensor.ofFloats("x", new long[] {1, 3}, new float[3])));
    assertTrue(
        shape.getMessage().contains("[-1, 2]") && shape.getMessage().contains("[1, 3]"),
        shape.getMessage());
    assertThrows(InvalidInputException.class, () -> infer("m", null, List.of()));
  }

  @Test
  void drainTurnsReadinessOffAndRefusesNewRequests() {
    assertTrue(service.drain(Duration.ofSeconds(5)));
    assertFalse(service.ready());
    assertThrows(ModelNotReadyException.class, () -> infer("m", null, List.of(), x(1, 2)));
  }

  @Test
  void aModelWhoseEngineFailsAtRunTimeTurnsUnavailableAndTheOthersKeepServing() throws Exception {
    Files.createDirectories(repo.resolve("flaky/1"));
    Files.writeString(repo.resolve("flaky/1/faulty"), "");
    service.loadModel("flaky");
    assertEquals(ServingMetrics.ModelState.READY, service.statuses("flaky").get(0).state());

    java.util.concurrent.ExecutionException failed =
        assertThrows(
            java.util.concurrent.ExecutionException.class,
            () -> infer("flaky", null, null, x(1, 2)));
    assertTrue(failed.getCause().getMessage().contains("failed to run"), failed.getMessage());

    org.awaitility.Awaitility.await()
        .atMost(Duration.ofSeconds(10))
        .until(
            () ->
                service.statuses("flaky").get(0).state() == ServingMetrics.ModelState.UNAVAILABLE);
    String reason = service.statuses("flaky").get(0).reason();
    assertTrue(
        reason.contains("engine failed at run time")
            && reason.contains("device was lost")
            && reason.contains("/v2/repository/models/flaky/load"),
        reason);
    ModelNotReadyException notReady =
        assertThrows(
            ModelNotReadyException.class,
            () -> service.infer(new InferenceRequest("r2", "flaky", null, List.of(x(1, 2)), null)));
    assertTrue(notReady.getMessage().contains("engine failed at run time"), notReady.getMessage());
    assertArrayEquals(
        new float[] {4, 5}, infer("m", null, List.of("y"), x(1, 2)).outputs().get(0).floats());
    assertTrue(service.unreadyModels().contains("flaky"), service.unreadyModels().toString());
    assertFalse(
        service.ready(), "strict readiness: a replica with a broken model takes no traffic");
    service.strictReadiness(false);
    assertTrue(service.ready(), "without it the server stays ready: other models serve");
  }

  @Test
  void aCancelledRequestLeavesTheQueueUnrunAndFreesItsSlotAtOnce() throws Exception {
    java.util.concurrent.CountDownLatch running = new java.util.concurrent.CountDownLatch(1);
    java.util.concurrent.CountDownLatch release = new java.util.concurrent.CountDownLatch(1);
    List<Float> seen = java.util.Collections.synchronizedList(new java.util.ArrayList<>());
    EngineProvider gated =
        new FakeEngines() {
          @Override
          public Engine load(ModelContext context) {
            TensorEngine inner = (TensorEngine) super.load(context);
            return new TensorEngine() {
              @Override
              public ModelSignature signature() {
                return inner.signature();
              }

              @Override
              public Map<String, Tensor> run(Map<String, Tensor> inputs, Set<String> outputs) {
                float[] x = inputs.get("x").floats();
                for (int r = 0; r < x.length; r += 2) {
                  seen.add(x[r]);
                }
                running.countDown();
                try {
                  release.await();
                } catch (InterruptedException e) {
                  Thread.currentThread().interrupt();
                }
                return inner.run(inputs, outputs);
              }

              @Override
              public void close() {}
            };
          }
        };
    try (InferenceService s =
        InferenceService.load(new ModelRepository(repo), List.of(gated), new ServingMetrics())) {
      var first = s.infer(new InferenceRequest("a", "other", null, List.of(x(1, 1)), null));
      running.await(); // the engine holds the first request
      var second = s.infer(new InferenceRequest("b", "other", null, List.of(x(2, 2)), null));
      assertEquals(2, s.inflight());

      assertTrue(second.cancel(false));
      assertEquals(1, s.inflight(), "the cancelled request's slot is free at once");

      release.countDown();
      assertArrayEquals(
          new float[] {2, 2}, first.get(5, TimeUnit.SECONDS).outputs().get(0).floats());
      org.awaitility.Awaitility.await()
          .atMost(Duration.ofSeconds(5))
          .until(() -> s.inflight() == 0);
      // a third request runs after the first: the cancelled one never reached the engine
      s.infer(new InferenceRequest("c", "other", null, List.of(x(3, 3)), null))
          .get(5, TimeUnit.SECONDS);
      assertEquals(List.of(1f, 3f), seen);
    }
  }
}
