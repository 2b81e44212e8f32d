package dev.berth.client.tune;

import dev.berth.api.BerthException;
import dev.berth.client.bench.Bench;
import dev.berth.client.bench.BenchPlan;
import dev.berth.client.bench.LoadStep;
import dev.berth.client.bench.Protocol;
import dev.berth.client.bench.StepResult;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Measures one setting on a running server with {@code berth bench}'s steps: closed-loop callers
 * doubling from one until the goal breaks or two steps in a row add less than 5% to the best
 * throughput, then open-loop steps at a fixed rate: 90% of the best closed-loop throughput that
 * held the goal, and where that breaks it, lower rates (60% of the last, then half-way between the
 * highest that held and the lowest that broke) until the two are within 12% of it, at most four
 * steps. The highest rate that held is the setting's throughput at the goal. The server's CPU time
 * (by its process id) is read around every step, and its peak resident memory at the end.
 */
public final class PointMeter {
  static final double SATURATED = 1.05;
  static final double FIRST_FRACTION = 0.9;
  static final int OPEN_STEPS = 4;
  static final double RESOLUTION = 0.12;

  /** Fewer successful answers than this in a language model's step: its percentile is coarse. */
  static final int FEW_ANSWERS = 20;

  /**
   * What the load generator sends and for how long.
   *
   * @param protocol the protocol
   * @param data request bodies (JSON or JSONL), or null to generate them from the model's metadata
   * @param inputs the inputs generated requests carry (empty: the default)
   * @param batchSize rows per generated request
   * @param timeout the longest wait for an answer
   * @param step each step's measured time
   * @param warmup each step's load before it is measured
   * @param maxConcurrency the most closed-loop callers
   * @param maxTokens with {@link Protocol#OPENAI}: max_tokens of each generated request
   * @param promptWords with {@link Protocol#OPENAI}: words of each generated prompt
   */
  public record Load(
      Protocol protocol,
      Path data,
      List<String> inputs,
      int batchSize,
      Duration timeout,
      Duration step,
      Duration warmup,
      int maxConcurrency,
      int maxTokens,
      int promptWords) {
    public Load {
      inputs = List.copyOf(inputs);
    }

    /** A tensor model's load: the completion sizes at berth bench's defaults. */
    public Load(
        Protocol protocol,
        Path data,
        List<String> inputs,
        int batchSize,
        Duration timeout,
        Duration step,
        Duration warmup,
        int maxConcurrency) {
      this(
          protocol,
          data,
          inputs,
          batchSize,
          timeout,
          step,
          warmup,
          maxConcurrency,
          BenchPlan.DEFAULT_MAX_TOKENS,
          BenchPlan.DEFAULT_PROMPT_WORDS);
    }
  }

  /**
   * A server running one setting.
   *
   * @param url its REST base URL
   * @param grpcPort its gRPC port
   * @param pid its process id (for CPU time and memory), or -1
   */
  public record Server(URI url, int grpcPort, long pid) {}

  private final String model;
  private final TuneGoal goal;
  private final Load load;
  private final Consumer<String> progress;
  private boolean generatorWarm;

  /** The context size of the setting being measured (a language model's). */
  private long contextSize;

  public PointMeter(String model, TuneGoal goal, Load load, Consumer<String> progress) {
    this.model = model;
    this.goal = goal;
    this.load = load;
    this.progress = progress;
  }

  /** Measures the setting the server runs; {@code startedNanos} is when its start began. */
  public PointResult measure(
      TuneSetting setting, String purpose, Server server, long startedNanos) {
    contextSize =
        setting.get(TuneSpace.LLM_CONTEXT_SIZE) instanceof Integer c ? c : 4096; // llama's default
    if (!generatorWarm) {
      // the load generator's own first minutes run cold (its JIT): the first setting measured
      // would come out lower than the same setting later, and the noise look larger than it is
      warmGenerator(server);
      generatorWarm = true;
    }
    List<PointResult.Step> closed = new ArrayList<>();
    PointResult.Step best = null;
    Ramp ramp = new Ramp();
    boolean[] retried = {false};
    for (int c = 1; c <= load.maxConcurrency(); c *= 2) {
      // the server is a fresh process: the first step warms its JIT up for longer
      Duration warmup = c == 1 ? firstWarmup() : load.warmup();
      PointResult.Step s = checked(server, LoadStep.closed(c), warmup, closed, retried);
      boolean held = goal.heldBy(s.result());
      if (held && (best == null || throughput(s) > throughput(best))) {
        best = s;
      }
      if (!ramp.goesOn(throughput(s), held)) {
        break;
      }
    }
    List<PointResult.Step> open = new ArrayList<>();
    double goalThroughput = 0;
    if (best != null) {
      // bisect the rate between the highest fraction that held and the lowest that broke
      double held = 0;
      double broke = 1;
      double f = FIRST_FRACTION;
      for (int i = 0; i < OPEN_STEPS; i++) {
        PointResult.Step s =
            checked(server, LoadStep.open(throughput(best) * f), load.warmup(), open, retried);
        if (goal.heldBy(s.result())) {
          goalThroughput = Math.max(goalThroughput, throughput(s));
          held = f;
        } else {
          broke = f;
        }
        if (held >= FIRST_FRACTION || (held > 0 && broke - held <= RESOLUTION)) {
          break;
        }
        f = held > 0 ? (held + broke) / 2 : f * 0.6;
      }
      if (held > 0 && !goal.heldBy(open.get(open.size() - 1).result())) {
        // the step that held is the one reported: move it last
        PointResult.Step holding =
            open.stream()
                .filter(s -> goal.heldBy(s.result()))
                .max(java.util.Comparator.comparingDouble(PointMeter::throughput))
                .orElseThrow();
        open.remove(holding);
        open.add(holding);
      }
    }
    long rss = peakResidentBytes(server.pid());
    long nativeBytes = nativeBytes(server.pid());
    return new PointResult(
        setting,
        purpose,
        closed,
        open,
        goalThroughput,
        best == null ? 0 : best.result().step().concurrency(),
        rss,
        nativeBytes,
        (System.nanoTime() - startedNanos) / 1e9,
        null);
  }

