package dev.berth.client.bench;

import java.util.List;

/**
 * A whole benchmark run.
 *
 * @param plan what was asked for
 * @param requestSummary what each request carried, e.g. {@code text BYTES[1]}, or the data file
 * @param serverMetrics whether the server had Berth's metrics, so steps carry a server split
 * @param steps one result per step, in order
 */
public record BenchResults(
    BenchPlan plan, String requestSummary, boolean serverMetrics, List<StepResult> steps) {

  public BenchResults {
    steps = List.copyOf(steps);
  }
}
