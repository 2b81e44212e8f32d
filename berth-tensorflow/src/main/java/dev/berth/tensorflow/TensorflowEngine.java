package dev.berth.tensorflow;

import dev.berth.api.BerthException;
import dev.berth.api.DataType;
import dev.berth.api.InvalidInputException;
import dev.berth.api.ModelLoadException;
import dev.berth.api.Tensor;
import dev.berth.api.TensorSpec;
import dev.berth.runtime.ConfigReader;
import dev.berth.runtime.DeclaredTensors;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelContext;
import dev.berth.runtime.ModelSignature;
import dev.berth.runtime.TensorEngine;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.tensorflow.GraphOperation;
import org.tensorflow.Result;
import org.tensorflow.SavedModelBundle;
import org.tensorflow.Session;
import org.tensorflow.Signature;
import org.tensorflow.exceptions.TFInvalidArgumentException;
import org.tensorflow.exceptions.TFOutOfRangeException;
import org.tensorflow.exceptions.TensorFlowException;
import org.tensorflow.proto.ConfigProto;

/**
 * A TensorFlow SavedModel run by TensorFlow Java through one of its signatures ({@code
 * serving_default} unless model.yaml's {@code options.signature} names another). Clients see the
 * signature's keys as tensor names. One session serves every engine worker: a TensorFlow session
 * runs concurrent {@code run} calls safely.
 */
final class TensorflowEngine implements TensorEngine {
  static final String PLATFORM = "tensorflow_savedmodel";
  static final String DEFAULT_SIGNATURE = Signature.DEFAULT_KEY;
  static final String SERVE_TAG = "serve";

  /**
   * Default of {@code options.inter-op-threads}: negative runs every op in the calling thread, so
   * concurrent runs (one per engine instance) each use their own worker thread and the intra-op
   * pool, rather than queueing on a second pool sized for all the cores.
   */
  static final int DEFAULT_INTER_OP_THREADS = -1;

  /** Operations that hold a variable, whose values a SavedModel keeps under variables/. */
  private static final Set<String> VARIABLE_OPS = Set.of("VariableV2", "VarHandleOp", "Variable");

  private final String model;
  private final SavedModelBundle bundle;
  private final Session session;
  private final Map<String, String> feeds; // input key -> graph tensor name
  private final Map<String, String> fetches; // output key -> graph tensor name
  private final Map<String, DataType> outputTypes;
  private final ModelSignature signature;

  private TensorflowEngine(
      String model,
      SavedModelBundle bundle,
      Map<String, String> feeds,
      Map<String, String> fetches,
      Map<String, DataType> outputTypes,
      ModelSignature signature) {
    this.model = model;
    this.bundle = bundle;
    this.session = bundle.session();
    this.feeds = feeds;
    this.fetches = fetches;
    this.outputTypes = outputTypes;
    this.signature = signature;
  }

