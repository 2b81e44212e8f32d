package dev.berth.client.tune;

import dev.berth.api.BerthException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.LongSupplier;

/**
 * The search of {@code berth tune}: coordinate by coordinate, coarse to fine, stopping early.
 *
 * <ol>
 *   <li>The current setting is measured twice (three times when the two are more than 25% apart,
 *       the closer two counting); how far they differ is the machine's noise, and twice that (at
 *       least {@link Options#minMargin}, at most 25%) the margin a setting must win by to count.
 *       Where the noise is over 10%, every setting is measured twice. A setting's score is the
 *       median of its measurements.
 *   <li>Each key in turn (instances, engine threads, max-batch-size, max-queue-delay), from the
 *       best setting so far: its values above the current one, one at a time, then those below. A
 *       value that wins by the margin becomes the best; one that loses by it ends that direction,
 *       as do two in a row within the noise. A key that saves memory rather than time (a language
 *       model's context size) only goes down, and there a value within the noise wins too.
 *   <li>Whole-number keys are refined right after their search: the values half-way between the
 *       best and its tried neighbours.
 *   <li>The winner and the current setting are measured once more, in turn. The winner stays if it
 *       held the goal there and the median of all its measurements still beats the current
 *       setting's by the margin; the gain reported is the ratio of those two medians.
 * </ol>
 *
 * <p>A setting's score is the throughput its open-loop check held the goal at; among settings that
 * hold it at no load, the lower latency with one caller ranks first. The budget bounds the whole
 * search: a setting is only started when the time it is likely to take, and the final pair, still
 * fit.
 */
public final class Tuner {
  /** Measures one setting: starts the server with it, loads it, stops it. */
  @FunctionalInterface
  public interface Measurer {
    PointResult measure(TuneSetting setting, String purpose);
  }

  /**
   * How the search runs.
   *
   * @param goal the latency goal
   * @param budget the time the whole search may take
   * @param minMargin the smallest relative win that counts, whatever the noise
   */
  public record Options(TuneGoal goal, Duration budget, double minMargin) {}

  /** How much less peak memory a smaller value of a memory key must show to win on a tie. */
  static final double LESS_MEMORY = 0.10;

  /** Above this, the first two measurements of the current setting get a third. */
  static final double OUTLIER = 0.25;

  private final TuneSpace space;
  private final Options options;
  private final Measurer measurer;
  private final Consumer<String> progress;
  private final LongSupplier nanoClock;
  private final List<PointResult> points = new ArrayList<>();
  private final Map<TuneSetting, List<PointResult>> bySetting = new LinkedHashMap<>();
  private final List<String> decisions = new ArrayList<>();
  private final List<String> untried = new ArrayList<>();
  private long started;
  private double noise;
  private double margin;
  private int repeats = 1;
  private TuneSetting best;

  public Tuner(
      TuneSpace space,
      Options options,
      Measurer measurer,
      Consumer<String> progress,
      LongSupplier nanoClock) {
    this.space = space;
    this.options = options;
    this.measurer = measurer;
    this.progress = progress;
    this.nanoClock = nanoClock;
  }

