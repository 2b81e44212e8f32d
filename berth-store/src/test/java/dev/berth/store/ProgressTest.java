package dev.berth.store;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class ProgressTest {
  @Test
  void tellsAtMostEveryTwoSecondsAndNotOnceDone() {
    long[] now = {0};
    List<String> lines = new ArrayList<>();
    Progress p = new Progress("version 1", 4L << 20, lines::add, () -> now[0]);
    now[0] = 1_000_000_000L;
    p.accept(1L << 20);
    assertEquals(List.of(), lines, "one second in: nothing yet");
    now[0] = 2_500_000_000L;
    p.accept(2L << 20);
    now[0] = 3_000_000_000L;
    p.accept(3L << 20);
    assertEquals(List.of("  version 1: 2.0 MB of 4.0 MB"), lines);
    now[0] = 9_000_000_000L;
    p.accept(4L << 20);
    assertEquals(1, lines.size(), "done: the caller says so itself");
  }
}