  static TensorflowEngine load(ModelContext context) {
    ModelConfig config = context.config();
    ConfigReader options = config.options();
    options.allowOnly(Set.of("signature", "intra-op-threads", "inter-op-threads"));
    String key = options.string("signature", DEFAULT_SIGNATURE);
    ConfigProto threads =
        ConfigProto.newBuilder()
            .setIntraOpParallelismThreads(
                options.integer("intra-op-threads", config.threadsPerInstance(), 0, 1024))
            .setInterOpParallelismThreads(
                options.integer("inter-op-threads", DEFAULT_INTER_OP_THREADS, -1, 1024))
            .build();

    Path dir = context.versionDir().resolve(TensorflowEngineProvider.MODEL_DIR);
    Path pb = dir.resolve("saved_model.pb");
    if (!Files.isRegularFile(pb) && !Files.isRegularFile(dir.resolve("saved_model.pbtxt"))) {
      throw new ModelLoadException(
          dir
              + " has no saved_model.pb; put a TensorFlow SavedModel there (saved_model.pb and"
              + " variables/, as tf.saved_model.save writes them)");
    }
    SavedModelBundle bundle;
    try {
      bundle =
          SavedModelBundle.loader(dir.toString())
              .withTags(SERVE_TAG)
              .withConfigProto(threads)
              .load();
    } catch (TensorFlowException e) {
      throw new ModelLoadException(
          "TensorFlow cannot load the SavedModel "
              + culprit(dir, e.getMessage())
              + " with tag '"
              + SERVE_TAG
              + "': "
              + e.getMessage()
              + "; export it again (saved_model.pb and variables/ must come from the same export)",
          e);
    } catch (LinkageError e) {
      // TensorFlow's natives did not load: JavaCPP unpacks them (about 650 MB) on first use.
      throw new ModelLoadException(
          "TensorFlow's native library cannot be loaded ("
              + e
              + "); JavaCPP unpacks it into the directory named by the system property "
              + "org.bytedeco.javacpp.cachedir (default ~/.javacpp/cache): point it at a writable"
              + " directory on a file system mounted with exec, with about 700 MB free",
          e);
    }
    try {
      requireVariables(bundle, dir);
      Signature sig = signature(bundle, key, options, pb);
      Map<String, TensorSpec> inputs =
          DeclaredTensors.reconcile(
              config, "inputs", specs(sig.getInputs(), "input", key, config), "the signature");
      Map<String, TensorSpec> outputs =
          DeclaredTensors.reconcile(
              config, "outputs", specs(sig.getOutputs(), "output", key, config), "the signature");
      Map<String, String> feeds = new LinkedHashMap<>();
      inputs.keySet().forEach(k -> feeds.put(k, sig.getInputs().get(k).name));
      Map<String, String> fetches = new LinkedHashMap<>();
      Map<String, DataType> outputTypes = new LinkedHashMap<>();
      outputs.forEach(
          (k, spec) -> {
            fetches.put(k, sig.getOutputs().get(k).name);
            outputTypes.put(k, spec.datatype());
          });
      ModelSignature signature =
          new ModelSignature(
              PLATFORM,
              List.copyOf(inputs.values()),
              List.copyOf(outputs.values()),
              DeclaredTensors.batchable(inputs.values(), outputs.values()));
      return new TensorflowEngine(context.name(), bundle, feeds, fetches, outputTypes, signature);
    } catch (RuntimeException e) {
      bundle.close();
      throw e;
    }
  }

  /**
   * TensorFlow loads a SavedModel without its variables/ directory and fails only when a request
   * reads a variable; a graph that holds variables needs them at load.
   */
  private static void requireVariables(SavedModelBundle bundle, Path dir) {
    Path index = dir.resolve("variables").resolve("variables.index");
    if (Files.isRegularFile(index)) {
      return;
    }
    Iterator<GraphOperation> ops = bundle.graph().operations();
    while (ops.hasNext()) {
      GraphOperation op = ops.next();
      if (VARIABLE_OPS.contains(op.type())) {
        throw new ModelLoadException(
            "the graph in "
                + dir.resolve("saved_model.pb")
                + " holds variables (e.g. '"
                + op.name()
                + "') but "
                + index
                + " does not exist; copy the whole SavedModel directory, variables/ included");
      }
    }
  }

  /** The file a load error is about: the variables when TensorFlow says so, else the graph. */
  private static Path culprit(Path dir, String message) {
    String m = message == null ? "" : message;
    if (m.contains("variables") || m.contains("checkpoint") || m.contains("tensor_bundle")) {
      return dir.resolve("variables");
    }
    return dir.resolve("saved_model.pb");
  }

  private static Signature signature(
      SavedModelBundle bundle, String key, ConfigReader options, Path pb) {
    List<String> keys = new ArrayList<>();
    for (Signature s : bundle.signatures()) {
      if (s.key().equals(key)) {
        return s;
      }
      keys.add(s.key());
    }
    String problem =
        pb
            + " has no signature '"
            + key
            + "'; its signatures are "
            + keys
            + (keys.isEmpty()
                ? " (none: export the model with a serving signature)"
                : "; name one with options.signature in model.yaml");
    if (options.has("signature")) {
      throw options.error("signature", problem);
    }
    throw new ModelLoadException(problem);
  }

