package dev.berth.client.eval;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.api.BerthException;
import dev.berth.api.DataType;
import dev.berth.api.TensorSpec;
import java.io.IOException;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import javax.net.ssl.SSLContext;

/**
 * Sends a labelled data set through a served model over the Open Inference Protocol v2 (REST) and
 * measures how often it is right.
 *
 * <pre>{@code
 * EvalResult result =
 *     Evaluation.builder(URI.create("http://127.0.0.1:8080"), "fashion")
 *         .batchSize(64)
 *         .concurrency(4)
 *         .build()
 *         .run(DataSet.reader(Path.of("t10k-images-idx3-ubyte.gz")).read());
 * System.out.println(result.metrics().accuracy());
 * }</pre>
 *
 * <p>The first batch is sent alone (a request the model refuses fails the run at once with the
 * server's message), then the others {@code concurrency} at a time. Failed requests are counted;
 * more than {@code maxErrors} of them fail the run.
 */
public final class Evaluation {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final int MESSAGES_KEPT = 5;

  private final URI url;
  private final String model;
  private final String version;
  private final List<String> labels;
  private final String input;
  private final String output;
  private final int batchSize;
  private final int concurrency;
  private final double threshold;
  private final String positiveLabel;
  private final int maxErrors;
  private final Duration timeout;
  private final SSLContext sslContext;
  private final Consumer<Progress> progress;

  private Evaluation(Builder b) {
    this.url = b.url;
    this.model = b.model;
    this.version = b.version;
    this.labels = b.labels;
    this.input = b.input;
    this.output = b.output;
    this.batchSize = b.batchSize;
    this.concurrency = b.concurrency;
    this.threshold = b.threshold;
    this.positiveLabel = b.positiveLabel;
    this.maxErrors = b.maxErrors;
    this.timeout = b.timeout;
    this.sslContext = b.sslContext;
    this.progress = b.progress;
  }

  /** Starts configuring an evaluation of {@code model} on the server at {@code url}. */
  public static Builder builder(URI url, String model) {
    return new Builder(url, model);
  }

  /** Settings of an evaluation; each has a default. */
  public static final class Builder {
    private final URI url;
    private final String model;
    private String version;
    private List<String> labels;
    private String input;
    private String output;
    private int batchSize = 32;
    private int concurrency = 4;
    private double threshold = Double.NaN;
    private String positiveLabel;
    private int maxErrors = 5;
    private Duration timeout = Duration.ofSeconds(60);
    private SSLContext sslContext;
    private Consumer<Progress> progress = p -> {};

    private Builder(URI url, String model) {
      this.url = Objects.requireNonNull(url, "url");
      this.model = Objects.requireNonNull(model, "model");
    }

    /**
     * TLS settings for an {@code https} URL, e.g. trusting the server's CA (default: the JVM's
     * trusted certificate authorities).
     */
    public Builder sslContext(SSLContext sslContext) {
      this.sslContext = sslContext;
      return this;
    }

    /** The model version to ask (default: the one the server picks, its highest ready one). */
    public Builder version(String version) {
      this.version = version;
      return this;
    }

    /**
     * Class names in the order of the model's output (default: the model metadata's {@code
     * parameters.labels}, else the class indices 0..K-1).
     */
    public Builder labels(List<String> labels) {
      this.labels = labels == null ? null : List.copyOf(labels);
      return this;
    }

    /** The input the rows go to (default: the first one that fits the data). */
    public Builder input(String input) {
      this.input = input;
      return this;
    }

    /** The output read (default: the model's first output). */
    public Builder output(String output) {
      this.output = output;
      return this;
    }

    /** Rows a request (default 32). */
    public Builder batchSize(int batchSize) {
      if (batchSize < 1) {
        throw new BerthException("--batch-size must be 1 or more, got " + batchSize);
      }
      this.batchSize = batchSize;
      return this;
    }

    /** Requests in flight at once (default 4). */
    public Builder concurrency(int concurrency) {
      if (concurrency < 1) {
        throw new BerthException("--concurrency must be 1 or more, got " + concurrency);
      }
      this.concurrency = concurrency;
      return this;
    }

    /**
     * For a binary task: the positive class when its score is at least {@code threshold} (default:
     * the highest score wins; an output of one score a row is compared with 0.5).
     */
    public Builder threshold(double threshold) {
      if (!(threshold >= 0 && threshold <= 1)) {
        throw new BerthException("--threshold must be between 0 and 1, got " + threshold);
      }
      this.threshold = threshold;
      return this;
    }

