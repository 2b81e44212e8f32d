package dev.berth.client.tune;

import dev.berth.api.BerthException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What {@code berth tune} searches for one model: the current setting (what its model.yaml says,
 * defaults filled in) and, per key, the values to try in order. Integer keys are also refined
 * between the best value and its tried neighbours.
 *
 * @param baseline the current setting
 * @param dimensions the keys to search, in the order they are searched
 */
public record TuneSpace(TuneSetting baseline, List<Dimension> dimensions) {
  public static final String INSTANCES = "instances";
  public static final String MAX_BATCH_SIZE = "batching.max-batch-size";
  public static final String MAX_QUEUE_DELAY = "batching.max-queue-delay";
  public static final String MAX_QUEUE_SIZE = "batching.max-queue-size";
  public static final String LLM_PARALLEL = "llm.parallel";
  public static final String LLM_THREADS = "llm.threads";
  public static final String LLM_CONTEXT_SIZE = "llm.context-size";
  public static final String LLM_MAX_WAITING = "llm.max-waiting";

  /**
   * One key and its values.
   *
   * @param key the model.yaml path of the key
   * @param values its values in order (ascending; {@link TuneSetting#DEFAULT} first)
   * @param refine whether values between two tried ones are tried too (whole numbers)
   * @param smallerWhenEven whether only values below the current one are tried, and one that does
   *     not lose by the margin wins (a key that saves memory, not time: a language model's context
   *     size)
   */
  public record Dimension(
      String key, List<Object> values, boolean refine, boolean smallerWhenEven) {
    public Dimension {
      values = List.copyOf(values);
    }

    /** A key searched both ways, a value winning only by the margin. */
    public Dimension(String key, List<Object> values, boolean refine) {
      this(key, values, refine, false);
    }
  }

  public TuneSpace {
    dimensions = List.copyOf(dimensions);
  }

  /**
   * The space of a model served by {@code engine} ({@code onnx}, {@code pytorch}, {@code
   * tensorflow}, {@code xgboost}, {@code llama}) on {@code cpus} processors, starting from its
   * model.yaml; a language model's context size is not searched.
   *
   * @throws BerthException for an engine whose settings are not searched
   */
  public static TuneSpace of(String engine, Map<String, Object> modelYaml, int cpus) {
    return of(engine, modelYaml, cpus, false);
  }

  /**
   * The same; with {@code searchContext}, a language model's context size is searched too (when the
   * requests are the user's own: they set how small it may get).
   */
  public static TuneSpace of(
      String engine, Map<String, Object> modelYaml, int cpus, boolean searchContext) {
    String threads =
        switch (engine) {
          case "onnx", "pytorch", "tensorflow" -> "options.intra-op-threads";
          case "xgboost" -> "options.threads";
          case "llama" -> null;
          default ->
              throw new BerthException(
                  "berth tune searches the settings of onnx, pytorch, tensorflow, xgboost and"
                      + " llama models, not of "
                      + engine
                      + " models; measure its settings with berth bench");
        };
    if (threads == null) {
      return languageModel(modelYaml, cpus, searchContext);
    }
    Map<String, Object> base = new LinkedHashMap<>();
    int instances = integer(TuneSetting.valueIn(modelYaml, INSTANCES), 1);
    base.put(INSTANCES, instances);
    Object threadValue = TuneSetting.valueIn(modelYaml, threads);
    base.put(threads, threadValue == null ? TuneSetting.DEFAULT : integer(threadValue, 1));
    boolean batching = !Boolean.FALSE.equals(TuneSetting.valueIn(modelYaml, "batching.enabled"));
    int batch = batching ? integer(TuneSetting.valueIn(modelYaml, MAX_BATCH_SIZE), 32) : 1;
    base.put(MAX_BATCH_SIZE, batch);
    Object delay = TuneSetting.valueIn(modelYaml, MAX_QUEUE_DELAY);
    base.put(MAX_QUEUE_DELAY, delay == null ? "0ms" : delay.toString());
    TuneSetting baseline = new TuneSetting(base);

    List<Dimension> dims = new ArrayList<>();
    List<Object> instanceValues = new ArrayList<>();
    for (int i : List.of(1, 2, 3, 4, 6, 8, 12, 16)) {
      if (i <= Math.max(2, 2 * cpus)) {
        instanceValues.add(i);
      }
    }
    dims.add(new Dimension(INSTANCES, withValue(instanceValues, instances), true));
    threads(dims, threads, threadValue, base.get(threads), cpus);
    if (batching) {
      // with batching: false (a model whose tensors have no batch dimension, or the owner's
      // choice) neither key changes anything
      dims.add(
          new Dimension(MAX_BATCH_SIZE, withValue(List.of(1, 4, 8, 16, 32, 64, 128), batch), true));
      dims.add(
          new Dimension(
              MAX_QUEUE_DELAY,
              withValue(List.of("0ms", "1ms", "2ms", "5ms", "10ms"), base.get(MAX_QUEUE_DELAY)),
              false));
    }
    return new TuneSpace(baseline, dims);
  }

