package dev.berth.onnx;

import ai.onnxruntime.NodeInfo;
import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OnnxValue;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;
import ai.onnxruntime.TensorInfo;
import dev.berth.api.BerthException;
import dev.berth.api.DataType;
import dev.berth.api.InvalidInputException;
import dev.berth.api.ModelLoadException;
import dev.berth.api.Tensor;
import dev.berth.api.TensorSpec;
import dev.berth.runtime.ConfigReader;
import dev.berth.runtime.Engine;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelContext;
import dev.berth.runtime.ModelSignature;
import dev.berth.runtime.TensorBatching;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * An ONNX model run by ONNX Runtime, with optional text tokenization before and mean pooling after
 * (model.yaml's {@code preprocessing} and {@code postprocessing}). One session serves every engine
 * worker: ONNX Runtime's {@code run} is thread-safe.
 */
final class OnnxEngine implements Engine, dev.berth.runtime.TokenCounter {
  /**
   * Run errors that say the engine or its device failed, not the request (every other run error is
   * answered as the request's: 400).
   */
  private static final java.util.Set<OrtException.OrtErrorCode> ENGINE_FAULTS =
      java.util.EnumSet.of(
          OrtException.OrtErrorCode.ORT_ENGINE_ERROR,
          OrtException.OrtErrorCode.ORT_EP_FAIL,
          OrtException.OrtErrorCode.ORT_DEVICE_RESET);

  static final String PLATFORM = "onnxruntime_onnx";
  static final boolean SPIN_WAIT_DEFAULT = true;

  private final String model;
  private final OrtSession session;
  private final Map<String, TensorSpec> graphInputs;
  private final Map<String, TensorSpec> graphOutputs;
  private final Tokenization tokenization; // null when inputs are tensors only
  private final ImagePreprocessing images; // null when no image input
  private final MeanPooling pooling; // null when outputs are the graph's
  private final ModelSignature signature;

  private OnnxEngine(
      String model,
      OrtSession session,
      Map<String, TensorSpec> graphInputs,
      Map<String, TensorSpec> graphOutputs,
      Tokenization tokenization,
      ImagePreprocessing images,
      MeanPooling pooling,
      ModelSignature signature) {
    this.model = model;
    this.session = session;
    this.graphInputs = graphInputs;
    this.graphOutputs = graphOutputs;
    this.tokenization = tokenization;
    this.images = images;
    this.pooling = pooling;
    this.signature = signature;
  }

  static OnnxEngine load(ModelContext context) {
    ModelConfig config = context.config();
    ConfigReader options = config.options();
    options.allowOnly(
        Set.of(
            "intra-op-threads",
            "inter-op-threads",
            "execution-provider",
            "optimization",
            "spin-wait"));
    OrtEnvironment env = OrtEnvironment.getEnvironment();
    OrtSession session = null;
    Tokenization tokenization = null;
    try {
      OrtSession.SessionOptions so = new OrtSession.SessionOptions();
      so.setIntraOpNumThreads(
          options.integer("intra-op-threads", defaultIntraOpThreads(config), 0, 1024));
      so.setInterOpNumThreads(options.integer("inter-op-threads", 0, 0, 1024));
      so.setOptimizationLevel(optimization(options));
      String spin = options.bool("spin-wait", SPIN_WAIT_DEFAULT) ? "1" : "0";
      so.addConfigEntry("session.intra_op.allow_spinning", spin);
      so.addConfigEntry("session.inter_op.allow_spinning", spin);
      String provider =
          options
              .string(
                  "execution-provider",
                  System.getProperty(OnnxEngineProvider.DEFAULT_PROVIDER_PROPERTY, "cpu"))
              .toLowerCase(Locale.ROOT);
      switch (provider) {
        case "cpu" -> {}
        case "cuda" -> {
          try {
            so.addCUDA(0);
          } catch (OrtException e) {
            throw options.error(
                "execution-provider",
                "the CUDA provider is not available in this ONNX Runtime build ("
                    + e.getMessage()
                    + "); use 'cpu' or run Berth with the GPU build of ONNX Runtime");
          }
        }
        default ->
            throw options.error(
                "execution-provider", "'" + provider + "' is unknown; use cpu or cuda");
      }
      String file = context.versionDir().resolve(OnnxEngineProvider.MODEL_FILE).toString();
      session = env.createSession(file, so);

      Map<String, TensorSpec> inputs = specs(session.getInputInfo(), "input");
      Map<String, TensorSpec> outputs = specs(session.getOutputInfo(), "output");
      inputs = declared(config, "inputs", config.inputs(), inputs);
      outputs = declared(config, "outputs", config.outputs(), outputs);

      ConfigReader pre = config.preprocessing();
      ImagePreprocessing images = null;
      if (pre.has("type")) {
        String type = pre.string("type", "");
        if (Tokenization.TYPE.equals(type)) {
          tokenization = Tokenization.load(pre, context.versionDir(), inputs.keySet());
        } else if (ImagePreprocessing.TYPE.equals(type)) {
          images = ImagePreprocessing.load(pre, inputs);
        } else {
          throw pre.error(
              "type", "'" + type + "' is unknown; the ONNX engine knows 'tokenize' and 'image'");
        }
      } else if (!pre.values().isEmpty()) {
        throw pre.error("type", "is missing; e.g. type: tokenize, or type: image");
      }
      MeanPooling pooling = null;
      ConfigReader post = config.postprocessing();
      if (post.has("type")) {
        String type = post.string("type", "");
        if (!MeanPooling.TYPE.equals(type)) {
          throw post.error("type", "'" + type + "' is unknown; the ONNX engine knows 'mean-pool'");
        }
        pooling = MeanPooling.load(post, outputs.keySet());
      } else if (!post.values().isEmpty()) {
        throw post.error("type", "is missing; e.g. type: mean-pool");
      }

      List<TensorSpec> visibleInputs = new ArrayList<>();
      if (tokenization != null) {
        visibleInputs.add(new TensorSpec(tokenization.input(), DataType.BYTES, new long[] {-1}));
      }
      if (images != null) {
        visibleInputs.add(new TensorSpec(images.input(), DataType.BYTES, new long[] {-1}));
      }
      visibleInputs.addAll(inputs.values());
      List<TensorSpec> visibleOutputs = new ArrayList<>();
      if (pooling != null) {
        long hidden = outputs.get(pooling.source()).shape()[2];
        visibleOutputs.add(
            new TensorSpec(pooling.output(), DataType.FP32, new long[] {-1, hidden}));
      } else {
        visibleOutputs.addAll(outputs.values());
      }
      boolean batchable =
          visibleInputs.stream().allMatch(t -> t.shape().length > 0 && t.shape()[0] == -1)
              && visibleOutputs.stream().allMatch(t -> t.shape().length > 0 && t.shape()[0] == -1);
      ModelSignature signature =
          new ModelSignature(PLATFORM, visibleInputs, visibleOutputs, batchable);
      return new OnnxEngine(
          context.name(), session, inputs, outputs, tokenization, images, pooling, signature);
    } catch (OrtException e) {
      closeQuietly(session, tokenization);
      throw new ModelLoadException(
          "ONNX Runtime cannot load "
              + context.versionDir().resolve(OnnxEngineProvider.MODEL_FILE)
              + ": "
              + e.getMessage(),
          e);
    } catch (RuntimeException e) {
      closeQuietly(session, tokenization);
      throw e;
    }
  }

  /**
   * Concurrent runs of one session share its intra-op thread pool, so with several engine instances
   * each run gets its share of the cores rather than a pool sized for all of them.
   */
  static int defaultIntraOpThreads(ModelConfig config) {
    return Math.max(1, Runtime.getRuntime().availableProcessors() / config.instances());
  }

  private static OrtSession.SessionOptions.OptLevel optimization(ConfigReader options) {
    String level = options.string("optimization", "all").toLowerCase(Locale.ROOT);
    return switch (level) {
      case "none" -> OrtSession.SessionOptions.OptLevel.NO_OPT;
      case "basic" -> OrtSession.SessionOptions.OptLevel.BASIC_OPT;
      case "extended" -> OrtSession.SessionOptions.OptLevel.EXTENDED_OPT;
      case "all" -> OrtSession.SessionOptions.OptLevel.ALL_OPT;
      default ->
          throw options.error(
              "optimization", "'" + level + "' is unknown; use none, basic, extended or all");
    };
  }

  private static void closeQuietly(OrtSession session, Tokenization tokenization) {
    try {
      if (session != null) {
        session.close();
      }
    } catch (OrtException e) {
      // nothing more to free
    }
    if (tokenization != null) {
      tokenization.close();
    }
  }

  private static Map<String, TensorSpec> specs(Map<String, NodeInfo> infos, String kind) {
    Map<String, TensorSpec> out = new LinkedHashMap<>();
    for (NodeInfo node : infos.values()) {
      if (!(node.getInfo() instanceof TensorInfo info)) {
        throw new ModelLoadException(
            kind
                + " '"
                + node.getName()
                + "' is a "
                + node.getInfo().getClass().getSimpleName()
                + ", not a tensor; Berth serves tensor inputs and outputs only");
      }
      DataType type =
          OnnxTypes.toDataType(info.onnxType)
              .orElseThrow(
                  () ->
                      new ModelLoadException(
                          kind
                              + " '"
                              + node.getName()
                              + "' has element type "
                              + info.onnxType
                              + ", which ONNX Runtime's Java API cannot carry; export the model"
                              + " with a supported type (BOOL, UINT8, INT8..INT64, FP16, FP32,"
                              + " FP64, STRING)"));
      out.put(node.getName(), new TensorSpec(node.getName(), type, info.getShape()));
    }
    return out;
  }

  /** Declarations in model.yaml replace the graph's, after a check that they agree with it. */
  private static Map<String, TensorSpec> declared(
      ModelConfig config, String key, List<TensorSpec> declared, Map<String, TensorSpec> graph) {
    if (declared.isEmpty()) {
      return graph;
    }
    Map<String, TensorSpec> out = new LinkedHashMap<>();
    for (int i = 0; i < declared.size(); i++) {
      TensorSpec d = declared.get(i);
      TensorSpec g = graph.get(d.name());
      String at = key + "[" + i + "]";
      if (g == null) {
        throw config.error(
            at + ".name",
            "the graph has no "
                + key.replace("s", "")
                + " '"
                + d.name()
                + "'; it has "
                + graph.keySet());
      }
      if (g.datatype() != d.datatype()) {
        throw config.error(
            at + ".datatype", "the graph says " + g.datatype() + ", not " + d.datatype());
      }
      if (g.shape().length != d.shape().length) {
        throw config.error(
            at + ".shape",
            "the graph's shape is " + Arrays.toString(g.shape()) + ", of another rank");
      }
      for (int k = 0; k < g.shape().length; k++) {
        long fixed = g.shape()[k];
        if (fixed >= 0 && d.shape()[k] != fixed) {
          throw config.error(
              at + ".shape",
              "dimension "
                  + k
                  + " is "
                  + d.shape()[k]
                  + " but the graph's shape is "
                  + Arrays.toString(g.shape())
                  + "; a dimension the graph fixes must be declared"
                  + " with that size (-1 may be narrowed to a size, not the other way round)");
        }
      }
      out.put(d.name(), d);
    }
    if (key.equals("inputs") && !out.keySet().containsAll(graph.keySet())) {
      Set<String> missing = new LinkedHashSet<>(graph.keySet());
      missing.removeAll(out.keySet());
      throw config.error(key, "declares some inputs but not " + missing + "; declare all or none");
    }
    return out;
  }

  @Override
  public ModelSignature signature() {
    return signature;
  }

  @Override
  public List<List<Tensor>> infer(List<List<Tensor>> requests, Set<String> outputs) {
    int n = requests.size();
    // 1. Every request as graph inputs. Text requests are tokenized together, padded to one length.
    List<Map<String, Tensor>> graphInputsPerRequest = new ArrayList<>(n);
    List<Integer> textRequests = new ArrayList<>();
    List<Tensor> texts = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      Map<String, Tensor> byName = new LinkedHashMap<>();
      for (Tensor t : requests.get(i)) {
        byName.put(t.name(), t);
      }
      if (tokenization != null && byName.containsKey(tokenization.input())) {
        if (byName.size() > 1) {
          throw new InvalidInputException(
              "send either '"
                  + tokenization.input()
                  + "' (text) or the token tensors "
                  + tokenization.tokenInputs()
                  + ", not both");
        }
        textRequests.add(i);
        texts.add(byName.get(tokenization.input()));
        graphInputsPerRequest.add(null);
      } else if (images != null && byName.containsKey(images.input())) {
        if (byName.size() > 1) {
          throw new InvalidInputException(
              "send either '"
                  + images.input()
                  + "' (image files) or '"
                  + images.graphInput()
                  + "' (pixels), not both");
        }
        Map<String, Tensor> pixels = new LinkedHashMap<>();
        pixels.put(images.graphInput(), images.decode(byName.get(images.input())));
        graphInputsPerRequest.add(completeTokenInputs(pixels));
      } else {
        graphInputsPerRequest.add(completeTokenInputs(byName));
      }
    }
    if (!texts.isEmpty()) {
      List<Tensor> tokens = tokenization.tokenize(texts);
      int[] rows = texts.stream().mapToInt(t -> (int) t.dim(0)).toArray();
      List<List<Tensor>> perRequest = new ArrayList<>();
      for (int r = 0; r < rows.length; r++) {
        perRequest.add(new ArrayList<>());
      }
      for (Tensor t : tokens) {
        List<Tensor> parts = TensorBatching.split(t, rows);
        for (int r = 0; r < rows.length; r++) {
          perRequest.get(r).add(parts.get(r));
        }
      }
      for (int r = 0; r < rows.length; r++) {
        Map<String, Tensor> byName = new LinkedHashMap<>();
        perRequest.get(r).forEach(t -> byName.put(t.name(), t));
        graphInputsPerRequest.set(textRequests.get(r), byName);
      }
    }

    // 2. Requests whose inputs can be joined run as one call; others (other trailing shapes) apart.
    // Without a batch dimension nothing can be joined: each request is a call of its own.
    Map<String, List<Integer>> groups = new LinkedHashMap<>();
    for (int i = 0; i < n; i++) {
      String key = signature.batchable() ? joinKey(graphInputsPerRequest.get(i)) : "#" + i;
      groups.computeIfAbsent(key, k -> new ArrayList<>()).add(i);
    }
    List<List<Tensor>> results = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      results.add(null);
    }
    for (List<Integer> group : groups.values()) {
      List<Map<String, Tensor>> members = group.stream().map(graphInputsPerRequest::get).toList();
      List<List<Tensor>> groupResults = runJoined(members, outputs);
      for (int k = 0; k < group.size(); k++) {
        results.set(group.get(k), groupResults.get(k));
      }
    }
    return results;
  }

  /** Checks a request that sends graph inputs has them all (token defaults filled in). */
  private Map<String, Tensor> completeTokenInputs(Map<String, Tensor> given) {
    Map<String, Tensor> out = new LinkedHashMap<>(given);
    if (tokenization != null && given.containsKey(tokenization.tokenInputs().get(0))) {
      Tensor ids = given.get(tokenization.tokenInputs().get(0));
      long count = ids.elementCount();
      if (ids.rank() != 2 || ids.dim(1) == 0) {
        throw new InvalidInputException(
            "'"
                + ids.name()
                + "' must be [rows, tokens] with at least one token per row, got "
                + Arrays.toString(ids.shape()));
      }
      if (tokenization.maskInput() != null && !given.containsKey(tokenization.maskInput())) {
        long[] ones = new long[(int) count];
        Arrays.fill(ones, 1);
        out.put(
            tokenization.maskInput(), Tensor.ofLongs(tokenization.maskInput(), ids.shape(), ones));
      }
      if (tokenization.typeIdsInput() != null && !given.containsKey(tokenization.typeIdsInput())) {
        out.put(
            tokenization.typeIdsInput(),
            Tensor.ofLongs(tokenization.typeIdsInput(), ids.shape(), new long[(int) count]));
      }
      for (Tensor t : out.values()) {
        if (!Arrays.equals(t.shape(), ids.shape())) {
          throw new InvalidInputException(
              "token tensors must share one shape: '"
                  + t.name()
                  + "' is "
                  + Arrays.toString(t.shape())
                  + ", '"
                  + ids.name()
                  + "' is "
                  + Arrays.toString(ids.shape()));
        }
      }
    }
    Set<String> missing = new LinkedHashSet<>(graphInputs.keySet());
    missing.removeAll(out.keySet());
    if (!missing.isEmpty()) {
      throw new InvalidInputException(
          "model '"
              + model
              + "' needs inputs "
              + graphInputs.keySet()
              + "; missing "
              + missing
              + (tokenization == null ? "" : " (or send text as '" + tokenization.input() + "')")
              + (images == null ? "" : " (or send image files as '" + images.input() + "')"));
    }
    return out;
  }

  private static String joinKey(Map<String, Tensor> inputs) {
    StringBuilder key = new StringBuilder();
    for (Tensor t : inputs.values()) {
      long[] shape = t.shape();
      key.append(t.name())
          .append(':')
          .append(
              Arrays.toString(Arrays.copyOfRange(shape, Math.min(1, shape.length), shape.length)))
          .append(';');
    }
    return key.toString();
  }

  private List<List<Tensor>> runJoined(List<Map<String, Tensor>> members, Set<String> wanted) {
    int[] rows = new int[members.size()];
    for (int i = 0; i < rows.length; i++) {
      Tensor any = members.get(i).values().iterator().next();
      rows[i] = signature.batchable() ? (int) any.dim(0) : 1;
    }
    Map<String, Tensor> joined = new LinkedHashMap<>();
    if (members.size() == 1) {
      joined.putAll(members.get(0));
    } else {
      for (String name : members.get(0).keySet()) {
        joined.put(name, TensorBatching.concat(members.stream().map(m -> m.get(name)).toList()));
      }
    }
    Set<String> fetch = new LinkedHashSet<>();
    for (String name : wanted) {
      fetch.add(pooling != null && name.equals(pooling.output()) ? pooling.source() : name);
    }
    Map<String, Tensor> computed = run(joined, fetch);
    List<Tensor> outs = new ArrayList<>();
    for (String name : wanted) {
      if (pooling != null && name.equals(pooling.output())) {
        Tensor mask =
            tokenization == null || tokenization.maskInput() == null
                ? null
                : joined.get(tokenization.maskInput());
        outs.add(pooling.pool(computed.get(pooling.source()), mask));
      } else {
        outs.add(computed.get(name));
      }
    }
    List<List<Tensor>> perRequest = new ArrayList<>(rows.length);
    for (int i = 0; i < rows.length; i++) {
      perRequest.add(new ArrayList<>(outs.size()));
    }
    for (Tensor out : outs) {
      List<Tensor> parts = TensorBatching.split(out, rows);
      for (int i = 0; i < rows.length; i++) {
        perRequest.get(i).add(parts.get(i));
      }
    }
    return perRequest;
  }

  private Map<String, Tensor> run(Map<String, Tensor> inputs, Set<String> fetch) {
    OrtEnvironment env = OrtEnvironment.getEnvironment();
    Map<String, OnnxTensor> feeds = new HashMap<>();
    try {
      for (Tensor t : inputs.values()) {
        feeds.put(t.name(), toOnnx(env, t));
      }
      try (OrtSession.Result result = session.run(feeds, fetch)) {
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Map.Entry<String, OnnxValue> e : result) {
          out.put(e.getKey(), fromOnnx(e.getKey(), (OnnxTensor) e.getValue()));
        }
        return out;
      }
    } catch (OrtException e) {
      if (ENGINE_FAULTS.contains(e.getCode())) {
        // not the request's doing: the registry takes this version out of service
        throw new BerthException(
            "ONNX Runtime failed running model '" + model + "' (" + e.getMessage() + ")", e);
      }
      throw new InvalidInputException(
          "ONNX Runtime refused the inputs of model '" + model + "': " + e.getMessage(), e);
    } finally {
      feeds.values().forEach(OnnxTensor::close);
    }
  }

  private static OnnxTensor toOnnx(OrtEnvironment env, Tensor t) throws OrtException {
    long[] shape = t.shape();
    if (t.datatype() == DataType.BYTES) {
      String[] strings = new String[t.elements().size()];
      for (int i = 0; i < strings.length; i++) {
        strings[i] = new String(t.elements().get(i), StandardCharsets.UTF_8);
      }
      return OnnxTensor.createTensor(env, strings, shape);
    }
    ByteBuffer data = t.data();
    if (!data.isDirect()) {
      ByteBuffer direct =
          ByteBuffer.allocateDirect(data.remaining()).order(ByteOrder.LITTLE_ENDIAN);
      direct.put(data).flip();
      data = direct;
    }
    return OnnxTensor.createTensor(env, data, shape, OnnxTypes.toJavaType(t.datatype()));
  }

  private Tensor fromOnnx(String name, OnnxTensor value) {
    TensorInfo info = value.getInfo();
    long[] shape = info.getShape();
    DataType type =
        OnnxTypes.toDataType(info.onnxType)
            .orElseThrow(
                () -> new IllegalStateException("output '" + name + "' is " + info.onnxType));
    if (type == DataType.BYTES) {
      try {
        List<byte[]> elements = new ArrayList<>();
        flatten(value.getValue(), elements);
        return Tensor.ofBytes(name, shape, elements);
      } catch (OrtException e) {
        throw new IllegalStateException("cannot read output '" + name + "'", e);
      }
    }
    ByteBuffer bytes = value.getByteBuffer().order(ByteOrder.LITTLE_ENDIAN);
    return Tensor.of(name, type, shape, bytes);
  }

  private static void flatten(Object value, List<byte[]> into) {
    if (value instanceof String s) {
      into.add(s.getBytes(StandardCharsets.UTF_8));
    } else if (value instanceof Object[] array) {
      for (Object o : array) {
        flatten(o, into);
      }
    }
  }

  /** Tokens of the texts as the tokenizer gives them to the model; empty without a tokenizer. */
  @Override
  public java.util.OptionalInt countTokens(List<String> texts) {
    return tokenization == null
        ? java.util.OptionalInt.empty()
        : java.util.OptionalInt.of(tokenization.count(texts));
  }

  @Override
  public void close() {
    closeQuietly(session, tokenization);
  }

  /** For messages and tests: the engine's view of the graph. */
  Map<String, TensorSpec> graphInputs() {
    return graphInputs;
  }

  Map<String, TensorSpec> graphOutputs() {
    return graphOutputs;
  }
}
