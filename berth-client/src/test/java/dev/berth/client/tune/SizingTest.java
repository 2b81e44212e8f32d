package dev.berth.client.tune;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.client.bench.LoadStep;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The deployment follows from the winner's figures, each with the reason it is what it is. */
class SizingTest {
  private static final TuneGoal GOAL = new TuneGoal(99, 200);
  private static final TuneSetting SETTING = new TuneSetting(Map.of("instances", 2));

  /**
   * 400 req/s held at 40 ms mean latency with 1.6 of 2 cores; 20 ms with one caller; 300 MiB, of
   * which {@code nativeBytes} outside the heap.
   */
  private static PointResult winner(long rss, double cores) {
    return winner(rss, rss < 0 ? -1 : 50L << 20, cores);
  }

  private static PointResult winner(long rss, long nativeBytes, double cores) {
    PointResult.Step one =
        new PointResult.Step(TunerTest.step(LoadStep.closed(1), 50, 20, 20), 0.5);
    PointResult.Step open =
        new PointResult.Step(TunerTest.step(LoadStep.open(400), 400, 40, 150), cores);
    return new PointResult(
        SETTING, "winner", List.of(one), List.of(open), 400, 16, rss, nativeBytes, 10, null);
  }

  @Test
  void everyFigureFollowsFromTheMeasurement() {
    Sizing s = Sizing.of(winner(300L << 20, 1.6), GOAL, 2, -1);
    assertEquals("2", s.cpu());
    // 300 MiB x 1.25 = 375 MiB, rounded up to 64 MiB steps
    assertEquals("384Mi", s.memory());
    // 1.6 of 2 cores = 80%, less 15% = 68
    assertEquals(68, s.targetCpuUtilization());
    // 400 req/s x 40 ms = 16 in flight, less 15% = 13.6
    assertEquals(13, s.targetInflightPerPod());
    // 400 req/s x (200 - 20) ms = 72 can wait
    assertEquals(72, s.maxQueueSize());
    assertEquals(5, s.reasons().size());
    assertTrue(s.reasons().get(2).contains("1.60 of 2 cores"), s.reasons().toString());
  }

  @Test
  void memoryOutsideTheHeapMustFitInTheQuarterTheJvmLeaves() {
    // 200 MiB outside the heap: x4 x1.1 = 880 MiB -> 896Mi, more than 300 x 1.25
    Sizing s = Sizing.of(winner(300L << 20, 200L << 20, 1.6), GOAL, 2, -1);
    assertEquals("896Mi", s.memory());
    assertTrue(
        s.reasons().get(1).contains("200 MiB outside the Java heap"), s.reasons().toString());
  }

  @Test
  void fractionsOfACpuAndMissingFiguresAreSaidAsSuch() {
    Sizing s = Sizing.of(winner(-1, Double.NaN), GOAL, 1.5, -1);
    assertEquals("1500m", s.cpu());
    assertNull(s.memory());
    assertEquals(70, s.targetCpuUtilization());
    assertTrue(s.reasons().get(1).contains("not measured"), s.reasons().toString());
  }

  @Test
  void memoryAboveWhatTheServerWasGivenIsPointedOut() {
    Sizing s = Sizing.of(winner(900L << 20, 1.6), GOAL, 2, 1L << 30);
    assertEquals("1152Mi", s.memory());
    assertTrue(s.reasons().get(1).contains("more than the 1024 MiB"), s.reasons().toString());
  }

  @Test
  void aWinnerThatNeverHeldTheGoalHasNoSizing() {
    PointResult none = PointResult.failed(SETTING, "x", 1, "did not start");
    assertNull(Sizing.of(none, GOAL, 2, -1));
  }
}
