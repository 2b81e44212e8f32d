package dev.berth.client.eval;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Metrics against examples worked out by hand. */
class ClassificationMetricsTest {
  private static final double EPS = 1e-12;

  /**
   * 60 positives: 50 predicted positive (TP), 10 negative (FN); 40 negatives: 30 predicted positive
   * (FP), 10 negative (TN). Accuracy = (50 + 10) / 100 = 0.6 and precision = 50 / (50 + 30) = 0.625
   * (a tutorial that passes this example around prints 0.8 and 0.571, which these counts do not
   * give); recall = 50 / 60; F1 = 2PR / (P + R) = 2TP / (2TP + FP + FN) = 100 / 140.
   */
  @Test
  void binaryExampleWorkedByHand() {
    String[] truth = new String[100];
    String[] predicted = new String[100];
    int i = 0;
    for (int k = 0; k < 50; k++, i++) {
      truth[i] = "positive";
      predicted[i] = "positive";
    }
    for (int k = 0; k < 10; k++, i++) {
      truth[i] = "positive";
      predicted[i] = "negative";
    }
    for (int k = 0; k < 30; k++, i++) {
      truth[i] = "negative";
      predicted[i] = "positive";
    }
    for (int k = 0; k < 10; k++, i++) {
      truth[i] = "negative";
      predicted[i] = "negative";
    }
    List<String> labels = List.of("negative", "positive");
    ConfusionMatrix m =
        ConfusionMatrix.of(labels, indices(labels, truth), indices(labels, predicted));
    assertEquals(ConfusionMatrix.of(labels, new long[][] {{10, 30}, {10, 50}}), m);

    ClassificationMetrics metrics = ClassificationMetrics.of(m);

    assertEquals(0.6, metrics.accuracy(), EPS);
    ClassificationMetrics.ClassMetrics pos = metrics.of("positive");
    assertEquals(0.625, pos.precision(), EPS);
    assertEquals(50.0 / 60, pos.recall(), EPS);
    double f1 = 2 * 0.625 * (50.0 / 60) / (0.625 + 50.0 / 60);
    assertEquals(f1, pos.f1(), EPS);
    assertEquals(100.0 / 140, pos.f1(), EPS);
    assertEquals(60, pos.support());
    assertEquals(80, pos.predicted());

    ClassificationMetrics.ClassMetrics neg = metrics.of("negative");
    assertEquals(10.0 / 20, neg.precision(), EPS);
    assertEquals(10.0 / 40, neg.recall(), EPS);
    assertEquals(1.0 / 3, neg.f1(), EPS);
    assertEquals(40, neg.support());

    assertEquals((0.625 + 0.5) / 2, metrics.macro().precision(), EPS);
    assertEquals((50.0 / 60 + 0.25) / 2, metrics.macro().recall(), EPS);
    assertEquals(11.0 / 21, metrics.macroF1(), EPS); // (5/7 + 1/3) / 2
    assertEquals(59.0 / 105, metrics.weighted().f1(), EPS); // (60 * 5/7 + 40 * 1/3) / 100
    assertEquals((60 * 0.625 + 40 * 0.5) / 100, metrics.weighted().precision(), EPS);
    assertEquals(0.6, metrics.weighted().recall(), EPS); // weighted recall is accuracy
    assertEquals(0.6, metrics.micro().f1(), EPS);
    assertTrue(metrics.notes().isEmpty(), metrics.notes().toString());
  }

  /**
   *
   *
   * <pre>
   *            predicted cat  dog  bird   support
   * true cat             3    1    1      5
   * true dog             1    2    1      4
   * true bird            0    0    3      3
   * predicted            4    3    5      12
   * </pre>
   *
   * cat: P 3/4, R 3/5, F1 2/3; dog: P 2/3, R 1/2, F1 4/7; bird: P 3/5, R 1, F1 3/4.
   */
  @Test
  void threeClassExampleWorkedByHand() {
    List<String> labels = List.of("cat", "dog", "bird");
    ClassificationMetrics m =
        ClassificationMetrics.of(
            ConfusionMatrix.of(labels, new long[][] {{3, 1, 1}, {1, 2, 1}, {0, 0, 3}}));

    assertEquals(8.0 / 12, m.accuracy(), EPS);
    assertClass(m.of("cat"), 3.0 / 4, 3.0 / 5, 2.0 / 3, 5, 4);
    assertClass(m.of("dog"), 2.0 / 3, 1.0 / 2, 4.0 / 7, 4, 3);
    assertClass(m.of("bird"), 3.0 / 5, 1.0, 3.0 / 4, 3, 5);

    assertEquals(121.0 / 180, m.macro().precision(), EPS);
    assertEquals(7.0 / 10, m.macro().recall(), EPS);
    assertEquals(167.0 / 252, m.macro().f1(), EPS);
    assertEquals(493.0 / 720, m.weighted().precision(), EPS);
    assertEquals(8.0 / 12, m.weighted().recall(), EPS);
    assertEquals(661.0 / 1008, m.weighted().f1(), EPS);
    assertEquals(new ClassificationMetrics.Averages(8.0 / 12, 8.0 / 12, 8.0 / 12), m.micro());
  }

