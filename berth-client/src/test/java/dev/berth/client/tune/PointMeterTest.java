package dev.berth.client.tune;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/**
 * How one setting's measurement decides: where a ramp ends, what the JDK's jcmd says of a server's
 * heap, when a language model's answers were cut short.
 */
class PointMeterTest {
  @Test
  void aRampGoesOnWhileThroughputGrowsAndEndsWhenSaturatedOrBroken() {
    PointMeter.Ramp growing = new PointMeter.Ramp();
    for (double t : new double[] {100, 190, 350, 600, 900}) {
      assertTrue(growing.goesOn(t, true), "still growing at " + t);
    }
    // two steps in a row under the best before them by 5%: saturated
    PointMeter.Ramp flat = new PointMeter.Ramp();
    assertTrue(flat.goesOn(400, true));
    assertTrue(flat.goesOn(410, true));
    assertFalse(flat.goesOn(415, true));
    // one flat step then growth again goes on
    PointMeter.Ramp noisy = new PointMeter.Ramp();
    assertTrue(noisy.goesOn(400, true));
    assertTrue(noisy.goesOn(390, true));
    assertTrue(noisy.goesOn(500, true));
    assertTrue(noisy.goesOn(510, true));
    assertFalse(noisy.goesOn(505, true));
    // a step that breaks the goal ends it
    assertFalse(new PointMeter.Ramp().goesOn(1000, false));
  }

  @Test
  void theCommittedHeapOfG1AndOfSerial() {
    String g1 =
        "29947:\n"
            + "garbage-first heap   total reserved 6172672K, committed 393216K, used 11357K"
            + " [0x0000000687400000, 0x0000000800000000)\n"
            + " region size 4096K, 3 young (12288K), 1 survivors (4096K)\n"
            + " Metaspace       used 1130K, committed 1344K, reserved 1114112K\n";
    assertEquals(393216L * 1024, PointMeter.heapCommitted(g1));
    String serial =
        "29913:\n"
            + "DefNew     total 116160K, used 31005K [0x0000000687400000, 0x000000068f200000)\n"
            + " eden space 103296K,  30% used [0x0000000687400000, 0x0000000689247520)\n"
            + "Tenured    total 258048K, used 1166K [0x0000000704d50000, 0x0000000714950000)\n"
            + " the  space 258048K,   0% used [0x0000000704d50000, 0x0000000704e73ab8)\n";
    assertEquals((116160L + 258048L) * 1024, PointMeter.heapCommitted(serial));
    assertEquals(-1, PointMeter.heapCommitted("12: Could not attach"));
  }

  @Test
  void anAnswerThatFilledItsWholeSequenceWasCutShort() {
    assertFalse(PointMeter.cutShort(withSequence(1000), 1024));
    assertTrue(PointMeter.cutShort(withSequence(1024), 1024));
    // a tensor model's steps have no token figures
    assertFalse(PointMeter.cutShort(withSequence(-1), 1024));
  }

  private static dev.berth.client.bench.StepResult withSequence(long longest) {
    return new dev.berth.client.bench.StepResult(
        dev.berth.client.bench.LoadStep.closed(1),
        1,
        5,
        50,
        10,
        new dev.berth.client.bench.LatencyStats(20, 20, 25, 28, 30, 31),
        0,
        java.util.Map.of(),
        null,
        null,
        longest < 0 ? -1 : 2000,
        longest < 0 ? -1 : 1500,
        longest);
  }
}
