package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.client.eval.DataFormat;
import dev.berth.client.eval.DataSet;
import dev.berth.client.eval.EvalReport;
import dev.berth.client.eval.EvalResult;
import dev.berth.client.eval.Evaluation;
import dev.berth.client.eval.Progress;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelGate;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code berth eval URL --model M --data FILE}: sends a labelled data set through a served model
 * and reports accuracy, per-class precision, recall and F1, and the confusion matrix.
 */
@Command(
    name = "eval",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
      "Send a labelled data set (CSV, JSONL, MNIST-style IDX files or a folder of images per class)"
          + " through a model served over the Open Inference Protocol v2 and report accuracy,"
          + " per-class precision, recall and F1, their macro, micro and weighted averages and the"
          + " confusion matrix.",
      ""
    })
final class EvalCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      paramLabel = "URL",
      description = "The server, e.g. http://127.0.0.1:8080 (what 'berth serve' prints).")
  String url;

  @Option(
      names = {"-m", "--model"},
      required = true,
      paramLabel = "MODEL",
      description = "The model to evaluate.")
  String model;

  @Option(
      names = "--model-version",
      paramLabel = "VERSION",
      description = "The model version (default: the one the server picks, its highest ready one).")
  String modelVersion;

  @Option(
      names = {"-d", "--data"},
      paramLabel = "FILE",
      description =
          "Labelled data: a .csv or .jsonl file, an IDX images file (...-idx3-ubyte[.gz]), or a"
              + " folder with one sub-folder of PNG/JPEG images per class (or --gate).")
  Path data;

  @Option(
      names = "--format",
      paramLabel = "FORMAT",
      description = "csv, jsonl, idx or images (default: from the name of --data).")
  String format;

  @Option(
      names = "--data-labels",
      paramLabel = "FILE",
      description =
          "IDX labels file (default: the images file's name with images-idx3 replaced by"
              + " labels-idx1).")
  Path dataLabels;

  @Option(
      names = "--label-column",
      paramLabel = "NAME",
      description = "CSV column or JSONL field that holds the label (default: ${DEFAULT-VALUE}).",
      defaultValue = "label")
  String labelColumn;

  @Option(
      names = "--labels",
      paramLabel = "A,B,...|@FILE",
      description =
          "Class names in the order of the model's output, or @FILE with one a line (default: the"
              + " model metadata's labels, else the class indices 0..K-1).")
  String labels;

  @Option(
      names = "--input",
      paramLabel = "NAME",
      description = "The model input the data goes to (default: the first one that fits it).")
  String input;

  @Option(
      names = "--output",
      paramLabel = "NAME",
      description = "The model output that holds the class scores (default: the first output).")
  String output;

  @Option(
      names = {"-b", "--batch-size"},
      paramLabel = "N",
      description = "Rows a request (default: ${DEFAULT-VALUE}).",
      defaultValue = "32")
  int batchSize;

  @Option(
      names = {"-c", "--concurrency"},
      paramLabel = "N",
      description = "Requests in flight at once (default: ${DEFAULT-VALUE}).",
      defaultValue = "4")
  int concurrency;

  @Option(
      names = "--threshold",
      paramLabel = "T",
      description =
          "Binary tasks: positive when the positive class's score is at least T (default: the"
              + " highest score wins; one score a row is compared with 0.5).")
  Double threshold;

  @Option(
      names = "--positive-label",
      paramLabel = "LABEL",
      description =
          "Binary tasks: the positive class, by name or index (default: the class at index 1).")
  String positiveLabel;

  @Option(
      names = "--max-errors",
      paramLabel = "N",
      description =
          "Failed requests tolerated (their rows are left out and reported); one more fails the"
              + " run (default: ${DEFAULT-VALUE}).",
      defaultValue = "5")
  int maxErrors;

  @Option(
      names = "--cacert",
      paramLabel = "FILE",
      description =
          "With an https URL: trust the server certificates signed by these PEM CA certificates"
              + " (default: the JVM's trusted authorities).")
  Path caCert;

  @Option(
      names = "--timeout",
      paramLabel = "DURATION",
      description = "How long one request may take (default: ${DEFAULT-VALUE}).",
      defaultValue = "60s",
      converter = ServeCommand.DurationConverter.class)
  Duration timeout;

  @Option(
      names = "--report",
      paramLabel = "DIR",
      description = "Also write DIR/metrics.json and DIR/index.html (confusion matrix heat map).")
  Path report;

  @Option(
      names = "--gate",
      paramLabel = "MODEL_YAML",
      description =
          "Evaluate as this model.yaml's gate does: its data set, layout, input, output, batch"
              + " size and metric, instead of --data; the gate's figure is printed last.")
  Path gate;

  @Option(
      names = "--result",
      paramLabel = "FILE",
      description =
          "With --gate: write the gate's figure and thresholds as JSON to FILE (a Kubernetes"
              + " evaluation Job writes /dev/termination-log).")
  Path resultFile;

  @Override
  public Integer call() throws InterruptedException {
    URI server = serverUrl(url);
    ModelGate modelGate = null;
    if (gate != null) {
      if (data != null) {
        throw new BerthException(
            "give --data or --gate (whose data set it evaluates on), not both");
      }
      modelGate = ModelConfig.read(gate).gate();
      if (modelGate == null) {
        throw new BerthException(gate + " has no gate; give a model.yaml with 'gate:'");
      }
      data = modelGate.data();
      dataLabels = modelGate.dataLabels();
      labelColumn = modelGate.labelColumn();
      format = modelGate.format();
      input = modelGate.input();
      output = modelGate.output();
      batchSize = modelGate.batchSize();
    } else if (data == null) {
      throw new BerthException(
          "give the labelled data set with --data FILE (or --gate MODEL_YAML)");
    } else if (resultFile != null) {
      throw new BerthException("--result goes with --gate");
    }
    DataSet.Reader reader = DataSet.reader(data).labelColumn(labelColumn).idxLabels(dataLabels);
    if (format != null) {
      reader.format(parseFormat(format));
    }
    DataSet dataSet = reader.read();

    Evaluation.Builder evaluation =
        Evaluation.builder(server, model)
            .version(modelVersion)
            .labels(labels == null ? null : parseLabels(labels))
            .input(input)
            .output(output)
            .batchSize(batchSize)
            .concurrency(concurrency)
            .positiveLabel(positiveLabel)
            .maxErrors(maxErrors)
            .timeout(timeout);
    if (caCert != null) {
      evaluation.sslContext(trusting(caCert));
    }
    if (threshold != null) {
      evaluation.threshold(threshold);
    }
    ProgressLine progress = new ProgressLine(System.err, LogSetup.isTerminal());
    EvalResult result;
    try {
      result = evaluation.progress(progress::update).build().run(dataSet);
    } finally {
      progress.finish();
    }
    System.out.print(EvalReport.table(result));
    if (modelGate != null) {
      double figure = dev.berth.server.EvaluationGate.figure(modelGate, result.metrics());
      System.out.printf(Locale.ROOT, "gate: %s %.4f%n", modelGate.metricName(), figure);
      if (resultFile != null) {
        writeResult(resultFile, modelGate, figure, result);
      }
    }
    System.out.flush();
    if (report != null) {
      EvalReport.write(result, report);
      System.err.println(
          "report: " + report.resolve("index.html") + ", " + report.resolve("metrics.json"));
    }
    return 0;
  }

  /** The gate's figure and thresholds, as a gated canary reads them from an evaluation Job. */
  private static void writeResult(Path file, ModelGate gate, double figure, EvalResult r) {
    var json = new com.fasterxml.jackson.databind.ObjectMapper().createObjectNode();
    json.put("model", r.model());
    json.put("version", r.modelVersion());
    json.put("metric", gate.metricName());
    json.put("figure", figure);
    if (!Double.isNaN(gate.min())) {
      json.put("min", gate.min());
    }
    if (!Double.isNaN(gate.maxDrop())) {
      json.put("max_drop", gate.maxDrop());
    }
    json.put("rows", r.evaluated());
    try {
      Files.writeString(file, json.toString());
    } catch (IOException e) {
      throw new BerthException("cannot write " + file + ": " + e.getMessage(), e);
    }
  }

  /** An SSL context that trusts the CA certificates of a PEM file (and nothing else). */
  static SSLContext trusting(Path caFile) {
    Collection<? extends Certificate> cas;
    try (InputStream in = Files.newInputStream(caFile)) {
      cas = CertificateFactory.getInstance("X.509").generateCertificates(in);
    } catch (NoSuchFileException e) {
      throw new BerthException("--cacert " + caFile + " does not exist", e);
    } catch (IOException | GeneralSecurityException e) {
      throw new BerthException(
          "--cacert "
              + caFile
              + " is not a PEM file of CA certificates (-----BEGIN CERTIFICATE-----): "
              + e.getMessage(),
          e);
    }
    if (cas.isEmpty()) {
      throw new BerthException("--cacert " + caFile + " holds no certificate");
    }
    try {
      KeyStore trusted = KeyStore.getInstance("PKCS12");
      trusted.load(null, null);
      int i = 0;
      for (Certificate ca : cas) {
        trusted.setCertificateEntry("ca-" + i++, ca);
      }
      TrustManagerFactory tmf =
          TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      tmf.init(trusted);
      SSLContext ssl = SSLContext.getInstance("TLS");
      ssl.init(null, tmf.getTrustManagers(), null);
      return ssl;
    } catch (IOException | GeneralSecurityException e) {
      throw new BerthException("cannot use the certificates of --cacert " + caFile + ": " + e, e);
    }
  }

  static URI serverUrl(String url) {
    URI uri;
    try {
      uri = new URI(url);
    } catch (URISyntaxException e) {
      throw new BerthException("'" + url + "' is not a URL; write e.g. http://127.0.0.1:8080", e);
    }
    if (uri.getScheme() == null
        || !(uri.getScheme().equals("http") || uri.getScheme().equals("https"))
        || uri.getHost() == null) {
      throw new BerthException(
          "'" + url + "' is not an http(s) URL with a host; write e.g. http://127.0.0.1:8080");
    }
    return uri;
  }

  static DataFormat parseFormat(String format) {
    try {
      return DataFormat.valueOf(format.toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new BerthException(
          "--format must be csv, jsonl, idx or images, not '" + format + "'", e);
    }
  }

  /** {@code a,b,c}, or {@code @FILE} with one name a line (blank lines skipped). */
  static List<String> parseLabels(String labels) {
    List<String> names;
    if (labels.startsWith("@")) {
      Path file = Path.of(labels.substring(1));
      try {
        names = Files.readAllLines(file).stream().map(String::strip).toList();
      } catch (IOException e) {
        throw new BerthException(
            "cannot read the labels file "
                + file
                + " ("
                + e
                + "); --labels @FILE takes a file"
                + " with one class name a line",
            e);
      }
      names = names.stream().filter(s -> !s.isEmpty()).toList();
    } else {
      names = Arrays.stream(labels.split(",", -1)).map(String::strip).toList();
      if (names.stream().anyMatch(String::isEmpty)) {
        throw new BerthException("--labels '" + labels + "' has an empty class name");
      }
    }
    if (names.isEmpty()) {
      throw new BerthException("--labels names no classes");
    }
    if (names.stream().distinct().count() != names.size()) {
      throw new BerthException("--labels names a class twice: " + names);
    }
    return names;
  }

  /**
   * Rows done, total and rows a second on standard error: rewritten in place on a terminal, else a
   * line at each tenth of the data set.
   */
  static final class ProgressLine {
    private final PrintStream err;
    private final boolean terminal;
    private long lastPrint;
    private long lastTenth = -1;
    private String pending;
    private boolean printed;

    ProgressLine(PrintStream err, boolean terminal) {
      this.err = err;
      this.terminal = terminal;
    }

    synchronized void update(Progress p) {
      String line =
          String.format(
              Locale.ROOT,
              "eval: %d/%d rows (%.0f%%), %.0f rows/s%s",
              p.done(),
              p.total(),
              100.0 * p.done() / Math.max(1, p.total()),
              p.rowsPerSecond(),
              p.failed() == 0 ? "" : ", " + p.failed() + " rows failed");
      long now = System.nanoTime();
      if (terminal) {
        pending = line;
        if (now - lastPrint >= 200_000_000L || p.done() == p.total()) {
          err.print("\r" + line + "\u001b[K");
          err.flush();
          lastPrint = now;
          pending = null;
          printed = true;
        }
      } else {
        long tenth = p.done() * 10 / Math.max(1, p.total());
        if (tenth != lastTenth) {
          err.println(line);
          lastTenth = tenth;
        }
      }
    }

    synchronized void finish() {
      if (terminal) {
        if (pending != null) {
          err.print("\r" + pending + "\u001b[K");
          printed = true;
        }
        if (printed) {
          err.println();
        }
      }
      err.flush();
    }
  }
}
