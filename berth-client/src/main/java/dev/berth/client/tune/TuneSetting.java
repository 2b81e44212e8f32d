package dev.berth.client.tune;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.StringJoiner;

/**
 * One setting of a model's serving keys, by their model.yaml paths ({@code instances}, {@code
 * options.intra-op-threads}, {@code batching.max-batch-size}, {@code batching.max-queue-delay},
 * ...). A key whose value is {@link #DEFAULT} is left out of model.yaml, so the engine's default
 * applies.
 *
 * @param values the keys and their values (Integer or String), in the order they are shown
 */
public record TuneSetting(Map<String, Object> values) {
  /** The value that leaves a key out of model.yaml: the engine's own default applies. */
  public static final String DEFAULT = "default";

  public TuneSetting {
    values = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(values));
  }

  /** This setting with one key's value changed. */
  public TuneSetting with(String key, Object value) {
    Map<String, Object> changed = new LinkedHashMap<>(values);
    changed.put(key, value);
    return new TuneSetting(changed);
  }

  /** A key's value, or null when the setting does not name the key. */
  public Object get(String key) {
    return values.get(key);
  }

  /** {@code instances=2 intra-op-threads=1 max-batch-size=32 max-queue-delay=0ms}. */
  public String label() {
    StringJoiner out = new StringJoiner(" ");
    values.forEach((k, v) -> out.add(k.substring(k.lastIndexOf('.') + 1) + "=" + v));
    return out.toString();
  }

  /**
   * {@code modelYaml} with this setting's values written into it (nested sections created as
   * needed, {@link #DEFAULT} values removed); {@code modelYaml} itself is not changed.
   */
  @SuppressWarnings("unchecked")
  public Map<String, Object> applyTo(Map<String, Object> modelYaml) {
    Map<String, Object> out = deepCopy(modelYaml);
    for (Map.Entry<String, Object> e : values.entrySet()) {
      String[] path = e.getKey().split("\\.");
      Map<String, Object> section = out;
      for (int i = 0; i < path.length - 1; i++) {
        Object next = section.get(path[i]);
        if (!(next instanceof Map<?, ?>)) {
          next = new LinkedHashMap<String, Object>();
          section.put(path[i], next);
        }
        section = (Map<String, Object>) next;
      }
      if (DEFAULT.equals(e.getValue())) {
        section.remove(path[path.length - 1]);
      } else {
        section.put(path[path.length - 1], e.getValue());
      }
    }
    return out;
  }

  /**
   * The value model.yaml gives a key ({@code batching.max-batch-size}), or null when it gives none.
   */
  public static Object valueIn(Map<String, Object> modelYaml, String key) {
    Object at = modelYaml;
    for (String part : key.split("\\.")) {
      if (!(at instanceof Map<?, ?> m)) {
        return null;
      }
      at = m.get(part);
    }
    return at;
  }

  @SuppressWarnings("unchecked")
  private static Map<String, Object> deepCopy(Map<String, Object> map) {
    Map<String, Object> out = new LinkedHashMap<>();
    map.forEach(
        (k, v) -> out.put(k, v instanceof Map<?, ?> m ? deepCopy((Map<String, Object>) m) : v));
    return out;
  }
}
