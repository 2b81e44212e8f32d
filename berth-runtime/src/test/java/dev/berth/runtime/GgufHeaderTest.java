package dev.berth.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.BerthException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** GGUF metadata read from the header: numbers and strings kept, arrays skipped, shape to KV. */
class GgufHeaderTest {
  @TempDir Path dir;

  /** GGUF v3's little-endian encoding of a header with no tensors. */
  static final class Header {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();
    private int count;

    private void raw(int bytes, long value) {
      ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(value);
      out.write(b.array(), 0, bytes);
    }

    private void string(String s) {
      byte[] bytes = s.getBytes(StandardCharsets.UTF_8);
      raw(8, bytes.length);
      out.writeBytes(bytes);
    }

    Header uint32(String key, long value) {
      string(key);
      raw(4, 4);
      raw(4, value);
      count++;
      return this;
    }

    Header text(String key, String value) {
      string(key);
      raw(4, 8);
      string(value);
      count++;
      return this;
    }

    Header float32(String key, float value) {
      string(key);
      raw(4, 6);
      raw(4, Float.floatToIntBits(value));
      count++;
      return this;
    }

    Header strings(String key, String... values) {
      string(key);
      raw(4, 9);
      raw(4, 8);
      raw(8, values.length);
      for (String v : values) {
        string(v);
      }
      count++;
      return this;
    }

    byte[] bytes() {
      ByteArrayOutputStream file = new ByteArrayOutputStream();
      ByteBuffer b = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN);
      b.putInt(0x46554747).putInt(3).putLong(0).putLong(count);
      file.writeBytes(b.array());
      file.writeBytes(out.toByteArray());
      return file.toByteArray();
    }
  }

  @Test
  void readsNumbersAndStringsAndSkipsArrays() throws IOException {
    Path file = dir.resolve("model.gguf");
    Files.write(
        file,
        new Header()
            .text("general.architecture", "llama")
            .strings("tokenizer.ggml.tokens", "<unk>", "<s>", "</s>", "hello")
            .uint32("llama.block_count", 22)
            .uint32("llama.embedding_length", 2048)
            .float32("llama.attention.layer_norm_rms_epsilon", 1e-5f)
            .uint32("llama.attention.head_count", 32)
            .uint32("llama.attention.head_count_kv", 4)
            .bytes());
    GgufHeader header = GgufHeader.read(file);
    assertEquals("llama", header.architecture());
    assertEquals(22, header.integer("llama.block_count", 0));
    assertEquals(
        1e-5, (Double) header.values().get("llama.attention.layer_norm_rms_epsilon"), 1e-9);
    assertTrue(!header.values().containsKey("tokenizer.ggml.tokens"), "arrays are skipped");
    // K and V, 2 bytes each, 22 layers, 2048 / 32 * 4 = 256 wide, per token
    assertEquals(2L * 2 * 22 * 256 * 1000, header.kvCacheBytes(1000));
    assertEquals(Files.size(file), header.bytes());
  }

  @Test
  void aFileThatIsNotGgufSaysSo() throws IOException {
    Path file = Files.writeString(dir.resolve("model.gguf"), "not a model at all");
    BerthException e = assertThrows(BerthException.class, () -> GgufHeader.read(file));
    assertTrue(e.getMessage().contains("not a GGUF file"), e.getMessage());
    Path cut = dir.resolve("cut.gguf");
    byte[] whole = new Header().text("general.architecture", "llama").bytes();
    Files.write(cut, java.util.Arrays.copyOf(whole, whole.length - 3));
    e = assertThrows(BerthException.class, () -> GgufHeader.read(cut));
    assertTrue(e.getMessage().contains("ends inside its GGUF header"), e.getMessage());
  }
}