    /** For a binary task: the positive class, by name or index (default: the class at index 1). */
    public Builder positiveLabel(String positiveLabel) {
      this.positiveLabel = positiveLabel;
      return this;
    }

    /** Failed requests tolerated before the run fails (default 5). */
    public Builder maxErrors(int maxErrors) {
      if (maxErrors < 0) {
        throw new BerthException("--max-errors must be 0 or more, got " + maxErrors);
      }
      this.maxErrors = maxErrors;
      return this;
    }

    /** How long one request may take (default 60s). */
    public Builder timeout(Duration timeout) {
      this.timeout = Objects.requireNonNull(timeout, "timeout");
      return this;
    }

    /** Called after every answered or failed batch, from the thread that sent it. */
    public Builder progress(Consumer<Progress> progress) {
      this.progress = Objects.requireNonNull(progress, "progress");
      return this;
    }

    public Evaluation build() {
      return new Evaluation(this);
    }
  }

  /** Class names and where they came from. */
  private record Classes(List<String> names, String source) {}

  /**
   * Sends every row of {@code data} and computes the metrics.
   *
   * @throws BerthException for a server that cannot be reached, an unknown model, data that do not
   *     fit the model, or more than {@code maxErrors} failed requests
   */
  public EvalResult run(DataSet data) throws InterruptedException {
    try (OipClient client = new OipClient(url, model, version, timeout, sslContext)) {
      return run(client, data);
    }
  }

