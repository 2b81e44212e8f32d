/*
 * Builds the sentiment example model: the bundled MiniLM sentence embeddings plus a trained
 * logistic-regression head, written as ONE ONNX graph that Berth serves like any other model.
 *
 * Run it through examples/sentiment/build, which finds a JDK, builds Berth if needed, fetches the
 * data and starts this file with the JDK's source launcher on the CLI's class path:
 *
 *   java -cp 'berth-cli/target/lib/*' examples/sentiment/Build.java \
 *       --minilm examples/models/minilm/1 --fixtures CACHE/package/test/fixtures \
 *       --repo examples/sentiment/repo --data examples/sentiment/data
 *
 * Steps: embed the amazon + yelp sentences exactly as Berth serves MiniLM (tokenizer.json, max
 * length 256, mean pooling over the attention mask, L2 normalisation); train the head with its L2
 * strength chosen by holding out one source at a time; append pooling, normalisation and head to
 * the MiniLM graph; evaluate the new graph on the imdb sentences with ONNX Runtime; check that the
 * graph and the head trained here agree; write the model repository and imdb.jsonl.
 */

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.ByteString;
import com.google.protobuf.UnknownFieldSet;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.LongBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.stream.IntStream;

/** Entry point: trains the head, writes the one-graph model and checks it. */
public final class Build {
  static final String MODEL_NAME = "sentiment";
  static final int MAX_LENGTH = 256; // Tokenization.DEFAULT_MAX_LENGTH, as examples/models/minilm
  static final double[] L2_CANDIDATES = {1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1};
  static final int AGREEMENT_SENTENCES = 64;
  static final double AGREEMENT_TOLERANCE = 1e-4;
  static final String[] LABELS = {"negative", "positive"};
  static final List<String> SOURCES = List.of("amazon", "yelp");

  // DJL's tokenizers log GPU probing and platform detection; a build needs only their errors.
  private static final Logger DJL_LOG = Logger.getLogger("ai.djl");

  private Build() {}

  /** One labelled sentence: label 0 negative, 1 positive; source indexes {@link #SOURCES}. */
  record Sentence(String text, int label, int source) {}

