package dev.berth.client.eval;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.BerthException;
import dev.berth.api.DataType;
import java.util.List;
import org.junit.jupiter.api.Test;

/** From model outputs to predicted classes. */
class ClassDecisionTest {
  private static ModelOutput scores(int width, double... values) {
    return new ModelOutput(
        "probs", DataType.FP32, new long[] {values.length / width, width}, values, List.of());
  }

  @Test
  void theHighestScoreWinsAndTheFirstOnATie() {
    ClassDecision d = new ClassDecision(List.of("a", "b", "c"), -1, Double.NaN);

    int[] p = d.predict(scores(3, 0.1, 0.7, 0.2, 5, 5, 1, -1, -2, -0.5), 3);

    assertArrayEquals(new int[] {1, 0, 2}, p);
  }

  @Test
  void aThresholdOnThePositiveClassOfABinaryTask() {
    ModelOutput out = scores(2, 0.35, 0.65, 0.75, 0.25, 0.2, 0.8);

    assertArrayEquals(
        new int[] {1, 0, 1},
        new ClassDecision(List.of("neg", "pos"), 1, Double.NaN).predict(out, 3));
    assertArrayEquals(
        new int[] {0, 0, 1}, new ClassDecision(List.of("neg", "pos"), 1, 0.7).predict(out, 3));
    // the positive class at index 0: P(neg) >= 0.3 makes "neg"
    assertArrayEquals(
        new int[] {0, 0, 1}, new ClassDecision(List.of("neg", "pos"), 0, 0.3).predict(out, 3));
  }

  @Test
  void oneScoreARowIsTheProbabilityOfThePositiveClass() {
    ModelOutput out = scores(1, 0.5, 0.49, 0.9);

    assertArrayEquals(
        new int[] {1, 0, 1},
        new ClassDecision(List.of("no", "yes"), 1, Double.NaN).predict(out, 3));
    assertArrayEquals(
        new int[] {0, 0, 1}, new ClassDecision(List.of("no", "yes"), 1, 0.6).predict(out, 3));
  }

  @Test
  void classIndicesAndClassNames() {
    ClassDecision d = new ClassDecision(List.of("a", "b", "c"), -1, Double.NaN);

    int[] byIndex =
        d.predict(
            new ModelOutput(
                "label", DataType.INT64, new long[] {2}, new double[] {2, 0}, List.of()),
            2);
    int[] byName =
        d.predict(
            new ModelOutput(
                "label", DataType.BYTES, new long[] {2}, new double[0], List.of("b", "c")),
            2);

    assertArrayEquals(new int[] {2, 0}, byIndex);
    assertArrayEquals(new int[] {1, 2}, byName);
  }

  @Test
  void outputsThatDoNotFitTheClassesAreClearErrors() {
    ClassDecision three = new ClassDecision(List.of("a", "b", "c"), -1, Double.NaN);

    BerthException width =
        assertThrows(BerthException.class, () -> three.predict(scores(2, 1, 2), 1));
    BerthException name =
        assertThrows(
            BerthException.class,
            () ->
                three.predict(
                    new ModelOutput(
                        "label", DataType.BYTES, new long[] {1}, new double[0], List.of("z")),
                    1));
    BerthException threshold =
        assertThrows(
            BerthException.class,
            () ->
                new ClassDecision(List.of("a", "b", "c"), -1, 0.5)
                    .check(DataType.FP32, 3, "probs"));

    assertTrue(
        width.getMessage().contains("gives 2 scores a row but there are 3"), width.getMessage());
    assertTrue(name.getMessage().contains("class 'z'"), name.getMessage());
    assertTrue(
        threshold.getMessage().contains("--threshold is for binary tasks"), threshold.getMessage());
  }
}
