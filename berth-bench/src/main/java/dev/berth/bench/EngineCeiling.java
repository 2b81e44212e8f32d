package dev.berth.bench;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.IValue;
import ai.djl.pytorch.jni.IValueUtils;
import ai.djl.pytorch.jni.JniUtils;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.net.URISyntaxException;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import ml.dmlc.xgboost4j.java.Booster;
import ml.dmlc.xgboost4j.java.XGBoost;
import org.tensorflow.Result;
import org.tensorflow.SavedModelBundle;
import org.tensorflow.Session;
import org.tensorflow.Signature;
import org.tensorflow.TensorFlow;
import org.tensorflow.proto.ConfigProto;
import org.tensorflow.types.TFloat32;

/**
 * The ceiling bench/engines compares Berth with: the Fashion-MNIST-shaped model of one engine (the
 * MLP, the {@link ConvNet}, or XGBoost's classifier: FP32 [rows, 784] in, FP32 [rows, 10] out) run
 * in this process by that engine's own library, with nothing else on the path: no HTTP, no queue,
 * no Berth code.
 *
 * <ul>
 *   <li>{@code onnx}: {@code model.onnx} in an ONNX Runtime session (optimisation ALL, intra-op
 *       threads T, inter-op 0).
 *   <li>{@code pytorch}: {@code model.pt} loaded by DJL's PyTorch engine (bundled CPU libtorch,
 *       offline), inference mode, {@code forward} called directly ({@code IValueUtils.forward}),
 *       libtorch's intra-op threads T set on each calling thread.
 *   <li>{@code tensorflow}: the {@code model.savedmodel} directory through TensorFlow Java's
 *       SavedModelBundle, its {@code serving_default} signature run by the session's runner,
 *       intra-op threads T, inter-op -1 (ops on the calling thread).
 *   <li>{@code xgboost}: {@code model.ubj} or {@code model.json} in an xgboost4j Booster with
 *       {@code nthread} T, predicting in place ({@code Booster.inplace_predict}) from a dense
 *       array.
 * </ul>
 *
 * <p>For each batch size (1, 2, 4 ... 64) the callers ({@code --callers N} platform threads,
 * default 1, sharing one loaded model) call batches of that size back to back for DURATION; each
 * call takes the next rows of a pool of 1,024 seeded random rows of 784 floats in [0, 1) (what
 * {@code berth bench} sends: one random row a request), builds the engine's input tensor, runs the
 * model and copies the answer into a Java array. It reports rows per second (all callers' rows over
 * the elapsed time), the per-call latency and where a call's time goes (input tensor, run, output),
 * and the best batch size. T ({@code --threads}) defaults to the cores divided among the callers.
 *
 * <p>Run one engine per JVM: libtorch and TensorFlow have not been tried in one process.
 *
 * <pre>
 * java --enable-native-access=ALL-UNNAMED -cp 'berth-bench/target/berth-bench.jar:berth-bench/target/lib/*' \
 *   dev.berth.bench.EngineCeiling ENGINE MODEL DURATION OUT.json [--batch-sizes 1,2,4]
 *   [--warmup DURATION] [--callers N] [--threads T]
 * </pre>
 *
 * ENGINE is onnx, pytorch, tensorflow or xgboost; MODEL the model file (the SavedModel's directory
 * for tensorflow); DURATION per batch size: 20, 20s, 500ms.
 */
public final class EngineCeiling {
  static final int FEATURES = 784;
  static final int CLASSES = 10;
  static final int POOL_ROWS = 1024;

  /** One engine's model, loaded: runs a batch of rows and hands back its answer. */
  interface Model extends AutoCloseable {
    /** The engine's name and version. */
    String library();

    /** Called on each calling thread before its first batch. */
    default void prepareThread() {}

    /** Runs {@code rows} rows (row-major, 784 each); returns the [rows, 10] answer, row-major. */
    float[] run(float[] pixels, int rows, Stages stages) throws Exception;

    @Override
    void close();
  }

  /** Time spent per stage, nanoseconds summed over calls. */
  static final class Stages {
    double input;
    double run;
    double output;

    void add(Stages o) {
      input += o.input;
      run += o.run;
      output += o.output;
    }
  }

  private final Model model;
  private final float[] pool;
  private final Caller[] callers;

