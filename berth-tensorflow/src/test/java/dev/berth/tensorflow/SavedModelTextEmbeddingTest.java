package dev.berth.tensorflow;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import dev.berth.api.DataType;
import dev.berth.api.InferenceRequest;
import dev.berth.api.InferenceResponse;
import dev.berth.api.ModelMetadata;
import dev.berth.api.Tensor;
import dev.berth.api.TensorSpec;
import dev.berth.runtime.EngineProvider;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.ModelRepository;
import dev.berth.runtime.ServingMetrics;
import dev.berth.tensorflow.testing.SavedModelWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.tensorflow.Result;
import org.tensorflow.SavedModelBundle;
import org.tensorflow.ndarray.buffer.DataBuffers;
import org.tensorflow.types.TFloat32;

/**
 * A SavedModel BERT behind the steps any tensor engine can use: the tokenizer turns text into its
 * token tensors and mean pooling turns its token vectors into a sentence embedding, so it answers
 * text with embeddings as the bundled ONNX MiniLM does, with MiniLM's tokenizer.json and model.yaml
 * sections.
 */
class SavedModelTextEmbeddingTest {
  /** Unpacked by the examples module, which the reactor builds first. */
  static final Path TOKENIZER =
      Path.of(System.getProperty("user.dir"))
          .resolve("../examples/models/minilm/1/tokenizer.json")
          .normalize();

  static final int HIDDEN = 16;
  static final long SEED = 11;

  /**
   * MiniLM's preprocessing and postprocessing sections; the SavedModel's signature does the rest.
   */
  static final String YAML =
      """
      apiVersion: berth.dev/v1
      kind: Model
      batching: {max-batch-size: 32, max-queue-delay: 2ms}
      preprocessing:
        type: tokenize
        tokenizer: tokenizer.json
        input: text
        max-length: 256
      postprocessing:
        type: mean-pool
        source: last_hidden_state
        output: embedding
        normalize: true
      """;

  static final List<String> SENTENCES =
      List.of(
          "Berth serves models.",
          "A man is eating food.",
          "The quick brown fox jumps over the lazy dog on a bright and windy afternoon.");

  @TempDir static Path repo;

  /**
   * The model's embedding tables as it holds them: words [vocab, hidden], token types [2, hidden].
   */
  private static float[] words;

  private static float[] types;

  private InferenceService service;

  @BeforeAll
  static void repository() throws IOException {
    assertTrue(
        Files.isRegularFile(TOKENIZER),
        "the examples module unpacks MiniLM's tokenizer.json into " + TOKENIZER.getParent());
    // bert-mean: the same tables (same seed), pooled without unit length
    for (String name : List.of("bert", "bert-mean")) {
      SavedModelWriter.bert(
          TensorflowModels.savedModel(repo, name), SavedModelWriter.BERT_VOCAB, HIDDEN, SEED);
      Files.copy(TOKENIZER, repo.resolve(name).resolve("1/tokenizer.json"));
      Files.writeString(
          repo.resolve(name).resolve("model.yaml"),
          name.equals("bert") ? YAML : YAML.replace("normalize: true", "normalize: false"));
    }
    Path model = TensorflowModels.savedModel(repo, "bert");
    words = variable(model, "word_embeddings", SavedModelWriter.BERT_VOCAB * HIDDEN);
    types = variable(model, "token_type_embeddings", 2 * HIDDEN);
  }

  /** A variable's values, read from the SavedModel. */
  private static float[] variable(Path savedModel, String name, int size) {
    try (SavedModelBundle bundle = SavedModelBundle.load(savedModel.toString(), "serve");
        Result result = bundle.session().runner().fetch(name).run()) {
      TFloat32 value = (TFloat32) result.get(0);
      assertEquals(size, value.size(), name);
      float[] out = new float[size];
      value.copyTo(DataBuffers.of(out, false, false));
      return out;
    }
  }

  @AfterEach
  void close() {
    if (service != null) {
      service.close();
    }
  }

  private void serve(EngineProvider provider) {
    service =
        InferenceService.load(new ModelRepository(repo), List.of(provider), new ServingMetrics());
  }

  @Test
  void clientsSeeTextInAndAnEmbeddingOutAsForMiniLm() {
    serve(new TensorflowEngineProvider());

    ModelMetadata m = service.metadata("bert", null);
    long[] tokens = {-1, -1};
    assertEquals("tensorflow_savedmodel", m.platform());
    assertEquals(4, m.inputs().size(), m.inputs().toString());
    assertEquals(new TensorSpec("text", DataType.BYTES, new long[] {-1}), m.inputs().get(0));
    // A SignatureDef keeps no order; the engine lists its tensors by name.
    assertEquals(
        Set.of(
            new TensorSpec("input_ids", DataType.INT64, tokens),
            new TensorSpec("attention_mask", DataType.INT64, tokens),
            new TensorSpec("token_type_ids", DataType.INT64, tokens)),
        Set.copyOf(m.inputs().subList(1, 4)));
    assertEquals(
        List.of(new TensorSpec("embedding", DataType.FP32, new long[] {-1, HIDDEN})), m.outputs());
  }

