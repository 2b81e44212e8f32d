package dev.berth.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.Tensor;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What the runtime reports into a request's trace: its queue wait, its batch's pre-processing, one
 * report per engine call naming every traced request it ran, its post-processing; a language
 * model's wait and generation. Requests without a trace cost the runtime no tracing work.
 */
class RequestTraceTest {
  @TempDir Path repo;

  /** A trace that keeps what it is told. */
  static final class Recorded implements RequestTrace {
    final Map<Step, long[]> steps = new ConcurrentHashMap<>();
    final List<Call> calls = new CopyOnWriteArrayList<>();
    final List<Generated> generations = new CopyOnWriteArrayList<>();

    record Call(List<RequestTrace> batch, int requests, int rows, long start, long end) {}

    @Override
    public void step(Step step, long startNanos, long endNanos) {
      assertNull(steps.put(step, new long[] {startNanos, endNanos}), step + " reported twice");
    }

    @Override
    public void engineCall(
        String model,
        String version,
        List<RequestTrace> batch,
        int requests,
        int rows,
        long startNanos,
        long endNanos,
        Throwable error) {
      assertEquals("m", model);
      assertEquals("1", version);
      assertNull(error);
      calls.add(new Call(List.copyOf(batch), requests, rows, startNanos, endNanos));
    }

    @Override
    public void generation(Generated generated) {
      generations.add(generated);
    }
  }

  private static List<Tensor> x(int cols) {
    return List.of(Tensor.ofFloats("x", new long[] {1, cols}, new float[cols]));
  }

  private static long later() {
    return System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
  }

  @Test
  void aBatchReportsEachEngineCallOnceWithItsTracedRequestsAndEachRequestsOwnSteps()
      throws Exception {
    TensorPipeline pipeline =
        new TensorPipeline("m", new TensorPipelineTest.Recording(), List.of(), null);
    // four rows fill a batch at once; the long delay makes sure all four wait for one batch
    try (DynamicBatcher batcher =
        new DynamicBatcher(
            "m",
            "1",
            new BatchingConfig(4, Duration.ofSeconds(20), 100),
            1,
            pipeline,
            new ServingMetrics())) {
      Recorded a = new Recorded();
      Recorded b = new Recorded();
      Recorded c = new Recorded();
      List<CompletableFuture<List<Tensor>>> answers = new ArrayList<>();
      answers.add(batcher.submit(x(2), List.of("y"), 1, later(), a));
      answers.add(batcher.submit(x(2), List.of("y"), 1, later(), b));
      answers.add(batcher.submit(x(3), List.of("y"), 1, later(), c)); // another trailing shape
      answers.add(batcher.submit(x(2), List.of("y"), 1, later(), null)); // not traced
      for (CompletableFuture<List<Tensor>> answer : answers) {
        answer.get(10, TimeUnit.SECONDS);
      }

      // [a, b, untraced] ran as one engine call, reported once, on a; c alone in a second call
      assertEquals(1, a.calls.size());
      assertEquals(List.of(a, b), a.calls.get(0).batch());
      assertEquals(3, a.calls.get(0).requests());
      assertEquals(3, a.calls.get(0).rows());
      assertTrue(b.calls.isEmpty(), "a call is reported on its first traced request only");
      assertEquals(1, c.calls.size());
      assertEquals(List.of(c), c.calls.get(0).batch());
      assertEquals(1, c.calls.get(0).rows());

      for (Recorded r : List.of(a, b, c)) {
        assertEquals(
            Set.of(
                RequestTrace.Step.QUEUE,
                RequestTrace.Step.PREPROCESS,
                RequestTrace.Step.POSTPROCESS),
            r.steps.keySet());
        long[] queue = r.steps.get(RequestTrace.Step.QUEUE);
        long[] pre = r.steps.get(RequestTrace.Step.PREPROCESS);
        long[] post = r.steps.get(RequestTrace.Step.POSTPROCESS);
        Recorded.Call call = (r == c ? c : a).calls.get(0);
        assertTrue(queue[0] <= queue[1], "the wait ends after it begins");
        assertEquals(queue[1], pre[0], "pre-processing starts as the batch leaves the queue");
        assertTrue(pre[1] <= call.start(), "the engine starts after pre-processing");
        assertTrue(call.start() <= call.end());
        assertEquals(call.end(), post[0], "post-processing starts as the engine returns");
        assertTrue(post[0] <= post[1]);
      }
    }
  }