  private EngineCeiling(Model model, float[] pool, int callers) {
    this.model = model;
    this.pool = pool;
    this.callers = new Caller[callers];
    for (int i = 0; i < callers; i++) {
      this.callers[i] = new Caller(i * POOL_ROWS / callers);
    }
  }

  /** One calling thread's place in the row pool and what it measured. */
  final class Caller {
    private int cursor;
    private boolean prepared;
    Stages stages = new Stages();
    long[] latencies = new long[1024];
    int calls;
    long rows;
    long end;

    Caller(int cursor) {
      this.cursor = cursor;
    }

    void reset(boolean record) {
      stages = new Stages();
      if (record) {
        latencies = new long[1024];
      }
      calls = 0;
      rows = 0;
    }

    void runUntil(int[] batchSizes, long deadline, boolean record) throws Exception {
      if (!prepared) {
        model.prepareThread();
        prepared = true;
      }
      long t = System.nanoTime();
      do {
        for (int b : batchSizes) {
          float[] pixels = new float[b * FEATURES];
          for (int r = 0; r < b; r++) {
            System.arraycopy(pool, cursor * FEATURES, pixels, r * FEATURES, FEATURES);
            cursor = (cursor + 1) % POOL_ROWS;
          }
          long t0 = System.nanoTime();
          float[] answer = model.run(pixels, b, stages);
          t = System.nanoTime();
          if (answer.length != b * CLASSES || Float.isNaN(answer[0])) {
            throw new IllegalStateException(
                "the model answered "
                    + answer.length
                    + " values for "
                    + b
                    + " rows, not "
                    + b * 10);
          }
          if (record) {
            if (calls == latencies.length) {
              latencies = Arrays.copyOf(latencies, calls * 2);
            }
            latencies[calls] = t - t0;
          }
          calls++;
          rows += b;
        }
      } while (t < deadline);
      end = t;
    }
  }

  public static void main(String[] args) throws Exception {
    if (args.length < 4) {
      System.err.println(
          "usage: EngineCeiling onnx|pytorch|tensorflow|xgboost MODEL DURATION OUT.json"
              + " [--batch-sizes 1,2,4,...] [--warmup DURATION] [--callers N] [--threads T]");
      System.exit(2);
    }
    String engine = args[0];
    Path file = Path.of(args[1]);
    double seconds = InProcessCeiling.seconds(args[2]);
    Path out = Path.of(args[3]);
    int[] batchSizes = InProcessCeiling.DEFAULT_BATCH_SIZES;
    double warmup = Math.min(5.0, Math.max(1.0, seconds));
    int callers = 1;
    int threads = 0;
    for (int i = 4; i < args.length; i += 2) {
      String a = args[i];
      if (i + 1 >= args.length) {
        throw new IllegalArgumentException(a + " needs a value");
      }
      String v = args[i + 1].trim();
      switch (a) {
        case "--batch-sizes" ->
            batchSizes =
                Arrays.stream(v.split(",")).map(String::trim).mapToInt(Integer::parseInt).toArray();
        case "--warmup" -> warmup = InProcessCeiling.seconds(v);
        case "--callers" -> callers = Integer.parseInt(v);
        case "--threads" -> threads = Integer.parseInt(v);
        default -> throw new IllegalArgumentException("unknown option " + a);
      }
    }
    if (callers < 1 || callers > 1024) {
      throw new IllegalArgumentException("--callers must be 1..1024, not " + callers);
    }
    if (threads == 0) {
      threads = Math.max(1, Runtime.getRuntime().availableProcessors() / callers);
    }
    if (threads < 1 || threads > 1024) {
      throw new IllegalArgumentException("--threads must be 1..1024, not " + threads);
    }
    if (batchSizes.length == 0 || Arrays.stream(batchSizes).anyMatch(b -> b < 1)) {
      throw new IllegalArgumentException("--batch-sizes must be positive numbers");
    }
    if (!Files.exists(file)) {
      throw new IllegalArgumentException(file + " does not exist");
    }
    float[] pool = new float[POOL_ROWS * FEATURES];
    SplittableRandom random = new SplittableRandom(1);
    for (int i = 0; i < pool.length; i++) {
      pool[i] = (float) random.nextDouble();
    }
    ObjectNode result;
    try (Model model = load(engine, file, threads)) {
      EngineCeiling bench = new EngineCeiling(model, pool, callers);
      // Platform threads, as Berth's engine workers are.
      ExecutorService executor =
          Executors.newFixedThreadPool(callers, Thread.ofPlatform().daemon().factory());
      try {
        result = bench.run(engine, file, threads, seconds, warmup, batchSizes, executor);
      } finally {
        executor.shutdownNow();
      }
    }
    Path parent = out.toAbsolutePath().getParent();
    if (parent != null) {
      Files.createDirectories(parent);
    }
    new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(out.toFile(), result);
    System.out.println("  wrote " + out);
  }