  /**
   * A language model's space, in this order:
   *
   * <ul>
   *   <li>{@code llm.context-size} (tokens a sequence holds), only with {@code searchContext} and
   *       only downwards (256, 512, 1024, ... below the current one, never below {@code
   *       llm.defaults.max-tokens} + 1, the answer a request without max_tokens is promised): a
   *       larger context adds KV cache, not speed, and a smaller one is kept only when it serves
   *       within the noise with less memory. First, so that the sequences searched next are sized
   *       as they will run.
   *   <li>{@code llm.parallel} (sequences decoded together: 1, 2, 4, ... 32, refined), at most four
   *       times the current setting's KV cache ({@code parallel × context-size} tokens, all of it
   *       allocated when the model loads).
   *   <li>{@code llm.threads}: llama.cpp's default (one per core, the CPUs given) first, then fewer
   *       (leaving a core to the JVM can help); not searched on one CPU.
   * </ul>
   */
  private static TuneSpace languageModel(
      Map<String, Object> modelYaml, int cpus, boolean searchContext) {
    Map<String, Object> base = new LinkedHashMap<>();
    int parallel = integer(TuneSetting.valueIn(modelYaml, LLM_PARALLEL), 4);
    base.put(LLM_PARALLEL, parallel);
    Object threadValue = TuneSetting.valueIn(modelYaml, LLM_THREADS);
    // 0 is llama.cpp's default written out: kept as 0, so that writing the winner keeps it too
    Object threads = threadValue == null ? TuneSetting.DEFAULT : integer(threadValue, 0);
    base.put(LLM_THREADS, threads);
    int context = integer(TuneSetting.valueIn(modelYaml, LLM_CONTEXT_SIZE), 4096);
    base.put(LLM_CONTEXT_SIZE, context);
    List<Dimension> dims = new ArrayList<>();

    int promised = integer(TuneSetting.valueIn(modelYaml, "llm.defaults.max-tokens"), 512);
    List<Object> contexts = new ArrayList<>();
    for (int c = 256; c < context; c *= 2) {
      if (c > promised) {
        contexts.add(c);
      }
    }
    contexts.add(context);
    if (searchContext && contexts.size() > 1) {
      dims.add(new Dimension(LLM_CONTEXT_SIZE, contexts, false, true));
    }

    long kvBudget = 4L * parallel * context;
    List<Object> parallels = new ArrayList<>();
    for (int p : List.of(1, 2, 4, 8, 16, 32)) {
      if ((long) p * context <= kvBudget) {
        parallels.add(p);
      }
    }
    dims.add(new Dimension(LLM_PARALLEL, withValue(parallels, parallel), true));

    boolean isDefault = TuneSetting.DEFAULT.equals(threads) || Integer.valueOf(0).equals(threads);
    if (cpus > 1 || !isDefault) {
      List<Object> fewer = new ArrayList<>();
      for (int t = 1; t < cpus; t *= 2) {
        fewer.add(t);
      }
      if (cpus > 2 && !fewer.contains(cpus - 1)) {
        fewer.add(cpus - 1);
      }
      List<Object> values;
      if (isDefault) {
        // the default (one per CPU given) last, so that the search goes down from it
        values = withValue(fewer, 1);
        values.add(threads);
      } else {
        fewer.add(cpus);
        values = withValue(fewer, threads);
      }
      dims.add(new Dimension(LLM_THREADS, values, false));
    }
    return new TuneSpace(new TuneSetting(base), dims);
  }