  /** Runs the search. */
  public TuneResult run() {
    started = nanoClock.getAsLong();
    TuneSetting baseline = space.baseline();
    PointResult first = measure(baseline, "the current model.yaml");
    if (first.failure() != null) {
      // nothing else would fare better: the load or the service is wrong, not the setting
      throw new BerthException("the current settings could not be measured: " + first.failure());
    }
    PointResult second = measure(baseline, "the current model.yaml again (the machine's noise)");
    noise = relativeDifference(first.goalThroughput(), second.goalThroughput());
    if (noise > OUTLIER) {
      // one of the two may be an outlier (a pause of the machine): a third says which, and the
      // closer two give the noise
      PointResult third = measure(baseline, "the current model.yaml a third time (the two differ)");
      double[] v = {first.goalThroughput(), second.goalThroughput(), third.goalThroughput()};
      noise =
          Math.min(
              relativeDifference(v[0], v[1]),
              Math.min(relativeDifference(v[0], v[2]), relativeDifference(v[1], v[2])));
    }
    margin = Math.min(0.25, Math.max(options.minMargin(), 2 * noise));
    repeats = noise > 0.10 ? 2 : 1;
    decisions.add(
        String.format(
            Locale.ROOT,
            "noise: the current setting measured %s req/s (%.1f%% apart%s): a setting must"
                + " win by %.1f%% to count%s",
            String.join(
                " and ",
                bySetting.get(baseline).stream().map(p -> rate(p.goalThroughput())).toList()),
            noise * 100,
            bySetting.get(baseline).size() > 2 ? ", the closer two" : "",
            margin * 100,
            repeats > 1 ? "; each setting is measured twice" : ""));
    best = baseline;

    for (TuneSpace.Dimension d : space.dimensions()) {
      search(d);
      if (d.refine()) {
        // now, while the key's tried neighbours share the best setting's other values
        refine(d);
      }
    }

    // the pair reported: the winner and the current setting, measured again in turn
    boolean anyMeets =
        bySetting.values().stream().flatMap(List::stream).anyMatch(PointResult::meetsGoal);
    PointResult baselineFinal = measure(baseline, "the current model.yaml, final pair");
    PointResult winnerFinal =
        best.equals(baseline) ? baselineFinal : measure(best, "the winner, final pair");
    if (!best.equals(baseline) && baselineFinal.meetsGoal()) {
      // every measurement of the two counts, not the last pair alone: one pause of the machine
      // in the final pair would otherwise decide against (or for) a winner measured several times
      Score w = score(best);
      Score b = score(baseline);
      // and it must still win by the margin: the smallest gain these measurements tell from
      // noise; a change for less would be one without evidence
      boolean heldUp = winnerFinal.meetsGoal() && w.throughput > b.throughput * (1 + margin);
      decisions.add(
          String.format(
              Locale.ROOT,
              "final pair: %s gave %s req/s against the current setting's %s (%s); over all %d and"
                  + " %d measurements, %s req/s against %s (%s): %s",
              best.label(),
              rate(winnerFinal.goalThroughput()),
              rate(baselineFinal.goalThroughput()),
              ratio(winnerFinal.goalThroughput() / baselineFinal.goalThroughput()),
              bySetting.get(best).size(),
              bySetting.get(baseline).size(),
              rate(w.throughput),
              rate(b.throughput),
              ratio(w.throughput / b.throughput),
              !winnerFinal.meetsGoal()
                  ? "it broke the goal when measured again, so the current model.yaml stays"
                  : heldUp
                      ? "it holds up"
                      : "it no longer wins by the margin, so the current model.yaml stays"));
      if (!heldUp) {
        best = baseline;
        winnerFinal = baselineFinal;
      }
    }
    double seconds = (nanoClock.getAsLong() - started) / 1e9;
    return new TuneResult(
        options.goal(),
        space,
        List.copyOf(points),
        anyMeets ? best : null,
        winnerFinal,
        baselineFinal,
        noise,
        margin,
        List.copyOf(decisions),
        List.copyOf(untried),
        seconds);
  }

  /** One key, from the best setting's value: upwards, then downwards. */
  private void search(TuneSpace.Dimension d) {
    int at = d.values().indexOf(best.get(d.key()));
    if (at < 0) {
      at = 0;
    }
    String name = shortName(d.key());
    // a key that saves memory compares each smaller value with the setting before the first one
    // that won only by saving memory: small losses within the noise must not add up step by step
    TuneSetting anchor = best;
    for (int direction : d.smallerWhenEven() ? new int[] {-1} : new int[] {1, -1}) {
      int withinNoise = 0;
      for (int i = at + direction; i >= 0 && i < d.values().size(); i += direction) {
        TuneSetting candidate = best.with(d.key(), d.values().get(i));
        if (bySetting.containsKey(candidate)) {
          continue;
        }
        Object from = best.get(d.key());
        if (!affordable()) {
          untried.add(candidate.label());
          continue;
        }
        int verdict =
            compare(
                candidate,
                name + " " + from + " -> " + d.values().get(i),
                d.smallerWhenEven(),
                d.smallerWhenEven() ? anchor : best);
        if (verdict > 0) {
          best = candidate;
          withinNoise = 0;
        } else if (verdict < 0) {
          break;
        } else if (++withinNoise >= 2) {
          decisions.add(
              name + ": two values in a row within the noise; stopped going " + way(direction));
          break;
        }
      }
      at = d.values().indexOf(best.get(d.key()));
    }
  }