  static Model load(String engine, Path file, int threads) throws Exception {
    return switch (engine) {
      case "onnx" -> new Onnx(file, threads);
      case "pytorch" -> new Pytorch(file, threads);
      case "tensorflow" -> new Tensorflow(file, threads);
      case "xgboost" -> new Xgboost(file, threads);
      default ->
          throw new IllegalArgumentException(
              "unknown engine '" + engine + "'; use onnx, pytorch, tensorflow or xgboost");
    };
  }

  private ObjectNode run(
      String engine,
      Path file,
      int threads,
      double seconds,
      double warmup,
      int[] batchSizes,
      ExecutorService executor)
      throws Exception {
    ObjectNode root = new ObjectMapper().createObjectNode();
    root.put("kind", "engine-ceiling");
    root.put("engine", engine);
    root.put("library", model.library());
    root.put("model", file.toAbsolutePath().toString());
    root.put("started", Instant.now().toString());
    root.put("duration_per_batch_size_s", seconds);
    root.put("warmup_s", warmup);
    root.put("java_version", System.getProperty("java.vm.name") + " " + Runtime.version());
    root.put("available_processors", Runtime.getRuntime().availableProcessors());
    ObjectNode settings = root.putObject("settings");
    settings.put("callers", callers.length);
    settings.put("threads", threads);
    settings.put("model_shared_by_callers", true);
    settings.put("rows", "random, uniform in [0, 1), 784 FP32 each, one per request");
    System.out.printf(
        Locale.ROOT,
        "  %s: %d caller(s) x %d thread(s), %d processors%n",
        model.library(),
        callers.length,
        threads,
        Runtime.getRuntime().availableProcessors());

    // Warm-up: every batch size in turn on every caller, so each shape has been seen once.
    phase(executor, batchSizes, warmup, false);

    ArrayNode results = root.putArray("batch_sizes");
    ObjectNode best = null;
    for (int b : batchSizes) {
      int[] only = {b};
      phase(executor, only, Math.min(1.0, seconds / 5), false);
      long start = phase(executor, only, seconds, true);
      Stages stages = new Stages();
      int calls = 0;
      long rows = 0;
      long end = start;
      for (Caller c : callers) {
        stages.add(c.stages);
        calls += c.calls;
        rows += c.rows;
        end = Math.max(end, c.end);
      }
      long[] sorted = new long[calls];
      int at = 0;
      for (Caller c : callers) {
        System.arraycopy(c.latencies, 0, sorted, at, c.calls);
        at += c.calls;
      }
      Arrays.sort(sorted);
      double elapsed = (end - start) / 1e9;
      double rate = rows / elapsed;
      ObjectNode r = results.addObject();
      r.put("batch_size", b);
      r.put("callers", callers.length);
      r.put("threads", threads);
      r.put("rows_per_s", InProcessCeiling.round(rate, 1));
      r.put("calls", calls);
      r.put("rows", rows);
      r.put("elapsed_s", InProcessCeiling.round(elapsed, 3));
      ObjectNode lat = r.putObject("call_latency_ms");
      lat.put("p50", ms(InProcessCeiling.percentile(sorted, 50)));
      lat.put("p99", ms(InProcessCeiling.percentile(sorted, 99)));
      lat.put("max", ms(sorted[calls - 1]));
      ObjectNode where = r.putObject("mean_ms_per_call");
      where.put("input", InProcessCeiling.round(stages.input / 1e6 / calls, 4));
      where.put("run", InProcessCeiling.round(stages.run / 1e6 / calls, 4));
      where.put("output", InProcessCeiling.round(stages.output / 1e6 / calls, 4));
      double total = stages.input + stages.run + stages.output;
      System.out.printf(
          Locale.ROOT,
          "  batch %3d: %9.1f rows/s  call p50 %7.3f ms  p99 %7.3f ms  (input %4.1f%%, run %4.1f%%,"
              + " output %4.1f%%)%n",
          b,
          rate,
          ms(InProcessCeiling.percentile(sorted, 50)),
          ms(InProcessCeiling.percentile(sorted, 99)),
          100 * stages.input / total,
          100 * stages.run / total,
          100 * stages.output / total);
      if (best == null || rate > best.get("rows_per_s").asDouble()) {
        best = r;
      }
    }
    ObjectNode b = root.putObject("best");
    b.put("batch_size", best.get("batch_size").asInt());
    b.put("rows_per_s", best.get("rows_per_s").asDouble());
    b.put("callers", callers.length);
    b.put("threads", threads);
    root.put("finished", Instant.now().toString());
    return root;
  }