  /**
   * The engine's threads: its default (only while model.yaml gives none), then 1, 2, 4, ... up to
   * the CPUs; not searched on one CPU without a value, where the default is one thread.
   */
  private static void threads(
      List<Dimension> dims, String key, Object configured, Object current, int cpus) {
    List<Object> values = new ArrayList<>();
    if (configured == null) {
      // leaving the key out means the engine's default only while model.yaml gives none
      values.add(TuneSetting.DEFAULT);
    }
    for (int t = 1; t <= cpus; t *= 2) {
      values.add(t);
    }
    if (!values.contains(cpus)) {
      values.add(cpus);
    }
    if (!(cpus == 1 && configured == null)) {
      dims.add(new Dimension(key, withValue(values, current), false));
    }
  }

  /**
   * The model.yaml key the sized queue goes into: a language model's {@code llm.max-waiting}
   * (requests waiting for a sequence), else {@code batching.max-queue-size}.
   */
  public static String queueKey(TuneSetting setting) {
    return isLanguageModel(setting) ? LLM_MAX_WAITING : MAX_QUEUE_SIZE;
  }

  /** Whether a setting is a language model's. */
  public static boolean isLanguageModel(TuneSetting setting) {
    return setting.get(LLM_PARALLEL) != null;
  }

  /** The values with {@code value} among them, in order. */
  private static List<Object> withValue(List<Object> values, Object value) {
    List<Object> out = new ArrayList<>(values);
    if (!out.contains(value)) {
      out.add(value);
    }
    out.sort(Comparator.comparingDouble(TuneSpace::order));
    return out;
  }

  /** A value's place: DEFAULT first, numbers by size, durations by length. */
  static double order(Object v) {
    if (TuneSetting.DEFAULT.equals(v)) {
      return -1;
    }
    if (v instanceof Number n) {
      return n.doubleValue();
    }
    return micros(v.toString());
  }

  /** A duration as model.yaml writes it ({@code 250us}, {@code 2ms}, {@code 1s}), in µs. */
  static double micros(String text) {
    String t = text.strip().toLowerCase(Locale.ROOT);
    try {
      if (t.endsWith("us")) {
        return Double.parseDouble(t.substring(0, t.length() - 2));
      }
      if (t.endsWith("ms")) {
        return Double.parseDouble(t.substring(0, t.length() - 2)) * 1e3;
      }
      if (t.endsWith("s")) {
        return Double.parseDouble(t.substring(0, t.length() - 1)) * 1e6;
      }
      if (t.endsWith("m")) {
        return Double.parseDouble(t.substring(0, t.length() - 1)) * 60e6;
      }
    } catch (NumberFormatException e) {
      // below
    }
    throw new BerthException("'" + text + "' is not a duration like 2ms");
  }

  /** Whole microseconds as a duration, e.g. 2000 gives 2ms. */
  static String duration(long micros) {
    Duration d = Duration.ofNanos(micros * 1000);
    return micros % 1000 == 0 ? d.toMillis() + "ms" : micros + "us";
  }

  private static int integer(Object value, int fallback) {
    if (value == null) {
      return fallback;
    }
    if (value instanceof Number n) {
      return n.intValue();
    }
    try {
      return Integer.parseInt(value.toString().strip());
    } catch (NumberFormatException e) {
      return fallback;
    }
  }
}
