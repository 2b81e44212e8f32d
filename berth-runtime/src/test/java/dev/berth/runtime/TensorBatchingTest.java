package dev.berth.runtime;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.berth.api.Tensor;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

class TensorBatchingTest {

  @Test
  void concatThenSplitGivesThePartsBack() {
    Tensor a = Tensor.ofFloats("x", new long[] {1, 3}, new float[] {1, 2, 3});
    Tensor b = Tensor.ofFloats("x", new long[] {2, 3}, new float[] {4, 5, 6, 7, 8, 9});
    Tensor joined = TensorBatching.concat(List.of(a, b));
    assertArrayEquals(new long[] {3, 3}, joined.shape());
    assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6, 7, 8, 9}, joined.floats());
    List<Tensor> parts = TensorBatching.split(joined, new int[] {1, 2});
    assertEquals(a, parts.get(0));
    assertEquals(b, parts.get(1));
  }

  @Test
  void bytesTensorsJoinAndSplit() {
    Tensor a = Tensor.ofStrings("t", List.of("one"));
    Tensor b = Tensor.ofStrings("t", List.of("two", "three"));
    Tensor joined = TensorBatching.concat(List.of(a, b));
    assertEquals(3, joined.elements().size());
    List<Tensor> parts = TensorBatching.split(joined, new int[] {1, 2});
    assertEquals("three", new String(parts.get(1).elements().get(1), StandardCharsets.UTF_8));
    assertEquals(a, parts.get(0));
  }

  @Test
  void refusesToJoinDifferentTrailingShapes() {
    Tensor a = Tensor.ofFloats("x", new long[] {1, 2}, new float[] {1, 2});
    Tensor b = Tensor.ofFloats("x", new long[] {1, 3}, new float[] {1, 2, 3});
    assertThrows(IllegalArgumentException.class, () -> TensorBatching.concat(List.of(a, b)));
  }
}