  /**
   * Sends every row of {@code data} to {@code client} and computes the metrics; the URL given to
   * the builder is not used.
   *
   * @throws BerthException as {@link #run(DataSet)} does
   */
  public EvalResult run(ModelEndpoint client, DataSet data) throws InterruptedException {
    if (data.examples().isEmpty()) {
      throw new BerthException(data.source() + " holds no labelled rows");
    }
    ModelSignature signature = client.metadata();
    if (signature.outputs().isEmpty()) {
      throw new BerthException("model '" + model + "' declares no outputs");
    }
    TensorSpec out = output != null ? signature.output(output) : signature.outputs().get(0);
    List<Example> rows = data.examples();
    InputPlan plan = InputPlan.choose(signature, input, rows, out.name());
    int perRequest = Math.min(batchSize, plan.maxBatch());

    Classes classes = classes(signature, out);
    int[] truth = classes == null ? null : truth(rows, classes);

    int batches = (rows.size() + perRequest - 1) / perRequest;
    int[] predicted = new int[rows.size()];
    Arrays.fill(predicted, -1);
    AtomicLong done = new AtomicLong();
    AtomicLong failedRows = new AtomicLong();
    AtomicInteger failedRequests = new AtomicInteger();
    Set<String> messages = new LinkedHashSet<>();
    long start = System.nanoTime();

    // The first batch alone: its answer fixes the class count when nothing else did, and a
    // request the model refuses stops the run before the whole data set is sent.
    List<Example> first = rows.subList(0, Math.min(perRequest, rows.size()));
    ModelEndpoint.Answer firstAnswer;
    try {
      firstAnswer = send(client, plan, first);
    } catch (IOException e) {
      throw new BerthException(
          "the first request to "
              + client.modelPath()
              + "/infer got no answer: "
              + OipClient.describe(e),
          e);
    }
    if (firstAnswer.status() != 200) {
      throw new BerthException(
          "the model refused the first request ("
              + first.size()
              + " rows, "
              + plan.describe()
              + "): "
              + firstAnswer.status()
              + " "
              + firstAnswer.error());
    }
    JsonNode firstJson = json(firstAnswer);
    ModelOutput firstOutput = ModelOutput.parse(firstJson, out.name());
    int width = firstOutput.width(first.size());
    if (classes == null) {
      classes = classesFromAnswer(firstOutput, width, rows);
      truth = truth(rows, classes);
    }
    int positive = positive(classes);
    ClassDecision decision = new ClassDecision(classes.names(), positive, threshold);
    decision.check(firstOutput.datatype(), width, out.name());
    System.arraycopy(decision.predict(firstOutput, first.size()), 0, predicted, 0, first.size());
    String answeredVersion = firstJson.path("model_version").asText(version);
    done.addAndGet(first.size());
    progress.accept(new Progress(done.get(), rows.size(), 0, elapsed(start)));

    AtomicInteger next = new AtomicInteger(1);
    AtomicBoolean aborted = new AtomicBoolean();
    List<RuntimeException> failures = new ArrayList<>();
    try (ExecutorService workers = Executors.newVirtualThreadPerTaskExecutor()) {
      for (int w = 0; w < Math.min(concurrency, Math.max(batches - 1, 0)); w++) {
        workers.submit(
            () -> {
              int b;
              while (!aborted.get() && (b = next.getAndIncrement()) < batches) {
                int from = b * perRequest;
                List<Example> batch = rows.subList(from, Math.min(from + perRequest, rows.size()));
                String failure;
                try {
                  ModelEndpoint.Answer a = send(client, plan, batch);
                  if (a.status() == 200) {
                    int[] p =
                        decision.predict(ModelOutput.parse(json(a), out.name()), batch.size());
                    System.arraycopy(p, 0, predicted, from, p.length);
                    failure = null;
                  } else {
                    failure = a.status() + " " + a.error();
                  }
                } catch (IOException e) {
                  failure = "no answer: " + OipClient.describe(e);
                } catch (InterruptedException e) {
                  Thread.currentThread().interrupt();
                  aborted.set(true);
                  return;
                } catch (RuntimeException e) {
                  synchronized (failures) {
                    failures.add(e);
                  }
                  aborted.set(true);
                  return;
                }
                if (failure != null) {
                  failedRows.addAndGet(batch.size());
                  synchronized (messages) {
                    if (messages.size() < MESSAGES_KEPT) {
                      messages.add(failure);
                    }
                  }
                  if (failedRequests.incrementAndGet() > maxErrors) {
                    aborted.set(true);
                  }
                }
                progress.accept(
                    new Progress(
                        done.addAndGet(batch.size()),
                        rows.size(),
                        failedRows.get(),
                        elapsed(start)));
              }
            });
      }
    }
    if (Thread.interrupted()) {
      throw new InterruptedException();
    }
    if (!failures.isEmpty()) {
      throw failures.get(0);
    }
    List<String> kept;
    synchronized (messages) {
      kept = List.copyOf(messages);
    }
    if (failedRequests.get() > maxErrors) {
      throw new BerthException(
          failedRequests.get()
              + " requests to "
              + client.modelPath()
              + "/infer failed, more than --max-errors "
              + maxErrors
              + "; the run stopped. The server said: "
              + String.join(" | ", kept));
    }
    Duration elapsed = elapsed(start);

    ConfusionMatrix matrix = ConfusionMatrix.of(classes.names(), truth, predicted);
    ClassificationMetrics metrics = ClassificationMetrics.of(matrix);
    EvalResult.Binary binary = null;
    if (positive >= 0) {
      ClassificationMetrics.ClassMetrics p = metrics.perClass().get(positive);
      // one score a row is compared with 0.5 unless a threshold is given; wider scores take the
      // highest unless a threshold is given (NaN: no threshold)
      boolean oneScore = firstOutput.isFloat() && width == 1;
      double applied = !Double.isNaN(threshold) ? threshold : oneScore ? 0.5 : Double.NaN;
      binary =
          new EvalResult.Binary(
              classes.names().get(positive), applied, p.precision(), p.recall(), p.f1());
    }
    return new EvalResult(
        client.url(),
        signature.name(),
        answeredVersion,
        data.source(),
        data.format(),
        plan.describe(),
        out.name(),
        classes.source(),
        metrics,
        rows.size(),
        new EvalResult.Errors(failedRequests.get(), failedRows.get(), kept),
        binary,
        elapsed);
  }

  private static ModelEndpoint.Answer send(
      ModelEndpoint client, InputPlan plan, List<Example> batch)
      throws IOException, InterruptedException {
    InputPlan.Body body = plan.encode(batch);
    return client.infer(body.bytes(), body.jsonLength());
  }

  private static JsonNode json(ModelEndpoint.Answer a) {
    try {
      return JSON.readTree(a.body());
    } catch (IOException e) {
      throw new BerthException(
          "the server answered 200 but not with JSON: " + ModelSignature.abbreviate(a.text()), e);
    }
  }

  private static Duration elapsed(long start) {
    return Duration.ofNanos(System.nanoTime() - start);
  }