  public static void main(String[] args) throws Exception {
    DJL_LOG.setLevel(Level.SEVERE);
    Map<String, Path> options = parse(args);
    Path minilm = options.get("--minilm");
    Path fixtures = options.get("--fixtures");
    Path repo = options.get("--repo");
    Path dataDir = options.get("--data");
    long start = System.nanoTime();

    List<Sentence> train = new ArrayList<>();
    for (int source = 0; source < SOURCES.size(); source++) {
      train.addAll(read(fixtures.resolve(SOURCES.get(source) + ".json"), source));
    }
    List<Sentence> imdb = read(fixtures.resolve("imdb.json"), -1);
    System.out.printf(
        Locale.ROOT,
        "data: %d training sentences (amazon + yelp), %d evaluation sentences (imdb)%n",
        train.size(),
        imdb.size());

    OrtEnvironment env = OrtEnvironment.getEnvironment();
    byte[] minilmGraph = Files.readAllBytes(minilm.resolve("model.onnx"));
    float[][] features;
    float[][] checkFeatures;
    try (SentenceRunner runner = new SentenceRunner(env, minilm.resolve("tokenizer.json"));
        OrtSession session = env.createSession(minilmGraph, new OrtSession.SessionOptions())) {
      features = runner.embed(session, texts(train));
      checkFeatures = runner.embed(session, texts(imdb.subList(0, AGREEMENT_SENTENCES)));
    }
    long embedded = System.nanoTime();
    System.out.printf(
        Locale.ROOT,
        "embedded %d sentences with MiniLM in %.1f s%n",
        train.size() + AGREEMENT_SENTENCES,
        seconds(start, embedded));

    int[] labels = train.stream().mapToInt(Sentence::label).toArray();
    int[] sources = train.stream().mapToInt(Sentence::source).toArray();
    Selection selection = selectL2(features, labels, sources);
    LogisticRegression head = LogisticRegression.fit(features, labels, selection.l2());
    long trained = System.nanoTime();
    System.out.printf(
        Locale.ROOT,
        "head: l2 %.0e (lowest log-loss on the held-out source); held-out accuracy %.4f;"
            + " refit on all %d sentences: training accuracy %.4f (%.1f s)%n",
        selection.l2(),
        selection.accuracy(),
        train.size(),
        head.accuracy(features, labels),
        seconds(embedded, trained));

    byte[] graph =
        HeadGraph.extend(
            minilmGraph,
            head,
            "logistic-regression head on MiniLM sentence embeddings, trained on the amazon and"
                + " yelp sentences of npm sentiment@5.0.2 with l2 "
                + selection.l2()
                + " by examples/sentiment/build; probabilities: 0 negative, 1 positive");
    Path version = repo.resolve(MODEL_NAME).resolve("1");
    Files.createDirectories(version);
    Files.write(version.resolve("model.onnx"), graph);
    Files.copy(
        minilm.resolve("tokenizer.json"),
        version.resolve("tokenizer.json"),
        StandardCopyOption.REPLACE_EXISTING);
    Files.writeString(repo.resolve(MODEL_NAME).resolve("model.yaml"), MODEL_YAML);
    Files.createDirectories(dataDir);
    writeJsonLines(dataDir.resolve("imdb.jsonl"), imdb);

    float[][] probabilities;
    try (SentenceRunner runner = new SentenceRunner(env, minilm.resolve("tokenizer.json"));
        OrtSession session = env.createSession(graph, new OrtSession.SessionOptions())) {
      probabilities = runner.classify(session, texts(imdb));
    }
    long evaluated = System.nanoTime();
    int correct = 0;
    for (int i = 0; i < imdb.size(); i++) {
      int predicted = probabilities[i][1] > probabilities[i][0] ? 1 : 0;
      correct += predicted == imdb.get(i).label() ? 1 : 0;
    }
    double difference = 0;
    for (int i = 0; i < AGREEMENT_SENTENCES; i++) {
      double positive = head.probability(checkFeatures[i]);
      difference = Math.max(difference, Math.abs(probabilities[i][1] - positive));
      difference = Math.max(difference, Math.abs(probabilities[i][0] - (1 - positive)));
    }
    System.out.printf(
        Locale.ROOT,
        "imdb accuracy of the written graph (ONNX Runtime): %.4f (%d of %d) in %.1f s%n",
        (double) correct / imdb.size(),
        correct,
        imdb.size(),
        seconds(trained, evaluated));
    System.out.printf(
        Locale.ROOT,
        "graph vs. the head trained here, on %d imdb sentences: largest probability difference"
            + " %.1e%n",
        AGREEMENT_SENTENCES,
        difference);
    System.out.printf(
        Locale.ROOT,
        "wrote %s, %s and %s; %.1f s in all%n",
        version.resolve("model.onnx"),
        repo.resolve(MODEL_NAME).resolve("model.yaml"),
        dataDir.resolve("imdb.jsonl"),
        seconds(start, System.nanoTime()));
    if (!(difference <= AGREEMENT_TOLERANCE)) {
      System.err.printf(
          Locale.ROOT,
          "the graph's probabilities differ from the head's by %.1e (more than %.0e)%n",
          difference,
          AGREEMENT_TOLERANCE);
      System.exit(1);
    }
  }

  static final String MODEL_YAML =
      """
      # MiniLM sentence embeddings + a logistic-regression head, one ONNX graph (examples/sentiment/build).
      apiVersion: berth.dev/v1
      kind: Model
      labels: [negative, positive]
      preprocessing:
        type: tokenize
        tokenizer: tokenizer.json
        input: text
        max-length: 256
      batching:
        max-batch-size: 32
        max-queue-delay: 0ms
      """;

  private static Map<String, Path> parse(String[] args) {
    List<String> names = List.of("--minilm", "--fixtures", "--repo", "--data");
    Map<String, Path> options = new LinkedHashMap<>();
    for (int i = 0; i + 1 < args.length; i += 2) {
      if (!names.contains(args[i])) {
        throw new IllegalArgumentException("unknown option " + args[i] + "; options: " + names);
      }
      options.put(args[i], Path.of(args[i + 1]).toAbsolutePath().normalize());
    }
    if (args.length % 2 != 0 || !options.keySet().containsAll(names)) {
      throw new IllegalArgumentException(
          "usage: Build.java --minilm DIR --fixtures DIR --repo DIR --data DIR");
    }
    return options;
  }

