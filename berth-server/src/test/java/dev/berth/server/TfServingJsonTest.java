package dev.berth.server;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.DataType;
import dev.berth.api.InferenceResponse;
import dev.berth.api.InvalidInputException;
import dev.berth.api.Tensor;
import dev.berth.api.TensorSpec;
import dev.berth.runtime.ModelSignature;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/** TensorFlow Serving's row and columnar formats, read by the model's signature. */
class TfServingJsonTest {
  private static final ModelSignature TWO_INPUTS =
      new ModelSignature(
          "test",
          List.of(
              new TensorSpec("a", DataType.FP32, new long[] {-1, 2}),
              new TensorSpec("b", DataType.INT64, new long[] {-1})),
          List.of(new TensorSpec("y", DataType.FP32, new long[] {-1, 2})),
          true);

  private static TfServingJson.Predict read(String json) {
    return TfServingJson.readPredict(json.getBytes(StandardCharsets.UTF_8), "m", null, TWO_INPUTS);
  }

  @Test
  void rowsOfThePrimaryInput() {
    TfServingJson.Predict p = read("{\"instances\": [[1, 2], [3, 4], [5, 6]]}");
    assertTrue(p.rowFormat());
    Tensor a = p.request().inputs().get(0);
    assertEquals("a", a.name());
    assertArrayEquals(new long[] {3, 2}, a.shape());
    assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, a.floats());
  }

  @Test
  void namedRowsFeedSeveralInputs() {
    TfServingJson.Predict p =
        read("{\"instances\": [{\"a\": [1, 2], \"b\": 7}, {\"a\": [3, 4], \"b\": 8}]}");
    assertEquals(List.of("a", "b"), p.request().inputs().stream().map(Tensor::name).toList());
    assertArrayEquals(new long[] {7, 8}, p.request().inputs().get(1).longs());
  }

  @Test
  void columnarInputs() {
    TfServingJson.Predict p = read("{\"inputs\": {\"a\": [[1, 2]], \"b\": [9]}}");
    assertEquals(false, p.rowFormat());
    assertArrayEquals(new long[] {1, 2}, p.request().inputs().get(0).shape());
    assertArrayEquals(new long[] {9}, p.request().inputs().get(1).longs());
  }

  @Test
  void base64ValuesAreBytes() {
    ModelSignature text =
        new ModelSignature(
            "test",
            List.of(new TensorSpec("t", DataType.BYTES, new long[] {-1})),
            List.of(new TensorSpec("y", DataType.FP32, new long[] {-1, 2})),
            true);
    byte[] binary = {0, (byte) 0xff, 'a'};
    String b64 = java.util.Base64.getEncoder().encodeToString(binary);
    TfServingJson.Predict p =
        TfServingJson.readPredict(
            ("{\"instances\": [{\"b64\": \"" + b64 + "\"}, \"plain\"]}")
                .getBytes(StandardCharsets.UTF_8),
            "m",
            null,
            text);
    Tensor t = p.request().inputs().get(0);
    assertArrayEquals(new long[] {2}, t.shape());
    assertArrayEquals(binary, t.elements().get(0));
    assertEquals("plain", new String(t.elements().get(1), StandardCharsets.UTF_8));
    InvalidInputException e =
        assertThrows(
            InvalidInputException.class,
            () ->
                TfServingJson.readPredict(
                    "{\"instances\": [{\"b64\": \"***\"}]}".getBytes(StandardCharsets.UTF_8),
                    "m",
                    null,
                    text));
    assertTrue(e.getMessage().contains("not valid base64"), e.getMessage());
  }

  @Test
  void answersTakeTheRequestsFormat() {
    Tensor y = Tensor.ofFloats("y", new long[] {2, 2}, new float[] {1, 2, 3, 4});
    InferenceResponse r = new InferenceResponse(null, "m", "1", List.of(y));
    assertEquals(
        "{\"predictions\":[[1.0,2.0],[3.0,4.0]]}",
        new String(TfServingJson.writePredict(r, true), StandardCharsets.UTF_8));
    assertEquals(
        "{\"outputs\":[[1.0,2.0],[3.0,4.0]]}",
        new String(TfServingJson.writePredict(r, false), StandardCharsets.UTF_8));
    Tensor z = Tensor.ofStrings("z", List.of("p", "q"));
    InferenceResponse two = new InferenceResponse(null, "m", "1", List.of(y, z));
    assertEquals(
        "{\"predictions\":[{\"y\":[1.0,2.0],\"z\":\"p\"},{\"y\":[3.0,4.0],\"z\":\"q\"}]}",
        new String(TfServingJson.writePredict(two, true), StandardCharsets.UTF_8));
  }

  @Test
  void badRequestsSayWhatIsWrong() {
    String[][] cases = {
      {"{\"instances\": [[1, 2], [3]]}", "differ in shape"},
      {"{\"instances\": [[1, 2]], \"inputs\": [[1, 2]]}", "exactly one of"},
      {"{}", "exactly one of"},
      {"{\"instances\": []}", "non-empty"},
      {"{\"inputs\": [[1, 2], [3]]}", "not rectangular"},
      {"{\"instances\": [[\"x\", 2]]}", "must be numbers"},
      {"[1]", "JSON object"},
    };
    for (String[] c : cases) {
      InvalidInputException e = assertThrows(InvalidInputException.class, () -> read(c[0]), c[0]);
      assertTrue(e.getMessage().contains(c[1]), c[0] + " -> " + e.getMessage());
    }
  }
}
