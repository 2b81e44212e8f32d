package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.client.tune.Sizing;
import dev.berth.client.tune.TuneSetting;
import dev.berth.client.tune.TuneSpace;
import dev.berth.runtime.ServiceSpec;
import java.io.IOException;
import java.io.PrintStream;
import java.io.StringReader;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.yaml.snakeyaml.DumperOptions;
import org.yaml.snakeyaml.LoaderOptions;
import org.yaml.snakeyaml.Yaml;
import org.yaml.snakeyaml.nodes.MappingNode;
import org.yaml.snakeyaml.nodes.Node;
import org.yaml.snakeyaml.nodes.NodeTuple;
import org.yaml.snakeyaml.nodes.ScalarNode;
import org.yaml.snakeyaml.nodes.SequenceNode;
import org.yaml.snakeyaml.nodes.Tag;

/**
 * {@code berth tune --apply}: the winner written into the service file, in place and with its
 * comments kept: the model's entry gets {@code instances}, {@code batching} and {@code options} (a
 * language model's {@code llm}), and {@code deploy} the sized resources and autoscaling target. The
 * edited file is checked as {@code berth build} would read it before it replaces the old one.
 */
final class TunedService {
  private TunedService() {}

  static void apply(
      ServiceSpec service, String model, TuneSetting winner, Sizing sizing, PrintStream err) {
    Path file = service.file();
    String text;
    try {
      text = Files.readString(file, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new BerthException("cannot read " + file + ": " + e.getMessage(), e);
    }
    String edited =
        edit(
            text, model, winner, sizing, service.deploy().autoscaling().targetInflightPerPod() > 0);
    Path tmp = file.resolveSibling(file.getFileName() + ".tune.tmp");
    try {
      Files.writeString(tmp, edited, StandardCharsets.UTF_8);
      ServiceSpec.load(tmp); // the edited file must still be a valid service
      Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw new BerthException("cannot write " + file + ": " + e.getMessage(), e);
    } finally {
      try {
        Files.deleteIfExists(tmp);
      } catch (IOException e) {
        // nothing left to do
      }
    }
    err.println("wrote the winner into " + file);
  }

  /** Fails now, as {@link #apply} would after the search, when the file cannot take a winner. */
  static void check(ServiceSpec service, String model, TuneSetting any) {
    try {
      edit(Files.readString(service.file(), StandardCharsets.UTF_8), model, any, null, false);
    } catch (IOException e) {
      throw new BerthException("cannot read " + service.file() + ": " + e.getMessage(), e);
    }
  }

  /**
   * The service file's text with the winner's settings in the model's entry and the sizing in
   * {@code deploy}; the in-flight target is written only when the file already uses one.
   */
  static String edit(
      String text, String model, TuneSetting winner, Sizing sizing, boolean inflightTarget) {
    LoaderOptions loader = new LoaderOptions();
    loader.setProcessComments(true);
    DumperOptions dumper = new DumperOptions();
    dumper.setProcessComments(true);
    dumper.setDefaultFlowStyle(DumperOptions.FlowStyle.BLOCK);
    dumper.setIndent(2);
    dumper.setIndicatorIndent(2);
    dumper.setIndentWithIndicator(true);
    dumper.setWidth(120);
    Yaml yaml = new Yaml(loader, dumper);
    Node root = yaml.compose(new StringReader(text));
    if (!(root instanceof MappingNode service)) {
      throw new BerthException("the service file is not a YAML mapping");
    }
    MappingNode entry = modelEntry(service, model);
    for (Map.Entry<String, Object> e : winner.values().entrySet()) {
      set(entry, e.getKey(), e.getValue());
    }
    if (sizing != null) {
      set(entry, TuneSpace.queueKey(winner), sizing.maxQueueSize());
      MappingNode deploy = mapping(service, "deploy");
      set(deploy, "resources.requests.cpu", quantity(sizing.cpu()));
      set(deploy, "resources.limits.cpu", quantity(sizing.cpu()));
      if (sizing.memory() != null) {
        set(deploy, "resources.requests.memory", sizing.memory());
        set(deploy, "resources.limits.memory", sizing.memory());
      }
      // llama.cpp keeps its threads busy from the first request on: requests in flight, not CPU,
      // say when a language model's pod is full (a CPU target of 0 leaves CPU out)
      boolean languageModel = TuneSpace.isLanguageModel(winner);
      set(
          deploy,
          "autoscaling.target-cpu-utilization",
          languageModel ? 0 : sizing.targetCpuUtilization());
      if (inflightTarget || languageModel) {
        set(deploy, "autoscaling.target-inflight-per-pod", sizing.targetInflightPerPod());
      }
    }
    StringWriter out = new StringWriter();
    yaml.serialize(root, out);
    return out.toString();
  }

  /** The models entry of the model: by its name, else by its path's last segment. */
  private static MappingNode modelEntry(MappingNode service, String model) {
    Node models = value(service, "models");
    if (models instanceof SequenceNode list) {
      for (Node n : list.getValue()) {
        if (n instanceof MappingNode m) {
          String name = scalar(value(m, "name"));
          String path = scalar(value(m, "path"));
          String fromPath =
              path == null ? null : Path.of(path).normalize().getFileName().toString();
          if (model.equals(name) || (name == null && model.equals(fromPath))) {
            return m;
          }
        }
      }
    }
    throw new BerthException(
        "the service file lists no models entry for '"
            + model
            + "' (it comes from repository:), so there is nowhere to write its settings; list the"
            + " repository's models under models: instead of repository: (models: [{path:"
            + " REPOSITORY/"
            + model
            + "}, ...]), then run berth tune --apply again");
  }

  /** Sets a dotted key, creating the mappings on its way; DEFAULT removes it. */
  private static void set(MappingNode map, String dotted, Object value) {
    String[] path = dotted.split("\\.");
    MappingNode at = map;
    for (int i = 0; i < path.length - 1; i++) {
      if (TuneSetting.DEFAULT.equals(value) && !(value(at, path[i]) instanceof MappingNode)) {
        return; // nothing to remove, and no empty section to create for it
      }
      at = mapping(at, path[i]);
    }
    String key = path[path.length - 1];
    List<NodeTuple> tuples = at.getValue();
    int index = -1;
    for (int i = 0; i < tuples.size(); i++) {
      if (key.equals(scalar(tuples.get(i).getKeyNode()))) {
        index = i;
      }
    }
    if (TuneSetting.DEFAULT.equals(value)) {
      if (index >= 0) {
        tuples.remove(index);
      }
      return;
    }
    ScalarNode node = scalarNode(value);
    if (index >= 0) {
      Node old = tuples.get(index).getValueNode();
      node.setInLineComments(old.getInLineComments());
      tuples.set(index, new NodeTuple(tuples.get(index).getKeyNode(), node));
    } else {
      tuples.add(new NodeTuple(plain(key), node));
    }
  }

  /** The mapping under a key, created (block style) when absent. */
  private static MappingNode mapping(MappingNode map, String key) {
    Node existing = value(map, key);
    if (existing instanceof MappingNode m) {
      return m;
    }
    if (existing instanceof ScalarNode empty && empty.getValue().isEmpty()) {
      // 'autoscaling:' with every key commented out: an empty value, replaced by the mapping
      MappingNode created =
          new MappingNode(Tag.MAP, new ArrayList<>(), DumperOptions.FlowStyle.BLOCK);
      List<NodeTuple> tuples = map.getValue();
      for (int i = 0; i < tuples.size(); i++) {
        if (key.equals(scalar(tuples.get(i).getKeyNode()))) {
          tuples.set(i, new NodeTuple(tuples.get(i).getKeyNode(), created));
        }
      }
      return created;
    }
    if (existing != null) {
      throw new BerthException(
          "the service file's '" + key + "' is not a mapping; fix it before --apply");
    }
    MappingNode created =
        new MappingNode(Tag.MAP, new ArrayList<>(), DumperOptions.FlowStyle.BLOCK);
    map.getValue().add(new NodeTuple(plain(key), created));
    return created;
  }

  private static Node value(MappingNode map, String key) {
    for (NodeTuple t : map.getValue()) {
      if (key.equals(scalar(t.getKeyNode()))) {
        return t.getValueNode();
      }
    }
    return null;
  }

  private static String scalar(Node n) {
    return n instanceof ScalarNode s ? s.getValue() : null;
  }

  private static ScalarNode plain(String text) {
    return new ScalarNode(Tag.STR, text, null, null, DumperOptions.ScalarStyle.PLAIN);
  }

  private static ScalarNode scalarNode(Object value) {
    if (value instanceof Integer i) {
      return new ScalarNode(Tag.INT, i.toString(), null, null, DumperOptions.ScalarStyle.PLAIN);
    }
    if (value instanceof Quoted q) {
      return new ScalarNode(Tag.STR, q.text(), null, null, DumperOptions.ScalarStyle.DOUBLE_QUOTED);
    }
    return plain(value.toString());
  }

  /** A CPU quantity, quoted as Kubernetes examples write it ("2", "1500m"). */
  private static Quoted quantity(String text) {
    return new Quoted(text);
  }

  private record Quoted(String text) {}
}
