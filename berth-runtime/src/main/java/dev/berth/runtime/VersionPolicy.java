package dev.berth.runtime;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.NavigableSet;
import java.util.TreeSet;

/**
 * Which version directories of a model are served: {@code all} of them, the {@code latest} N, or
 * {@code specific} numbers (model.yaml {@code version-policy}, as in TensorFlow Serving and
 * Triton).
 *
 * @param kind which rule
 * @param latest how many of the highest versions, for {@link Kind#LATEST}
 * @param specific the version numbers, for {@link Kind#SPECIFIC}
 */
public record VersionPolicy(Kind kind, int latest, List<Long> specific) {
  /** The rules a policy can follow. */
  public enum Kind {
    ALL,
    LATEST,
    SPECIFIC
  }

  public static final String KEY = "version-policy";

  /** Every version directory is served (the default). */
  public static final VersionPolicy ALL = new VersionPolicy(Kind.ALL, 0, List.of());

  private static final String SHAPE =
      "write 'version-policy: all', 'version-policy: {latest: 2}' or"
          + " 'version-policy: {specific: [1, 3]}'";

  public VersionPolicy {
    specific = List.copyOf(specific);
  }

  /** The highest {@code n} versions. */
  public static VersionPolicy latest(int n) {
    return new VersionPolicy(Kind.LATEST, n, List.of());
  }

  /** Exactly these versions (those of them that exist). */
  public static VersionPolicy specific(Collection<Long> versions) {
    return new VersionPolicy(Kind.SPECIFIC, 0, List.copyOf(new TreeSet<>(versions)));
  }

  /** The versions among {@code available} that this policy serves. */
  public NavigableSet<Long> select(Collection<Long> available) {
    NavigableSet<Long> all = new TreeSet<>(available);
    return switch (kind) {
      case ALL -> all;
      case SPECIFIC -> {
        all.retainAll(specific);
        yield all;
      }
      case LATEST -> {
        NavigableSet<Long> out = new TreeSet<>();
        for (Long v : all.descendingSet()) {
          if (out.size() == latest) {
            break;
          }
          out.add(v);
        }
        yield out;
      }
    };
  }

  @Override
  public String toString() {
    return switch (kind) {
      case ALL -> "all";
      case LATEST -> "{latest: " + latest + "}";
      case SPECIFIC -> "{specific: " + specific + "}";
    };
  }

  /** Reads {@code version-policy} from model.yaml; absent means {@link #ALL}. */
  static VersionPolicy parse(ConfigReader root) {
    Object raw = root.values().get(KEY);
    if (raw == null) {
      return ALL;
    }
    if (!(raw instanceof Map)) {
      if (raw instanceof List || !"all".equals(raw.toString().trim())) {
        throw root.error(KEY, "'" + raw + "' is not a version policy; " + SHAPE);
      }
      return ALL;
    }
    ConfigReader p = root.section(KEY);
    p.allowOnly(java.util.Set.of("latest", "specific"));
    if (p.has("latest") == p.has("specific")) {
      throw root.error(KEY, "give exactly one of latest or specific; " + SHAPE);
    }
    if (p.has("latest")) {
      return latest(p.integer("latest", 1, 1, 1_000));
    }
    List<String> numbers;
    try {
      numbers = p.strings("specific");
    } catch (dev.berth.api.ConfigException e) {
      throw p.error("specific", "expected a list of version numbers such as [1, 3]");
    }
    if (numbers.isEmpty()) {
      throw p.error("specific", "lists no version; name at least one, e.g. [1, 3]");
    }
    List<Long> versions = new ArrayList<>();
    for (String n : numbers) {
      if (!ModelRepository.isValidVersion(n)) {
        throw p.error(
            "specific",
            "'" + n + "' is not a version; versions are positive whole numbers such as 1 or 3");
      }
      versions.add(Long.parseLong(n));
    }
    return specific(versions);
  }
}
