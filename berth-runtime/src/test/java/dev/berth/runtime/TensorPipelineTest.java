package dev.berth.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.BerthException;
import dev.berth.api.DataType;
import dev.berth.api.InvalidInputException;
import dev.berth.api.Tensor;
import dev.berth.api.TensorSpec;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The runtime's side of batching: join, group, run once per group, post-process, split. */
class TensorPipelineTest {

  /** y = x + 1 and z = 2x over FP32 [-1, -1]; records the shape of every call. */
  static class Recording implements TensorEngine {
    final List<long[]> calls = new ArrayList<>();
    int rowsOff; // a broken engine: gives this many rows more than it was sent

    @Override
    public ModelSignature signature() {
      return new ModelSignature(
          "test",
          List.of(new TensorSpec("x", DataType.FP32, new long[] {-1, -1})),
          List.of(
              new TensorSpec("y", DataType.FP32, new long[] {-1, -1}),
              new TensorSpec("z", DataType.FP32, new long[] {-1, -1})),
          true);
    }

    @Override
    public synchronized Map<String, Tensor> run(Map<String, Tensor> inputs, Set<String> outputs) {
      Tensor x = inputs.get("x");
      calls.add(x.shape());
      float[] v = x.floats();
      long[] shape = x.shape();
      shape[0] += rowsOff;
      float[] y = new float[(int) (shape[0] * shape[1])];
      float[] z = new float[y.length];
      for (int i = 0; i < Math.min(v.length, y.length); i++) {
        y[i] = v[i] + 1;
        z[i] = 2 * v[i];
      }
      Map<String, Tensor> out = new LinkedHashMap<>();
      if (outputs.contains("y")) {
        out.put("y", Tensor.ofFloats("y", shape, y));
      }
      if (outputs.contains("z")) {
        out.put("z", Tensor.ofFloats("z", shape, z));
      }
      return out;
    }

    @Override
    public void close() {}
  }

  private static Tensor x(int rows, int cols, float start) {
    float[] v = new float[rows * cols];
    for (int i = 0; i < v.length; i++) {
      v[i] = start + i;
    }
    return Tensor.ofFloats("x", new long[] {rows, cols}, v);
  }

  @Test
  void joinsRequestsOfOneTrailingShapeAndRunsOthersApart() {
    Recording engine = new Recording();
    TensorPipeline pipeline = new TensorPipeline("m", engine, List.of(), null);

    List<List<Tensor>> out =
        pipeline.run(
            List.of(List.of(x(1, 2, 0)), List.of(x(2, 3, 10)), List.of(x(2, 2, 20))), Set.of("y"));

    assertEquals(2, engine.calls.size(), "one call per trailing shape");
    assertArrayEquals(new long[] {3, 2}, engine.calls.get(0), "rows 1 and 2 joined");
    assertArrayEquals(new long[] {2, 3}, engine.calls.get(1));
    assertArrayEquals(new float[] {1, 2}, out.get(0).get(0).floats());
    assertArrayEquals(new float[] {11, 12, 13, 14, 15, 16}, out.get(1).get(0).floats());
    assertArrayEquals(new float[] {21, 22, 23, 24}, out.get(2).get(0).floats());
    assertArrayEquals(new long[] {2, 2}, out.get(2).get(0).shape());
  }

