package dev.berth.llm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import de.kherud.llama.InferenceParameters;
import de.kherud.llama.LlamaModel;
import de.kherud.llama.LlamaOutput;
import de.kherud.llama.ModelParameters;
import de.kherud.llama.Pair;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * llama.cpp (de.kherud:llama, CPU) loads {@link GgufWriter#tiny()}, tokenizes with its vocabulary,
 * applies its chat template and generates from it.
 */
class LlamaCppRunsGgufWriterModelTest {
  @TempDir static Path dir;

  private static LlamaModel model;

  @BeforeAll
  static void load() {
    Path file = GgufWriter.tiny().write(dir.resolve("tiny.gguf"));
    model =
        new LlamaModel(
            new ModelParameters()
                .setModel(file.toString())
                .setCtxSize(256)
                .setThreads(2)
                .disableLog());
  }

  @AfterAll
  static void close() {
    if (model != null) {
      model.close();
    }
  }

  @Test
  void streamedOutputsMakeTheCompletedText() {
    List<String> outputs = new ArrayList<>();
    for (LlamaOutput output : model.generate(greedy("the model", 8))) {
      outputs.add(output.text);
    }

    // one output per token, fewer where a character spans byte tokens, then an empty final one
    assertTrue(outputs.size() >= 2 && outputs.size() <= 9, outputs.toString());
    assertEquals("", outputs.getLast());
    assertEquals(String.join("", outputs), model.complete(greedy("the model", 8)));
  }

  @Test
  void sameSeedSamplesTheSameText() {
    String first = model.complete(sampled(7));
    String again = model.complete(sampled(7));
    String otherSeed = model.complete(sampled(8));

    assertEquals(first, again);
    assertNotEquals(first, otherSeed);
  }

  @Test
  void encodeAddsNoBosAndDecodeKeepsThePrefixSpace() {
    int[] ids = model.encode("hello world");

    assertEquals(2, ids.length, "▁hello ▁world");
    assertEquals(" hello world", model.decode(ids));
  }

  @Test
  void anyUtf8TextRoundTripsThroughByteTokens() {
    String text = "ünïcode 日本 🚀 \t\n";

    int[] ids = model.encode(text);

    assertTrue(ids.length > text.length() / 2);
    assertEquals(" " + text, model.decode(ids));
  }

  @Test
  void controlTokensInTextAreParsedAsControlTokens() {
    int[] ids = model.encode("<|im_start|>user\nhi<|im_end|>");

    assertEquals(GgufWriter.IM_START_TOKEN_ID, ids[0]);
    assertEquals(GgufWriter.IM_END_TOKEN_ID, ids[ids.length - 1]);
  }

  @Test
  void chatMlTemplateAppliesToMessages() {
    InferenceParameters chat =
        new InferenceParameters("")
            .setMessages(
                "You are terse.",
                List.of(new Pair<>("user", "Hi"), new Pair<>("assistant", "Hello")));

    assertEquals(
        "<|im_start|>system\nYou are terse.<|im_end|>\n"
            + "<|im_start|>user\nHi<|im_end|>\n"
            + "<|im_start|>assistant\nHello<|im_end|>\n"
            + "<|im_start|>assistant\n",
        model.applyTemplate(chat));
  }

  @Test
  void generationStopsAtEndOfTurn() {
    // a bias that makes <|im_end|> the only choice: generation ends with its first token
    InferenceParameters params =
        greedy("the model", 8).setTokenIdBias(java.util.Map.of(GgufWriter.IM_END_TOKEN_ID, 100f));
    List<String> outputs = new ArrayList<>();
    for (LlamaOutput output : model.generate(params)) {
      outputs.add(output.text);
    }

    assertArrayEquals(new String[] {"", ""}, outputs.toArray(String[]::new));
  }

  private static InferenceParameters greedy(String prompt, int tokens) {
    // Without the prompt cache every call evaluates the prompt as one batch: a call that reused the
    // cache would evaluate part of it on its own, and on random weights, where the best tokens'
    // logits nearly tie, that rounding alone can change the greedy choice.
    return new InferenceParameters(prompt)
        .setNPredict(tokens)
        .setTemperature(0f)
        .setIgnoreEos(true)
        .setCachePrompt(false);
  }

  private static InferenceParameters sampled(int seed) {
    return new InferenceParameters("hello world")
        .setNPredict(24)
        .setTemperature(0.9f)
        .setSeed(seed)
        .setIgnoreEos(true);
  }
}
