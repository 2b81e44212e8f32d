package dev.berth.llm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.InvalidInputException;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelContext;
import dev.berth.runtime.TextGenerator.ChatMessage;
import dev.berth.runtime.TextGenerator.Sampling;
import dev.berth.runtime.TextGenerator.TokenStream;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * llama.cpp, through Berth's binding and engine, loads {@link GgufWriter#tiny()}, tokenizes with
 * its vocabulary, applies its chat template, and generates from it: several sequences at once,
 * reusing a cached prompt start.
 */
class LlamaCppRunsGgufWriterModelTest {
  @TempDir static Path dir;

  private static LlamaEngine engine;
  private static long model;

  @BeforeAll
  static void load() throws Exception {
    Path version = Files.createDirectories(dir.resolve("tiny/1"));
    GgufWriter.tiny().write(version.resolve("model.gguf"));
    Files.writeString(
        dir.resolve("tiny/model.yaml"),
        "apiVersion: berth.dev/v1\nkind: Model\nllm: {context-size: 256, parallel: 2, threads: 2}\n");
    ModelContext context =
        new ModelContext("tiny", "1", version, ModelConfig.load(dir.resolve("tiny")));
    engine = (LlamaEngine) new LlamaEngineProvider().load(context);
    model = LlamaCpp.loadModel(version.resolve("model.gguf").toString(), 0);
  }

  @AfterAll
  static void close() {
    if (engine != null) {
      engine.close();
    }
    if (model != 0) {
      LlamaCpp.freeModel(model);
    }
  }

  @Test
  void theBestCpuBackendForThisProcessorIsLoaded() {
    String backends = LlamaCpp.backends();

    assertTrue(backends.contains("loaded CPU backend from "), backends);
    assertNotEquals("unknown", LlamaCpp.cpuVariant(backends), backends);
    assertEquals(0, LlamaCpp.gpuDevices());
  }

  @Test
  void greedyGenerationStopsAtMaxTokensOrAnEndToken() throws Exception {
    Generated g = generate(new Sampling("the model", 8, 0, 1, null));

    // one piece per token ("" for a byte that starts a character: it comes with its last byte)
    assertTrue(g.limit() ? g.pieces().size() == 8 : g.pieces().size() < 8, g.toString());
    assertFalse(String.join("", g.pieces()).isEmpty());
  }

  @Test
  void sameSeedSamplesTheSameText() throws Exception {
    Generated first = generate(new Sampling("hello world", 24, 0.9, 0.95, 7));
    Generated again = generate(new Sampling("hello world", 24, 0.9, 0.95, 7));
    Generated otherSeed = generate(new Sampling("hello world", 24, 0.9, 0.95, 8));

    assertEquals(first, again);
    assertNotEquals(first, otherSeed);
  }

  @Test
  void sequencesGenerateTogether() throws Exception {
    CompletableFuture<Generated> a =
        CompletableFuture.supplyAsync(() -> quietly(new Sampling("one two three", 16, 0, 1, null)));
    CompletableFuture<Generated> b =
        CompletableFuture.supplyAsync(() -> quietly(new Sampling("four five six", 16, 0, 1, null)));

    for (Generated g : List.of(a.get(), b.get())) {
      assertTrue(g.limit() ? g.pieces().size() == 16 : g.pieces().size() < 16, g.toString());
    }
  }

  @Test
  void aPromptThatStartsLikeTheLastOneReadsOnlyWhatIsNew() throws Exception {
    String start = "a long shared start of a conversation that the cache keeps";
    generate(new Sampling(start, 1, 0, 1, null));
    long before = engine.promptTokensRead();

    generate(new Sampling(start + " and a new turn", 1, 0, 1, null));

    int added = engine.promptTokens(start + " and a new turn") - engine.promptTokens(start);
    // the new tokens, and the shared start's last token again when the tokenizer split it there
    long read = engine.promptTokensRead() - before;
    assertTrue(read >= added && read <= added + 1, "read " + read + ", added " + added);
  }

  @Test
  void aClosedStreamFreesItsSequence() throws Exception {
    for (int i = 0; i < 4; i++) { // more than the two sequences: each close must free one
      try (TokenStream s = engine.start(new Sampling("stop me " + i, 200, 0, 1, null))) {
        s.next();
      }
    }
    assertTrue(generate(new Sampling("still serving", 4, 0, 1, null)).pieces().size() <= 4);
  }

  @Test
  void tokenizationWithoutSpecialsAddsNoBos() {
    int[] ids = LlamaCpp.tokenize(model, bytes("hello world"), false, false);

    assertEquals(2, ids.length, "▁hello ▁world");
    assertEquals(" hello world", text(ids));
    assertEquals(3, engine.promptTokens("hello world"), "<s> ▁hello ▁world");
  }

  @Test
  void anyUtf8TextRoundTripsThroughByteTokens() {
    String text = "ünïcode 日本 🚀 \t\n";

    int[] ids = LlamaCpp.tokenize(model, bytes(text), false, false);

    assertTrue(ids.length > text.length() / 2);
    assertEquals(" " + text, text(ids));
  }

  @Test
  void controlTokensInTextAreParsedAsControlTokens() {
    int[] ids = LlamaCpp.tokenize(model, bytes("<|im_start|>user\nhi<|im_end|>"), false, true);

    assertEquals(GgufWriter.IM_START_TOKEN_ID, ids[0]);
    assertEquals(GgufWriter.IM_END_TOKEN_ID, ids[ids.length - 1]);
    assertTrue(LlamaCpp.isEndOfGeneration(model, GgufWriter.IM_END_TOKEN_ID));
    assertFalse(LlamaCpp.isEndOfGeneration(model, ids[1]));
  }

  @Test
  void chatMlTemplateAppliesToMessages() {
    assertEquals(
        "<|im_start|>system\nYou are terse.<|im_end|>\n"
            + "<|im_start|>user\nHi<|im_end|>\n"
            + "<|im_start|>assistant\nHello<|im_end|>\n"
            + "<|im_start|>assistant\n",
        engine.chatPrompt(
            List.of(
                new ChatMessage("system", "You are terse."),
                new ChatMessage("user", "Hi"),
                new ChatMessage("assistant", "Hello"))));
  }

  @Test
  void aTemplateLlamaCppDoesNotKnowIsRefusedWithTheWayOut() {
    InvalidInputException e =
        assertThrows(
            InvalidInputException.class,
            () ->
                LlamaEngine.applyTemplate(
                    "tiny",
                    "{% for m in messages %}{{ m.content }}{% endfor %}",
                    List.of(new ChatMessage("user", "hi"))));
    assertTrue(e.getMessage().contains("set llm.chat-template"), e.getMessage());
  }

  /** What one generation gave: its pieces, and whether it stopped at max tokens. */
  record Generated(List<String> pieces, boolean limit) {}

  private static Generated generate(Sampling sampling) throws InterruptedException {
    List<String> pieces = new ArrayList<>();
    try (TokenStream s = engine.start(sampling)) {
      for (String p = s.next(); p != null; p = s.next()) {
        pieces.add(p);
      }
      return new Generated(pieces, s.reachedLimit());
    }
  }

  private static Generated quietly(Sampling sampling) {
    try {
      return generate(sampling);
    } catch (InterruptedException e) {
      throw new IllegalStateException(e);
    }
  }

  private static String text(int[] ids) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (int id : ids) {
      out.writeBytes(LlamaCpp.piece(model, id));
    }
    return out.toString(StandardCharsets.UTF_8);
  }

  private static byte[] bytes(String s) {
    return s.getBytes(StandardCharsets.UTF_8);
  }
}