  /**
   * Runs a step and adds it to {@code steps}; the first step of a setting that breaks the goal is
   * run again once (and both are kept), since one pause of the machine in a few seconds' window is
   * enough to break a percentile: the second one decides.
   */
  private PointResult.Step checked(
      Server server,
      LoadStep load,
      Duration warmup,
      List<PointResult.Step> steps,
      boolean[] retried) {
    PointResult.Step s = step(server, load, warmup);
    steps.add(s);
    if (!goal.heldBy(s.result()) && !retried[0]) {
      retried[0] = true;
      progress.accept("    (broke the goal: once more, in case the machine paused)");
      s = step(server, load, warmup);
      steps.add(s);
    }
    return s;
  }

  /**
   * When a closed-loop ramp ends: at a step that breaks the goal (more callers only wait longer),
   * or after two steps in a row that add less than 5% to the best throughput before them
   * (saturated: more callers add queueing, not throughput).
   */
  static final class Ramp {
    private double best = -1;
    private int flat;

    /** Whether to go on after a step with this throughput that held the goal or not. */
    boolean goesOn(double throughput, boolean held) {
      if (!held) {
        return false;
      }
      if (best >= 0 && throughput < best * SATURATED) {
        flat++;
      } else {
        flat = 0;
      }
      best = Math.max(best, throughput);
      return flat < 2;
    }
  }

  /** Unmeasured load with a few callers, long enough for the generator's JIT to settle. */
  private void warmGenerator(Server server) {
    Duration length = firstWarmup().multipliedBy(2);
    BenchPlan plan =
        plan(server, LoadStep.closed(Math.min(8, load.maxConcurrency())), length, Duration.ZERO);
    progress.accept(
        String.format(
            Locale.ROOT,
            "    warming the load generator up for %.1f s (not measured)",
            length.toMillis() / 1000.0));
    Bench.run(plan, line -> {});
  }

  /** The first step's warm-up: three times the others', at least two seconds. */
  Duration firstWarmup() {
    Duration three = load.warmup().multipliedBy(3);
    return three.compareTo(Duration.ofSeconds(2)) < 0 ? Duration.ofSeconds(2) : three;
  }

  /**
   * Whether some answer of a language model's step filled its whole sequence: its prompt and answer
   * reached the context size, which cuts {@code max_tokens} to what is left. A shorter answer is
   * faster but not the same work, so such a setting cannot be measured.
   */
  static boolean cutShort(StepResult r, long contextSize) {
    return r.longestSequence() >= 0 && contextSize > 0 && r.longestSequence() >= contextSize;
  }