  /** Values half-way between the best and its tried neighbours, for whole-number keys. */
  private void refine(TuneSpace.Dimension d) {
    if (!(best.get(d.key()) instanceof Integer value)) {
      return;
    }
    String name = shortName(d.key());
    for (int direction : new int[] {1, -1}) {
      Integer neighbour = null;
      for (TuneSetting tried : bySetting.keySet()) {
        if (!sameExcept(tried, best, d.key()) || !(tried.get(d.key()) instanceof Integer v)) {
          continue;
        }
        if (direction > 0 && v > value && (neighbour == null || v < neighbour)) {
          neighbour = v;
        } else if (direction < 0 && v < value && (neighbour == null || v > neighbour)) {
          neighbour = v;
        }
      }
      if (neighbour == null || Math.abs(neighbour - value) < 2) {
        continue;
      }
      int mid = (neighbour + value) / 2;
      TuneSetting candidate = best.with(d.key(), mid);
      if (bySetting.containsKey(candidate)) {
        continue;
      }
      if (!affordable()) {
        untried.add(candidate.label());
        continue;
      }
      if (compare(candidate, name + " " + value + " -> " + mid + " (refining)", false, best) > 0) {
        best = candidate;
        return;
      }
    }
  }

  /**
   * Measures {@code candidate} and compares it with the best: 1 when it wins by the margin, -1 when
   * it loses by it, 0 within the noise; with {@code evenWins} (a smaller value of a key that saves
   * memory), within the noise is a win too when the server's peak memory was at least {@link
   * #LESS_MEMORY} lower. Compared with {@code reference}'s score. Says why in {@link #decisions}.
   */
  private int compare(
      TuneSetting candidate, String purpose, boolean evenWins, TuneSetting reference) {
    for (int r = 0; r < repeats; r++) {
      measure(candidate, purpose + (repeats > 1 ? " (" + (r + 1) + "/" + repeats + ")" : ""));
    }
    Score c = score(candidate);
    Score b = score(reference);
    int verdict;
    String how;
    if (c.throughput > 0 || b.throughput > 0) {
      double ratio = b.throughput > 0 ? c.throughput / b.throughput : Double.POSITIVE_INFINITY;
      verdict = ratio > 1 + margin ? 1 : ratio < 1 - margin ? -1 : 0;
      how =
          String.format(
              Locale.ROOT,
              "%s req/s against %s (%s)",
              rate(c.throughput),
              rate(b.throughput),
              Double.isInfinite(ratio) ? "the best held the goal at no load" : ratio(ratio));
    } else {
      // neither holds the goal: the one closer to it, by its latency with one caller
      double ratio = c.lowLoadMs / b.lowLoadMs;
      verdict =
          Double.isNaN(ratio)
              ? (Double.isNaN(c.lowLoadMs) ? -1 : 1)
              : ratio < 1 - margin ? 1 : ratio > 1 + margin ? -1 : 0;
      how =
          String.format(
              Locale.ROOT,
              "neither holds the goal; p%d with one caller %.1f ms against %.1f ms",
              options.goal().percentile(),
              c.lowLoadMs,
              b.lowLoadMs);
    }
    double memory = c.peakRss > 0 && b.peakRss > 0 ? c.peakRss / b.peakRss : Double.NaN;
    boolean lessMemory = evenWins && verdict == 0 && memory <= 1 - LESS_MEMORY;
    String outcome =
        verdict > 0
            ? "wins"
            : verdict < 0
                ? "loses"
                : lessMemory
                    ? String.format(
                        Locale.ROOT,
                        "within the noise with %.0f%% less peak memory, wins",
                        (1 - memory) * 100)
                    : evenWins
                        ? "within the noise without saving memory (peak "
                            + (Double.isNaN(memory) ? "unknown" : ratio(memory))
                            + "), keeps "
                            + best.get(changedKey(candidate))
                        : "within the noise, keeps " + best.get(changedKey(candidate));
    decisions.add(
        purpose
            + ": "
            + outcome
            + ", "
            + how
            + (reference.equals(best) ? "" : " (against " + reference.label() + ")"));
    return lessMemory ? 1 : verdict;
  }

