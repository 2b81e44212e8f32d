package dev.berth.runtime;

import dev.berth.api.BerthException;
import dev.berth.api.InvalidInputException;
import dev.berth.api.Tensor;
import dev.berth.api.TensorSpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Set;

/**
 * A tensor model as clients see it: pre-processing, the engine, post-processing, and the batching
 * between them. The {@link DynamicBatcher} hands it the requests of one batch; it runs their
 * pre-processing together, joins the requests whose tensors can be joined (same names and trailing
 * shapes) along the batch dimension, runs the engine once per joined group, post-processes, splits
 * the outputs back and gives each request the outputs it asked for.
 */
public final class TensorPipeline implements DynamicBatcher.BatchRunner, AutoCloseable {
  private final String model;
  private final TensorEngine engine;
  private final List<Preprocessor> preprocessors;
  private final Postprocessor postprocessor; // null when clients see the engine's outputs
  private final ModelSignature signature;

  /**
   * @param model model name, for messages
   * @param engine the loaded engine
   * @param preprocessors steps before it, in order
   * @param postprocessor the step after it, or null
   */
  public TensorPipeline(
      String model,
      TensorEngine engine,
      List<Preprocessor> preprocessors,
      Postprocessor postprocessor) {
    this.model = model;
    this.engine = engine;
    this.preprocessors = List.copyOf(preprocessors);
    this.postprocessor = postprocessor;
    ModelSignature own = engine.signature();
    List<TensorSpec> inputs = new ArrayList<>();
    preprocessors.forEach(p -> inputs.addAll(p.inputs()));
    inputs.addAll(own.inputs());
    List<TensorSpec> outputs = postprocessor == null ? own.outputs() : postprocessor.outputs();
    this.signature =
        new ModelSignature(
            own.platform(),
            inputs,
            outputs,
            own.batchable() && DeclaredTensors.batchable(inputs, outputs));
  }

  /**
   * Builds the pipeline of one model version: the steps its model.yaml names ({@code
   * preprocessing.type}, {@code postprocessing.type}), loaded by the providers that know them,
   * around an engine already loaded. Closes the engine when a step fails to load.
   *
   * @throws dev.berth.api.ConfigException naming the section's key and the fix
   */
  public static TensorPipeline load(
      ModelContext context, TensorEngine engine, List<StageProvider> stages) {
    List<Preprocessor> pre = new ArrayList<>();
    try {
      ConfigReader preSection = context.config().preprocessing();
      StageProvider.Context preContext =
          new StageProvider.Context(preSection, context.versionDir(), engine.signature());
      StageProvider preStep = provider(preSection, StageProvider.Kind.PRE, stages, "tokenize");
      if (preStep != null) {
        pre.add(preStep.preprocessor(preContext));
      }
      ConfigReader postSection = context.config().postprocessing();
      StageProvider post = provider(postSection, StageProvider.Kind.POST, stages, "mean-pool");
      Postprocessor postprocessor =
          post == null
              ? null
              : post.postprocessor(
                  new StageProvider.Context(postSection, context.versionDir(), engine.signature()));
      return new TensorPipeline(context.name(), engine, pre, postprocessor);
    } catch (RuntimeException e) {
      pre.forEach(Preprocessor::close);
      engine.close();
      throw e;
    }
  }

  private static StageProvider provider(
      ConfigReader section, StageProvider.Kind kind, List<StageProvider> stages, String example) {
    if (!section.has("type")) {
      if (!section.values().isEmpty()) {
        throw section.error("type", "is missing; e.g. type: " + example);
      }
      return null;
    }
    String type = section.string("type", "");
    List<String> known =
        stages.stream().filter(s -> s.kind() == kind).map(StageProvider::type).toList();
    return stages.stream()
        .filter(s -> s.kind() == kind && s.type().equals(type))
        .findFirst()
        .orElseThrow(
            () -> section.error("type", "'" + type + "' is unknown; the known types are " + known));
  }

  /** What clients send and get: the steps' inputs and outputs around the engine's. */
  public ModelSignature signature() {
    return signature;
  }

  public TensorEngine engine() {
    return engine;
  }

  /** Tokens the texts take when a step tokenizes text; empty otherwise. */
  public OptionalInt countTokens(List<String> texts) {
    for (Preprocessor p : preprocessors) {
      OptionalInt n = p.countTokens(texts);
      if (n.isPresent()) {
        return n;
      }
    }
    return OptionalInt.empty();
  }

  /**
   * Runs the requests of one batch.
   *
   * @param requests per request, its input tensors, checked against {@link #signature()}
   * @param outputs every output some request of the batch wants
   * @return per request and in the same order, its rows of the outputs asked for
   */
  @Override
  public List<List<Tensor>> run(List<List<Tensor>> requests, Set<String> outputs) {
    return run(requests, outputs, new BatchTimes());
  }

  /** Whether the engine and every step around it may run on any thread. */
  @Override
  public boolean runsOnAnyThread() {
    return engine.runsOnAnyThread()
        && preprocessors.stream().allMatch(Preprocessor::runsOnAnyThread)
        && (postprocessor == null || postprocessor.runsOnAnyThread());
  }

