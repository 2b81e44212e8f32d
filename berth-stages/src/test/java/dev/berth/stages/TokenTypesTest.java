package dev.berth.stages;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.ConfigException;
import dev.berth.api.DataType;
import dev.berth.api.Tensor;
import dev.berth.api.TensorSpec;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelContext;
import dev.berth.runtime.ModelSignature;
import dev.berth.runtime.StageProvider;
import dev.berth.runtime.TensorEngine;
import dev.berth.runtime.TensorPipeline;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.ServiceLoader;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The tokenizer and pooling steps give and read token tensors in the datatype the model takes: many
 * exported BERTs take INT32 ids and masks, others INT64.
 */
class TokenTypesTest {
  private static final Path TOKENIZER =
      Path.of(System.getProperty("user.dir"))
          .resolveSibling("examples/models/minilm/1/tokenizer.json");

  @TempDir Path repo;

  /** A BERT-shaped engine of the given token type: the hidden state is the id, once per token. */
  private static class Echo implements TensorEngine {
    final DataType type;
    final List<DataType> seen = new ArrayList<>();

    Echo(DataType type) {
      this.type = type;
    }

    @Override
    public ModelSignature signature() {
      return new ModelSignature(
          "test",
          List.of(
              new TensorSpec("input_ids", type, new long[] {-1, -1}),
              new TensorSpec("attention_mask", type, new long[] {-1, -1})),
          List.of(new TensorSpec("last_hidden_state", DataType.FP32, new long[] {-1, -1, 1})),
          true);
    }

    @Override
    public Map<String, Tensor> run(Map<String, Tensor> inputs, Set<String> outputs) {
      Tensor ids = inputs.get("input_ids");
      seen.add(ids.datatype());
      seen.add(inputs.get("attention_mask").datatype());
      long[] values = longs(ids);
      float[] hidden = new float[values.length];
      for (int i = 0; i < values.length; i++) {
        hidden[i] = values[i];
      }
      long[] shape = {ids.dim(0), ids.dim(1), 1};
      Map<String, Tensor> out = new LinkedHashMap<>();
      out.put("last_hidden_state", Tensor.ofFloats("last_hidden_state", shape, hidden));
      return out;
    }

    @Override
    public void close() {}
  }

  private static long[] longs(Tensor t) {
    if (t.datatype() == DataType.INT64) {
      return t.longs();
    }
    java.nio.IntBuffer ints = t.data().asIntBuffer();
    long[] out = new long[ints.remaining()];
    for (int i = 0; i < out.length; i++) {
      out[i] = ints.get(i);
    }
    return out;
  }

  private TensorPipeline pipeline(TensorEngine engine, String yaml) throws IOException {
    Path dir = Files.createDirectories(repo.resolve("bert/1"));
    Files.copy(TOKENIZER, dir.resolve("tokenizer.json"));
    Files.writeString(
        dir.resolveSibling("model.yaml"), "apiVersion: berth.dev/v1\nkind: Model\n" + yaml);
    ModelContext context = new ModelContext("bert", "1", dir, ModelConfig.load(dir.getParent()));
    List<StageProvider> stages = new ArrayList<>();
    ServiceLoader.load(StageProvider.class).forEach(stages::add);
    return TensorPipeline.load(context, engine, stages);
  }

  @Test
  void int32AndInt64ModelsGetTheirOwnTypeAndPoolAlike() throws IOException {
    assertTrue(Files.isRegularFile(TOKENIZER), "the examples module unpacks " + TOKENIZER);
    String yaml =
        "preprocessing: {type: tokenize}\npostprocessing: {type: mean-pool, normalize: false}\n";
    float[][] pooled = new float[2][];
    int i = 0;
    for (DataType type : List.of(DataType.INT32, DataType.INT64)) {
      Echo engine = new Echo(type);
      try (TensorPipeline p = pipeline(engine, yaml)) {
        Tensor text =
            Tensor.ofStrings("text", List.of("a short one", "a somewhat longer sentence"));
        Tensor ids = p.run(List.of(List.of(text)), Set.of("embedding")).get(0).get(0);
        assertEquals(List.of(type, type), engine.seen);
        pooled[i++] = ids.floats();
        // ids alone: the step fills in a mask of the model's type
        Tensor given =
            type == DataType.INT64
                ? Tensor.ofLongs("input_ids", new long[] {1, 2}, new long[] {101, 102})
                : int32("input_ids", new int[] {101, 102});
        Tensor one = p.run(List.of(List.of(given)), Set.of("embedding")).get(0).get(0);
        assertArrayEquals(new float[] {101.5f}, one.floats());
      }
      Files.walk(repo)
          .sorted(java.util.Comparator.reverseOrder())
          .filter(f -> !f.equals(repo))
          .forEach(f -> f.toFile().delete());
    }
    assertArrayEquals(pooled[0], pooled[1], "padding is left out whatever the mask's type");
  }

  @Test
  void tokenInputsOfAnotherTypeAreRefusedAtLoad() {
    Echo engine = new Echo(DataType.FP32);
    ConfigException e =
        assertThrows(
            ConfigException.class, () -> pipeline(engine, "preprocessing: {type: tokenize}\n"));
    assertTrue(e.getMessage().contains("INT64 or INT32"), e.getMessage());
  }

  private static Tensor int32(String name, int[] values) {
    java.nio.ByteBuffer data =
        java.nio.ByteBuffer.allocate(values.length * 4).order(java.nio.ByteOrder.LITTLE_ENDIAN);
    for (int v : values) {
      data.putInt(v);
    }
    data.flip();
    return Tensor.of(name, DataType.INT32, new long[] {1, values.length}, data);
  }
}