  /**
   * Reads a fixture of npm sentiment, [{"text": ..., "class": 0|1}, ...], skipping rows without.
   */
  static List<Sentence> read(Path file, int source) throws IOException {
    List<Sentence> out = new ArrayList<>();
    for (JsonNode row : new ObjectMapper().readTree(file.toFile())) {
      JsonNode label = row.get("class");
      if (label != null && label.isInt() && row.path("text").isTextual()) {
        out.add(new Sentence(row.get("text").asText(), label.asInt(), source));
      }
    }
    return out;
  }

  /** Writes the lines {@code berth eval --data} reads: {"text": ..., "label": "positive"}. */
  static void writeJsonLines(Path file, List<Sentence> sentences) throws IOException {
    ObjectMapper json = new ObjectMapper();
    try (BufferedWriter out = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
      for (Sentence s : sentences) {
        Map<String, String> line = new LinkedHashMap<>();
        line.put("text", s.text());
        line.put("label", LABELS[s.label()]);
        out.write(json.writeValueAsString(line));
        out.write('\n');
      }
    }
  }

  static List<String> texts(List<Sentence> sentences) {
    return sentences.stream().map(Sentence::text).toList();
  }

  static double seconds(long fromNanos, long toNanos) {
    return (toNanos - fromNanos) / 1e9;
  }

  /** The chosen L2 strength and the held-out accuracy and log-loss it had. */
  record Selection(double l2, double accuracy, double logLoss) {}

  /**
   * Chooses the L2 strength on the training data alone, holding out one source at a time: fit on
   * amazon and score on yelp, fit on yelp and score on amazon, and keep the strength with the
   * lowest mean log-loss. The head is meant for text from another domain (imdb is movie reviews),
   * so it is chosen for how well it carries across domains, not within one.
   */
  static Selection selectL2(float[][] x, int[] y, int[] sources) {
    Selection best = null;
    for (double l2 : L2_CANDIDATES) {
      StringBuilder line = new StringBuilder(String.format(Locale.ROOT, "  l2 %.0e:", l2));
      double accuracy = 0;
      double logLoss = 0;
      for (int heldOut = 0; heldOut < SOURCES.size(); heldOut++) {
        int fitSource = 1 - heldOut;
        float[][] fitX = rows(x, sources, fitSource);
        float[][] testX = rows(x, sources, heldOut);
        int[] fitY = labels(y, sources, fitSource);
        int[] testY = labels(y, sources, heldOut);
        LogisticRegression head = LogisticRegression.fit(fitX, fitY, l2);
        double a = head.accuracy(testX, testY);
        accuracy += a / SOURCES.size();
        logLoss += head.logLoss(testX, testY) / SOURCES.size();
        line.append(
            String.format(
                Locale.ROOT, " %s->%s %.4f", SOURCES.get(fitSource), SOURCES.get(heldOut), a));
      }
      System.out.printf(
          Locale.ROOT, "%s; mean accuracy %.4f, log-loss %.4f%n", line, accuracy, logLoss);
      if (best == null || logLoss < best.logLoss()) {
        best = new Selection(l2, accuracy, logLoss);
      }
    }
    return best;
  }

  private static float[][] rows(float[][] x, int[] sources, int source) {
    return IntStream.range(0, x.length)
        .filter(i -> sources[i] == source)
        .mapToObj(i -> x[i])
        .toArray(float[][]::new);
  }

  private static int[] labels(int[] y, int[] sources, int source) {
    return IntStream.range(0, y.length).filter(i -> sources[i] == source).map(i -> y[i]).toArray();
  }

  /**
   * Binary logistic regression p(positive | x) = sigmoid(w.x + b), fitted by Newton's method on the
   * mean log-loss plus l2/2 |w|^2 (the bias is not penalised). Deterministic: no sampling.
   */
  static final class LogisticRegression {
    private static final int MAX_ITERATIONS = 100;
    private static final double GRADIENT_TOLERANCE = 1e-9;

    final double[] weights;
    final double bias;

    private LogisticRegression(double[] weights, double bias) {
      this.weights = weights;
      this.bias = bias;
    }

