package dev.berth.client.bench;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.BerthException;
import dev.berth.client.grpc.ModelInferRequest;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

class GrpcRequestsTest {
  @Test
  void inputsBecomeRawContentsInTheBinaryLayout() {
    ModelInferRequest r =
        GrpcRequests.of(
            ("{\"id\":\"7\",\"inputs\":["
                    + "{\"name\":\"text\",\"shape\":[2],\"datatype\":\"BYTES\",\"data\":[\"ab\",\"c\"]},"
                    + "{\"name\":\"x\",\"shape\":[1,2],\"datatype\":\"FP32\",\"data\":[[0.5,2]]}],"
                    + "\"outputs\":[{\"name\":\"embedding\"}]}")
                .getBytes(StandardCharsets.UTF_8),
            "minilm");
    assertEquals("minilm", r.getModelName());
    assertEquals("7", r.getId());
    assertEquals(List.of("text", "x"), r.getInputsList().stream().map(t -> t.getName()).toList());
    assertEquals("BYTES", r.getInputs(0).getDatatype());
    assertEquals(List.of(1L, 2L), r.getInputs(1).getShapeList());
    assertTrue(!r.getInputs(0).hasContents(), "data goes in raw_input_contents");
    assertEquals(2, r.getRawInputContentsCount());
    ByteBuffer text =
        ByteBuffer.wrap(r.getRawInputContents(0).toByteArray()).order(ByteOrder.LITTLE_ENDIAN);
    assertEquals(2, text.getInt());
    byte[] ab = new byte[2];
    text.get(ab);
    assertArrayEquals("ab".getBytes(StandardCharsets.UTF_8), ab);
    assertEquals(1, text.getInt());
    ByteBuffer x =
        ByteBuffer.wrap(r.getRawInputContents(1).toByteArray()).order(ByteOrder.LITTLE_ENDIAN);
    assertEquals(0.5f, x.getFloat());
    assertEquals(2f, x.getFloat());
    assertEquals("embedding", r.getOutputs(0).getName());
  }

  @Test
  void onlyOipRequestsConvert() {
    BerthException e =
        assertThrows(
            BerthException.class,
            () -> GrpcRequests.of("{\"instances\":[1]}".getBytes(StandardCharsets.UTF_8), "m"));
    assertTrue(
        e.getMessage().contains("--protocol grpc needs OIP v2 request bodies"), e.getMessage());
  }
}
