package dev.berth.client.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.api.BerthException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class BinaryRequestsTest {
  private static final ObjectMapper JSON = new ObjectMapper();

  private static BinaryRequests.Body convert(String json) {
    return BinaryRequests.of(json.getBytes(StandardCharsets.UTF_8));
  }

  @Test
  void eachInputsDataBecomesRawLittleEndianBytesAfterTheHeader() throws Exception {
    BinaryRequests.Body b =
        convert(
            "{\"id\":\"r1\",\"inputs\":["
                + "{\"name\":\"x\",\"shape\":[2,2],\"datatype\":\"FP32\",\"data\":[[1.5,-2],[0.25,3]]},"
                + "{\"name\":\"ids\",\"shape\":[2],\"datatype\":\"INT64\",\"data\":[7,-1]},"
                + "{\"name\":\"text\",\"shape\":[2],\"datatype\":\"BYTES\",\"data\":[\"hé\",\"\"]},"
                + "{\"name\":\"ok\",\"shape\":[2],\"datatype\":\"BOOL\",\"data\":[true,false]},"
                + "{\"name\":\"h\",\"shape\":[1],\"datatype\":\"FP16\",\"data\":[1.0]}],"
                + "\"outputs\":[{\"name\":\"y\"}]}");
    JsonNode header = JSON.readTree(Arrays.copyOf(b.content(), b.headerLength()));
    assertEquals("r1", header.path("id").asText());
    assertTrue(header.path("parameters").path("binary_data_output").asBoolean());
    assertEquals("y", header.path("outputs").get(0).path("name").asText());
    int[] sizes = {16, 16, 4 + 3 + 4, 2, 2};
    for (int i = 0; i < sizes.length; i++) {
      JsonNode in = header.path("inputs").get(i);
      assertFalse(in.has("data"), in.toString());
      assertEquals(sizes[i], in.path("parameters").path("binary_data_size").asInt(), in.toString());
    }
    ByteBuffer raw =
        ByteBuffer.wrap(b.content(), b.headerLength(), b.content().length - b.headerLength())
            .slice()
            .order(ByteOrder.LITTLE_ENDIAN);
    assertEquals(Arrays.stream(sizes).sum(), raw.remaining());
    assertEquals(1.5f, raw.getFloat());
    assertEquals(-2f, raw.getFloat());
    assertEquals(0.25f, raw.getFloat());
    assertEquals(3f, raw.getFloat());
    assertEquals(7, raw.getLong());
    assertEquals(-1, raw.getLong());
    assertEquals(3, raw.getInt());
    byte[] he = new byte[3];
    raw.get(he);
    assertArrayEquals("hé".getBytes(StandardCharsets.UTF_8), he);
    assertEquals(0, raw.getInt());
    assertEquals(1, raw.get());
    assertEquals(0, raw.get());
    assertEquals(Float.floatToFloat16(1.0f), raw.getShort());
  }

  @Test
  void onlyOipRequestsConvert() {
    BerthException e =
        assertThrows(BerthException.class, () -> convert("{\"instances\": [\"a sentence\"]}"));
    assertTrue(e.getMessage().contains("rest-binary needs OIP v2 request bodies"), e.getMessage());
    e =
        assertThrows(
            BerthException.class,
            () ->
                convert(
                    "{\"inputs\":[{\"name\":\"x\",\"shape\":[1],\"datatype\":\"FP32\",\"data\":[\"one\"]}]}"));
    assertTrue(e.getMessage().contains("input 'x' is FP32"), e.getMessage());
  }
}