    static LogisticRegression fit(float[][] x, int[] y, double l2) {
      int n = x.length;
      int d = x[0].length;
      int p = d + 1; // the bias is the last parameter
      double[] theta = new double[p];
      for (int iteration = 0; iteration < MAX_ITERATIONS; iteration++) {
        double[] gradient = new double[p];
        double[][] hessian = new double[p][p];
        double[] row = new double[p];
        for (int i = 0; i < n; i++) {
          for (int k = 0; k < d; k++) {
            row[k] = x[i][k];
          }
          row[d] = 1;
          double q = sigmoid(dot(theta, row));
          double r = q - y[i];
          double v = q * (1 - q);
          for (int a = 0; a < p; a++) {
            gradient[a] += r * row[a];
            double va = v * row[a];
            double[] h = hessian[a];
            for (int b = a; b < p; b++) {
              h[b] += va * row[b];
            }
          }
        }
        double largest = 0;
        for (int a = 0; a < p; a++) {
          gradient[a] /= n;
          for (int b = a; b < p; b++) {
            hessian[a][b] /= n;
            hessian[b][a] = hessian[a][b];
          }
          if (a < d) {
            gradient[a] += l2 * theta[a];
            hessian[a][a] += l2;
          } else {
            hessian[a][a] += 1e-12;
          }
          largest = Math.max(largest, Math.abs(gradient[a]));
        }
        if (largest < GRADIENT_TOLERANCE) {
          break;
        }
        double[] step = choleskySolve(hessian, gradient);
        // Backtracking keeps each step a descent step; Newton's full step is almost always taken.
        double before = objective(x, y, l2, theta);
        double slope = dot(gradient, step);
        double t = 1;
        double[] next = new double[p];
        while (true) {
          for (int a = 0; a < p; a++) {
            next[a] = theta[a] - t * step[a];
          }
          if (objective(x, y, l2, next) <= before - 1e-4 * t * slope || t < 1e-10) {
            break;
          }
          t /= 2;
        }
        theta = next.clone();
      }
      return new LogisticRegression(Arrays.copyOf(theta, d), theta[d]);
    }

    /** p(positive) of one embedding. */
    double probability(float[] x) {
      double z = bias;
      for (int k = 0; k < weights.length; k++) {
        z += weights[k] * x[k];
      }
      return sigmoid(z);
    }

    double accuracy(float[][] x, int[] y) {
      int correct = 0;
      for (int i = 0; i < x.length; i++) {
        correct += (probability(x[i]) > 0.5 ? 1 : 0) == y[i] ? 1 : 0;
      }
      return (double) correct / x.length;
    }

    double logLoss(float[][] x, int[] y) {
      double sum = 0;
      for (int i = 0; i < x.length; i++) {
        double z = bias;
        for (int k = 0; k < weights.length; k++) {
          z += weights[k] * x[i][k];
        }
        sum += softplus(y[i] == 1 ? -z : z);
      }
      return sum / x.length;
    }

    private static double objective(float[][] x, int[] y, double l2, double[] theta) {
      int d = theta.length - 1;
      double sum = 0;
      for (int i = 0; i < x.length; i++) {
        double z = theta[d];
        for (int k = 0; k < d; k++) {
          z += theta[k] * x[i][k];
        }
        sum += softplus(y[i] == 1 ? -z : z);
      }
      double penalty = 0;
      for (int k = 0; k < d; k++) {
        penalty += theta[k] * theta[k];
      }
      return sum / x.length + l2 / 2 * penalty;
    }

    private static double sigmoid(double z) {
      return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
    }

