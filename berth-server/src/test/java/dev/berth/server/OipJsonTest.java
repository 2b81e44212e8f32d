package dev.berth.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.api.DataType;
import dev.berth.api.InferenceRequest;
import dev.berth.api.InferenceResponse;
import dev.berth.api.InvalidInputException;
import dev.berth.api.ModelMetadata;
import dev.berth.api.Tensor;
import dev.berth.api.TensorSpec;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Open Inference Protocol JSON for every datatype, both ways. */
class OipJsonTest {
  private static final ObjectMapper MAPPER = new ObjectMapper();

  private static InferenceRequest read(String json) {
    return OipJson.readRequest(json.getBytes(StandardCharsets.UTF_8), "m", null);
  }

  private static String request(String datatype, String shape, String data) {
    return "{\"inputs\":[{\"name\":\"x\",\"shape\":"
        + shape
        + ",\"datatype\":\""
        + datatype
        + "\",\"data\":"
        + data
        + "}]}";
  }

  /** datatype, JSON data (flat, shape [4]), the little-endian bytes expected. */
  static Stream<Arguments> datatypes() {
    return Stream.of(
        Arguments.of("BOOL", "[true,false,true,true]", bytes(1, 0, 1, 1)),
        Arguments.of("UINT8", "[0,1,128,255]", bytes(0, 1, 128, 255)),
        Arguments.of("INT8", "[-128,-1,0,127]", bytes(-128, -1, 0, 127)),
        Arguments.of(
            "UINT16",
            "[0,1,256,65535]",
            le(
                b ->
                    b.putShort((short) 0)
                        .putShort((short) 1)
                        .putShort((short) 256)
                        .putShort((short) 65535),
                8)),
        Arguments.of(
            "INT16",
            "[-32768,-1,2,32767]",
            le(
                b ->
                    b.putShort((short) -32768)
                        .putShort((short) -1)
                        .putShort((short) 2)
                        .putShort((short) 32767),
                8)),
        Arguments.of(
            "UINT32",
            "[0,1,65536,4294967295]",
            le(b -> b.putInt(0).putInt(1).putInt(65536).putInt(-1), 16)),
        Arguments.of(
            "INT32",
            "[-2147483648,-1,7,2147483647]",
            le(
                b -> b.putInt(Integer.MIN_VALUE).putInt(-1).putInt(7).putInt(Integer.MAX_VALUE),
                16)),
        Arguments.of(
            "UINT64",
            "[0,1,9223372036854775808,18446744073709551615]",
            le(b -> b.putLong(0).putLong(1).putLong(Long.MIN_VALUE).putLong(-1), 32)),
        Arguments.of(
            "INT64",
            "[-9223372036854775808,-1,3,9223372036854775807]",
            le(b -> b.putLong(Long.MIN_VALUE).putLong(-1).putLong(3).putLong(Long.MAX_VALUE), 32)),
        Arguments.of(
            "FP16",
            "[0.5,-2.0,65504,0.000061035156]",
            le(
                b ->
                    b.putShort(Float.floatToFloat16(0.5f))
                        .putShort(Float.floatToFloat16(-2f))
                        .putShort(Float.floatToFloat16(65504f))
                        .putShort(Float.floatToFloat16(6.1035156e-5f)),
                8)),
        Arguments.of(
            "FP32",
            "[1.5,-0.25,3.4028235E38,1.0E-45]",
            le(
                b ->
                    b.putFloat(1.5f)
                        .putFloat(-0.25f)
                        .putFloat(Float.MAX_VALUE)
                        .putFloat(Float.MIN_VALUE),
                16)),
        Arguments.of(
            "FP64",
            "[1.5,-0.1,1.7976931348623157E308,4.9E-324]",
            le(
                b ->
                    b.putDouble(1.5)
                        .putDouble(-0.1)
                        .putDouble(Double.MAX_VALUE)
                        .putDouble(Double.MIN_VALUE),
                32)));
  }

  private static byte[] bytes(int... values) {
    byte[] out = new byte[values.length];
    for (int i = 0; i < values.length; i++) {
      out[i] = (byte) values[i];
    }
    return out;
  }

  private static byte[] le(java.util.function.Consumer<ByteBuffer> fill, int size) {
    ByteBuffer b = ByteBuffer.allocate(size).order(java.nio.ByteOrder.LITTLE_ENDIAN);
    fill.accept(b);
    return b.array();
  }

