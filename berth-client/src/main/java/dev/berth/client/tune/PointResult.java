package dev.berth.client.tune;

import dev.berth.client.bench.StepResult;
import java.util.List;

/**
 * What one setting did: its closed-loop ramp, the open-loop steps that checked the load the goal
 * held at, and what the server used.
 *
 * @param setting the setting
 * @param purpose why it was measured ({@code current model.yaml}, {@code instances 1 -> 2}, ...)
 * @param closed the closed-loop steps, callers doubling from 1 until the goal broke or throughput
 *     stopped growing
 * @param open the open-loop steps at a fixed rate, the one that held the goal at the highest rate
 *     last
 * @param goalThroughput requests per second of the open-loop step that held the goal; 0 when none
 *     did
 * @param kneeConcurrency callers of the closed-loop step with the most throughput that held the
 *     goal; 0 when none did
 * @param peakRssBytes the server's peak resident memory, -1 when unknown
 * @param nativeBytes the server's memory outside the Java heap at the end (resident memory less the
 *     heap's committed size), -1 when unknown
 * @param seconds how long measuring it took, the server's start included
 * @param failure why it could not be measured (the server did not start with it), or null
 */
public record PointResult(
    TuneSetting setting,
    String purpose,
    List<Step> closed,
    List<Step> open,
    double goalThroughput,
    int kneeConcurrency,
    long peakRssBytes,
    long nativeBytes,
    double seconds,
    String failure) {

  /**
   * One step and the server's CPU use during it.
   *
   * @param result what the load generator measured
   * @param cpuCores the server process's CPU time over the step's wall time (warm-up included), NaN
   *     when unknown
   */
  public record Step(StepResult result, double cpuCores) {}

  public PointResult {
    closed = List.copyOf(closed);
    open = List.copyOf(open);
  }

  /** A setting that could not be measured at all. */
  public static PointResult failed(
      TuneSetting setting, String purpose, double seconds, String why) {
    return new PointResult(setting, purpose, List.of(), List.of(), 0, 0, -1, -1, seconds, why);
  }

  /** This measurement, taking {@code seconds} in all (the server's stop included). */
  public PointResult withSeconds(double seconds) {
    return new PointResult(
        setting,
        purpose,
        closed,
        open,
        goalThroughput,
        kneeConcurrency,
        peakRssBytes,
        nativeBytes,
        seconds,
        failure);
  }

  /** Whether some load held the goal. */
  public boolean meetsGoal() {
    return goalThroughput > 0;
  }

  /** The open-loop step that held the goal, or null. */
  public Step atGoal() {
    return meetsGoal() ? open.get(open.size() - 1) : null;
  }

  /** A language model's tokens per second at the load the goal held at; NaN otherwise. */
  public double goalTokensPerSecond() {
    return meetsGoal() ? atGoal().result().tokensPerSecond() : Double.NaN;
  }

  /** The goal's percentile with one caller (the lowest latency it can give), NaN when unknown. */
  public double lowLoadMs(TuneGoal goal) {
    // the last one-caller step: the one that decided, when a broken one was run again
    return closed.stream()
        .filter(s -> !s.result().step().isOpen() && s.result().step().concurrency() == 1)
        .reduce((a, b) -> b)
        .map(s -> goal.of(s.result().latency()))
        .orElse(Double.NaN);
  }

  /** The most throughput any closed-loop step reached, goal or not. */
  public double peakThroughput() {
    return closed.stream().mapToDouble(s -> s.result().throughputPerSecond()).max().orElse(0);
  }
}