    /** log(1 + e^z), without overflow. */
    private static double softplus(double z) {
      return Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));
    }

    private static double dot(double[] a, double[] b) {
      double s = 0;
      for (int i = 0; i < a.length; i++) {
        s += a[i] * b[i];
      }
      return s;
    }

    /** Solves A s = g for a symmetric positive definite A (overwritten by its Cholesky factor). */
    private static double[] choleskySolve(double[][] a, double[] g) {
      int p = g.length;
      for (int j = 0; j < p; j++) {
        double diagonal = a[j][j];
        for (int k = 0; k < j; k++) {
          diagonal -= a[j][k] * a[j][k];
        }
        a[j][j] = Math.sqrt(diagonal);
        for (int i = j + 1; i < p; i++) {
          double s = a[i][j];
          for (int k = 0; k < j; k++) {
            s -= a[i][k] * a[j][k];
          }
          a[i][j] = s / a[j][j];
        }
      }
      double[] z = new double[p];
      for (int i = 0; i < p; i++) {
        double s = g[i];
        for (int k = 0; k < i; k++) {
          s -= a[i][k] * z[k];
        }
        z[i] = s / a[i][i];
      }
      double[] s = new double[p];
      for (int i = p - 1; i >= 0; i--) {
        double v = z[i];
        for (int k = i + 1; k < p; k++) {
          v -= a[k][i] * s[k];
        }
        s[i] = v / a[i][i];
      }
      return s;
    }
  }

  /**
   * Tokenizes as Berth's {@code preprocessing: {type: tokenize}} does (the same tokenizer options)
   * and runs a graph on one sentence at a time. One at a time because the int8 MiniLM quantizes its
   * activations with one scale per batch: a sentence's embedding moves a little with the other
   * sentences of its batch, and alone it has the value Berth gives it when it is alone in a batch.
   */
  static final class SentenceRunner implements AutoCloseable {
    private final OrtEnvironment env;
    private final HuggingFaceTokenizer tokenizer;

    SentenceRunner(OrtEnvironment env, Path tokenizerJson) throws IOException {
      this.env = env;
      this.tokenizer =
          HuggingFaceTokenizer.newInstance(
              tokenizerJson,
              Map.of(
                  "maxLength", Integer.toString(MAX_LENGTH),
                  "truncation", "true",
                  "padding", "true",
                  "addSpecialTokens", "true"));
    }

    /** MiniLM's last_hidden_state pooled as Berth's mean-pool step: one unit vector per text. */
    float[][] embed(OrtSession minilm, List<String> texts) throws OrtException {
      return run(minilm, texts, "last_hidden_state", SentenceRunner::meanPool);
    }

    /** The extended graph's probabilities, [negative, positive] per text. */
    float[][] classify(OrtSession graph, List<String> texts) throws OrtException {
      return run(
          graph,
          texts,
          HeadGraph.OUTPUT,
          (output, mask) -> {
            float[] row = new float[2];
            output.getFloatBuffer().get(row);
            return row;
          });
    }

    private interface Row {
      float[] apply(OnnxTensor output, long[] mask);
    }

    private float[][] run(OrtSession session, List<String> texts, String output, Row row)
        throws OrtException {
      float[][] result = new float[texts.size()][];
      for (int i = 0; i < texts.size(); i++) {
        Encoding encoding = tokenizer.batchEncode(List.of(texts.get(i)))[0];
        long[] mask = encoding.getAttentionMask();
        long[] shape = {1, mask.length};
        Map<String, OnnxTensor> inputs = new LinkedHashMap<>();
        try {
          inputs.put("input_ids", tensor(encoding.getIds(), shape));
          inputs.put("attention_mask", tensor(mask, shape));
          inputs.put("token_type_ids", tensor(encoding.getTypeIds(), shape));
          try (OrtSession.Result out = session.run(inputs, Set.of(output))) {
            result[i] = row.apply((OnnxTensor) out.get(0), mask);
          }
        } finally {
          inputs.values().forEach(OnnxTensor::close);
        }
      }
      return result;
    }

    private OnnxTensor tensor(long[] values, long[] shape) throws OrtException {
      return OnnxTensor.createTensor(env, LongBuffer.wrap(values), shape);
    }

    /** Berth's MeanPooling with normalize: true, for one sentence (sums in double). */
    private static float[] meanPool(OnnxTensor hidden, long[] mask) {
      FloatBuffer in = hidden.getFloatBuffer();
      int length = mask.length;
      int h = in.capacity() / length;
      double[] sum = new double[h];
      long count = 0;
      for (int t = 0; t < length; t++) {
        if (mask[t] == 0) {
          continue;
        }
        count++;
        for (int k = 0; k < h; k++) {
          sum[k] += in.get(t * h + k);
        }
      }
      double norm = 0;
      for (int k = 0; k < h; k++) {
        sum[k] /= Math.max(count, 1);
        norm += sum[k] * sum[k];
      }
      double divisor = Math.max(Math.sqrt(norm), 1e-12);
      float[] out = new float[h];
      for (int k = 0; k < h; k++) {
        out[k] = (float) (sum[k] / divisor);
      }
      return out;
    }

    @Override
    public void close() {
      tokenizer.close();
    }
  }

  /**
   * Appends pooling, normalisation and the head to the MiniLM graph. The model is read and written
   * with protobuf-java's generic {@link UnknownFieldSet}, which keeps every field it does not touch
   * byte for byte; the field numbers are those of onnx.proto. The new nodes:
   *
   * <pre>
   * mask  = Unsqueeze(Cast(attention_mask, float), axis 2)          [b, s, 1]
   * mean  = ReduceSum(last_hidden_state * mask, axis 1)
   *         / Max(ReduceSum(mask, axis 1), 1)                       [b, 384]
   * unit  = mean / Max(Sqrt(ReduceSum(mean * mean, axis 1)), 1e-12) [b, 384]
   * probabilities = Softmax(MatMul(unit, W) + B)                    [b, 2]
   * </pre>
   *
   * W's column 0 is zero and column 1 the head's weights (B likewise), so softmax gives exactly [1
   * - sigmoid(z), sigmoid(z)]. "probabilities" replaces the graph's outputs.
   */
  static final class HeadGraph {
    static final String OUTPUT = "probabilities";
    private static final String HIDDEN = "last_hidden_state";
    private static final String MASK = "attention_mask";
    private static final String PREFIX = "berth_sentiment/";

    // onnx.proto field numbers
    private static final int MODEL_GRAPH = 7;
    private static final int MODEL_OPSET_IMPORT = 8;
    private static final int MODEL_METADATA_PROPS = 14;
    private static final int OPSET_DOMAIN = 1;
    private static final int OPSET_VERSION = 2;
    private static final int ENTRY_KEY = 1;
    private static final int ENTRY_VALUE = 2;
    private static final int GRAPH_NODE = 1;
    private static final int GRAPH_INITIALIZER = 5;
    private static final int GRAPH_INPUT = 11;
    private static final int GRAPH_OUTPUT = 12;
    private static final int NODE_INPUT = 1;
    private static final int NODE_OUTPUT = 2;
    private static final int NODE_NAME = 3;
    private static final int NODE_OP_TYPE = 4;
    private static final int NODE_ATTRIBUTE = 5;
    private static final int ATTRIBUTE_NAME = 1;
    private static final int ATTRIBUTE_I = 3;
    private static final int ATTRIBUTE_INTS = 8;
    private static final int ATTRIBUTE_TYPE = 20;
    private static final int ATTRIBUTE_TYPE_INT = 2;
    private static final int ATTRIBUTE_TYPE_INTS = 7;
    private static final int TENSOR_DIMS = 1;
    private static final int TENSOR_DATA_TYPE = 2;
    private static final int TENSOR_NAME = 8;
    private static final int TENSOR_RAW_DATA = 9;
    private static final int VALUE_INFO_NAME = 1;
    private static final int VALUE_INFO_TYPE = 2;
    private static final int TYPE_TENSOR_TYPE = 1;
    private static final int TENSOR_TYPE_ELEM_TYPE = 1;
    private static final int TENSOR_TYPE_SHAPE = 2;
    private static final int SHAPE_DIM = 1;
    private static final int DIM_VALUE = 1;
    private static final int DIM_PARAM = 2;
    private static final int FLOAT = 1;
    private static final int INT64 = 7;

    /** From this opset on, Unsqueeze and ReduceSum take their axes as an input. */
    private static final int AXES_AS_INPUT_OPSET = 13;

    private final List<UnknownFieldSet> nodes = new ArrayList<>();
    private final List<UnknownFieldSet> initializers = new ArrayList<>();
    private final long opset;

    private HeadGraph(long opset) {
      this.opset = opset;
    }

    /** The MiniLM model with the head appended and "probabilities" as its only output. */
    static byte[] extend(byte[] minilm, LogisticRegression head, String description)
        throws IOException {
      UnknownFieldSet model = UnknownFieldSet.parseFrom(minilm);
      UnknownFieldSet graph =
          UnknownFieldSet.parseFrom(model.getField(MODEL_GRAPH).getLengthDelimitedList().get(0));
      List<String> inputs = names(graph, GRAPH_INPUT);
      List<String> outputs = names(graph, GRAPH_OUTPUT);
      if (!inputs.contains(MASK) || !outputs.contains(HIDDEN)) {
        throw new IllegalArgumentException(
            "expected a graph with input "
                + MASK
                + " and output "
                + HIDDEN
                + "; this one has inputs "
                + inputs
                + " and outputs "
                + outputs);
      }
      HeadGraph g = new HeadGraph(defaultOpset(model));
      String mask = g.node("Cast", List.of(MASK), List.of(attribute("to", FLOAT)));
      mask = g.unsqueeze(mask, 2);
      String masked = g.node("Mul", List.of(HIDDEN, mask), List.of());
      String summed = g.reduceSum(masked, 1, false);
      String count = g.reduceSum(mask, 1, false);
      count = g.node("Max", List.of(count, g.scalar("one", 1f)), List.of());
      String mean = g.node("Div", List.of(summed, count), List.of());
      String squares = g.node("Mul", List.of(mean, mean), List.of());
      String norm = g.node("Sqrt", List.of(g.reduceSum(squares, 1, true)), List.of());
      norm = g.node("Max", List.of(norm, g.scalar("epsilon", 1e-12f)), List.of());
      String unit = g.node("Div", List.of(mean, norm), List.of());
      int d = head.weights.length;
      float[] w = new float[d * 2];
      for (int k = 0; k < d; k++) {
        w[k * 2 + 1] = (float) head.weights[k];
      }
      String scores =
          g.node("MatMul", List.of(unit, g.floats("weights", new long[] {d, 2}, w)), List.of());
      String logits =
          g.node(
              "Add",
              List.of(scores, g.floats("bias", new long[] {2}, new float[] {0, (float) head.bias})),
              List.of());
      g.node("Softmax", List.of(logits), List.of(attribute("axis", 1)), OUTPUT);

      UnknownFieldSet.Builder newGraph = UnknownFieldSet.newBuilder(graph);
      newGraph.mergeField(GRAPH_NODE, repeated(g.nodes));
      newGraph.mergeField(GRAPH_INITIALIZER, repeated(g.initializers));
      newGraph.clearField(GRAPH_OUTPUT);
      newGraph.addField(GRAPH_OUTPUT, repeated(List.of(probabilitiesInfo())));
      UnknownFieldSet.Builder newModel = UnknownFieldSet.newBuilder(model);
      newModel.clearField(MODEL_GRAPH);
      newModel.addField(MODEL_GRAPH, repeated(List.of(newGraph.build())));
      newModel.mergeField(
          MODEL_METADATA_PROPS,
          repeated(
              List.of(
                  new Message()
                      .string(ENTRY_KEY, "berth.sentiment")
                      .string(ENTRY_VALUE, description)
                      .build())));
      return newModel.build().toByteArray();
    }

    private static long defaultOpset(UnknownFieldSet model) throws IOException {
      for (ByteString bytes : model.getField(MODEL_OPSET_IMPORT).getLengthDelimitedList()) {
        UnknownFieldSet opset = UnknownFieldSet.parseFrom(bytes);
        List<ByteString> domain = opset.getField(OPSET_DOMAIN).getLengthDelimitedList();
        boolean standard =
            domain.isEmpty()
                || domain.get(0).isEmpty()
                || domain.get(0).toStringUtf8().equals("ai.onnx");
        if (standard && !opset.getField(OPSET_VERSION).getVarintList().isEmpty()) {
          return opset.getField(OPSET_VERSION).getVarintList().get(0);
        }
      }
      throw new IllegalArgumentException("the model imports no opset of the ai.onnx domain");
    }

    private static List<String> names(UnknownFieldSet graph, int field) throws IOException {
      List<String> out = new ArrayList<>();
      for (ByteString info : graph.getField(field).getLengthDelimitedList()) {
        out.add(
            UnknownFieldSet.parseFrom(info)
                .getField(VALUE_INFO_NAME)
                .getLengthDelimitedList()
                .get(0)
                .toStringUtf8());
      }
      return out;
    }

    private String unsqueeze(String input, long axis) {
      if (opset >= AXES_AS_INPUT_OPSET) {
        return node("Unsqueeze", List.of(input, axes(axis)), List.of());
      }
      return node("Unsqueeze", List.of(input), List.of(attribute("axes", new long[] {axis})));
    }

    private String reduceSum(String input, long axis, boolean keepDims) {
      UnknownFieldSet keep = attribute("keepdims", keepDims ? 1 : 0);
      if (opset >= AXES_AS_INPUT_OPSET) {
        return node("ReduceSum", List.of(input, axes(axis)), List.of(keep));
      }
      return node("ReduceSum", List.of(input), List.of(attribute("axes", new long[] {axis}), keep));
    }

    private String node(String op, List<String> inputs, List<UnknownFieldSet> attributes) {
      return node(op, inputs, attributes, PREFIX + op + "_" + nodes.size());
    }

    private String node(
        String op, List<String> inputs, List<UnknownFieldSet> attributes, String output) {
      Message node = new Message();
      inputs.forEach(i -> node.string(NODE_INPUT, i));
      node.string(NODE_OUTPUT, output)
          .string(NODE_NAME, PREFIX + op + "_node_" + nodes.size())
          .string(NODE_OP_TYPE, op);
      attributes.forEach(a -> node.message(NODE_ATTRIBUTE, a));
      nodes.add(node.build());
      return output;
    }

    private String axes(long axis) {
      String name = PREFIX + "axes_" + axis;
      boolean known =
          initializers.stream()
              .anyMatch(
                  t ->
                      t.getField(TENSOR_NAME)
                          .getLengthDelimitedList()
                          .contains(ByteString.copyFromUtf8(name)));
      if (!known) {
        ByteBuffer raw = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(axis);
        initializers.add(tensor(name, INT64, new long[] {1}, raw.array()));
      }
      return name;
    }

    private String scalar(String name, float value) {
      return floats(name, new long[0], new float[] {value});
    }

    private String floats(String name, long[] dims, float[] values) {
      ByteBuffer raw = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
      for (float v : values) {
        raw.putFloat(v);
      }
      initializers.add(tensor(PREFIX + name, FLOAT, dims, raw.array()));
      return PREFIX + name;
    }

    private static UnknownFieldSet tensor(String name, int type, long[] dims, byte[] raw) {
      Message t = new Message();
      for (long d : dims) {
        t.varint(TENSOR_DIMS, d);
      }
      return t.varint(TENSOR_DATA_TYPE, type)
          .string(TENSOR_NAME, name)
          .bytes(TENSOR_RAW_DATA, raw)
          .build();
    }

    private static UnknownFieldSet attribute(String name, long value) {
      return new Message()
          .string(ATTRIBUTE_NAME, name)
          .varint(ATTRIBUTE_I, value)
          .varint(ATTRIBUTE_TYPE, ATTRIBUTE_TYPE_INT)
          .build();
    }

    private static UnknownFieldSet attribute(String name, long[] values) {
      Message a = new Message().string(ATTRIBUTE_NAME, name);
      for (long v : values) {
        a.varint(ATTRIBUTE_INTS, v);
      }
      return a.varint(ATTRIBUTE_TYPE, ATTRIBUTE_TYPE_INTS).build();
    }

    /** probabilities: FP32 [batch_size, 2]. */
    private static UnknownFieldSet probabilitiesInfo() {
      UnknownFieldSet shape =
          new Message()
              .message(SHAPE_DIM, new Message().string(DIM_PARAM, "batch_size").build())
              .message(SHAPE_DIM, new Message().varint(DIM_VALUE, 2).build())
              .build();
      UnknownFieldSet tensorType =
          new Message()
              .varint(TENSOR_TYPE_ELEM_TYPE, FLOAT)
              .message(TENSOR_TYPE_SHAPE, shape)
              .build();
      return new Message()
          .string(VALUE_INFO_NAME, OUTPUT)
          .message(VALUE_INFO_TYPE, new Message().message(TYPE_TENSOR_TYPE, tensorType).build())
          .build();
    }

    private static UnknownFieldSet.Field repeated(List<UnknownFieldSet> messages) {
      UnknownFieldSet.Field.Builder field = UnknownFieldSet.Field.newBuilder();
      messages.forEach(m -> field.addLengthDelimited(m.toByteString()));
      return field.build();
    }
  }

  /** Builds one protobuf message field by field (fields keep their order within a number). */
  static final class Message {
    private final UnknownFieldSet.Builder fields = UnknownFieldSet.newBuilder();

    Message varint(int number, long value) {
      fields.mergeField(number, UnknownFieldSet.Field.newBuilder().addVarint(value).build());
      return this;
    }

    Message string(int number, String value) {
      return bytes(number, value.getBytes(StandardCharsets.UTF_8));
    }

    Message bytes(int number, byte[] value) {
      fields.mergeField(
          number,
          UnknownFieldSet.Field.newBuilder()
              .addLengthDelimited(ByteString.copyFrom(value))
              .build());
      return this;
    }

    Message message(int number, UnknownFieldSet value) {
      fields.mergeField(
          number,
          UnknownFieldSet.Field.newBuilder().addLengthDelimited(value.toByteString()).build());
      return this;
    }

    UnknownFieldSet build() {
      return fields.build();
    }
  }
}
