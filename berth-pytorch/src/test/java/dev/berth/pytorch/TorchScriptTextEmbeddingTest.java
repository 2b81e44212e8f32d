package dev.berth.pytorch;

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
import dev.berth.pytorch.testing.TorchScriptWriter;
import dev.berth.runtime.Engine;
import dev.berth.runtime.EngineProvider;
import dev.berth.runtime.InferenceService;
import dev.berth.runtime.ModelContext;
import dev.berth.runtime.ModelRepository;
import dev.berth.runtime.ModelSignature;
import dev.berth.runtime.ServingMetrics;
import dev.berth.runtime.TensorEngine;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A TorchScript BERT behind the steps any tensor engine can use: the tokenizer turns text into its
 * token tensors and mean pooling turns its token vectors into a sentence embedding, so it answers
 * text with embeddings as the bundled ONNX MiniLM does, with MiniLM's tokenizer.json and model.yaml
 * sections.
 */
class TorchScriptTextEmbeddingTest {
  /** Unpacked by the examples module, which the reactor builds first. */
  static final Path TOKENIZER =
      Path.of(System.getProperty("user.dir"))
          .resolve("../examples/models/minilm/1/tokenizer.json")
          .normalize();

  static final int HIDDEN = TestModels.HIDDEN;

  /** MiniLM's preprocessing and postprocessing sections, with the tensors TorchScript can't say. */
  static final String YAML =
      TestModels.yaml(
          """
          inputs:
            - {name: input_ids, datatype: INT64, shape: [-1, -1]}
            - {name: attention_mask, datatype: INT64, shape: [-1, -1]}
            - {name: token_type_ids, datatype: INT64, shape: [-1, -1]}
          outputs:
            - {name: last_hidden_state, datatype: FP32, shape: [-1, -1, %d]}
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
          """
              .formatted(HIDDEN));

  static final List<String> SENTENCES =
      List.of(
          "Berth serves models.",
          "A man is eating food.",
          "The quick brown fox jumps over the lazy dog on a bright and windy afternoon.");

  private static float[][] tables;

  @TempDir Path repo;
  private InferenceService service;

  @BeforeAll
  static void weights() {
    tables = TorchScriptWriter.bertTables(TestModels.VOCAB, HIDDEN, TestModels.BERT_SEED);
  }

  @BeforeEach
  void repository() throws IOException {
    assertTrue(
        Files.isRegularFile(TOKENIZER),
        "the examples module unpacks MiniLM's tokenizer.json into " + TOKENIZER.getParent());
    TestModels.model(repo, "bert", "bert.pt", YAML);
    TestModels.model(
        repo, "bert-mean", "bert.pt", YAML.replace("normalize: true", "normalize: false"));
    for (String model : List.of("bert", "bert-mean")) {
      Files.copy(TOKENIZER, repo.resolve(model).resolve("1/tokenizer.json"));
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
    serve(new PytorchEngineProvider());

    ModelMetadata m = service.metadata("bert", null);
    long[] tokens = {-1, -1};
    assertEquals("pytorch_libtorch", m.platform());
    assertEquals(
        List.of(
            new TensorSpec("text", DataType.BYTES, new long[] {-1}),
            new TensorSpec("input_ids", DataType.INT64, tokens),
            new TensorSpec("attention_mask", DataType.INT64, tokens),
            new TensorSpec("token_type_ids", DataType.INT64, tokens)),
        m.inputs());
    assertEquals(
        List.of(new TensorSpec("embedding", DataType.FP32, new long[] {-1, HIDDEN})), m.outputs());
  }

  @Test
  void sentencesOfDifferentLengthsGetUnitEmbeddingsThatPaddingLeavesAlone() throws Exception {
    serve(new PytorchEngineProvider());

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
    serve(new PytorchEngineProvider());

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
    serve(new PytorchEngineProvider());

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
    GatedEngines engines = new GatedEngines();
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
        sum[k] += tables[0][(int) id * HIDDEN + k] + tables[1][k];
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

  /** The PyTorch engine, which counts the rows of each run and holds runs until released. */
  static final class GatedEngines implements EngineProvider {
    final List<Long> batches = new CopyOnWriteArrayList<>();
    final CountDownLatch release = new CountDownLatch(1);
    private final EngineProvider pytorch = new PytorchEngineProvider();

    @Override
    public String name() {
      return pytorch.name();
    }

    @Override
    public boolean canLoad(ModelContext context) {
      return pytorch.canLoad(context);
    }

    @Override
    public Engine load(ModelContext context) {
      TensorEngine engine = (TensorEngine) pytorch.load(context);
      return new TensorEngine() {
        @Override
        public ModelSignature signature() {
          return engine.signature();
        }

        @Override
        public Map<String, Tensor> run(Map<String, Tensor> inputs, Set<String> outputs) {
          batches.add(inputs.get("input_ids").dim(0));
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
}
