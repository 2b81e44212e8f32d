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

  /**
   * One key and its values.
   *
   * @param key the model.yaml path of the key
   * @param values its values in order (ascending; {@link TuneSetting#DEFAULT} first)
   * @param refine whether values between two tried ones are tried too (whole numbers)
   */
  public record Dimension(String key, List<Object> values, boolean refine) {
    public Dimension {
      values = List.copyOf(values);
    }
  }

  public TuneSpace {
    dimensions = List.copyOf(dimensions);
  }

  /**
   * The space of a model served by {@code engine} ({@code onnx}, {@code pytorch}, {@code
   * tensorflow}, {@code xgboost}) on {@code cpus} processors, starting from its model.yaml.
   *
   * @throws BerthException for an engine whose settings are not searched (language models)
   */
  public static TuneSpace of(String engine, Map<String, Object> modelYaml, int cpus) {
    String threads =
        switch (engine) {
          case "onnx", "pytorch", "tensorflow" -> "options.intra-op-threads";
          case "xgboost" -> "options.threads";
          default ->
              throw new BerthException(
                  "berth tune searches the settings of tensor models (onnx, pytorch, tensorflow,"
                      + " xgboost), not of "
                      + engine
                      + " models yet; measure a language model's settings with berth bench");
        };
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
    List<Object> threadValues = new ArrayList<>();
    if (threadValue == null) {
      // leaving the key out means the engine's default only while model.yaml gives none
      threadValues.add(TuneSetting.DEFAULT);
    }
    for (int t = 1; t <= cpus; t *= 2) {
      threadValues.add(t);
    }
    if (!threadValues.contains(cpus)) {
      threadValues.add(cpus);
    }
    // on one CPU the engine's default is one thread whatever the instances: nothing to search
    if (!(cpus == 1 && threadValue == null)) {
      dims.add(new Dimension(threads, withValue(threadValues, base.get(threads)), false));
    }
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