  private static byte[] dataOf(Tensor t) {
    ByteBuffer d = t.data();
    byte[] out = new byte[d.remaining()];
    d.get(out);
    return out;
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("datatypes")
  void decodesAndEncodesEveryDatatype(String datatype, String data, byte[] expected)
      throws Exception {
    Tensor flat = read(request(datatype, "[4]", data)).inputs().get(0);
    assertEquals(DataType.valueOf(datatype), flat.datatype());
    assertArrayEquals(expected, dataOf(flat));

    // the same values nested [2, 2]
    String nested =
        "[[" + data.substring(1, data.length() - 1).replaceFirst(",([^,]*),", ",$1],[") + "]]";
    Tensor twoByTwo = read(request(datatype, "[2,2]", nested)).inputs().get(0);
    assertArrayEquals(expected, dataOf(twoByTwo));

    // and back: encoding then decoding gives the same bytes
    byte[] json =
        OipJson.writeResponse(
            new InferenceResponse("id-1", "m", "1", List.of(twoByTwo.withName("y"))));
    JsonNode out = MAPPER.readTree(json).get("outputs").get(0);
    assertEquals(datatype, out.get("datatype").asText());
    assertEquals("[2,2]", out.get("shape").toString());
    Tensor again = read(request(datatype, "[2,2]", out.get("data").toString())).inputs().get(0);
    assertArrayEquals(expected, dataOf(again));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("datatypes")
  void binaryTensorExtensionCarriesEveryDatatype(String datatype, String data, byte[] expected)
      throws Exception {
    String header =
        "{\"inputs\":[{\"name\":\"x\",\"shape\":[2,2],\"datatype\":\""
            + datatype
            + "\",\"parameters\":{\"binary_data_size\":"
            + expected.length
            + "}}],\"parameters\":{\"binary_data_output\":true}}";
    byte[] json = header.getBytes(StandardCharsets.UTF_8);
    byte[] body = java.util.Arrays.copyOf(json, json.length + expected.length);
    System.arraycopy(expected, 0, body, json.length, expected.length);
    OipJson.Decoded decoded = OipJson.decode(body, json.length, "m", null);
    Tensor x = decoded.request().inputs().get(0);
    assertArrayEquals(new long[] {2, 2}, x.shape());
    assertArrayEquals(expected, dataOf(x));
    // the same as the JSON path
    Tensor viaJson = read(request(datatype, "[4]", data)).inputs().get(0);
    assertArrayEquals(dataOf(viaJson), dataOf(x));
    // and binary out: the raw bytes after the JSON header
    OipJson.Encoded answer =
        OipJson.writeResponse(new InferenceResponse(null, "m", "1", List.of(x)), decoded);
    byte[] raw =
        java.util.Arrays.copyOfRange(answer.body(), answer.headerLength(), answer.body().length);
    assertArrayEquals(expected, raw);
    JsonNode out = MAPPER.readTree(java.util.Arrays.copyOf(answer.body(), answer.headerLength()));
    assertEquals(
        expected.length,
        out.get("outputs").get(0).get("parameters").get("binary_data_size").asInt());
  }

  @Test
  void binaryBytesElementsAreLengthPrefixed() {
    byte[] raw = {2, 0, 0, 0, 'h', 'i', 0, 0, 0, 0, 3, 0, 0, 0, 'x', 'y', 'z'};
    String header =
        "{\"inputs\":[{\"name\":\"t\",\"shape\":[3],\"datatype\":\"BYTES\","
            + "\"parameters\":{\"binary_data_size\":17}}]}";
    byte[] json = header.getBytes(StandardCharsets.UTF_8);
    byte[] body = java.util.Arrays.copyOf(json, json.length + raw.length);
    System.arraycopy(raw, 0, body, json.length, raw.length);
    Tensor t = OipJson.decode(body, json.length, "m", null).request().inputs().get(0);
    assertEquals("hi", new String(t.elements().get(0), StandardCharsets.UTF_8));
    assertEquals(0, t.elements().get(1).length);
    assertEquals("xyz", new String(t.elements().get(2), StandardCharsets.UTF_8));
  }

  @Test
  void metadataCarriesAClassifiersLabelsAsParameters() throws Exception {
    TensorSpec in = new TensorSpec("pixels", DataType.FP32, new long[] {-1, 784});
    TensorSpec out = new TensorSpec("probabilities", DataType.FP32, new long[] {-1, 2});
    JsonNode labelled =
        new ObjectMapper()
            .readTree(
                OipJson.writeMetadata(
                    new ModelMetadata(
                        "m",
                        List.of("1"),
                        "onnxruntime_onnx",
                        List.of(in),
                        List.of(out),
                        List.of("no", "yes"))));
    assertEquals("[\"no\",\"yes\"]", labelled.get("parameters").get("labels").toString());
    JsonNode plain =
        new ObjectMapper()
            .readTree(
                OipJson.writeMetadata(
                    new ModelMetadata(
                        "m",
                        List.of("1"),
                        "onnxruntime_onnx",
                        List.of(in),
                        List.of(out),
                        List.of())));
    assertTrue(plain.get("parameters") == null, "no labels, no parameters");
  }

  @Test
  void bytesAreUtf8Strings() throws Exception {
    Tensor t = read(request("BYTES", "[3]", "[\"a\",\"\",\"zürich ✓\"]")).inputs().get(0);
    assertEquals("zürich ✓", new String(t.elements().get(2), StandardCharsets.UTF_8));
    byte[] json = OipJson.writeResponse(new InferenceResponse(null, "m", "1", List.of(t)));
    assertEquals(
        "[\"a\",\"\",\"zürich ✓\"]",
        MAPPER.readTree(json).get("outputs").get(0).get("data").toString());
  }

  @Test
  void fieldsMayComeInAnyOrderAndIdAndOutputsAreRead() {
    InferenceRequest r =
        read(
            "{\"outputs\":[{\"name\":\"y\"}],\"inputs\":[{\"data\":[[1,2],[3,4]],\"datatype\":\"INT32\","
                + "\"parameters\":{\"x\":1},\"shape\":[2,2],\"name\":\"x\"}],\"id\":\"abc\",\"parameters\":{}}");
    assertEquals("abc", r.id());
    assertEquals(List.of("y"), r.outputs());
    assertArrayEquals(new long[] {2, 2}, r.inputs().get(0).shape());
  }

  @Test
  void nonFiniteFloatsTravelAsStrings() throws Exception {
    Tensor t = read(request("FP32", "[3]", "[\"NaN\",\"Infinity\",\"-Infinity\"]")).inputs().get(0);
    byte[] json = OipJson.writeResponse(new InferenceResponse(null, "m", "1", List.of(t)));
    assertEquals(
        "[\"NaN\",\"Infinity\",\"-Infinity\"]",
        MAPPER.readTree(json).get("outputs").get(0).get("data").toString());
  }

  @Test
  void floatsAreWrittenAsTheShortestDecimalThatReadsBackExactly() throws Exception {
    float[] values = {
      0f, -0f, 1f, -1.5f, 0.1f, 1e-7f, 3.4028235e38f, Float.MIN_VALUE, 1.17549435e-38f, 123456.78f
    };
    java.util.Random random = new java.util.Random(42);
    float[] all = java.util.Arrays.copyOf(values, values.length + 1000);
    for (int i = values.length; i < all.length; i++) {
      all[i] = Float.intBitsToFloat(random.nextInt());
      if (!Float.isFinite(all[i])) {
        all[i] = random.nextFloat();
      }
    }
    java.nio.ByteBuffer b = Tensor.allocate(4L * all.length);
    for (float f : all) {
      b.putFloat(f);
    }
    b.flip();
    Tensor t = Tensor.of("y", dev.berth.api.DataType.FP32, new long[] {all.length}, b);
    byte[] json = OipJson.writeResponse(new InferenceResponse(null, "m", "1", List.of(t)));
    JsonNode data = MAPPER.readTree(json).get("outputs").get(0).get("data");
    StringBuilder expected = new StringBuilder("[");
    for (int i = 0; i < all.length; i++) {
      assertEquals(
          Float.floatToIntBits(all[i]), Float.floatToIntBits(data.get(i).floatValue()), "" + i);
      expected.append(i == 0 ? "" : ",").append(Float.toString(all[i]));
    }
    String text = new String(json, java.nio.charset.StandardCharsets.UTF_8);
    assertTrue(text.contains("\"data\":" + expected + "]"), "the text Jackson writes too");
  }

  static Stream<Arguments> badRequests() {
    return Stream.of(
        Arguments.of("{", "malformed JSON"),
        Arguments.of("[]", "must be a JSON object"),
        Arguments.of("{}", "no 'inputs'"),
        Arguments.of(
            "{\"inputs\":[{\"name\":\"x\",\"shape\":[2],\"data\":[1,2]}]}", "no 'datatype'"),
        Arguments.of(
            "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"data\":[1,2]}]}", "no 'shape'"),
        Arguments.of(request("FP33", "[1]", "[1]"), "unknown datatype 'FP33'"),
        Arguments.of(request("FP32", "[3]", "[1,2]"), "3 elements) but its data holds 2"),
        Arguments.of(request("FP32", "[-1]", "[1]"), "whole numbers >= 0"),
        Arguments.of(request("INT32", "[1]", "[1.5]"), "must be whole numbers; got 1.5"),
        Arguments.of(request("UINT8", "[1]", "[256]"), "256 is out of range for UINT8"),
        Arguments.of(request("INT64", "[1]", "[9223372036854775808]"), "out of range for INT64"),
        Arguments.of(request("BOOL", "[1]", "[\"yes\"]"), "must be true or false"),
        Arguments.of(request("BYTES", "[1]", "[1]"), "must be strings"),
        Arguments.of(request("FP32", "[1000000000]", "[1]"), "more than a body of"),
        Arguments.of("{\"inputs\":[]} {}", "content after"));
  }

  @ParameterizedTest(name = "{1}")
  @MethodSource("badRequests")
  void badRequestsSayWhatIsWrong(String body, String message) {
    InvalidInputException e = assertThrows(InvalidInputException.class, () -> read(body));
    assertTrue(e.getMessage().contains(message), e.getMessage());
  }
}
