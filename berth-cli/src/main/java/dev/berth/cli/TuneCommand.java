package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.client.bench.Protocol;
import dev.berth.client.tune.PointMeter;
import dev.berth.client.tune.PointResult;
import dev.berth.client.tune.Sizing;
import dev.berth.client.tune.TuneGoal;
import dev.berth.client.tune.TuneReport;
import dev.berth.client.tune.TuneResult;
import dev.berth.client.tune.TuneSetting;
import dev.berth.client.tune.TuneSpace;
import dev.berth.client.tune.Tuner;
import dev.berth.image.ImagePlan;
import dev.berth.runtime.ConfigReader;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ServiceSpec;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code berth tune SERVICE}: searches one model's serving settings for the most throughput that
 * holds a latency goal, on the CPUs and memory a pod would get, and sizes the deployment from the
 * winner's figures.
 */
@Command(
    name = "tune",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
      "Find the serving settings of a model (instances, engine threads, max-batch-size,"
          + " max-queue-delay; a language model's parallel sequences, threads and context size)"
          + " that give the most throughput while a latency goal holds, measured"
          + " on the CPUs and memory a pod gets, and derive the deployment (CPU, memory, HPA"
          + " target, max-queue-size) from the figures. Each setting is served by its own berth"
          + " serve and measured with berth bench's closed- and open-loop steps; the search goes"
          + " key by key, coarse to fine, stopping early where a value clearly loses. Exit 0 with"
          + " a winner, 1 when no setting holds the goal, 2 on errors.",
      ""
    })
final class TuneCommand implements Callable<Integer> {
  private static final Pattern CPU = Pattern.compile("(\\d+(?:\\.\\d+)?)(m?)");
  private static final Pattern MEMORY =
      Pattern.compile("(\\d+(?:\\.\\d+)?)\\s*(Ki|Mi|Gi|Ti|KiB|MiB|GiB|TiB|k|K|M|G|T|kB|MB|GB|B)?");

  @Parameters(index = "0", paramLabel = "SERVICE", description = "The service file (berth.yaml).")
  Path file;

  @Option(
      names = {"-m", "--model"},
      paramLabel = "MODEL",
      description = "The model to tune (default: the service's first).")
  String model;

  @ArgGroup(exclusive = true)
  Goal goal = new Goal();

  /** The latency goal: one percentile and its limit. */
  static final class Goal {
    @Option(
        names = "--p50",
        paramLabel = "DURATION",
        converter = ServeCommand.DurationConverter.class,
        description = "Goal: median latency at most DURATION.")
    Duration p50;

    @Option(
        names = "--p90",
        paramLabel = "DURATION",
        converter = ServeCommand.DurationConverter.class,
        description = "Goal: 90th percentile at most DURATION.")
    Duration p90;

    @Option(
        names = "--p95",
        paramLabel = "DURATION",
        converter = ServeCommand.DurationConverter.class,
        description = "Goal: 95th percentile at most DURATION.")
    Duration p95;

    @Option(
        names = "--p99",
        paramLabel = "DURATION",
        converter = ServeCommand.DurationConverter.class,
        description = "Goal: 99th percentile at most DURATION (the default goal: --p99 200ms).")
    Duration p99;

    boolean given() {
      return p50 != null || p90 != null || p95 != null || p99 != null;
    }

    TuneGoal toGoal() {
      if (p50 != null) {
        return new TuneGoal(50, p50.toNanos() / 1e6);
      }
      if (p90 != null) {
        return new TuneGoal(90, p90.toNanos() / 1e6);
      }
      if (p95 != null) {
        return new TuneGoal(95, p95.toNanos() / 1e6);
      }
      return new TuneGoal(99, p99 == null ? 200 : p99.toNanos() / 1e6);
    }
  }

  @Option(
      names = "--cpus",
      paramLabel = "N",
      description =
          "CPUs the server gets (2, 1.5 or 1500m): it is pinned to that many (rounded up) with"
              + " taskset and its JVM told so. Default: deploy.resources.limits.cpu, else"
              + " requests.cpu, else every CPU of this machine.")
  String cpus;

  @Option(
      names = "--memory",
      paramLabel = "SIZE",
      description =
          "Memory the server gets (2Gi, 512Mi): its JVM sizes itself as in a container with that"
              + " limit. Default: deploy.resources.limits.memory, else none.")
  String memory;

