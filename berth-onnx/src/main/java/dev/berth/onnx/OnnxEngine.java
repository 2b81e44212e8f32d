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
import dev.berth.runtime.DeclaredTensors;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelContext;
import dev.berth.runtime.ModelSignature;
import dev.berth.runtime.TensorEngine;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * An ONNX model run by ONNX Runtime. One session serves every engine worker: ONNX Runtime's {@code
 * run} is thread-safe.
 */
final class OnnxEngine implements TensorEngine {
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
  private final ModelSignature signature;

  private OnnxEngine(String model, OrtSession session, ModelSignature signature) {
    this.model = model;
    this.session = session;
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
    try {
      OrtSession.SessionOptions so = new OrtSession.SessionOptions();
      so.setIntraOpNumThreads(
          options.integer("intra-op-threads", config.threadsPerInstance(), 0, 1024));
      so.setInterOpNumThreads(options.integer("inter-op-threads", 0, 0, 1024));
      so.setOptimizationLevel(optimization(options));
      String spin = options.bool("spin-wait", SPIN_WAIT_DEFAULT) ? "1" : "0";
      so.addConfigEntry("session.intra_op.allow_spinning", spin);
      so.addConfigEntry("session.inter_op.allow_spinning", spin);
      String provider =
          options
              .string("execution-provider", context.executionProvider())
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
      inputs = DeclaredTensors.reconcile(config, "inputs", inputs, "the graph");
      outputs = DeclaredTensors.reconcile(config, "outputs", outputs, "the graph");
      ModelSignature signature =
          new ModelSignature(
              PLATFORM,
              List.copyOf(inputs.values()),
              List.copyOf(outputs.values()),
              DeclaredTensors.batchable(inputs.values(), outputs.values()));
      return new OnnxEngine(context.name(), session, signature);
    } catch (OrtException e) {
      closeQuietly(session);
      throw new ModelLoadException(
          "ONNX Runtime cannot load "
              + context.versionDir().resolve(OnnxEngineProvider.MODEL_FILE)
              + ": "
              + e.getMessage(),
          e);
    } catch (RuntimeException e) {
      closeQuietly(session);
      throw e;
    }
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

  private static void closeQuietly(OrtSession session) {
    try {
      if (session != null) {
        session.close();
      }
    } catch (OrtException e) {
      // nothing more to free
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

  @Override
  public ModelSignature signature() {
    return signature;
  }

  /** A session is run from any thread: ONNX Runtime keeps no state per calling thread. */
  @Override
  public boolean runsOnAnyThread() {
    return true;
  }

  @Override
  public Map<String, Tensor> run(Map<String, Tensor> inputs, Set<String> fetch) {
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

  @Override
  public void close() {
    closeQuietly(session);
  }
}