  @Test
  void microAveragesEqualAccuracyForSingleLabelClassification() {
    Random random = new Random(7);
    for (int trial = 0; trial < 20; trial++) {
      int k = 2 + random.nextInt(6);
      long[][] counts = new long[k][k];
      for (long[] row : counts) {
        for (int p = 0; p < k; p++) {
          row[p] = random.nextInt(4) == 0 ? 0 : random.nextInt(50);
        }
      }
      List<String> labels =
          java.util.stream.IntStream.range(0, k).mapToObj(Integer::toString).toList();
      ConfusionMatrix matrix = ConfusionMatrix.of(labels, counts);
      ClassificationMetrics m = ClassificationMetrics.of(matrix);
      double accuracy = (double) matrix.correct() / matrix.total();

      assertEquals(accuracy, m.accuracy(), EPS);
      assertEquals(accuracy, m.micro().precision(), EPS);
      assertEquals(accuracy, m.micro().recall(), EPS);
      assertEquals(accuracy, m.micro().f1(), EPS);
      assertEquals(accuracy, m.weighted().recall(), EPS);
    }
  }

  @Test
  void aClassNeverPredictedHasPrecisionZeroAndANoteSaysSo() {
    List<String> labels = List.of("a", "b", "c");
    // c has rows but is never predicted
    ClassificationMetrics m =
        ClassificationMetrics.of(
            ConfusionMatrix.of(labels, new long[][] {{4, 0, 0}, {1, 3, 0}, {1, 1, 0}}));

    ClassificationMetrics.ClassMetrics c = m.of("c");
    assertEquals(0, c.precision());
    assertEquals(0, c.recall());
    assertEquals(0, c.f1());
    assertTrue(c.averaged());
    assertEquals(1, m.notes().size(), m.notes().toString());
    assertTrue(m.notes().get(0).contains("never predicted: c"), m.notes().toString());
    // the zero counts in the macro average: (4/6 + 3/4 + 0) / 3
    assertEquals((4.0 / 6 + 3.0 / 4) / 3, m.macro().precision(), EPS);
    assertEquals(7.0 / 10, m.accuracy(), EPS);
  }

  @Test
  void aClassWithoutRowsOrPredictionsIsLeftOutOfTheAverages() {
    List<String> labels = List.of("a", "b", "unused", "extra");
    // "unused": no rows, no predictions; "extra": no rows but predicted once
    ClassificationMetrics m =
        ClassificationMetrics.of(
            ConfusionMatrix.of(
                labels, new long[][] {{3, 1, 0, 0}, {0, 3, 0, 1}, {0, 0, 0, 0}, {0, 0, 0, 0}}));

    assertFalse(m.of("unused").averaged());
    assertTrue(m.of("extra").averaged());
    assertEquals(0, m.of("extra").recall());
    assertEquals(0, m.of("extra").precision());
    // a: P 1, R 3/4; b: P 3/4, R 3/4; extra: P 0, R 0 (three classes averaged)
    assertEquals((1 + 0.75 + 0) / 3, m.macro().precision(), EPS);
    assertEquals((0.75 + 0.75 + 0) / 3, m.macro().recall(), EPS);
    assertTrue(
        m.notes().stream().anyMatch(n -> n.contains("no rows in the data: extra")),
        m.notes().toString());
    assertTrue(
        m.notes().stream().anyMatch(n -> n.contains("left out of the averages: unused")),
        m.notes().toString());
  }

  @Test
  void noRowsGiveZerosAndANote() {
    ClassificationMetrics m =
        ClassificationMetrics.of(ConfusionMatrix.of(List.of("a", "b"), new long[2][2]));

    assertEquals(0, m.accuracy());
    assertEquals(0, m.macroF1());
    assertTrue(m.notes().get(0).contains("no rows"), m.notes().toString());
  }

  @Test
  void rowsWithoutAnAnswerAreLeftOutOfTheMatrix() {
    ConfusionMatrix m =
        ConfusionMatrix.of(List.of("a", "b"), new int[] {0, 1, 1, 0}, new int[] {0, -1, 1, 1});

    assertEquals(3, m.total());
    assertEquals(ConfusionMatrix.of(List.of("a", "b"), new long[][] {{1, 1}, {0, 1}}), m);
  }

  private static void assertClass(
      ClassificationMetrics.ClassMetrics c,
      double precision,
      double recall,
      double f1,
      long support,
      long predicted) {
    assertEquals(precision, c.precision(), EPS, c.label() + " precision");
    assertEquals(recall, c.recall(), EPS, c.label() + " recall");
    assertEquals(f1, c.f1(), EPS, c.label() + " f1");
    assertEquals(support, c.support(), c.label() + " support");
    assertEquals(predicted, c.predicted(), c.label() + " predicted");
  }

  private static int[] indices(List<String> labels, String[] names) {
    int[] out = new int[names.length];
    for (int i = 0; i < names.length; i++) {
      out[i] = labels.indexOf(names[i]);
    }
    return out;
  }
}