  /** A trace whose every report throws what {@code failure} makes. */
  private static RequestTrace broken(java.util.function.Supplier<Throwable> failure) {
    return new RequestTrace() {
      private void fail() {
        Throwable t = failure.get();
        if (t instanceof Error e) {
          throw e;
        }
        throw (RuntimeException) t;
      }

      @Override
      public void step(Step step, long startNanos, long endNanos) {
        fail();
      }

      @Override
      public void engineCall(
          String model,
          String version,
          List<RequestTrace> batch,
          int requests,
          int rows,
          long startNanos,
          long endNanos,
          Throwable error) {
        fail();
      }

      @Override
      public void generation(Generated generated) {
        fail();
      }
    };
  }

  /** An exception, and an Error (a class the tracing library misses), from a trace. */
  private static final List<java.util.function.Supplier<Throwable>> FAILURES =
      List.of(
          () -> new IllegalStateException("broken trace"),
          () -> new NoClassDefFoundError("io/opentelemetry/api/trace/Span"));

  @Test
  void aTraceThatFailsNeverFailsItsRequest() throws Exception {
    TensorPipeline pipeline =
        new TensorPipeline("m", new TensorPipelineTest.Recording(), List.of(), null);
    try (DynamicBatcher batcher =
        new DynamicBatcher(
            "m",
            "1",
            new BatchingConfig(4, Duration.ZERO, 100),
            1,
            pipeline,
            new ServingMetrics())) {
      for (java.util.function.Supplier<Throwable> failure : FAILURES) {
        RequestTrace broken = broken(failure);
        List<Tensor> answer =
            batcher.submit(x(2), List.of("y"), 1, later(), broken).get(10, TimeUnit.SECONDS);
        assertEquals(1, answer.size(), failure.get().toString());
        // and the worker still serves the next request
        batcher.submit(x(2), List.of("y"), 1, later(), broken).get(10, TimeUnit.SECONDS);
      }
    }
  }

  @Test
  void aTraceThatFailsNeverFailsItsGeneration() throws Exception {
    try (InferenceService service = languageModel()) {
      for (java.util.function.Supplier<Throwable> failure : FAILURES) {
        try (Generation g =
            service.generate("lm", null, chat(), broken(failure)).get(5, TimeUnit.SECONDS)) {
          while (g.next() != null) {
            // read it all
          }
          assertEquals(3, g.completionTokens(), failure.get().toString());
          assertEquals(Generation.FinishReason.LENGTH, g.finishReason());
        }
      }
    }
  }

  @Test
  void aRequestThatTimesOutInTheQueueReportsItsWait() throws Exception {
    CountDownLatch running = new CountDownLatch(1);
    CountDownLatch release = new CountDownLatch(1);
    try (DynamicBatcher batcher =
        new DynamicBatcher(
            "m",
            "1",
            new BatchingConfig(1, Duration.ZERO, 100),
            1,
            (inputs, outputs) -> {
              running.countDown();
              try {
                release.await();
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
              }
              return List.of(List.of(Tensor.ofFloats("y", new long[] {1}, new float[] {1})));
            },
            new ServingMetrics())) {
      CompletableFuture<List<Tensor>> first = batcher.submit(x(1), List.of("y"), 1, later());
      running.await(); // the engine holds the first request
      Recorded late = new Recorded();
      CompletableFuture<List<Tensor>> second = batcher.submit(x(1), List.of("y"), 1, later(), late);
      // what the timer of the caller's deadline does (InferenceService's orTimeout), before any
      // worker came for the request
      second.completeExceptionally(new java.util.concurrent.TimeoutException());
      long timedOut = System.nanoTime();
      release.countDown();
      first.get(10, TimeUnit.SECONDS);
      org.awaitility.Awaitility.await()
          .atMost(Duration.ofSeconds(10))
          .until(() -> late.steps.containsKey(RequestTrace.Step.QUEUE));
      long[] queue = late.steps.get(RequestTrace.Step.QUEUE);
      assertTrue(queue[0] < timedOut && timedOut <= queue[1], "from its arrival to its leaving");
      assertTrue(late.calls.isEmpty(), "it never ran");
    }
  }