  /**
   * The class names, when they are known before any request: {@code --labels}, the model's
   * metadata, or the fixed width of a score output. Null when the first answer must tell.
   */
  private Classes classes(ModelSignature signature, TensorSpec out) {
    if (labels != null) {
      if (labels.isEmpty()) {
        throw new BerthException("--labels names no classes");
      }
      return new Classes(labels, "--labels");
    }
    if (!signature.labels().isEmpty()) {
      return new Classes(signature.labels(), "model metadata");
    }
    long[] shape = out.shape();
    boolean scores =
        out.datatype() == DataType.FP16
            || out.datatype() == DataType.FP32
            || out.datatype() == DataType.FP64;
    if (scores && shape.length >= 2 && shape[shape.length - 1] > 0) {
      return indices((int) shape[shape.length - 1]);
    }
    if (scores && shape.length == 1) {
      return indices(1);
    }
    return null;
  }

  /** The class names once the first answer gave the output's width. */
  private static Classes classesFromAnswer(ModelOutput out, int width, List<Example> rows) {
    if (out.isFloat()) {
      return indices(width);
    }
    if (out.datatype() == DataType.BYTES) {
      Set<String> names = new TreeSet<>();
      rows.forEach(r -> names.add(r.label()));
      return new Classes(List.copyOf(names), "data");
    }
    int max = -1;
    for (Example r : rows) {
      try {
        max = Math.max(max, Integer.parseInt(r.label()));
      } catch (NumberFormatException e) {
        throw new BerthException(
            r.where()
                + ": label '"
                + r.label()
                + "' is not a class index, and the model gives class indices without names; pass"
                + " --labels NAME,NAME,... in class-index order",
            e);
      }
    }
    return indices(max + 1);
  }

  private static Classes indices(int width) {
    int k = width == 1 ? 2 : width;
    List<String> names = new ArrayList<>(k);
    for (int i = 0; i < k; i++) {
      names.add(Integer.toString(i));
    }
    return new Classes(names, "class indices");
  }

  /** Each row's true class index; a label that names no class fails with the row. */
  private static int[] truth(List<Example> rows, Classes classes) {
    List<String> names = classes.names();
    Map<String, Integer> index = new HashMap<>();
    for (int i = 0; i < names.size(); i++) {
      index.putIfAbsent(names.get(i), i);
    }
    int[] truth = new int[rows.size()];
    for (int r = 0; r < rows.size(); r++) {
      Example e = rows.get(r);
      Integer i = index.get(e.label());
      if (i == null) {
        i = asIndex(e.label(), names.size());
      }
      if (i == null) {
        throw new BerthException(
            e.where()
                + ": label '"
                + e.label()
                + "' is neither a class name nor a class index below "
                + names.size()
                + "; the classes ("
                + classes.source()
                + ") are "
                + ClassDecision.abbreviated(names)
                + (classes.source().equals("class indices")
                    ? ". The model's metadata names no classes: pass --labels NAME,NAME,... (or"
                        + " --labels @FILE, one a line) in the order of its output"
                    : ". Check --label-column and --labels"));
      }
      truth[r] = i;
    }
    return truth;
  }

  private static Integer asIndex(String label, int classes) {
    try {
      int i = Integer.parseInt(label.strip());
      return i >= 0 && i < classes ? i : null;
    } catch (NumberFormatException e) {
      return null;
    }
  }

  /** The positive class of a binary task, or -1 when the task is not binary. */
  private int positive(Classes classes) {
    List<String> names = classes.names();
    if (names.size() != 2) {
      if (positiveLabel != null) {
        throw new BerthException(
            "--positive-label is for binary tasks, but there are "
                + names.size()
                + " classes "
                + ClassDecision.abbreviated(names));
      }
      if (!Double.isNaN(threshold)) {
        throw new BerthException(
            "--threshold is for binary tasks, but there are "
                + names.size()
                + " classes "
                + ClassDecision.abbreviated(names)
                + "; drop it to take the highest score");
      }
      return -1;
    }
    if (positiveLabel == null) {
      return 1;
    }
    int i = names.indexOf(positiveLabel);
    if (i < 0) {
      Integer asIndex = asIndex(positiveLabel, 2);
      if (asIndex == null) {
        throw new BerthException(
            "--positive-label '" + positiveLabel + "' is not one of the classes " + names);
      }
      i = asIndex;
    }
    return i;
  }
}