  @Test
  void sentencesOfDifferentLengthsGetUnitEmbeddingsThatPaddingLeavesAlone() throws Exception {
    serve(new TensorflowEngineProvider());

    Tensor together = embed(Tensor.ofStrings("text", SENTENCES));

    assertEquals("embedding", together.name());
    assertEquals(DataType.FP32, together.datatype());
    assertArrayEquals(new long[] {SENTENCES.size(), HIDDEN}, together.shape());
    float[] rows = together.floats();
    for (int i = 0; i < SENTENCES.size(); i++) {
      float[] row = Arrays.copyOfRange(rows, i * HIDDEN, (i + 1) * HIDDEN);
      assertEquals(1.0, norm(row), 1e-5, "L2 norm of row " + i);
      float[] alone = embed(Tensor.ofStrings("text", List.of(SENTENCES.get(i)))).floats();
      assertArrayEquals(alone, row, 1e-5f, "row " + i + " against its sentence sent alone");
    }
  }

  @Test
  void textAndItsTokenIdsGiveTheEmbeddingTheWeightsMake() throws Exception {
    serve(new TensorflowEngineProvider());

    try (HuggingFaceTokenizer tokenizer = HuggingFaceTokenizer.newInstance(TOKENIZER)) {
      for (String sentence : SENTENCES) {
        long[] ids = tokenizer.encode(sentence).getIds();
        float[] fromText = embed(Tensor.ofStrings("text", List.of(sentence))).floats();
        // input_ids alone: the tokenizer step fills the mask with ones and the type ids with zeros
        float[] fromIds =
            embed(Tensor.ofLongs("input_ids", new long[] {1, ids.length}, ids)).floats();

        assertArrayEquals(fromIds, fromText, 1e-5f, sentence);
        assertArrayEquals(expected(ids, true), fromText, 1e-5f, sentence);
      }
    }
  }

  @Test
  void theMeanLeavesThePaddingOutOfItsCount() throws Exception {
    // The models give zeros at masked tokens, which unit length would hide: bert-mean pools the
    // same model without it, so a mean over the padding too would come out shorter.
    serve(new TensorflowEngineProvider());

    float[] rows = embed("bert-mean", Tensor.ofStrings("text", SENTENCES)).floats();
    try (HuggingFaceTokenizer tokenizer = HuggingFaceTokenizer.newInstance(TOKENIZER)) {
      for (int i = 0; i < SENTENCES.size(); i++) {
        assertArrayEquals(
            expected(tokenizer.encode(SENTENCES.get(i)).getIds(), false),
            Arrays.copyOfRange(rows, i * HIDDEN, (i + 1) * HIDDEN),
            1e-5f,
            SENTENCES.get(i));
      }
    }
  }

  @Test
  void concurrentTextRequestsAreBatchedAndEachGetsItsOwnRows() throws Exception {
    TensorflowServiceTest.GatedEngines engines = new TensorflowServiceTest.GatedEngines();
    serve(engines);

    List<CompletableFuture<InferenceResponse>> answers = new ArrayList<>();
    List<String> sent = new ArrayList<>();
    for (int i = 0; i < 6; i++) {
      String sentence = SENTENCES.get(i % SENTENCES.size()) + " #" + i;
      sent.add(sentence);
      answers.add(service.infer(request("r" + i, Tensor.ofStrings("text", List.of(sentence)))));
      if (i == 0) {
        // the first request runs alone and holds the engine while the others queue
        await().atMost(Duration.ofSeconds(10)).until(() -> engines.batches.size() == 1);
      }
    }
    await().atMost(Duration.ofSeconds(10)).until(() -> service.inflight() == answers.size());
    engines.release.countDown();

    try (HuggingFaceTokenizer tokenizer = HuggingFaceTokenizer.newInstance(TOKENIZER)) {
      for (int i = 0; i < answers.size(); i++) {
        InferenceResponse response = answers.get(i).get(30, TimeUnit.SECONDS);
        assertEquals("r" + i, response.id());
        Tensor embedding = response.outputs().get(0);
        assertArrayEquals(new long[] {1, HIDDEN}, embedding.shape());
        assertArrayEquals(
            expected(tokenizer.encode(sent.get(i)).getIds(), true),
            embedding.floats(),
            1e-5f,
            sent.get(i));
      }
    }
    assertEquals(List.of(1L, 5L), engines.batches, "rows per engine run");
  }

  private Tensor embed(Tensor input) throws Exception {
    return embed("bert", input);
  }

  private Tensor embed(String model, Tensor input) throws Exception {
    InferenceResponse response =
        service
            .infer(new InferenceRequest(null, model, null, List.of(input), List.of()))
            .get(30, TimeUnit.SECONDS);
    assertEquals(1, response.outputs().size());
    return response.outputs().get(0);
  }

  private static InferenceRequest request(String id, Tensor input) {
    return new InferenceRequest(id, "bert", null, List.of(input), List.of());
  }

  /**
   * The embedding the model's tables give one unpadded sentence: the mean over its tokens of word
   * embedding plus the type-0 embedding, scaled to unit length when {@code normalize}.
   */
  private static float[] expected(long[] ids, boolean normalize) {
    double[] sum = new double[HIDDEN];
    for (long id : ids) {
      for (int k = 0; k < HIDDEN; k++) {
        sum[k] += words[(int) id * HIDDEN + k] + types[k];
      }
    }
    double norm = 0;
    for (double v : sum) {
      norm += v * v;
    }
    double divisor = normalize ? Math.sqrt(norm) : ids.length;
    float[] out = new float[HIDDEN];
    for (int k = 0; k < HIDDEN; k++) {
      out[k] = (float) (sum[k] / divisor);
    }
    return out;
  }

  private static double norm(float[] v) {
    double s = 0;
    for (float x : v) {
      s += x * x;
    }
    return Math.sqrt(s);
  }
}
