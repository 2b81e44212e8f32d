package dev.berth.llm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.llm.GgufWriter.TensorType;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The files {@link GgufWriter} writes, read back with a small GGUF reader. */
class GgufWriterTest {
  @TempDir Path dir;

  @Test
  void tinyModelHasTheLlamaMetadataAndVocabulary() throws IOException {
    Gguf gguf = Gguf.read(GgufWriter.tiny().write(dir.resolve("tiny.gguf")));

    assertEquals(3, gguf.version());
    Map<String, Object> kv = gguf.metadata();
    assertEquals("llama", kv.get("general.architecture"));
    assertEquals(32, kv.get("general.alignment"));
    assertEquals(512, kv.get("llama.context_length"));
    assertEquals(64, kv.get("llama.embedding_length"));
    assertEquals(2, kv.get("llama.block_count"));
    assertEquals(172, kv.get("llama.feed_forward_length"));
    assertEquals(4, kv.get("llama.attention.head_count"));
    assertEquals(4, kv.get("llama.attention.head_count_kv"));
    assertEquals(16, kv.get("llama.rope.dimension_count"));
    assertEquals(512, kv.get("llama.vocab_size"));
    assertEquals("llama", kv.get("tokenizer.ggml.model"));
    assertEquals(true, kv.get("tokenizer.ggml.add_bos_token"));
    assertEquals(GgufWriter.CHATML_TEMPLATE, kv.get("tokenizer.chat_template"));

    List<?> tokens = (List<?>) kv.get("tokenizer.ggml.tokens");
    List<?> types = (List<?>) kv.get("tokenizer.ggml.token_type");
    List<?> scores = (List<?>) kv.get("tokenizer.ggml.scores");
    assertEquals(512, tokens.size());
    assertEquals(512, types.size());
    assertEquals(512, scores.size());
    assertEquals(List.of("<unk>", "<s>", "</s>"), tokens.subList(0, 3));
    assertEquals("<0x00>", tokens.get(GgufWriter.FIRST_BYTE_TOKEN_ID));
    assertEquals("<0xFF>", tokens.get(GgufWriter.FIRST_BYTE_TOKEN_ID + 255));
    assertEquals(6, types.get(GgufWriter.FIRST_BYTE_TOKEN_ID + 0x41)); // BYTE
    assertEquals("<|im_start|>", tokens.get(GgufWriter.IM_START_TOKEN_ID));
    assertEquals("<|im_end|>", tokens.get(GgufWriter.IM_END_TOKEN_ID));
    assertEquals(3, types.get(GgufWriter.IM_END_TOKEN_ID)); // CONTROL
    assertEquals(GgufWriter.IM_END_TOKEN_ID, kv.get("tokenizer.ggml.eot_token_id"));
    assertTrue(tokens.contains("▁the") && tokens.contains("▁th") && tokens.contains("▁t"));
    assertEquals(tokens.size(), Set.copyOf(tokens).size(), "tokens are unique");
    for (int id = GgufWriter.IM_END_TOKEN_ID + 2; id < scores.size(); id++) {
      assertTrue((float) scores.get(id) < (float) scores.get(id - 1), "scores descend at " + id);
    }
  }