  @Test
  void aPreprocessorFillsEngineInputsAndAPostprocessorReplacesItsOutputs() {
    Recording engine = new Recording();
    Preprocessor scale =
        new Preprocessor() {
          @Override
          public List<TensorSpec> inputs() {
            return List.of(new TensorSpec("raw", DataType.INT64, new long[] {-1}));
          }

          @Override
          public List<Map<String, Tensor>> apply(List<Map<String, Tensor>> requests) {
            return requests.stream()
                .map(
                    r -> {
                      Tensor raw = r.get("raw");
                      if (raw == null) {
                        return r;
                      }
                      long[] v = raw.longs();
                      float[] f = new float[v.length];
                      for (int i = 0; i < v.length; i++) {
                        f[i] = v[i];
                      }
                      return Map.of("x", Tensor.ofFloats("x", new long[] {v.length, 1}, f));
                    })
                .toList();
          }
        };
    Postprocessor sum =
        new Postprocessor() {
          @Override
          public List<TensorSpec> outputs() {
            return List.of(new TensorSpec("sum", DataType.FP32, new long[] {-1}));
          }

          @Override
          public Set<String> sources() {
            return Set.of("y", "z");
          }

          @Override
          public Map<String, Tensor> apply(
              Map<String, Tensor> outputs, Map<String, Tensor> inputs) {
            float[] y = outputs.get("y").floats();
            float[] z = outputs.get("z").floats();
            float[] s = new float[y.length];
            for (int i = 0; i < s.length; i++) {
              s[i] = y[i] + z[i];
            }
            return Map.of("sum", Tensor.ofFloats("sum", new long[] {s.length}, s));
          }
        };
    TensorPipeline pipeline = new TensorPipeline("m", engine, List.of(scale), sum);

    assertEquals(List.of("raw", "x"), pipeline.signature().inputNames());
    assertEquals(List.of("sum"), pipeline.signature().outputNames());
    List<List<Tensor>> out =
        pipeline.run(
            List.of(
                List.of(Tensor.ofLongs("raw", new long[] {2}, new long[] {1, 2})),
                List.of(x(1, 1, 5))),
            Set.of("sum"));

    assertEquals(1, engine.calls.size(), "text and tensor requests join once made alike");
    assertArrayEquals(new float[] {4, 7}, out.get(0).get(0).floats()); // (v + 1) + 2v
    assertArrayEquals(new float[] {16}, out.get(1).get(0).floats());
  }

  @Test
  void aMissingEngineInputIsTheRequestsFault() {
    TensorEngine two =
        new Recording() {
          @Override
          public ModelSignature signature() {
            return new ModelSignature(
                "test",
                List.of(
                    new TensorSpec("x", DataType.FP32, new long[] {-1, -1}),
                    new TensorSpec("w", DataType.FP32, new long[] {-1, -1})),
                super.signature().outputs(),
                true);
          }
        };
    TensorPipeline pipeline = new TensorPipeline("m", two, List.of(), null);

    InvalidInputException e =
        assertThrows(
            InvalidInputException.class,
            () -> pipeline.run(List.of(List.of(x(1, 1, 0))), Set.of("y")));
    assertTrue(e.getMessage().contains("missing [w]"), e.getMessage());
  }

  @Test
  void anEngineThatGivesTheWrongRowsIsAnEngineFault() {
    Recording engine = new Recording();
    engine.rowsOff = 1;
    TensorPipeline pipeline = new TensorPipeline("m", engine, List.of(), null);

    BerthException e =
        assertThrows(
            BerthException.class,
            () -> pipeline.run(List.of(List.of(x(1, 1, 0)), List.of(x(1, 1, 1))), Set.of("y")));
    assertTrue(e.getMessage().contains("for a batch of 2 rows"), e.getMessage());
  }

  @Test
  void withoutABatchDimensionEveryRequestRunsAlone() {
    Recording engine =
        new Recording() {
          @Override
          public ModelSignature signature() {
            return new ModelSignature(
                "test",
                List.of(new TensorSpec("x", DataType.FP32, new long[] {1, 2})),
                List.of(new TensorSpec("y", DataType.FP32, new long[] {1, 2})),
                false);
          }
        };
    TensorPipeline pipeline = new TensorPipeline("m", engine, List.of(), null);

    List<List<Tensor>> out =
        pipeline.run(List.of(List.of(x(1, 2, 0)), List.of(x(1, 2, 5))), Set.of("y"));

    assertEquals(2, engine.calls.size());
    assertArrayEquals(new float[] {6, 7}, out.get(1).get(0).floats());
  }
}