  /**
   * Runs every caller on its own thread for {@code seconds}, all starting together, cycling through
   * {@code batchSizes}; returns the common start (System.nanoTime()).
   */
  private long phase(ExecutorService executor, int[] batchSizes, double seconds, boolean record)
      throws Exception {
    long[] start = new long[1];
    CyclicBarrier go = new CyclicBarrier(callers.length, () -> start[0] = System.nanoTime());
    List<Future<?>> running = new ArrayList<>(callers.length);
    for (Caller c : callers) {
      c.reset(record);
      running.add(
          executor.submit(
              () -> {
                go.await();
                c.runUntil(batchSizes, start[0] + (long) (seconds * 1e9), record);
                return null;
              }));
    }
    for (Future<?> f : running) {
      try {
        f.get();
      } catch (ExecutionException e) {
        running.forEach(r -> r.cancel(true));
        if (e.getCause() instanceof Exception cause) {
          throw cause;
        }
        throw e;
      }
    }
    return start[0];
  }

  private static double ms(long nanos) {
    return InProcessCeiling.round(nanos / 1e6, 3);
  }

  /** The version of the jar a class comes from: its manifest's, else the one in its file name. */
  static String version(Class<?> type) {
    String v = type.getPackage().getImplementationVersion();
    if (v != null) {
      return v;
    }
    try {
      String jar =
          Path.of(type.getProtectionDomain().getCodeSource().getLocation().toURI())
              .getFileName()
              .toString();
      Matcher m = Pattern.compile("-(\\d[\\w.-]*)\\.jar$").matcher(jar);
      return m.find() ? m.group(1) : "unknown version";
    } catch (URISyntaxException | RuntimeException e) {
      return "unknown version";
    }
  }

  /** ONNX Runtime: the model's first input and first output. */
  static final class Onnx implements Model {
    private final OrtEnvironment env = OrtEnvironment.getEnvironment();
    private final OrtSession session;
    private final String input;

    Onnx(Path file, int threads) throws Exception {
      OrtSession.SessionOptions so = new OrtSession.SessionOptions();
      so.setIntraOpNumThreads(threads);
      so.setInterOpNumThreads(0);
      so.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
      session = env.createSession(file.toString(), so);
      input = session.getInputNames().iterator().next();
    }

    @Override
    public String library() {
      return "ONNX Runtime " + env.getVersion();
    }

    @Override
    public float[] run(float[] pixels, int rows, Stages stages) throws Exception {
      long t0 = System.nanoTime();
      try (OnnxTensor x =
          OnnxTensor.createTensor(env, FloatBuffer.wrap(pixels), new long[] {rows, FEATURES})) {
        long t1 = System.nanoTime();
        try (OrtSession.Result result = session.run(Map.of(input, x))) {
          long t2 = System.nanoTime();
          FloatBuffer y = ((OnnxTensor) result.get(0)).getFloatBuffer();
          float[] out = new float[y.remaining()];
          y.get(out);
          long t3 = System.nanoTime();
          stages.input += t1 - t0;
          stages.run += t2 - t1;
          stages.output += t3 - t2;
          return out;
        }
      }
    }

    @Override
    public void close() {
      try {
        session.close();
      } catch (OrtException e) {
        throw new IllegalStateException("ONNX Runtime could not close the session", e);
      }
    }
  }

  /** libtorch through DJL's PyTorch engine: TorchScript's forward, one tensor in, one out. */
  static final class Pytorch implements Model {
    private final Engine engine;
    private final NDManager manager;
    private final PtSymbolBlock module;
    private final int threads;

    Pytorch(Path file, int threads) {
      // before the first DJL class reads them: the bundled libtorch, no download, no usage report
      System.setProperty("ai.djl.offline", "true");
      System.setProperty("OPT_OUT_TRACKING", "true");
      this.threads = threads;
      engine = Engine.getEngine("PyTorch");
      manager = engine.newBaseManager();
      module =
          JniUtils.loadModule(
              (PtNDManager) manager, file, true, new String[0], new String[0], false);
      JniUtils.enableInferenceMode(module);
    }