  /**
   * The signature's tensors by key, sorted by key (a SignatureDef's maps have no order of their
   * own), in Berth's types.
   */
  private static Map<String, TensorSpec> specs(
      Map<String, Signature.TensorDescription> described,
      String kind,
      String key,
      ModelConfig config) {
    List<TensorSpec> declared = kind.equals("input") ? config.inputs() : config.outputs();
    Map<String, TensorSpec> out = new LinkedHashMap<>();
    for (Map.Entry<String, Signature.TensorDescription> e : new TreeMap<>(described).entrySet()) {
      String name = e.getKey();
      Signature.TensorDescription d = e.getValue();
      DataType type =
          TensorflowTypes.toDataType(d.dataType)
              .orElseThrow(
                  () ->
                      new ModelLoadException(
                          kind
                              + " '"
                              + name
                              + "' of signature '"
                              + key
                              + "' has type "
                              + d.dataType
                              + ", which Berth cannot serve through TensorFlow Java; export the"
                              + " model with one of "
                              + TensorflowTypes.SUPPORTED
                              + " (e.g. a tf.cast in the serving function)"));
      long[] shape;
      if (d.shape.isUnknown()) {
        // No rank in the signature: a declaration in model.yaml gives it, checked by type only.
        TensorSpec given =
            declared.stream().filter(t -> t.name().equals(name)).findFirst().orElse(null);
        if (given == null) {
          throw new ModelLoadException(
              kind
                  + " '"
                  + name
                  + "' of signature '"
                  + key
                  + "' has no known shape; declare it in model.yaml's "
                  + kind
                  + "s, e.g. {name: "
                  + name
                  + ", datatype: "
                  + type
                  + ", shape: [-1, 784]}");
        }
        shape = new long[given.shape().length];
        java.util.Arrays.fill(shape, -1);
      } else {
        shape = d.shape.asArray();
      }
      out.put(name, new TensorSpec(name, type, shape));
    }
    return out;
  }

  @Override
  public ModelSignature signature() {
    return signature;
  }

  @Override
  public Map<String, Tensor> run(Map<String, Tensor> inputs, Set<String> outputs) {
    List<org.tensorflow.Tensor> fed = new ArrayList<>(feeds.size());
    try {
      Session.Runner runner = session.runner();
      for (Map.Entry<String, String> feed : feeds.entrySet()) {
        Tensor t = inputs.get(feed.getKey());
        if (t == null) {
          throw new InvalidInputException(
              "model '" + model + "' needs input '" + feed.getKey() + "'");
        }
        org.tensorflow.Tensor tf = TensorCopies.toTensorflow(t);
        fed.add(tf);
        runner.feed(feed.getValue(), tf);
      }
      List<String> wanted = new ArrayList<>(outputs.size());
      for (String name : outputs) {
        String tensor = fetches.get(name);
        if (tensor == null) {
          throw new InvalidInputException(
              "model '" + model + "' has no output '" + name + "'; it has " + fetches.keySet());
        }
        wanted.add(name);
        runner.fetch(tensor);
      }
      Map<String, Tensor> out = new LinkedHashMap<>();
      try (Result result = runner.run()) {
        for (int i = 0; i < wanted.size(); i++) {
          String name = wanted.get(i);
          out.put(name, TensorCopies.fromTensorflow(name, outputTypes.get(name), result.get(i)));
        }
      }
      return out;
    } catch (TFInvalidArgumentException | TFOutOfRangeException e) {
      // TensorFlow's verdict on the values fed (an index out of a table's range, shapes that do
      // not combine): the request's fault.
      throw new InvalidInputException(
          "model '" + model + "' refused the inputs: " + e.getMessage(), e);
    } catch (TensorFlowException e) {
      throw new BerthException(
          "TensorFlow failed to run model '" + model + "': " + e.getMessage(), e);
    } finally {
      fed.forEach(org.tensorflow.Tensor::close);
    }
  }

  /** Frees the session and the graph. */
  @Override
  public void close() {
    bundle.close();
  }
}