  /**
   * Runs the requests of one batch as {@link #run(List, Set)} does, adding where the time went to
   * {@code times}: pre-processing and joining, the engine, post-processing and splitting.
   */
  @Override
  public List<List<Tensor>> run(
      List<List<Tensor>> requests, Set<String> outputs, BatchTimes times) {
    long start = System.nanoTime();
    int n = requests.size();
    List<Map<String, Tensor>> inputs = new ArrayList<>(n);
    for (List<Tensor> request : requests) {
      Map<String, Tensor> byName = new LinkedHashMap<>();
      request.forEach(t -> byName.put(t.name(), t));
      inputs.add(byName);
    }
    for (Preprocessor p : preprocessors) {
      inputs = p.apply(inputs);
    }
    ModelSignature own = engine.signature();
    List<Map<String, Tensor>> ordered = new ArrayList<>(n);
    for (Map<String, Tensor> request : inputs) {
      ordered.add(engineInputs(request, own));
    }
    // Requests whose tensors can be joined run as one call; others (other trailing shapes) apart.
    // Without a batch dimension nothing can be joined: each request is a call of its own.
    Map<String, List<Integer>> groups = new LinkedHashMap<>();
    for (int i = 0; i < n; i++) {
      String key = signature.batchable() ? joinKey(ordered.get(i)) : "#" + i;
      groups.computeIfAbsent(key, k -> new ArrayList<>()).add(i);
    }
    List<List<Tensor>> results = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      results.add(null);
    }
    long preprocessed = System.nanoTime();
    times.input += preprocessed - start;
    times.preprocessEnd = preprocessed;
    for (List<Integer> group : groups.values()) {
      List<List<Tensor>> groupResults =
          runJoined(group, group.stream().map(ordered::get).toList(), outputs, times);
      for (int k = 0; k < group.size(); k++) {
        results.set(group.get(k), groupResults.get(k));
      }
    }
    return results;
  }

  /** A request's tensors in the engine's input order, after a check that none is missing. */
  private Map<String, Tensor> engineInputs(Map<String, Tensor> request, ModelSignature own) {
    Map<String, Tensor> out = new LinkedHashMap<>();
    Set<String> missing = new LinkedHashSet<>();
    for (TensorSpec spec : own.inputs()) {
      Tensor t = request.get(spec.name());
      if (t == null) {
        missing.add(spec.name());
      } else {
        out.put(spec.name(), t);
      }
    }
    if (!missing.isEmpty()) {
      StringBuilder alternatives = new StringBuilder();
      for (Preprocessor p : preprocessors) {
        for (TensorSpec in : p.inputs()) {
          alternatives.append(" (or send ").append(in.name()).append(" instead)");
        }
      }
      throw new InvalidInputException(
          "model '"
              + model
              + "' needs inputs "
              + own.inputNames()
              + "; missing "
              + missing
              + alternatives);
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

  private List<List<Tensor>> runJoined(
      List<Integer> indices,
      List<Map<String, Tensor>> members,
      Set<String> wanted,
      BatchTimes times) {
    long start = System.nanoTime();
    int[] rows = new int[members.size()];
    long total = 0;
    for (int i = 0; i < rows.length; i++) {
      Tensor any = members.get(i).values().iterator().next();
      rows[i] = signature.batchable() ? (int) any.dim(0) : 1;
      total += rows[i];
    }
    Map<String, Tensor> joined;
    if (members.size() == 1) {
      joined = members.get(0);
    } else {
      joined = new LinkedHashMap<>();
      for (String name : members.get(0).keySet()) {
        joined.put(name, TensorBatching.concat(members.stream().map(m -> m.get(name)).toList()));
      }
    }
    Set<String> fetch = new LinkedHashSet<>();
    if (postprocessor == null) {
      fetch.addAll(wanted);
    } else {
      fetch.addAll(postprocessor.sources());
    }
    long engineStart = System.nanoTime();
    times.input += engineStart - start;
    Map<String, Tensor> computed = engine.run(joined, fetch);
    long engineEnd = System.nanoTime();
    times.infer += engineEnd - engineStart;
    if (postprocessor != null) {
      computed = postprocessor.apply(computed, joined);
    }
    List<List<Tensor>> perRequest = new ArrayList<>(rows.length);
    for (int i = 0; i < rows.length; i++) {
      perRequest.add(new ArrayList<>(wanted.size()));
    }
    for (String name : wanted) {
      Tensor out = computed.get(name);
      if (out == null) {
        throw new BerthException(
            "the engine of model '" + model + "' gave no output '" + name + "'");
      }
      if (signature.batchable() && (out.rank() == 0 || out.dim(0) != total)) {
        throw new BerthException(
            "the engine of model '"
                + model
                + "' gave output '"
                + name
                + "' with shape "
                + Arrays.toString(out.shape())
                + " for a batch of "
                + total
                + " rows");
      }
      List<Tensor> parts = TensorBatching.split(out, rows);
      for (int i = 0; i < rows.length; i++) {
        perRequest.get(i).add(parts.get(i));
      }
    }
    long end = System.nanoTime();
    times.output += end - engineEnd;
    if (times.traced()) {
      times.calls.add(new BatchTimes.EngineCall(indices, (int) total, engineStart, engineEnd, end));
    }
    return perRequest;
  }

  /** Frees the engine and the steps. */
  @Override
  public void close() {
    try {
      engine.close();
    } finally {
      preprocessors.forEach(Preprocessor::close);
    }
  }
}