  @Test
  void anUntracedBatchKeepsNoMomentsForATrace() {
    TensorPipeline pipeline =
        new TensorPipeline("m", new TensorPipelineTest.Recording(), List.of(), null);
    BatchTimes times = new BatchTimes();
    pipeline.run(List.of(x(2), x(3)), Set.of("y"), times);
    assertNull(times.calls, "no list of engine calls for a batch nobody traces");
  }

  @Test
  void aRunnerThatDoesNotSayWhereItsTimeWentIsOneEngineCallOverTheBatch() throws Exception {
    try (DynamicBatcher batcher =
        new DynamicBatcher(
            "m",
            "1",
            new BatchingConfig(1, Duration.ZERO, 100),
            1,
            (inputs, outputs) ->
                List.of(List.of(Tensor.ofFloats("y", new long[] {1}, new float[] {1}))),
            new ServingMetrics())) {
      Recorded a = new Recorded();
      batcher.submit(x(1), List.of("y"), 1, later(), a).get(10, TimeUnit.SECONDS);
      assertEquals(Set.of(RequestTrace.Step.QUEUE), a.steps.keySet());
      assertEquals(1, a.calls.size());
      assertSame(a, a.calls.get(0).batch().get(0));
      assertEquals(a.steps.get(RequestTrace.Step.QUEUE)[1], a.calls.get(0).start());
    }
  }

  /** A scripted language model, "lm", with one sequence. */
  private InferenceService languageModel() throws Exception {
    Path v = Files.createDirectories(repo.resolve("lm/1"));
    Files.writeString(v.resolve("script"), "");
    Files.writeString(
        repo.resolve("lm/model.yaml"),
        """
        apiVersion: berth.dev/v1
        kind: Model
        llm:
          context-size: 64
          parallel: 1
          defaults: {max-tokens: 32, temperature: 0}
        """);
    return InferenceService.load(
        new ModelRepository(repo),
        List.of(new GenerationTest.ScriptedEngines()),
        new ServingMetrics());
  }

  /** A chat of one message asking for 3 tokens, with seed 7. */
  private static GenerationRequest chat() {
    return new GenerationRequest(
        null, List.of(new TextGenerator.ChatMessage("user", "a|b")), 3, null, null, 7, List.of());
  }

  @Test
  void aGenerationReportsItsWaitAndItsTokens() throws Exception {
    try (InferenceService service = languageModel()) {
      Recorded trace = new Recorded();
      try (Generation g = service.generate("lm", null, chat(), trace).get(5, TimeUnit.SECONDS)) {
        while (g.next() != null) {
          // read it all
        }
      }
      assertEquals(1, trace.generations.size());
      RequestTrace.Generated done = trace.generations.get(0);
      assertEquals("lm", done.model());
      assertTrue(done.chat());
      assertEquals("user: a|b|".length(), done.inputTokens());
      assertEquals(3, done.outputTokens());
      assertEquals(3, done.maxTokens());
      assertEquals(0.0, done.temperature());
      assertEquals(7, done.seed());
      assertEquals(Generation.FinishReason.LENGTH, done.finishReason());
      long[] queue = trace.steps.get(RequestTrace.Step.QUEUE);
      assertNotNull(queue, "the wait for a sequence is a step");
      assertEquals(done.arrivalNanos(), queue[0]);
      assertEquals(queue[1], done.startNanos());
      assertTrue(done.startNanos() <= done.firstTokenNanos());
      assertTrue(done.firstTokenNanos() <= done.endNanos());
      assertFalse(trace.steps.containsKey(RequestTrace.Step.PREPROCESS));
    }
  }
}