  @Option(
      names = "--budget",
      paramLabel = "DURATION",
      defaultValue = "10m",
      converter = ServeCommand.DurationConverter.class,
      description =
          "Time the whole search may take; steps are sized to it (default: ${DEFAULT-VALUE}).")
  Duration budget;

  @Option(
      names = "--data",
      paramLabel = "FILE",
      description =
          "Request bodies (JSON, or JSONL sent round-robin), as for berth bench. Default:"
              + " generated from the model's metadata.")
  Path data;

  @Option(
      names = "--input",
      paramLabel = "NAME",
      description = "An input generated requests carry (repeatable), as for berth bench.")
  List<String> inputs = new ArrayList<>();

  @Option(
      names = "--batch-size",
      paramLabel = "ROWS",
      defaultValue = "1",
      description = "Rows per generated request (default: ${DEFAULT-VALUE}).")
  int batchSize;

  @Option(
      names = "--protocol",
      paramLabel = "PROTOCOL",
      description =
          "rest-json, rest-binary, tfserving or grpc, as for berth bench (default: rest-json;"
              + " openai, the only one, for a language model).")
  String protocol;

  @Option(
      names = "--max-tokens",
      paramLabel = "N",
      defaultValue = "64",
      description =
          "A language model's generated requests: max_tokens of each (default: ${DEFAULT-VALUE}).")
  int maxTokens;

  @Option(
      names = "--prompt-words",
      paramLabel = "N",
      defaultValue = "48",
      description =
          "A language model's generated requests: words of each prompt (default:"
              + " ${DEFAULT-VALUE}).")
  int promptWords;

  @Option(
      names = "--max-concurrency",
      paramLabel = "N",
      defaultValue = "64",
      description =
          "Most closed-loop callers a setting is loaded with (default: ${DEFAULT-VALUE}).")
  int maxConcurrency;

  @Option(
      names = "--report",
      paramLabel = "DIR",
      description =
          "Where the report (tune.json, tune.csv, index.html) and the tuned model.yaml go"
              + " (default: berth-tune/MODEL).")
  Path report;

  @Option(
      names = "--apply",
      description =
          "Write the winner into the service file: the model's entry (instances, batching,"
              + " options; a language model's llm) and deploy (resources, autoscaling), keeping"
              + " its comments.")
  boolean apply;

  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    PrintStream err = System.err;
    if (!Files.isRegularFile(file)) {
      throw new BerthException("'" + file + "' is not a service file (berth.yaml)");
    }
    if (maxConcurrency < 1 || maxConcurrency > 4096) {
      throw new BerthException("--max-concurrency must be from 1 to 4096, not " + maxConcurrency);
    }
    if (budget.toSeconds() < 10) {
      throw new BerthException("--budget must be at least 10s (a setting takes a few seconds)");
    }
    ServiceSpec service = ServiceSpec.load(file);
    String name = model == null ? firstBundled(service) : model;
    ServiceSpec.ServiceModel tuned =
        service.models().stream()
            .filter(m -> m.name().equals(name))
            .findFirst()
            .orElseThrow(
                () ->
                    new BerthException(
                        service.modelNames().contains(name)
                            ? "model '"
                                + name
                                + "' comes from a source: berth tune tunes models the service"
                                + " bundles (models[].path)"
                            : "service "
                                + service.name()
                                + " has no model '"
                                + name
                                + "'; its models are "
                                + service.modelNames()));
    String engine = ModelEngines.of(tuned);
    if (engine.equals("llama") && !goal.given()) {
      throw new BerthException(
          "give a language model's goal on the whole answer's latency, e.g. --p99 10s: an answer"
              + " of --max-tokens tokens takes longer than the default goal of 200 ms");
    }
    TuneGoal tuneGoal = goal.toGoal();
    double cores = cpus(service);
    long memoryBytes = memory(service);
    int pinned = (int) Math.ceil(cores);
    if (pinned != cores) {
      err.printf(
          Locale.ROOT,
          "note: CPUs %s: taskset pins whole CPUs, so the server runs on %d and the deployment is"
              + " sized for %d (a limit of %s would throttle it below what was measured)%n",
          Sizing.cpuQuantity(cores),
          pinned,
          pinned,
          Sizing.cpuQuantity(cores));
    }
    // a language model's context is cut only to what the user's own requests need
    TuneSpace space = TuneSpace.of(engine, tuned.modelYaml(), pinned, data != null);
    Protocol proto = protocol(engine);
    if (apply) {
      // find out now, not after the search, whether the service file can take the winner
      TunedService.check(service, name, space.baseline());
    }
    ServeProcess.Launch launch = launch(service, pinned, memoryBytes, err);
    Path out = report != null ? report : Path.of("berth-tune", name);

