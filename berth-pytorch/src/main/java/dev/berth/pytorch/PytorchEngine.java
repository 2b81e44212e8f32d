package dev.berth.pytorch;

import ai.djl.Device;
import ai.djl.engine.EngineException;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.engine.PtNDManager;
import ai.djl.pytorch.engine.PtSymbolBlock;
import ai.djl.pytorch.jni.IValue;
import ai.djl.pytorch.jni.IValueUtils;
import ai.djl.pytorch.jni.JniUtils;
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
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * A TorchScript model ({@code model.pt}) run by libtorch through DJL's PyTorch engine.
 *
 * <p>A TorchScript file carries no signature, so model.yaml declares the inputs and outputs (as
 * Triton requires for PyTorch). Inputs go to {@code forward} by position, in declared order. A
 * tuple or list result maps to the declared outputs by position, a {@code Dict[str, Tensor]} by
 * key, a single tensor to the one declared output.
 *
 * <p>Thread safety: one loaded module serves every engine worker. Runs call libtorch's {@code
 * Module::forward} directly (DJL's {@code IValueUtils.forward}), which is safe to call from several
 * threads at once; DJL's {@code Predictor} (not thread-safe, and a translator layer Berth does not
 * need) and {@code PtSymbolBlock.forward(NDList)} (unsynchronised training-mode and first-call
 * fields) are not used. Each run owns a sub-manager that frees its native tensors when it closes.
 */
final class PytorchEngine implements TensorEngine {
  static final String PLATFORM = "pytorch_libtorch";

  /** model.yaml's {@code options.graph-optimizer} when absent; see {@link #load}. */
  static final boolean GRAPH_OPTIMIZER_DEFAULT = false;

  private final String model;
  private final Path file;
  private final Path config; // model.yaml, for messages
  private final NDManager manager;
  private final PtSymbolBlock module;
  private final Device device;
  private final List<TensorSpec> inputs;
  private final List<TensorSpec> outputs;
  private final ModelSignature signature;
  private final int intraOpThreads;
  private final boolean graphOptimizer;

  /** The intra-op threads each worker thread last gave libtorch (its setting is per thread). */
  private static final ThreadLocal<int[]> THREAD_SETTINGS = ThreadLocal.withInitial(() -> null);

  private PytorchEngine(
      String model,
      Path file,
      Path config,
      NDManager manager,
      PtSymbolBlock module,
      Device device,
      List<TensorSpec> inputs,
      List<TensorSpec> outputs,
      int intraOpThreads,
      boolean graphOptimizer) {
    this.model = model;
    this.file = file;
    this.config = config;
    this.manager = manager;
    this.module = module;
    this.device = device;
    this.inputs = inputs;
    this.outputs = outputs;
    this.intraOpThreads = intraOpThreads;
    this.graphOptimizer = graphOptimizer;
    this.signature =
        new ModelSignature(PLATFORM, inputs, outputs, DeclaredTensors.batchable(inputs, outputs));
  }

