package dev.berth.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.DataType;
import dev.berth.api.InvalidInputException;
import dev.berth.api.OverloadedException;
import dev.berth.api.TensorSpec;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The runtime's side of text generation, over a scripted engine: stop strings, max_tokens and the
 * end of sequence decide the text and the finish reason; the queue runs llm.parallel sequences,
 * holds llm.max-waiting more and refuses the rest; a caller that gives up leaves the queue.
 */
class GenerationTest {
  @TempDir Path repo;
  private InferenceService service;
  private ServingMetrics metrics;

  /**
   * A language model that "generates" its prompt's pieces (split at '|'), one per token, then ends.
   * A prompt starting with "wait:" gives each token only when the test releases it.
   */
  static final class ScriptedEngines implements EngineProvider {
    static final LinkedBlockingQueue<String> RELEASED = new LinkedBlockingQueue<>();

    @Override
    public String name() {
      return "scripted";
    }

    @Override
    public boolean canLoad(ModelContext context) {
      return Files.exists(context.versionDir().resolve("script"));
    }

    @Override
    public Engine load(ModelContext context) {
      return new Scripted(context.config().llm());
    }
  }

  private static final class Scripted implements TextGenerator {
    private final LlmConfig config;

    Scripted(LlmConfig config) {
      this.config = config;
    }

    @Override
    public ModelSignature signature() {
      return new ModelSignature(
          "scripted",
          List.of(new TensorSpec("text_input", DataType.BYTES, new long[] {1})),
          List.of(new TensorSpec("text_output", DataType.BYTES, new long[] {1})),
          false);
    }

    @Override
    public void close() {}

    @Override
    public int parallel() {
      return config.parallel();
    }

    @Override
    public int contextSize() {
      return config.contextSize();
    }

    @Override
    public int promptTokens(String prompt) {
      return prompt.length();
    }

    @Override
    public String chatPrompt(List<ChatMessage> messages) {
      StringBuilder b = new StringBuilder();
      for (ChatMessage m : messages) {
        b.append(m.role()).append(": ").append(m.content()).append('|');
      }
      return b.toString();
    }

    @Override
    public TokenStream start(Sampling sampling) {
      boolean gated = sampling.prompt().startsWith("wait:");
      String script = gated ? sampling.prompt().substring(5) : sampling.prompt();
      List<String> pieces = new ArrayList<>(List.of(script.split("\\|", -1)));
      return new TokenStream() {
        private int produced;
        private volatile boolean closed;

        @Override
        public String next() throws InterruptedException {
          if (closed || pieces.isEmpty() || produced >= sampling.maxTokens()) {
            return null;
          }
          if (gated) {
            ScriptedEngines.RELEASED.take();
          }
          produced++;
          return pieces.remove(0);
        }

        @Override
        public boolean reachedLimit() {
          return produced >= sampling.maxTokens();
        }

        @Override
        public void close() {
          closed = true;
        }
      };
    }
  }