    @Override
    public String library() {
      return "libtorch " + engine.getVersion() + " (DJL " + Engine.getDjlVersion() + ")";
    }

    @Override
    public void prepareThread() {
      JniUtils.setNumThreads(threads);
    }

    @Override
    public float[] run(float[] pixels, int rows, Stages stages) {
      long t0 = System.nanoTime();
      try (NDManager call = manager.newSubManager()) {
        NDArray x = call.create(pixels, new Shape(rows, FEATURES));
        try (IValue in = IValue.from((PtNDArray) x)) {
          long t1 = System.nanoTime();
          try (IValue result = IValueUtils.forward(module, new IValue[] {in})) {
            long t2 = System.nanoTime();
            float[] out = result.toTensor((PtNDManager) call).toFloatArray();
            long t3 = System.nanoTime();
            stages.input += t1 - t0;
            stages.run += t2 - t1;
            stages.output += t3 - t2;
            return out;
          }
        }
      }
    }

    @Override
    public void close() {
      try {
        module.close();
      } finally {
        manager.close();
      }
    }
  }

  /** TensorFlow Java: the SavedModel's serving_default signature, one input and one output. */
  static final class Tensorflow implements Model {
    private final SavedModelBundle bundle;
    private final Session session;
    private final String feed;
    private final String fetch;

    Tensorflow(Path dir, int threads) {
      ConfigProto config =
          ConfigProto.newBuilder()
              .setIntraOpParallelismThreads(threads)
              .setInterOpParallelismThreads(-1)
              .build();
      bundle =
          SavedModelBundle.loader(dir.toString()).withTags("serve").withConfigProto(config).load();
      session = bundle.session();
      Signature signature =
          bundle.signatures().stream()
              .filter(s -> s.key().equals(Signature.DEFAULT_KEY))
              .findFirst()
              .orElseThrow(() -> new IllegalArgumentException(dir + " has no serving_default"));
      feed = signature.getInputs().values().iterator().next().name;
      fetch = signature.getOutputs().values().iterator().next().name;
    }

    @Override
    public String library() {
      return "TensorFlow "
          + TensorFlow.version()
          + " (TensorFlow Java "
          + version(Session.class)
          + ")";
    }

    @Override
    public float[] run(float[] pixels, int rows, Stages stages) {
      long t0 = System.nanoTime();
      try (TFloat32 x = TFloat32.tensorOf(org.tensorflow.ndarray.Shape.of(rows, FEATURES))) {
        x.asRawTensor().data().asFloats().write(pixels);
        long t1 = System.nanoTime();
        try (Result result = session.runner().feed(feed, x).fetch(fetch).run()) {
          long t2 = System.nanoTime();
          TFloat32 y = (TFloat32) result.get(0);
          float[] out = new float[(int) y.shape().size()];
          y.asRawTensor().data().asFloats().read(out);
          long t3 = System.nanoTime();
          stages.input += t1 - t0;
          stages.run += t2 - t1;
          stages.output += t3 - t2;
          return out;
        }
      }
    }

    @Override
    public void close() {
      bundle.close();
    }
  }

  /** xgboost4j: in-place prediction from a dense array, every tree. */
  static final class Xgboost implements Model {
    private final Booster booster;

    Xgboost(Path file, int threads) throws Exception {
      booster = XGBoost.loadModel(file.toString());
      booster.setParam("nthread", threads);
    }

    @Override
    public String library() {
      return "XGBoost " + version(Booster.class) + " (xgboost4j)";
    }

    @Override
    public float[] run(float[] pixels, int rows, Stages stages) throws Exception {
      long t0 = System.nanoTime();
      float[][] answer = booster.inplace_predict(pixels, rows, FEATURES, Float.NaN);
      long t1 = System.nanoTime();
      float[] out = new float[rows * CLASSES];
      for (int r = 0; r < rows; r++) {
        System.arraycopy(answer[r], 0, out, r * CLASSES, CLASSES);
      }
      long t2 = System.nanoTime();
      stages.run += t1 - t0;
      stages.output += t2 - t1;
      return out;
    }

    @Override
    public void close() {
      booster.dispose();
    }
  }
}
