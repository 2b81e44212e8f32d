package dev.berth.client.tune;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * The deployment of a tuned model, derived from the winner's final measurement on {@code cpus}
 * processors.
 *
 * <ul>
 *   <li>CPU: requests and limits both {@code cpus}, the processors the winner was measured on
 *       (Guaranteed QoS: the pod gets what the measurement had).
 *   <li>Memory: the server's peak resident memory under load plus a quarter, or, when more, four
 *       times its memory outside the Java heap plus a tenth (the image's JVM gives 75% of the limit
 *       to its heap, so the rest must fit in a quarter), rounded up to 64 MiB, for both.
 *   <li>HPA: the CPU use at the load the goal held at, as a share of the request, less 15% so that
 *       pods are added before one reaches the knee; and the in-flight requests per pod at that load
 *       (Little's law: throughput × mean latency), less 15%, for an in-flight target.
 *   <li>{@code max-queue-size} ({@code max-waiting} of a language model): the requests that can
 *       wait and still be answered within the goal, the goal's time less the latency with one
 *       caller, at the goal throughput; beyond it a client gets 429 at once rather than a late
 *       answer.
 * </ul>
 *
 * @param cpu the CPU request and limit (a Kubernetes quantity)
 * @param memory the memory request and limit (a Kubernetes quantity), null when unknown
 * @param targetCpuUtilization the HPA's CPU target, percent of the request
 * @param targetInflightPerPod the HPA's in-flight target per pod
 * @param maxQueueSize the model's {@code batching.max-queue-size} (a language model's {@code
 *     llm.max-waiting})
 * @param reasons how each figure follows from the measurement
 */
public record Sizing(
    String cpu,
    String memory,
    int targetCpuUtilization,
    int targetInflightPerPod,
    int maxQueueSize,
    List<String> reasons) {

  static final double HEADROOM = 0.85;
  static final long MIB = 1024 * 1024;

  public Sizing {
    reasons = List.copyOf(reasons);
  }

  /**
   * The deployment for a winner measured on {@code cpus} processors, or null when it held the goal
   * at no load.
   *
   * @param givenMemoryBytes the memory the server was given (its JVM sized itself to it), or -1
   */
  public static Sizing of(PointResult winner, TuneGoal goal, double cpus, long givenMemoryBytes) {
    PointResult.Step atGoal = winner.atGoal();
    if (atGoal == null) {
      return null;
    }
    List<String> reasons = new ArrayList<>();
    String cpu = cpuQuantity(cpus);
    reasons.add("cpu " + cpu + ": the processors the setting was measured on");

    String memory = null;
    if (winner.peakRssBytes() > 0) {
      long byRss = roundUp64((long) Math.ceil(winner.peakRssBytes() * 1.25));
      // the image's JVM takes 75% of the limit for its heap (-XX:MaxRAMPercentage=75): what lives
      // outside the heap must fit in the other quarter, with a tenth to spare
      long byNative =
          winner.nativeBytes() > 0
              ? roundUp64((long) Math.ceil(winner.nativeBytes() * 4 * 1.1))
              : 0;
      long mib = Math.max(byRss, byNative) / MIB;
      memory = mib + "Mi";
      reasons.add(
          String.format(
              Locale.ROOT,
              "memory %s: %s%s",
              memory,
              byNative > byRss
                  ? String.format(
                      Locale.ROOT,
                      "%.0f MiB outside the Java heap, which must fit in the quarter of the limit"
                          + " the image's JVM leaves beside its heap (MaxRAMPercentage=75), plus a"
                          + " tenth (peak resident memory %.0f MiB)",
                      winner.nativeBytes() / (double) MIB,
                      winner.peakRssBytes() / (double) MIB)
                  : String.format(
                      Locale.ROOT,
                      "peak resident memory %.0f MiB under load, plus a quarter",
                      winner.peakRssBytes() / (double) MIB),
              givenMemoryBytes > 0 && mib * MIB > givenMemoryBytes
                  ? String.format(
                      Locale.ROOT,
                      " (more than the %d MiB the server was given: raise the limit)",
                      givenMemoryBytes / MIB)
                  : ""));
    } else {
      reasons.add("memory: not measured on this system (no /proc); keep the current value");
    }

    double used = atGoal.cpuCores();
    int cpuTarget =
        Double.isNaN(used)
            ? 70
            : (int) Math.max(10, Math.min(95, Math.floor(used / cpus * 100 * HEADROOM)));
    reasons.add(
        Double.isNaN(used)
            ? "target-cpu-utilization 70: CPU use not measured on this system; the default"
            : String.format(
                Locale.ROOT,
                "target-cpu-utilization %d: %.2f of %s cores used at %s req/s, the load %s held at,"
                    + " less 15%%%s",
                cpuTarget,
                used,
                cpu,
                Tuner.rate(winner.goalThroughput()),
                goal.label(),
                TuneSpace.isLanguageModel(winner.setting())
                    ? " (not for a language model: llama.cpp keeps its CPUs busy from the first"
                        + " request, so --apply writes 0, no CPU target, and the in-flight target)"
                    : ""));

    double meanMs = atGoal.result().latency().meanMs();
    double inflight = winner.goalThroughput() * meanMs / 1000;
    int inflightTarget = (int) Math.max(1, Math.floor(inflight * HEADROOM));
    reasons.add(
        String.format(
            Locale.ROOT,
            "target-inflight-per-pod %d: %s req/s x %.1f ms mean latency = %.1f in flight, less 15%%",
            inflightTarget,
            Tuner.rate(winner.goalThroughput()),
            meanMs,
            inflight));

    double low = winner.lowLoadMs(goal);
    double slack = Math.max(0, goal.limitMs() - (Double.isNaN(low) ? 0 : low));
    int queue = (int) Math.max(1, Math.floor(winner.goalThroughput() * slack / 1000));
    reasons.add(
        String.format(
            Locale.ROOT,
            "%s %d: %s req/s x (%s ms goal - %.1f ms with one caller) can wait and"
                + " still be answered in time",
            Tuner.shortName(TuneSpace.queueKey(winner.setting())),
            queue,
            Tuner.rate(winner.goalThroughput()),
            TuneGoal.number(goal.limitMs()),
            Double.isNaN(low) ? 0 : low));
    return new Sizing(cpu, memory, cpuTarget, inflightTarget, queue, reasons);
  }

  private static long roundUp64(long bytes) {
    return (bytes + 64 * MIB - 1) / (64 * MIB) * 64 * MIB;
  }

  /** {@code 2}, or {@code 1500m} for a fraction. */
  public static String cpuQuantity(double cpus) {
    if (cpus == Math.rint(cpus)) {
      return Long.toString((long) cpus);
    }
    return Math.round(cpus * 1000) + "m";
  }
}