  @BeforeEach
  void load() throws IOException {
    ScriptedEngines.RELEASED.clear();
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
          max-waiting: 1
          defaults: {max-tokens: 32}
        """);
    metrics = new ServingMetrics();
    service =
        InferenceService.load(new ModelRepository(repo), List.of(new ScriptedEngines()), metrics);
  }

  @AfterEach
  void close() {
    service.close();
  }

  private static GenerationRequest prompt(String prompt, Integer maxTokens, String... stop) {
    return new GenerationRequest(prompt, null, maxTokens, null, null, null, List.of(stop));
  }

  private Generation start(GenerationRequest request) throws Exception {
    return service.generate("lm", null, request).get(5, TimeUnit.SECONDS);
  }

  private static String drain(Generation g) throws InterruptedException {
    StringBuilder text = new StringBuilder();
    for (String piece; (piece = g.next()) != null; ) {
      assertFalse(piece.isEmpty(), "pieces handed on are never empty");
      text.append(piece);
    }
    return text.toString();
  }

  private double value(String name) {
    return metrics.registry().scrape().stream()
        .filter(m -> m.getMetadata().getPrometheusName().equals(name.replaceAll("_total$", "")))
        .flatMap(m -> m.getDataPoints().stream())
        .mapToDouble(
            p ->
                p
                        instanceof
                        io.prometheus.metrics.model.snapshots.CounterSnapshot
                                .CounterDataPointSnapshot
                            c
                    ? c.getValue()
                    : p
                            instanceof
                            io.prometheus.metrics.model.snapshots.GaugeSnapshot
                                    .GaugeDataPointSnapshot
                                g
                        ? g.getValue()
                        : ((io.prometheus.metrics.model.snapshots.HistogramSnapshot
                                    .HistogramDataPointSnapshot)
                                p)
                            .getCount())
        .sum();
  }

  @Test
  void aStopStringSplitAcrossTokensEndsTheTextBeforeIt() throws Exception {
    try (Generation g = start(prompt("Hel|lo, wor|ld. E|ND|more", null, "END"))) {
      assertEquals("Hello, world. ", drain(g));
      assertEquals(Generation.FinishReason.STOP, g.finishReason());
      assertEquals(4, g.completionTokens(), "the tokens the stop string ended on count");
      assertEquals("Hel|lo, wor|ld. E|ND|more".length(), g.promptTokens());
    }
  }

  @Test
  void theStartOfAStopStringThatNeverCompletesIsHandedOnAtTheEnd() throws Exception {
    try (Generation g = start(prompt("ab|EN", null, "END"))) {
      assertEquals("abEN", drain(g));
      assertEquals(Generation.FinishReason.STOP, g.finishReason());
    }
  }

  @Test
  void maxTokensEndsWithLength() throws Exception {
    try (Generation g = start(prompt("a|b|c|d", 2))) {
      assertEquals("ab", drain(g));
      assertEquals(Generation.FinishReason.LENGTH, g.finishReason());
      assertEquals(2, g.completionTokens());
    }
  }

  @Test
  void theEndOfSequenceEndsWithStop() throws Exception {
    try (Generation g = start(prompt("a|b", 10))) {
      assertEquals("ab", drain(g));
      assertEquals(Generation.FinishReason.STOP, g.finishReason());
      assertEquals(2, g.completionTokens());
    }
  }

  @Test
  void maxTokensNeverPassesTheContext() throws Exception {
    // 60 prompt tokens of 64: 4 are left, whatever max_tokens says
    String script = "x".repeat(46) + "|a|b|c|d|e|f|g";
    assertEquals(60, script.length());
    try (Generation g = start(prompt(script, 1000))) {
      assertEquals("x".repeat(46) + "abc", drain(g));
      assertEquals(Generation.FinishReason.LENGTH, g.finishReason());
      assertEquals(4, g.completionTokens());
    }
  }

  @Test
  void aPromptThatFillsTheContextIsRefused() {
    InvalidInputException e =
        assertThrows(
            InvalidInputException.class,
            () -> service.generate("lm", null, prompt("x".repeat(64), null)));
    assertTrue(e.getMessage().contains("64 tokens"), e.getMessage());
    assertTrue(e.getMessage().contains("llm.context-size"), e.getMessage());
    assertEquals(0, service.inflight());
  }

  @Test
  void chatMessagesGoThroughTheTemplate() throws Exception {
    GenerationRequest chat =
        new GenerationRequest(
            null,
            List.of(new TextGenerator.ChatMessage("user", "hi")),
            null,
            null,
            null,
            null,
            null);
    try (Generation g = start(chat)) {
      assertEquals("user: hi", drain(g));
    }
  }

  @Test
  void oneRunsOneWaitsAndTheNextIsRefusedUntilASequenceFrees() throws Exception {
    Generation first = start(prompt("wait:a|b", null));
    assertEquals(1, service.inflight());
    CompletableFuture<Generation> second = service.generate("lm", null, prompt("c|d", null));
    assertFalse(second.isDone(), "llm.parallel is 1: the second waits");
    assertEquals(1, value("berth_llm_sequences_waiting"));
    OverloadedException refused =
        assertThrows(
            OverloadedException.class, () -> service.generate("lm", null, prompt("e", null)));
    assertTrue(refused.getMessage().contains("llm.max-waiting"), refused.getMessage());

    ScriptedEngines.RELEASED.add("go");
    assertEquals("a", first.next());
    first.close(); // ends early: its sequence goes to the one waiting
    assertNull(first.finishReason(), "closed before it ended");
    try (Generation g = second.get(5, TimeUnit.SECONDS)) {
      assertEquals("cd", drain(g));
    }
    assertEquals(0, service.inflight());
    assertEquals(0, value("berth_llm_sequences_running"));
    assertEquals(1, value("berth_rejected_requests_total"));
  }

  @Test
  void aWaitingRequestWhoseCallerGivesUpLeavesTheQueue() throws Exception {
    Generation first = start(prompt("wait:a", null));
    CompletableFuture<Generation> second = service.generate("lm", null, prompt("b", null));
    second.cancel(false);
    assertEquals(0, value("berth_llm_sequences_waiting"));
    assertEquals(1, service.inflight(), "only the running one holds the model");
    // its place is free again
    CompletableFuture<Generation> third = service.generate("lm", null, prompt("c", null));
    first.close();
    try (Generation g = third.get(5, TimeUnit.SECONDS)) {
      assertEquals("c", drain(g));
    }
    assertEquals(0, service.inflight());
  }

  @Test
  void metricsCountTokensAndTimeThem() throws Exception {
    try (Generation g = start(prompt("a|b|c", null))) {
      drain(g);
    }
    assertEquals(5, value("berth_llm_prompt_tokens_total"));
    assertEquals(3, value("berth_llm_generation_tokens_total"));
    assertEquals(1, value("berth_llm_time_to_first_token_seconds"));
    assertEquals(2, value("berth_llm_time_per_output_token_seconds"));
    assertEquals(0, value("berth_llm_kv_cache_usage_ratio"), "nothing held once it ended");
  }

  @Test
  void aModelThatGeneratesNoTextSaysSo() throws Exception {
    Files.createDirectories(repo.resolve("tensors/1"));
    Files.writeString(repo.resolve("tensors/1/fake"), "");
    try (InferenceService both =
        InferenceService.load(
            new ModelRepository(repo),
            List.of(new ScriptedEngines(), new InferenceServiceTest.FakeEngines()),
            new ServingMetrics())) {
      InvalidInputException e =
          assertThrows(
              InvalidInputException.class, () -> both.generate("tensors", null, prompt("a", null)));
      assertTrue(e.getMessage().contains("not a language model"), e.getMessage());
      assertEquals(0, both.inflight());
    }
  }
}