  static PytorchEngine load(ModelContext context) {
    ModelConfig config = context.config();
    Path file = context.versionDir().resolve(PytorchEngineProvider.MODEL_FILE);
    ConfigReader options = config.options();
    options.allowOnly(
        Set.of("intra-op-threads", "inter-op-threads", "execution-provider", "graph-optimizer"));
    int intraOp = options.integer("intra-op-threads", config.threadsPerInstance(), 1, 1024);
    boolean graphOptimizer = options.bool("graph-optimizer", GRAPH_OPTIMIZER_DEFAULT);
    String provider = options.string("execution-provider", "cpu").toLowerCase(Locale.ROOT);
    if (!provider.equals("cpu") && !provider.equals("cuda")) {
      throw options.error("execution-provider", "'" + provider + "' is unknown; use cpu or cuda");
    }

    Optional<TorchScriptArchive.Forward> forward = TorchScriptArchive.forward(file);
    List<TensorSpec> inputs = declared(config, "inputs", forward);
    List<TensorSpec> outputs = declared(config, "outputs", forward);
    forward.ifPresent(f -> checkAgainstForward(config, f, inputs, outputs));

    Libtorch.engine();
    if (options.has("inter-op-threads")) {
      int interOp = options.integer("inter-op-threads", 1, 1, 1024);
      Integer kept = Libtorch.interOpThreads(interOp);
      if (kept != null) {
        throw options.error(
            "inter-op-threads",
            "libtorch has one inter-op pool per process, already started with "
                + kept
                + " threads (by another model, or -Dai.djl.pytorch.num_interop_threads); use "
                + kept
                + " or leave the key out");
      }
    }
    Device device = Device.cpu();
    if (provider.equals("cuda")) {
      if (!Libtorch.cudaAvailable()) {
        throw options.error(
            "execution-provider",
            "cuda needs a CUDA build of libtorch "
                + Libtorch.BUNDLED_VERSION
                + " and a GPU its driver sees, but this libtorch is a CPU build or sees no GPU;"
                + " put DJL's CUDA libtorch jar (ai.djl.pytorch:pytorch-native-cu12x:"
                + Libtorch.BUNDLED_VERSION
                + ", classifier linux-x86_64) on the class path in place of pytorch-native-cpu, or"
                + " set PYTORCH_LIBRARY_PATH to an unpacked CUDA libtorch; or use cpu");
      }
      device = Device.gpu();
    }

    NDManager manager = Libtorch.engine().newBaseManager(device);
    try {
      PtSymbolBlock module =
          JniUtils.loadModule(
              (PtNDManager) manager, file, true, new String[0], new String[0], false);
      JniUtils.enableInferenceMode(module);
      return new PytorchEngine(
          context.name(),
          file,
          config.file(),
          manager,
          module,
          device,
          inputs,
          outputs,
          intraOp,
          graphOptimizer);
    } catch (EngineException e) {
      manager.close();
      throw new ModelLoadException(
          "libtorch cannot load "
              + file
              + " as TorchScript ("
              + reason(e.getMessage())
              + "); save the model with torch.jit.save(torch.jit.script(model), 'model.pt') or"
              + " torch.jit.trace",
          e);
    } catch (RuntimeException e) {
      manager.close();
      throw e;
    }
  }

  /** model.yaml's inputs or outputs, which a TorchScript model must declare. */
  private static List<TensorSpec> declared(
      ModelConfig config, String key, Optional<TorchScriptArchive.Forward> forward) {
    List<TensorSpec> declared = key.equals("inputs") ? config.inputs() : config.outputs();
    if (!declared.isEmpty()) {
      for (int i = 0; i < declared.size(); i++) {
        DataType type = declared.get(i).datatype();
        if (!TorchTypes.supported(type)) {
          throw config.error(key + "[" + i + "].datatype", TorchTypes.unsupported(type));
        }
      }
      return declared;
    }
    List<String> names =
        key.equals("inputs")
            ? forward.map(TorchScriptArchive.Forward::parameters).orElse(List.of("input__0"))
            : List.of("output__0");
    StringBuilder example = new StringBuilder(key + ":\n");
    for (String name : names) {
      example
          .append("  - name: ")
          .append(name)
          .append("\n    datatype: FP32\n    shape: [-1, 784]   # -1: any size\n");
    }
    throw config.error(
        key,
        "is missing; a TorchScript file carries no signature, so model.yaml must declare its "
            + key
            + " ("
            + (key.equals("inputs") ? "in forward()'s order" : "in the order forward() returns")
            + forward.map(f -> ", " + f).orElse("")
            + "), e.g.\n"
            + example);
  }