  private PointResult measure(TuneSetting setting, String purpose) {
    double elapsed = (nanoClock.getAsLong() - started) / 1e9;
    progress.accept(
        String.format(
            Locale.ROOT,
            "[%s/%s] setting %d: %s (%s)",
            clock(elapsed),
            clock(options.budget().toSeconds()),
            points.size() + 1,
            setting.label(),
            purpose));
    PointResult p = measurer.measure(setting, purpose);
    points.add(p);
    bySetting.computeIfAbsent(setting, s -> new ArrayList<>()).add(p);
    progress.accept(
        "  "
            + (p.failure() != null
                ? "could not be measured: " + p.failure()
                : p.meetsGoal()
                    ? String.format(
                        Locale.ROOT,
                        "holds %s at %s req/s (knee at %d callers)",
                        options.goal().label(),
                        rate(p.goalThroughput()),
                        p.kneeConcurrency())
                    : String.format(
                        Locale.ROOT,
                        "does not hold %s at any load tried (p%d with one caller: %.1f ms)",
                        options.goal().label(),
                        options.goal().percentile(),
                        p.lowLoadMs(options.goal()))));
    return p;
  }

  /**
   * Whether one more setting and the final pair still fit the budget, by the time the settings that
   * could be measured took (one that failed to start takes less than one that runs).
   */
  private boolean affordable() {
    double elapsed = (nanoClock.getAsLong() - started) / 1e9;
    double perPoint =
        points.stream()
            .filter(p -> p.failure() == null)
            .mapToDouble(PointResult::seconds)
            .average()
            .orElse(0);
    return elapsed + perPoint * (repeats + 2) <= options.budget().toSeconds();
  }

  /** The mean of a setting's measurements. */
  private Score score(TuneSetting s) {
    List<PointResult> all = bySetting.getOrDefault(s, List.of());
    // the median: one outlier among three measurements does not move it
    double[] rates = all.stream().mapToDouble(PointResult::goalThroughput).sorted().toArray();
    int n = rates.length;
    double throughput =
        n == 0 ? 0 : n % 2 == 1 ? rates[n / 2] : (rates[n / 2 - 1] + rates[n / 2]) / 2;
    double low =
        all.stream()
            .mapToDouble(p -> p.lowLoadMs(options.goal()))
            .filter(v -> !Double.isNaN(v))
            .average()
            .orElse(Double.NaN);
    double[] rss =
        all.stream().mapToDouble(PointResult::peakRssBytes).filter(v -> v > 0).sorted().toArray();
    double peakRss =
        rss.length == 0
            ? -1
            : rss.length % 2 == 1
                ? rss[rss.length / 2]
                : (rss[rss.length / 2 - 1] + rss[rss.length / 2]) / 2;
    return new Score(throughput, low, peakRss);
  }

  private record Score(double throughput, double lowLoadMs, double peakRss) {}

  private static boolean sameExcept(TuneSetting a, TuneSetting b, String key) {
    for (Map.Entry<String, Object> e : a.values().entrySet()) {
      if (!e.getKey().equals(key) && !e.getValue().equals(b.get(e.getKey()))) {
        return false;
      }
    }
    return true;
  }

  /** The key the candidate differs from the best in. */
  private String changedKey(TuneSetting candidate) {
    for (Map.Entry<String, Object> e : candidate.values().entrySet()) {
      if (!e.getValue().equals(best.get(e.getKey()))) {
        return e.getKey();
      }
    }
    return candidate.values().keySet().iterator().next();
  }

  static double relativeDifference(double a, double b) {
    double mean = (a + b) / 2;
    return mean > 0 ? Math.abs(a - b) / mean : 0;
  }

  static String shortName(String key) {
    return key.substring(key.lastIndexOf('.') + 1);
  }

  private static String way(int direction) {
    return direction > 0 ? "up" : "down";
  }

  static String rate(double perSecond) {
    return perSecond >= 100
        ? String.format(Locale.ROOT, "%.0f", perSecond)
        : String.format(Locale.ROOT, "%.1f", perSecond);
  }

  static String ratio(double r) {
    return String.format(Locale.ROOT, "%.2fx", r);
  }

  private static String clock(double seconds) {
    long s = Math.round(seconds);
    return String.format(Locale.ROOT, "%d:%02d", s / 60, s % 60);
  }
}
