package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.client.bench.Bench;
import dev.berth.client.bench.BenchPlan;
import dev.berth.client.bench.BenchReport;
import dev.berth.client.bench.BenchResults;
import dev.berth.client.bench.LoadStep;
import dev.berth.client.bench.Protocol;
import dev.berth.runtime.ServiceSpec;
import java.io.PrintStream;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code berth bench URL|SERVICE}: load and latency against a server, step by step. */
@Command(
    name = "bench",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
      "Measure throughput and latency of a model server (Berth, or any server speaking the Open"
          + " Inference Protocol v2 or TF-Serving REST) under closed-loop concurrency steps or"
          + " open-loop request rates. Given a service file (berth.yaml) it starts that service"
          + " first, on a free loopback port, and stops it at the end.",
      ""
    })
final class BenchCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      paramLabel = "TARGET",
      description =
          "The server's base URL (http://HOST:PORT), or a service file (berth.yaml) to start and"
              + " bench.")
  String target;

  @Option(
      names = {"-m", "--model"},
      paramLabel = "MODEL",
      description = "Model to call (default with a service file: its first model).")
  String model;

  @Option(
      names = {"-c", "--concurrency"},
      paramLabel = "LIST",
      description =
          "Closed-loop steps: connections each sending its next request when the last is answered,"
              + " e.g. 1,4,16,64 (the default when --rate is not given).")
  String concurrency;

  @Option(
      names = "--rate",
      paramLabel = "LIST",
      description =
          "Open-loop steps instead: requests per second sent on a fixed schedule, e.g. 50,100,200;"
              + " latency counts from when each request was due.")
  String rate;

  @Option(
      names = {"-d", "--duration"},
      paramLabel = "DURATION",
      description = "Measured time of each step (default: ${DEFAULT-VALUE}).",
      defaultValue = "20s",
      converter = ServeCommand.DurationConverter.class)
  Duration duration;

  @Option(
      names = "--warmup",
      paramLabel = "DURATION",
      description =
          "Load before each step's measured time, not counted (default: ${DEFAULT-VALUE}).",
      defaultValue = "2s",
      converter = ServeCommand.DurationConverter.class)
  Duration warmup;

  @Option(
      names = "--protocol",
      paramLabel = "PROTOCOL",
      description =
          "rest-json (OIP v2 /infer, JSON), rest-binary (the same with the binary tensor"
              + " extension), tfserving (/v1/models/M:predict), grpc (OIP v2 gRPC ModelInfer) or"
              + " openai (a language model's POST /v1/completions). Default: openai for a language"
              + " model of a service file, else rest-json.")
  String protocol;

  @Option(
      names = "--max-tokens",
      paramLabel = "N",
      description =
          "With --protocol openai: max_tokens of each generated completion request (default:"
              + " ${DEFAULT-VALUE}).",
      defaultValue = "64")
  int maxTokens;

  @Option(
      names = "--prompt-words",
      paramLabel = "N",
      description =
          "With --protocol openai: words of each generated prompt, each prompt with its own start"
              + " (default: ${DEFAULT-VALUE}).",
      defaultValue = "48")
  int promptWords;

  @Option(
      names = "--grpc-port",
      paramLabel = "PORT",
      description =
          "With --protocol grpc and a URL: the server's gRPC port on the URL's host (default:"
              + " ${DEFAULT-VALUE}); with a service file, the port it started on.",
      defaultValue = "8081")
  int grpcPort;

  @Option(
      names = "--data",
      paramLabel = "FILE",
      description =
          "Request bodies to send: a JSON file holding one, or JSONL with one per line (sent"
              + " round-robin). Default: generated from the model's metadata.")
  Path data;

  @Option(
      names = "--input",
      paramLabel = "NAME",
      description =
          "An input generated requests carry (repeatable; default: every input, or a BYTES first"
              + " input alone).")
  List<String> inputs = new ArrayList<>();

  @Option(
      names = "--batch-size",
      paramLabel = "ROWS",
      description = "Rows per generated request (default: ${DEFAULT-VALUE}).",
      defaultValue = "1")
  int batchSize;

  @Option(
      names = "--timeout",
      paramLabel = "DURATION",
      description =
          "Longest wait for an answer; past it the request is a timeout error (default: 30s;"
              + " 120s with --protocol openai, whose answers take their tokens' time).",
      converter = ServeCommand.DurationConverter.class)
  Duration timeout;

  @Option(
      names = "--max-connections",
      paramLabel = "N",
      description = "Most connections an open-loop step opens (default: ${DEFAULT-VALUE}).",
      defaultValue = "256")
  int maxConnections;

  @Option(
      names = "--seed",
      paramLabel = "N",
      description = "Seed of the random values of generated requests (default: ${DEFAULT-VALUE}).",
      defaultValue = "1")
  long seed;

  @Option(
      names = "--report",
      paramLabel = "DIR",
      description = "Write results.json, results.csv and index.html (charts) into DIR.")
  Path report;

  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    PrintStream err = System.err;
    List<LoadStep> steps = steps();
    Protocol proto = protocol == null ? null : Protocol.parse(protocol);
    ServeProcess served = null;
    URI url;
    String modelName = model;
    if (target.contains("://")) {
      url = url(target);
      if (modelName == null) {
        throw new BerthException(
            "give the model to bench with --model (a Berth server's start-up log lists its"
                + " models)");
      }
    } else {
      Path file = Path.of(target);
      if (!Files.exists(file)) {
        throw new BerthException(
            "'"
                + target
                + "' is neither a server URL (http://HOST:PORT) nor a service file (berth.yaml)");
      }
      ServiceSpec service = ServiceSpec.load(file);
      if (modelName == null) {
        modelName = service.modelNames().get(0);
      } else if (!service.modelNames().contains(model)) {
        throw new BerthException(
            "service "
                + service.name()
                + " has no model '"
                + model
                + "'; its models are "
                + service.modelNames());
      }
      if (proto == null) {
        proto = defaultProtocol(service, modelName);
      }
      // the options are checked before the service starts
      checkOptions(proto);
      served = ServeProcess.start(service, err::println);
      url = served.url();
      grpcPort = served.grpcPort();
    }
    if (proto == null) {
      proto = Protocol.REST_JSON;
      checkOptions(proto);
    } else if (served == null) {
      checkOptions(proto);
    }
    if (timeout == null) {
      timeout = Duration.ofSeconds(proto == Protocol.OPENAI ? 120 : 30);
    }
    try {
      BenchPlan plan =
          BenchPlan.builder(url, modelName)
              .protocol(proto)
              .maxTokens(maxTokens)
              .promptWords(promptWords)
              .steps(steps)
              .duration(duration)
              .warmup(warmup)
              .timeout(timeout)
              .batchSize(batchSize)
              .maxConnections(maxConnections)
              .data(data)
              .inputs(inputs)
              .seed(seed)
              .grpcPort(grpcPort)
              .build();
      BenchResults results = Bench.run(plan, err::println);
      System.out.print(BenchReport.table(results));
      System.out.flush();
      if (report != null) {
        BenchReport.write(report, results, CommandLines.of(spec));
        err.println("report: " + report.resolve(BenchReport.HTML_FILE).toAbsolutePath());
      }
    } finally {
      if (served != null) {
        served.close();
        err.println(
            "stopped the service (pid " + served.pid() + ", exit code " + served.exitValue() + ")");
      }
    }
    return 0;
  }

  /** openai for a language model (a GGUF file, or a source: with engine llama), else rest-json. */
  static Protocol defaultProtocol(ServiceSpec service, String model) {
    boolean llama =
        service.models().stream().anyMatch(m -> m.name().equals(model) && isLlama(m))
            || service.remoteModels().stream()
                .anyMatch(m -> m.name().equals(model) && "llama".equals(m.engine()));
    return llama ? Protocol.OPENAI : Protocol.REST_JSON;
  }

  private static boolean isLlama(ServiceSpec.ServiceModel m) {
    try {
      return ModelEngines.of(m).equals("llama");
    } catch (BerthException e) {
      return false; // files no engine names: the server says what it makes of them
    }
  }

  /**
   * The options that shape one kind of request, given with the other: --max-tokens and
   * --prompt-words make completions (and a --data file brings its own), --input and --batch-size
   * tensors.
   */
  private void checkOptions(Protocol proto) {
    var parsed = spec.commandLine().getParseResult();
    List<String> wrong =
        proto == Protocol.OPENAI
            ? data != null
                ? List.of("--max-tokens", "--prompt-words", "--input", "--batch-size")
                : List.of("--input", "--batch-size")
            : List.of("--max-tokens", "--prompt-words");
    for (String name : wrong) {
      if (parsed.hasMatchedOption(name)) {
        throw new BerthException(
            switch (name) {
              case "--input", "--batch-size" ->
                  name + " shapes a tensor model's requests; --protocol openai sends completions";
              default ->
                  proto == Protocol.OPENAI
                      ? name + " shapes generated completions; the --data file brings its own"
                      : name
                          + " shapes generated completion requests: it goes with --protocol"
                          + " openai";
            });
      }
    }
  }

  private List<LoadStep> steps() {
    if (concurrency != null && rate != null) {
      throw new BerthException(
          "give --concurrency (closed loop) or --rate (open loop), not both; run twice for both");
    }
    List<LoadStep> steps = new ArrayList<>();
    if (rate != null) {
      for (String item : items(rate, "--rate", "50,100,200")) {
        double r;
        try {
          r = Double.parseDouble(item);
        } catch (NumberFormatException e) {
          r = -1;
        }
        if (!(r > 0) || r > 1_000_000) {
          throw new BerthException(
              "--rate takes requests per second above 0 separated by commas, e.g. 50,100,200; not '"
                  + rate
                  + "'");
        }
        steps.add(LoadStep.open(r));
      }
      return steps;
    }
    if (concurrency == null) {
      BenchPlan.DEFAULT_CONCURRENCY.forEach(c -> steps.add(LoadStep.closed(c)));
      return steps;
    }
    for (String item : items(concurrency, "--concurrency", "1,4,16,64")) {
      int c;
      try {
        c = Integer.parseInt(item);
      } catch (NumberFormatException e) {
        c = -1;
      }
      if (c < 1 || c > 10_000) {
        throw new BerthException(
            "--concurrency takes whole numbers from 1 to 10000 separated by commas, e.g. 1,4,16,64;"
                + " not '"
                + concurrency
                + "'");
      }
      steps.add(LoadStep.closed(c));
    }
    return steps;
  }

  private static List<String> items(String list, String option, String example) {
    List<String> items = new ArrayList<>();
    for (String s : list.split(",", -1)) {
      items.add(s.strip());
    }
    if (items.stream().anyMatch(String::isEmpty)) {
      throw new BerthException(
          option + " takes a list separated by commas, e.g. " + example + "; not '" + list + "'");
    }
    return items;
  }

  private static URI url(String text) {
    try {
      return new URI(text);
    } catch (URISyntaxException e) {
      throw new BerthException(
          "'"
              + text
              + "' is not a URL ("
              + e.getReason()
              + "); give one like http://127.0.0.1:8080",
          e);
    }
  }
}