  /** Declarations against forward()'s parameters and return type, when the archive says them. */
  private static void checkAgainstForward(
      ModelConfig config,
      TorchScriptArchive.Forward forward,
      List<TensorSpec> inputs,
      List<TensorSpec> outputs) {
    int n = inputs.size();
    if (n < forward.required() || n > forward.parameters().size()) {
      throw config.error(
          "inputs",
          "declares "
              + n
              + " inputs but "
              + forward
              + " takes "
              + (forward.required() == forward.parameters().size()
                  ? Integer.toString(forward.required())
                  : forward.required() + " to " + forward.parameters().size())
              + "; declare one input per parameter, in order");
    }
    List<String> names = inputs.stream().map(TensorSpec::name).toList();
    List<String> params = forward.parameters().subList(0, n);
    if (!names.equals(params) && Set.copyOf(names).equals(Set.copyOf(params))) {
      throw config.error(
          "inputs",
          "declares "
              + names
              + " but "
              + forward
              + " takes them as "
              + params
              + "; inputs go to forward() by position, so list them in that order");
    }
    List<String> tuple = forward.tupleElements();
    if (!tuple.isEmpty() && tuple.size() != outputs.size()) {
      throw config.error(
          "outputs",
          "declares "
              + outputs.size()
              + " outputs but "
              + forward
              + " returns "
              + tuple.size()
              + "; declare one output per tuple element, in order");
    }
    if (forward.returnType().equals("Tensor") && outputs.size() != 1) {
      throw config.error(
          "outputs",
          "declares "
              + outputs.size()
              + " outputs but "
              + forward
              + " returns one tensor; declare one output");
    }
  }

  @Override
  public ModelSignature signature() {
    return signature;
  }

  @Override
  public Map<String, Tensor> run(Map<String, Tensor> given, Set<String> wanted) {
    int[] settings = THREAD_SETTINGS.get();
    int optimizer = graphOptimizer ? 1 : 0;
    if (settings == null || settings[0] != intraOpThreads || settings[1] != optimizer) {
      // both are per thread in libtorch: set them on the worker thread that runs
      JniUtils.setNumThreads(intraOpThreads);
      JniUtils.setGraphExecutorOptimize(graphOptimizer);
      THREAD_SETTINGS.set(new int[] {intraOpThreads, optimizer});
    }
    try (NDManager run = manager.newSubManager(device)) {
      IValue[] args = new IValue[inputs.size()];
      IValue result = null;
      try {
        for (int i = 0; i < args.length; i++) {
          TensorSpec spec = inputs.get(i);
          args[i] = IValue.from((PtNDArray) toTorch(run, given.get(spec.name())));
        }
        try {
          result = IValueUtils.forward(module, args);
        } catch (EngineException e) {
          throw runFailure(e);
        }
        return outputs(result, (PtNDManager) run, wanted);
      } finally {
        for (IValue a : args) {
          if (a != null) {
            a.close();
          }
        }
        if (result != null) {
          result.close();
        }
      }
    }
  }

  private static NDArray toTorch(NDManager run, Tensor t) {
    ByteBuffer data = t.data(); // little-endian, like the machines libtorch runs on
    // a direct buffer (what joined batches are) is used in place; a heap one is copied once
    return run.create(data, new Shape(t.shape()), TorchTypes.toTorch(t.datatype()));
  }

  private Map<String, Tensor> outputs(IValue result, PtNDManager run, Set<String> wanted) {
    Map<String, Tensor> out = new LinkedHashMap<>();
    if (result.isMap()) {
      Map<String, IValue> byKey = result.toIValueMap();
      try {
        for (TensorSpec spec : outputs) {
          if (!wanted.contains(spec.name())) {
            continue;
          }
          IValue value = byKey.get(spec.name());
          if (value == null || !value.isTensor()) {
            throw fault(
                "forward() returned a dict "
                    + (value == null ? "without key '" : "whose '")
                    + spec.name()
                    + (value == null ? "' (its keys: " + byKey.keySet() + ")" : "' is no tensor")
                    + "; declare outputs named as the dict's keys");
          }
          out.put(spec.name(), fromTorch(spec, value.toTensor(run)));
        }
      } finally {
        byKey.values().forEach(IValue::close);
      }
      return out;
    }
    List<IValue> values = new ArrayList<>();
    try {
      if (result.isTensor()) {
        values.add(result);
      } else if (result.isTuple()) {
        values.addAll(Arrays.asList(result.toIValueTuple()));
      } else if (result.isList()) {
        values.addAll(Arrays.asList(result.toIValueArray()));
      } else {
        throw fault(
            "forward() returned a "
                + result.getType()
                + "; Berth serves a tensor, a tuple or list of tensors, or a Dict[str, Tensor]");
      }
      if (values.size() != outputs.size()) {
        throw fault(
            "forward() returned "
                + values.size()
                + " tensors but model.yaml declares "
                + outputs.size()
                + " outputs "
                + signature.outputNames()
                + "; declare one output per returned tensor, in order");
      }
      for (int i = 0; i < values.size(); i++) {
        TensorSpec spec = outputs.get(i);
        if (!wanted.contains(spec.name())) {
          continue;
        }
        IValue v = values.get(i);
        if (!v.isTensor()) {
          throw fault("forward()'s result " + i + " is a " + v.getType() + ", not a tensor");
        }
        out.put(spec.name(), fromTorch(spec, v.toTensor(run)));
      }
      return out;
    } finally {
      for (IValue v : values) {
        if (v != result) {
          v.close();
        }
      }
    }
  }