  @Test
  void tensorsHaveGgmlShapesAlignedOffsetsAndFillTheFile() throws IOException {
    Path file = GgufWriter.tiny().kvHeads(2).write(dir.resolve("gqa.gguf"));
    Gguf gguf = Gguf.read(file);

    assertEquals(3 + 2 * 9, gguf.tensors().size());
    assertEquals(
        new TensorInfo("token_embd.weight", List.of(64L, 512L), 0, 0), gguf.tensors().get(0));
    Map<String, TensorInfo> byName = new LinkedHashMap<>();
    gguf.tensors().forEach(t -> byName.put(t.name(), t));
    assertEquals(List.of(64L), byName.get("output_norm.weight").dims());
    assertEquals(List.of(64L, 512L), byName.get("output.weight").dims());
    assertEquals(List.of(64L, 64L), byName.get("blk.1.attn_q.weight").dims());
    assertEquals(List.of(64L, 32L), byName.get("blk.1.attn_k.weight").dims()); // 2 of 4 heads
    assertEquals(List.of(64L, 32L), byName.get("blk.1.attn_v.weight").dims());
    assertEquals(List.of(64L, 172L), byName.get("blk.0.ffn_up.weight").dims());
    assertEquals(List.of(172L, 64L), byName.get("blk.0.ffn_down.weight").dims());

    assertEquals(0, gguf.dataStart() % GgufWriter.ALIGNMENT);
    for (TensorInfo t : gguf.tensors()) {
      assertEquals(0, t.offset() % GgufWriter.ALIGNMENT, t.name());
    }
    TensorInfo last = gguf.tensors().getLast();
    long lastBytes = 4 * 172 * 64;
    assertEquals(gguf.dataStart() + last.offset() + lastBytes, Files.size(file));

    ByteBuffer norm = gguf.data(byName.get("blk.0.ffn_norm.weight"), 64 * 4);
    for (int i = 0; i < 64; i++) {
      assertEquals(1f, norm.getFloat());
    }
    ByteBuffer weights = gguf.data(byName.get("blk.0.attn_q.weight"), 64 * 64 * 4);
    double sumOfSquares = 0;
    for (int i = 0; i < 64 * 64; i++) {
      float w = weights.getFloat();
      assertTrue(Math.abs(w) <= GgufWriter.WEIGHT_RANGE, "weight " + w);
      sumOfSquares += w * w;
    }
    assertEquals(0.02, Math.sqrt(sumOfSquares / (64 * 64)), 0.002);
  }

  @ParameterizedTest
  @EnumSource(TensorType.class)
  void matricesHaveTheTypeAndNormsStayF32(TensorType type) throws IOException {
    Path file = GgufWriter.tiny().feedForward(192).type(type).write(dir.resolve(type + ".gguf"));
    Gguf gguf = Gguf.read(file);

    for (TensorInfo t : gguf.tensors()) {
      assertEquals(t.name().endsWith("norm.weight") ? 0 : type.ggmlType(), t.type(), t.name());
    }
    TensorInfo last = gguf.tensors().getLast();
    assertEquals(gguf.dataStart() + last.offset() + type.bytes(192 * 64), Files.size(file));
  }

  @Test
  void sameSeedGivesTheSameBytes() throws IOException {
    byte[] a = Files.readAllBytes(GgufWriter.tiny().seed(7).write(dir.resolve("a.gguf")));
    byte[] b = Files.readAllBytes(GgufWriter.tiny().seed(7).write(dir.resolve("b.gguf")));
    byte[] c = Files.readAllBytes(GgufWriter.tiny().seed(8).write(dir.resolve("c.gguf")));

    assertArrayEquals(a, b);
    assertEquals(a.length, c.length);
    assertFalse(Arrays.equals(a, c));
  }

  @Test
  void withoutChatTemplateThereIsNoTemplateKey() throws IOException {
    Gguf gguf = Gguf.read(GgufWriter.tiny().chatTemplate(null).write(dir.resolve("plain.gguf")));

    assertFalse(gguf.metadata().containsKey("tokenizer.chat_template"));
  }

  @Test
  void quantizedTypesNeedRowsOfWholeBlocks() {
    GgufWriter writer = GgufWriter.tiny().type(TensorType.Q4_0); // feed-forward 172

    IllegalStateException e =
        assertThrows(IllegalStateException.class, () -> writer.write(dir.resolve("x.gguf")));
    assertTrue(e.getMessage().contains("multiples of 32"), e.getMessage());
  }

  @Test
  void tinyLlama1BHasTinyLlamaParameterCount() {
    assertEquals(1_100_048_384L, GgufWriter.tinyLlama1B().parameterCount());
  }

  /** x[j] = j - 16: the largest magnitude is x[0] = -16, so d = -16 / -8 = 2. */
  @Test
  void q4_0BlockIsScaleThenLowNibblesFirstHalfHighNibblesSecondHalf() {
    float[] x = ramp();
    ByteBuffer out = ByteBuffer.allocate(18).order(ByteOrder.LITTLE_ENDIAN);

    GgufWriter.quantizeQ4_0(x, 0, out);

    assertEquals(Float.floatToFloat16(2f), out.getShort(0));
    for (int j = 0; j < 16; j++) {
      int lo = Math.min(15, (int) (x[j] / 2 + 8.5f));
      int hi = Math.min(15, (int) (x[j + 16] / 2 + 8.5f));
      assertEquals((byte) (lo | hi << 4), out.get(2 + j), "byte " + j);
    }
    assertEquals((byte) 0x80, out.get(2)); // x[0] = -16 -> 0, x[16] = 0 -> 8
    assertEquals((byte) 0xF8, out.get(17)); // x[15] = -1 -> 8, x[31] = 15 -> 16 clamped to 15
  }