  private PointResult.Step step(Server server, LoadStep step, Duration warmup) {
    BenchPlan plan = plan(server, step, load.step(), warmup);
    Optional<Duration> cpuBefore = cpuTime(server.pid());
    long wallBefore = System.nanoTime();
    StepResult r = Bench.run(plan, line -> {}).steps().get(0);
    long wall = System.nanoTime() - wallBefore;
    Optional<Duration> cpuAfter = cpuTime(server.pid());
    if (load.protocol() == Protocol.OPENAI && cutShort(r, contextSize)) {
      throw new BerthException(
          String.format(
              Locale.ROOT,
              "answers cut short: an answer's prompt and tokens reached the context size %d (the"
                  + " longest: %d tokens), so max_tokens was cut; the context is too small for"
                  + " these requests",
              contextSize,
              r.longestSequence()));
    }
    if (load.protocol() == Protocol.OPENAI && r.requests() - r.errors() < FEW_ANSWERS) {
      progress.accept(
          "    (only "
              + (r.requests() - r.errors())
              + " answers in this step: its percentile is coarse; a longer --budget gives"
              + " longer steps)");
    }
    double cores =
        cpuBefore.isPresent() && cpuAfter.isPresent()
            ? (cpuAfter.get().toNanos() - cpuBefore.get().toNanos()) / (double) wall
            : Double.NaN;
    progress.accept(
        String.format(
            Locale.ROOT,
            "    %-10s %8s req/s%s  p%d %7.1f ms  %s%s",
            step.isOpen() ? Tuner.rate(step.ratePerSecond()) + "/s" : "c=" + step.concurrency(),
            Tuner.rate(r.throughputPerSecond()),
            Double.isFinite(r.tokensPerSecond())
                ? String.format(Locale.ROOT, " %8s tokens/s", Tuner.rate(r.tokensPerSecond()))
                : "",
            goal.percentile(),
            goal.of(r.latency()),
            goal.heldBy(r) ? "holds" : "breaks",
            r.errors() > 0 ? " (" + r.errors() + " errors: " + r.errorsByStatus() + ")" : ""));
    return new PointResult.Step(r, cores);
  }

  /** berth bench's plan of one step against the server, with this meter's requests. */
  private BenchPlan plan(Server server, LoadStep step, Duration duration, Duration warmup) {
    BenchPlan.Builder plan =
        BenchPlan.builder(server.url(), model)
            .protocol(load.protocol())
            .steps(List.of(step))
            .duration(duration)
            .warmup(warmup)
            .timeout(load.timeout())
            .batchSize(load.batchSize())
            .inputs(load.inputs())
            .grpcPort(server.grpcPort())
            .maxTokens(load.maxTokens())
            .promptWords(load.promptWords());
    if (load.data() != null) {
      plan.data(load.data());
    }
    return plan.build();
  }

  private static double throughput(PointResult.Step s) {
    return s.result().throughputPerSecond();
  }

  /** The process's CPU time so far, when the system says. */
  static Optional<Duration> cpuTime(long pid) {
    if (pid <= 0) {
      return Optional.empty();
    }
    return ProcessHandle.of(pid).flatMap(h -> h.info().totalCpuDuration());
  }

  /**
   * The process's memory outside its Java heap: its resident memory now (VmRSS) less the heap's
   * committed size, which the JDK's {@code jcmd PID GC.heap_info} says; -1 when either is unknown.
   */
  static long nativeBytes(long pid) {
    long rss = statusBytes(pid, "VmRSS:");
    Path jcmd = Path.of(System.getProperty("java.home"), "bin", "jcmd");
    if (rss < 0 || !Files.isExecutable(jcmd)) {
      return -1;
    }
    try {
      Process p =
          new ProcessBuilder(jcmd.toString(), Long.toString(pid), "GC.heap_info")
              .redirectErrorStream(true)
              .start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!p.waitFor(30, TimeUnit.SECONDS) || p.exitValue() != 0) {
        p.destroyForcibly();
        return -1;
      }
      long heap = heapCommitted(out);
      return heap < 0 ? -1 : Math.max(0, rss - heap);
    } catch (IOException e) {
      return -1;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return -1;
    }
  }

  private static final Pattern HEAP_LINE =
      Pattern.compile(
          "^\\s*(\\S.*?)\\s+total (?:reserved \\d+K, committed (\\d+)K|(\\d+)K), used \\d+K",
          Pattern.MULTILINE);

  /**
   * The committed heap {@code GC.heap_info} reports: G1's one heap line ({@code garbage-first heap
   * total reserved R, committed C, used U}), or the sum of Serial's and Parallel's generations
   * ({@code DefNew total T, used U}); Metaspace and class space are not heap.
   */
  static long heapCommitted(String heapInfo) {
    long total = 0;
    boolean found = false;
    Matcher m = HEAP_LINE.matcher(heapInfo);
    while (m.find()) {
      String area = m.group(1).toLowerCase(java.util.Locale.ROOT);
      if (area.contains("metaspace") || area.contains("class space")) {
        continue;
      }
      total += Long.parseLong(m.group(2) != null ? m.group(2) : m.group(3)) * 1024;
      found = true;
    }
    return found ? total : -1;
  }

  /** The process's peak resident memory (Linux's VmHWM), or -1 when unknown. */
  static long peakResidentBytes(long pid) {
    return statusBytes(pid, "VmHWM:");
  }

  /** A kB figure of /proc/PID/status in bytes, or -1 when unknown. */
  private static long statusBytes(long pid, String field) {
    if (pid <= 0) {
      return -1;
    }
    try {
      for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
        if (line.startsWith(field)) {
          String[] parts = line.substring(field.length()).strip().split("\\s+");
          return Long.parseLong(parts[0]) * 1024;
        }
      }
    } catch (IOException | RuntimeException e) {
      // not Linux, or the process is gone
    }
    return -1;
  }
}