    Duration[] steps = stepDurations();
    PointMeter meter =
        new PointMeter(
            name,
            tuneGoal,
            new PointMeter.Load(
                proto,
                data,
                inputs,
                batchSize,
                // a language model's answer takes its max_tokens' time: allow for a slow one
                Duration.ofSeconds(proto == Protocol.OPENAI ? 120 : 30),
                steps[0],
                steps[1],
                maxConcurrency,
                maxTokens,
                promptWords),
            err::println);
    err.printf(
        Locale.ROOT,
        "tuning model '%s' of %s for %s on %s CPU%s%s; budget %s, steps of %.1f s after %.1f s"
            + " warm-up%n",
        name,
        service.file(),
        tuneGoal.label(),
        Integer.toString(pinned),
        pinned == 1 ? "" : "s",
        memoryBytes > 0 ? " and " + memoryBytes / (1024 * 1024) + " MiB" : "",
        budget.toMinutes() > 0 ? budget.toMinutes() + "m" : budget.toSeconds() + "s",
        steps[0].toMillis() / 1000.0,
        steps[1].toMillis() / 1000.0);
    Tuner.Measurer measurer =
        (setting, purpose) -> {
          long started = System.nanoTime();
          PointResult measured;
          try {
            ServiceSpec candidate = service.withModelYaml(name, setting.applyTo(tuned.modelYaml()));
            try (ServeProcess served = ServeProcess.start(candidate, line -> {}, launch)) {
              measured =
                  meter.measure(
                      setting,
                      purpose,
                      new PointMeter.Server(served.url(), served.grpcPort(), served.pid()),
                      started);
            }
          } catch (RuntimeException e) {
            // a setting the engine refuses, a server that would not start, a load that failed:
            // this setting loses and the search goes on (the current one failing ends it)
            String text = e.getMessage() == null ? e.toString() : e.getMessage();
            String why = text.lines().findFirst().orElse(text);
            return PointResult.failed(setting, purpose, (System.nanoTime() - started) / 1e9, why);
          }
          // the server's stop counts toward the setting's time too
          return measured.withSeconds((System.nanoTime() - started) / 1e9);
        };
    TuneResult result =
        new Tuner(
                space,
                new Tuner.Options(tuneGoal, budget, 0.03),
                measurer,
                err::println,
                System::nanoTime)
            .run();
    Sizing sizing =
        result.winnerHeld() ? Sizing.of(result.winnerFinal(), tuneGoal, pinned, memoryBytes) : null;
    System.out.print(TuneReport.summary(result, sizing));
    System.out.flush();
    TuneReport.write(out, result, sizing, CommandLines.of(spec));
    err.println("report: " + out.resolve(TuneReport.HTML_FILE).toAbsolutePath());
    if (!result.winnerHeld()) {
      if (result.winner() != null) {
        err.println(
            "the winner did not hold the goal when measured again: nothing written; run again with"
                + " a longer --budget (longer steps) or on a quieter machine");
      }
      return 1;
    }
    Path modelYaml = writeModelYaml(out, tuned, result.winner(), sizing);
    err.println("tuned model.yaml: " + modelYaml.toAbsolutePath());
    if (apply) {
      TunedService.apply(service, name, result.winner(), sizing, err);
    } else {
      err.println(
          "berth.yaml: run again with --apply to write these settings into "
              + service.file()
              + " (its models entry overrides model.yaml)");
    }
    return 0;
  }

  /**
   * openai for a language model (its only protocol), else --protocol; the options that shape the
   * other kind's requests are refused.
   */
  private Protocol protocol(String engine) {
    var parsed = spec.commandLine().getParseResult();
    if (engine.equals("llama")) {
      if (protocol != null && Protocol.parse(protocol) != Protocol.OPENAI) {
        throw new BerthException(
            "a language model is tuned over its OpenAI-compatible API: leave --protocol out (or"
                + " give openai)");
      }
      for (String name : List.of("--input", "--batch-size")) {
        if (parsed.hasMatchedOption(name)) {
          throw new BerthException(
              name + " shapes a tensor model's requests; a language model's are completions");
        }
      }
      if (data != null) {
        for (String name : List.of("--max-tokens", "--prompt-words")) {
          if (parsed.hasMatchedOption(name)) {
            throw new BerthException(
                name + " shapes generated requests; the --data file brings its own");
          }
        }
      }
      return Protocol.OPENAI;
    }
    Protocol p = protocol == null ? Protocol.REST_JSON : Protocol.parse(protocol);
    if (p == Protocol.OPENAI) {
      throw new BerthException(
          "--protocol openai is a language model's; this model is served by " + engine);
    }
    for (String name : List.of("--max-tokens", "--prompt-words")) {
      if (parsed.hasMatchedOption(name)) {
        throw new BerthException(name + " shapes a language model's requests; this is not one");
      }
    }
    return p;
  }

  private static String firstBundled(ServiceSpec service) {
    if (service.models().isEmpty()) {
      throw new BerthException(
          "service "
              + service.name()
              + " bundles no model (models[].path): berth tune tunes bundled models");
    }
    return service.models().get(0).name();
  }

  /** --cpus, else the service's CPU limit or request, else this machine's CPUs. */
  private double cpus(ServiceSpec service) {
    String text = cpus;
    String from = "--cpus";
    if (text == null) {
      text = service.deploy().limits().get("cpu");
      from = "deploy.resources.limits.cpu";
    }
    if (text == null) {
      text = service.deploy().requests().get("cpu");
      from = "deploy.resources.requests.cpu";
    }
    int available = Runtime.getRuntime().availableProcessors();
    if (text == null) {
      return available;
    }
    Matcher m = CPU.matcher(text.strip());
    if (!m.matches()) {
      throw new BerthException(
          from + " must be a CPU count like 2, 1.5 or 1500m, not '" + text + "'");
    }
    double v = Double.parseDouble(m.group(1)) / (m.group(2).isEmpty() ? 1 : 1000);
    if (!(v > 0)) {
      throw new BerthException(from + " must be above 0, not '" + text + "'");
    }
    if (Math.ceil(v) > available) {
      throw new BerthException(
          from
              + " is "
              + text
              + " but this machine has "
              + available
              + " CPUs; tune on a machine with as many as a pod gets, or give --cpus "
              + available);
    }
    return v;
  }

  /** --memory, else the service's memory limit, else -1. */
  private long memory(ServiceSpec service) {
    String text = memory;
    String from = "--memory";
    if (text == null) {
      text = service.deploy().limits().get("memory");
      from = "deploy.resources.limits.memory";
    }
    if (text == null) {
      return -1;
    }
    return bytes(text, from);
  }

  /** A Kubernetes memory quantity (512Mi, 2Gi, 1G) or a size (512MiB) in bytes. */
  static long bytes(String text, String from) {
    Matcher m = MEMORY.matcher(text.strip());
    if (!m.matches()) {
      throw new BerthException(from + " must be a size like 512Mi or 2Gi, not '" + text + "'");
    }
    double n = Double.parseDouble(m.group(1));
    String unit = m.group(2) == null ? "" : m.group(2).replace("B", "");
    double scale =
        switch (unit) {
          case "Ki" -> 1024d;
          case "Mi" -> 1024d * 1024;
          case "Gi" -> 1024d * 1024 * 1024;
          case "Ti" -> 1024d * 1024 * 1024 * 1024;
          case "k", "K" -> 1e3;
          case "M" -> 1e6;
          case "G" -> 1e9;
          case "T" -> 1e12;
          default -> 1;
        };
    long bytes = (long) (n * scale);
    if (bytes < 64L * 1024 * 1024) {
      throw new BerthException(from + " must be at least 64Mi, not '" + text + "'");
    }
    return bytes;
  }

  /**
   * Pins the server to the last {@code cpus} CPUs this process may use (the load generator keeps
   * the others), and starts its JVM with the image's JVM options and the CPUs and memory it has.
   */
  private static ServeProcess.Launch launch(
      ServiceSpec service, int cpus, long memoryBytes, PrintStream err) {
    // the JVM options of the service's image, so that heap and memory behave as in the pod
    List<String> jvm = new ArrayList<>(ImagePlan.jvmOptions(service));
    jvm.add("-XX:ActiveProcessorCount=" + cpus);
    if (memoryBytes > 0) {
      jvm.add("-XX:MaxRAM=" + memoryBytes);
    }
    List<Integer> allowed = allowedCpus();
    if (cpus >= allowed.size()) {
      err.println(
          "note: the server gets every CPU of this machine ("
              + allowed.size()
              + "), which the load generator shares: figures are lower than on a pod with its"
              + " own; tune on a machine with more CPUs than --cpus for truer ones");
      return new ServeProcess.Launch(List.of(), jvm);
    }
    if (!onPath("taskset")) {
      err.println(
          "note: taskset (util-linux) is not installed: the server is told it has "
              + cpus
              + " CPUs but is not pinned to them");
      return new ServeProcess.Launch(List.of(), jvm);
    }
    List<Integer> mine = allowed.subList(allowed.size() - cpus, allowed.size());
    String list = mine.stream().map(String::valueOf).collect(Collectors.joining(","));
    err.println("pinning the server to CPU" + (cpus == 1 ? " " : "s ") + list + " (taskset)");
    return new ServeProcess.Launch(List.of("taskset", "-c", list), jvm);
  }

  /** The CPUs this process may run on (Linux's Cpus_allowed_list), else 0..n-1. */
  static List<Integer> allowedCpus() {
    List<Integer> out = new ArrayList<>();
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith("Cpus_allowed_list:")) {
          for (String range : line.substring(18).strip().split(",")) {
            String[] ends = range.strip().split("-");
            int from = Integer.parseInt(ends[0]);
            int to = ends.length > 1 ? Integer.parseInt(ends[1]) : from;
            for (int c = from; c <= to; c++) {
              out.add(c);
            }
          }
        }
      }
    } catch (IOException | RuntimeException e) {
      out.clear();
    }
    if (out.isEmpty()) {
      for (int c = 0; c < Runtime.getRuntime().availableProcessors(); c++) {
        out.add(c);
      }
    }
    return out;
  }

  private static boolean onPath(String command) {
    String path = System.getenv("PATH");
    if (path == null) {
      return false;
    }
    for (String dir : path.split(java.io.File.pathSeparator)) {
      if (Files.isExecutable(Path.of(dir, command))) {
        return true;
      }
    }
    return false;
  }

  /**
   * Step and warm-up lengths from the budget: about 12 settings of 10 steps each (a ramp and its
   * open-loop steps), less their starts, measured three quarters and warmed one quarter; 1 to 10 s
   * measured, 0.5 to 3 s warm.
   */
  private Duration[] stepDurations() {
    double perStep = Math.max(0, budget.toSeconds() - 12 * 4) / (12 * 10.0);
    double measured = Math.min(10, Math.max(1, perStep * 0.75));
    double warm = Math.min(3, Math.max(0.5, perStep * 0.25));
    return new Duration[] {
      Duration.ofMillis(Math.round(measured * 1000)), Duration.ofMillis(Math.round(warm * 1000))
    };
  }

  /**
   * Writes the model's own model.yaml with the winner's values and the sized max-queue-size into
   * the report directory.
   */
  private static Path writeModelYaml(
      Path dir, ServiceSpec.ServiceModel model, TuneSetting winner, Sizing sizing) {
    Path own = model.dir().resolve(ModelConfig.FILE_NAME);
    Map<String, Object> yaml = new LinkedHashMap<>();
    if (Files.exists(own)) {
      ConfigReader read = ConfigReader.readYaml(own, "of model settings");
      if (read != null) {
        yaml.putAll(read.values());
      }
    } else {
      yaml.put("apiVersion", ModelConfig.API_VERSION);
      yaml.put("kind", ModelConfig.KIND);
    }
    TuneSetting setting = winner;
    if (sizing != null) {
      setting = setting.with(TuneSpace.queueKey(winner), sizing.maxQueueSize());
    }
    Path out = dir.resolve(ModelConfig.FILE_NAME);
    try {
      Files.createDirectories(dir);
      ServiceSpec.writeYaml(out, setting.applyTo(yaml));
    } catch (IOException e) {
      throw new BerthException("cannot write " + out + ": " + e.getMessage(), e);
    }
    return out;
  }
}