  /** One copy, from libtorch's memory into a little-endian heap buffer. */
  private Tensor fromTorch(TensorSpec spec, NDArray array) {
    DataType type = TorchTypes.toBerth(array.getDataType());
    if (type != spec.datatype()) {
      throw fault(
          "output '"
              + spec.name()
              + "' is "
              + (type == null ? array.getDataType().toString() : type.toString())
              + " but model.yaml declares "
              + spec.datatype()
              + "; declare the type forward() returns");
    }
    long[] shape = array.getShape().getShape();
    if (!spec.accepts(shape)) {
      throw fault(
          "output '"
              + spec.name()
              + "' has shape "
              + Arrays.toString(shape)
              + ", which model.yaml's "
              + Arrays.toString(spec.shape())
              + " does not allow; declare the shape forward() returns (-1 for any size)");
    }
    ByteBuffer native_ = array.toByteBuffer(true);
    ByteBuffer copy = Tensor.allocate(native_.remaining());
    copy.put(native_).flip();
    return Tensor.of(spec.name(), type, shape, copy);
  }

  /**
   * A failed forward(): libtorch's own message, cut to the line that says what went wrong. A wrong
   * argument count is the model's declarations at fault (every request would fail); anything else
   * is taken as the inputs' (a shape a matmul refuses, an index out of range), so the runtime
   * retries the batch's requests one by one and only the guilty ones fail.
   */
  private BerthException runFailure(EngineException e) {
    String message = e.getMessage() == null ? e.toString() : e.getMessage();
    String line = reason(message);
    if (message.contains("argument(s) for operator 'forward'")
        || message.contains("forward() is missing value for argument")) {
      return fault("model.yaml declares " + inputs.size() + " inputs but libtorch says: " + line);
    }
    if (message.contains("CUDA error") || message.contains("CUDA out of memory")) {
      return new BerthException(
          "libtorch failed running model '" + model + "' on the GPU: " + line, e);
    }
    return new InvalidInputException(
        "libtorch refused the inputs of model '" + model + "': " + line, e);
  }

  private BerthException fault(String problem) {
    return new BerthException("model '" + model + "' (" + file + "): " + problem + " in " + config);
  }

  /**
   * The line of a libtorch message that says what went wrong: the last {@code SomeError: ...} line
   * of a TorchScript traceback, else the first line; without C++ frames.
   */
  static String reason(String message) {
    if (message == null) {
      return "";
    }
    int frames = message.indexOf("Exception raised from");
    if (frames >= 0) {
      message = message.substring(0, frames);
    }
    String[] lines = message.strip().split("\n");
    for (int i = lines.length - 1; i >= 0; i--) {
      String l = lines[i].strip();
      int colon = l.indexOf(": ");
      if (colon > 0 && l.substring(0, colon).matches("[A-Za-z_.]*(Error|Exception)")) {
        return l.substring(colon + 2);
      }
    }
    return lines.length == 0 ? "" : lines[0].strip();
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