  @Test
  void q8_0BlockIsScaleThenRoundedInt8() {
    float[] x = ramp();
    ByteBuffer out = ByteBuffer.allocate(34).order(ByteOrder.LITTLE_ENDIAN);

    GgufWriter.quantizeQ8_0(x, 0, out);

    assertEquals(Float.floatToFloat16(16f / 127), out.getShort(0));
    assertEquals(-127, out.get(2)); // x[0] = -16
    assertEquals(8, out.get(2 + 17)); // x[17] = 1 -> 7.94
    assertEquals(119, out.get(2 + 31)); // x[31] = 15 -> 119.06
  }

  @Test
  void halvesRoundAwayFromZeroInQ8_0LikeRoundf() {
    float[] x = new float[32];
    x[0] = 127; // d = 1
    x[1] = 2.5f;
    x[2] = -2.5f;
    ByteBuffer out = ByteBuffer.allocate(34).order(ByteOrder.LITTLE_ENDIAN);

    GgufWriter.quantizeQ8_0(x, 0, out);

    assertEquals(3, out.get(3));
    assertEquals(-3, out.get(4));
  }

  private static float[] ramp() {
    float[] x = new float[32];
    for (int j = 0; j < 32; j++) {
      x[j] = j - 16;
    }
    return x;
  }

  record TensorInfo(String name, List<Long> dims, int type, long offset) {}

  /** Reads the GGUF header: the value types GgufWriter writes, then the tensor infos. */
  record Gguf(
      Path file,
      int version,
      Map<String, Object> metadata,
      List<TensorInfo> tensors,
      long dataStart) {
    static Gguf read(Path file) throws IOException {
      ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
      assertEquals(0x46554747, b.getInt(), "magic GGUF");
      int version = b.getInt();
      long tensorCount = b.getLong();
      long kvCount = b.getLong();
      Map<String, Object> kv = new LinkedHashMap<>();
      for (long i = 0; i < kvCount; i++) {
        String key = string(b);
        kv.put(key, value(b, b.getInt()));
      }
      List<TensorInfo> tensors = new ArrayList<>();
      for (long i = 0; i < tensorCount; i++) {
        String name = string(b);
        int dimCount = b.getInt();
        List<Long> dims = new ArrayList<>();
        for (int d = 0; d < dimCount; d++) {
          dims.add(b.getLong());
        }
        tensors.add(new TensorInfo(name, dims, b.getInt(), b.getLong()));
      }
      int alignment = (int) kv.getOrDefault("general.alignment", 32);
      long dataStart = (b.position() + alignment - 1) / alignment * alignment;
      return new Gguf(file, version, kv, tensors, dataStart);
    }

    ByteBuffer data(TensorInfo tensor, int bytes) throws IOException {
      byte[] all = Files.readAllBytes(file);
      return ByteBuffer.wrap(all, (int) (dataStart + tensor.offset()), bytes)
          .order(ByteOrder.LITTLE_ENDIAN);
    }

    private static Object value(ByteBuffer b, int type) {
      return switch (type) {
        case 4, 5 -> b.getInt();
        case 6 -> b.getFloat();
        case 7 -> b.get() != 0;
        case 8 -> string(b);
        case 9 -> {
          int elementType = b.getInt();
          long count = b.getLong();
          List<Object> list = new ArrayList<>();
          for (long i = 0; i < count; i++) {
            list.add(value(b, elementType));
          }
          yield list;
        }
        default -> throw new AssertionError("unexpected GGUF value type " + type);
      };
    }

    private static String string(ByteBuffer b) {
      byte[] bytes = new byte[(int) b.getLong()];
      b.get(bytes);
      return new String(bytes, StandardCharsets.UTF_8);
    }
  }
}
