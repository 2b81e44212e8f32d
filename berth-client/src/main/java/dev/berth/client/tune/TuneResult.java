package dev.berth.client.tune;

import java.util.List;

/**
 * A whole search.
 *
 * @param goal the latency goal
 * @param space what was searched
 * @param points every measurement, in order
 * @param winner the setting with the most throughput that held the goal, or null when none held it
 * @param winnerFinal the winner measured again at the end (the current setting's final measurement
 *     when the current setting won; when no setting held the goal, the current one's)
 * @param baselineFinal the current setting measured again at the end, beside the winner
 * @param noise how far the current setting's first two measurements were apart (relative)
 * @param margin the relative win a setting needed to count
 * @param decisions why each step of the search went where it did, in order
 * @param untried settings the budget left no time for
 * @param seconds how long the search took
 */
public record TuneResult(
    TuneGoal goal,
    TuneSpace space,
    List<PointResult> points,
    TuneSetting winner,
    PointResult winnerFinal,
    PointResult baselineFinal,
    double noise,
    double margin,
    List<String> decisions,
    List<String> untried,
    double seconds) {

  public TuneResult {
    points = List.copyOf(points);
    decisions = List.copyOf(decisions);
    untried = List.copyOf(untried);
  }

  /**
   * The winner's throughput over the current setting's: the median of all the winner's measurements
   * over the median of all the current setting's (the final pair included), all from this run; NaN
   * when unknown.
   */
  public double gain() {
    if (winner == null) {
      return Double.NaN;
    }
    double base = median(space.baseline());
    return base > 0 ? median(winner) / base : Double.NaN;
  }

  /** The same from the final pair alone; NaN when unknown. */
  public double finalPairGain() {
    if (winner == null || baselineFinal.goalThroughput() <= 0) {
      return Double.NaN;
    }
    return winnerFinal.goalThroughput() / baselineFinal.goalThroughput();
  }

  /** How many times a setting was measured. */
  public int measurements(TuneSetting setting) {
    return (int) points.stream().filter(p -> p.setting().equals(setting)).count();
  }

  /** The median throughput at the goal of all a setting's measurements; 0 when none. */
  public double median(TuneSetting setting) {
    double[] rates =
        points.stream()
            .filter(p -> p.setting().equals(setting))
            .mapToDouble(PointResult::goalThroughput)
            .sorted()
            .toArray();
    int n = rates.length;
    return n == 0 ? 0 : n % 2 == 1 ? rates[n / 2] : (rates[n / 2 - 1] + rates[n / 2]) / 2;
  }

  /** Whether the winner held the goal again when measured the last time. */
  public boolean winnerHeld() {
    return winner != null && winnerFinal.meetsGoal();
  }
}
