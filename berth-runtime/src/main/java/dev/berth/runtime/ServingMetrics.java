package dev.berth.runtime;

import io.prometheus.metrics.core.metrics.Counter;
import io.prometheus.metrics.core.metrics.Gauge;
import io.prometheus.metrics.core.metrics.GaugeWithCallback;
import io.prometheus.metrics.core.metrics.Histogram;
import io.prometheus.metrics.instrumentation.jvm.JvmMetrics;
import io.prometheus.metrics.model.registry.PrometheusRegistry;
import io.prometheus.metrics.model.snapshots.ClassicHistogramBuckets;
import io.prometheus.metrics.model.snapshots.CounterSnapshot;
import io.prometheus.metrics.model.snapshots.HistogramSnapshot;
import io.prometheus.metrics.model.snapshots.Labels;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.IntSupplier;

/**
 * Every metric the serving path emits, in one registry per server (no global state). Latencies are
 * in seconds, as Prometheus' conventions ask.
 *
 * <p>No metric samples exemplars: with OpenTelemetry's API on the class path (berth-server's
 * tracing) Prometheus' client would otherwise look for a current span on every observation, and
 * Berth's spans are never the thread's current one.
 */
public final class ServingMetrics {
  /** Upper bounds of the latency histograms' buckets, in seconds (+Inf after the last). */
  static final double[] LATENCY_BUCKETS = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30
  };

  private static final double[] BATCH_BUCKETS = {1, 2, 4, 8, 16, 32, 64, 128, 256};

  /** Model state values of the {@code berth_model_state} gauge. */
  public enum ModelState {
    LOADING,
    READY,
    UNAVAILABLE,
    UNLOADED
  }

  private final PrometheusRegistry registry = new PrometheusRegistry();
  private final Counter requests =
      Counter.builder()
          .name("berth_requests_total")
          .help(
              "Inference requests answered, by model, version, protocol and status (HTTP code or gRPC status)")
          .labelNames("model", "version", "protocol", "code")
          .withoutExemplars()
          .register(registry);
  private final Histogram requestDuration =
      Histogram.builder()
          .name("berth_request_duration_seconds")
          .help("Time from a request's arrival to its answer, decoding and encoding included")
          .labelNames("model", "version", "protocol")
          .classicOnly()
          .classicUpperBounds(LATENCY_BUCKETS)
          .withoutExemplars()
          .register(registry);
  private final Histogram queueDuration =
      Histogram.builder()
          .name("berth_queue_duration_seconds")
          .help("Time a request waited in its model's queue before an engine took it")
          .labelNames("model", "version")
          .classicOnly()
          .classicUpperBounds(LATENCY_BUCKETS)
          .withoutExemplars()
          .register(registry);
  private final Histogram computeDuration =
      Histogram.builder()
          .name("berth_compute_duration_seconds")
          .help("Time the engine spent on one batch, pre- and post-processing included")
          .labelNames("model", "version")
          .classicOnly()
          .classicUpperBounds(LATENCY_BUCKETS)
          .withoutExemplars()
          .register(registry);
  private final Histogram batchSize =
      Histogram.builder()
          .name("berth_batch_size")
          .help("Rows in one engine call")
          .labelNames("model", "version")
          .classicOnly()
          .classicUpperBounds(BATCH_BUCKETS)
          .withoutExemplars()
          .register(registry);
  private final Gauge inflight =
      Gauge.builder()
          .name("berth_inflight_requests")
          .help("Inference requests accepted and not yet answered")
          .labelNames("model")
          .withoutExemplars()
          .register(registry);
  // Read from the queues themselves when scraped: a value set on each change would keep the last
  // one set after a burst whose clients left, however wrong it had become.
  private final Map<List<String>, QueueWatch> queues = new ConcurrentHashMap<>();
  private final Map<List<String>, InferenceStatistics> statistics = new ConcurrentHashMap<>();
  private final GaugeWithCallback queueDepth =
      GaugeWithCallback.builder()
          .name("berth_queue_size")
          .help("Requests waiting in a model's queue")
          .labelNames("model", "version")
          .callback(
              gauge ->
                  queues.forEach(
                      (labels, watch) ->
                          gauge.call(watch.depth().getAsInt(), labels.get(0), labels.get(1))))
          .register(registry);
  private final GaugeWithCallback queueCapacity =
      GaugeWithCallback.builder()
          .name("berth_queue_capacity")
          .help("Requests a model's queue holds before it refuses more (batching.max-queue-size)")
          .labelNames("model", "version")
          .callback(
              gauge ->
                  queues.forEach(
                      (labels, watch) ->
                          gauge.call(watch.capacity(), labels.get(0), labels.get(1))))
          .register(registry);
  private final Counter rejected =
      Counter.builder()
          .name("berth_rejected_requests_total")
          .help("Requests refused before reaching an engine, by reason (queue_full, deadline)")
          .labelNames("model", "version", "reason")
          .withoutExemplars()
          .register(registry);
  private final Gauge loadDuration =
      Gauge.builder()
          .name("berth_model_load_duration_seconds")
          .help("How long the last load of a model version took")
          .labelNames("model", "version")
          .withoutExemplars()
          .register(registry);
  private final Gauge modelState =
      Gauge.builder()
          .name("berth_model_state")
          .help("1 for the state a model version is in, 0 for the others")
          .labelNames("model", "version", "state")
          .withoutExemplars()
          .register(registry);
  private final Gauge gateScore =
      Gauge.builder()
          .name("berth_model_gate_score")
          .help("The figure a model version measured on its model.yaml gate's data set")
          .labelNames("model", "version", "metric")
          .withoutExemplars()
          .register(registry);
  private final Gauge gateThreshold =
      Gauge.builder()
          .name("berth_model_gate_threshold")
          .help("The lowest figure that passed the gate when the version was evaluated")
          .labelNames("model", "version", "metric")
          .withoutExemplars()
          .register(registry);
  private final Gauge gatePassed =
      Gauge.builder()
          .name("berth_model_gate_passed")
          .help("1 when a model version passed its gate, 0 when the gate refused it")
          .labelNames("model", "version")
          .withoutExemplars()
          .register(registry);

  private static final double[] FIRST_TOKEN_BUCKETS = {
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80
  };
  private static final double[] TOKEN_BUCKETS = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5
  };
  private final Histogram llmFirstToken =
      Histogram.builder()
          .name("berth_llm_time_to_first_token_seconds")
          .help("Time from a generation request's arrival to its first token, waiting included")
          .labelNames("model", "version")
          .classicOnly()
          .classicUpperBounds(FIRST_TOKEN_BUCKETS)
          .withoutExemplars()
          .register(registry);
  private final Histogram llmPerToken =
      Histogram.builder()
          .name("berth_llm_time_per_output_token_seconds")
          .help("Time between one generated token and the next in one sequence")
          .labelNames("model", "version")
          .classicOnly()
          .classicUpperBounds(TOKEN_BUCKETS)
          .withoutExemplars()
          .register(registry);
  private final Counter llmPromptTokens =
      Counter.builder()
          .name("berth_llm_prompt_tokens_total")
          .help("Prompt tokens of the generations started")
          .labelNames("model", "version")
          .withoutExemplars()
          .register(registry);
  private final Counter llmGeneratedTokens =
      Counter.builder()
          .name("berth_llm_generation_tokens_total")
          .help("Tokens generated")
          .labelNames("model", "version")
          .withoutExemplars()
          .register(registry);
  private final Gauge llmRunning =
      Gauge.builder()
          .name("berth_llm_sequences_running")
          .help("Sequences being generated (at most llm.parallel)")
          .labelNames("model", "version")
          .withoutExemplars()
          .register(registry);
  private final Gauge llmWaiting =
      Gauge.builder()
          .name("berth_llm_sequences_waiting")
          .help("Generation requests waiting for a sequence (at most llm.max-waiting)")
          .labelNames("model", "version")
          .withoutExemplars()
          .register(registry);
  private final Gauge llmKvCache =
      Gauge.builder()
          .name("berth_llm_kv_cache_usage_ratio")
          .help(
              "Tokens held by running sequences over the KV cache's capacity (llm.context-size"
                  + " times llm.parallel)")
          .labelNames("model", "version")
          .withoutExemplars()
          .register(registry);

  /**
   * Adds the JVM's and the process's own metrics to this registry: memory pools and heap ({@code
   * jvm_memory_used_bytes}), GC, threads, class loading, CPU time and open files ({@code
   * process_*}). A server's {@code /metrics} carries them; they are read from the JVM's management
   * beans and /proc when scraped.
   */
  public ServingMetrics withJvmMetrics() {
    JvmMetrics.builder().register(registry);
    return this;
  }

  public PrometheusRegistry registry() {
    return registry;
  }

  /**
   * One answered inference request.
   *
   * @param code the HTTP status for REST, the gRPC status name for gRPC
   */
  public void request(String model, String version, String protocol, String code, long nanos) {
    String v = version == null ? "" : version;
    requests.labelValues(model, v, protocol, code).inc();
    requestDuration.labelValues(model, v, protocol).observe(nanos / 1e9);
  }

  void queued(String model, String version, long nanos) {
    queueDuration.labelValues(model, version).observe(nanos / 1e9);
    statistics(model, version).queued(nanos);
  }

  void batch(String model, String version, int rows, long computeNanos, BatchTimes times) {
    batchSize.labelValues(model, version).observe(rows);
    computeDuration.labelValues(model, version).observe(computeNanos / 1e9);
    statistics(model, version).executed(rows, times.input, times.infer, times.output);
  }

  /**
   * What the request, batch and token metrics have counted so far, by model version (a key is
   * {@code List.of(model, version)}), read from the metrics themselves: the serving path records
   * nothing more for them. Requests answered before a version was chosen (version "") are left out.
   */
  Map<List<String>, RecentFigures.Counts> counts() {
    Map<List<String>, RecentFigures.Counts> out = new HashMap<>();
    for (CounterSnapshot.CounterDataPointSnapshot p : requests.collect().getDataPoints()) {
      long n = Math.round(p.getValue());
      boolean error = RecentFigures.isServerError(p.getLabels().get("code"));
      merge(out, p.getLabels(), new RecentFigures.Counts(n, error ? n : 0, null, 0, 0, 0));
    }
    for (HistogramSnapshot.HistogramDataPointSnapshot p :
        requestDuration.collect().getDataPoints()) {
      ClassicHistogramBuckets buckets = p.getClassicBuckets();
      long[] perBucket = new long[buckets.size()];
      for (int i = 0; i < perBucket.length; i++) {
        perBucket[i] = buckets.getCount(i); // per bucket, not cumulative
      }
      merge(out, p.getLabels(), new RecentFigures.Counts(0, 0, perBucket, 0, 0, 0));
    }
    for (HistogramSnapshot.HistogramDataPointSnapshot p : batchSize.collect().getDataPoints()) {
      merge(out, p.getLabels(), new RecentFigures.Counts(0, 0, null, p.getCount(), p.getSum(), 0));
    }
    for (CounterSnapshot.CounterDataPointSnapshot p :
        llmGeneratedTokens.collect().getDataPoints()) {
      merge(
          out, p.getLabels(), new RecentFigures.Counts(0, 0, null, 0, 0, Math.round(p.getValue())));
    }
    return out;
  }

  private static void merge(
      Map<List<String>, RecentFigures.Counts> out, Labels labels, RecentFigures.Counts counts) {
    String version = labels.get("version");
    if (version == null || version.isEmpty()) {
      return;
    }
    out.merge(List.of(labels.get("model"), version), counts, RecentFigures.Counts::plus);
  }

  /** A model version's cumulative figures (Triton's statistics extension), kept from its start. */
  InferenceStatistics statistics(String model, String version) {
    return statistics.computeIfAbsent(
        List.of(model, version), k -> new InferenceStatistics(model, version));
  }

  private record QueueWatch(IntSupplier depth, int capacity) {}

  /**
   * Reports {@code depth} as the queue size of a model version, and {@code capacity} as the most it
   * holds, until {@link #unwatchQueue}. Its rejection counters start at 0 here, so that a rate of
   * refusals reads 0 rather than nothing before the first one.
   */
  void watchQueue(String model, String version, IntSupplier depth, int capacity) {
    queues.put(List.of(model, version), new QueueWatch(depth, capacity));
    rejected.labelValues(model, version, "queue_full");
    rejected.labelValues(model, version, "deadline");
  }

  /** Stops reporting the queue {@code depth} (not one that replaced it since). */
  void unwatchQueue(String model, String version, IntSupplier depth) {
    queues.computeIfPresent(
        List.of(model, version), (k, watch) -> watch.depth() == depth ? null : watch);
  }

  void rejected(String model, String version, String reason) {
    rejected.labelValues(model, version, reason).inc();
  }

  void inflight(String model, int delta) {
    inflight.labelValues(model).inc(delta);
  }

  void loaded(String model, String version, long nanos) {
    loadDuration.labelValues(model, version).set(nanos / 1e9);
  }

  void state(String model, String version, ModelState state) {
    for (ModelState s : ModelState.values()) {
      modelState
          .labelValues(model, version, s.name().toLowerCase(java.util.Locale.ROOT))
          .set(s == state ? 1 : 0);
    }
  }

  /** A gate's verdict on a version: its figure, the threshold, and whether it passed. */
  void gate(String model, String version, String metric, ModelGate.Verdict verdict) {
    gateScore.labelValues(model, version, metric).set(verdict.figure());
    if (!Double.isNaN(verdict.threshold())) {
      gateThreshold.labelValues(model, version, metric).set(verdict.threshold());
    }
    gatePassed.labelValues(model, version).set(verdict.passed() ? 1 : 0);
  }

  /** A version its gate could not evaluate: refused, with no figure. */
  void gateUnmeasured(String model, String version) {
    gatePassed.labelValues(model, version).set(0);
  }

  void llmTimeToFirstToken(String model, String version, long nanos) {
    llmFirstToken.labelValues(model, version).observe(nanos / 1e9);
  }

  void llmTimePerOutputToken(String model, String version, long nanos) {
    llmPerToken.labelValues(model, version).observe(nanos / 1e9);
  }

  void llmPromptTokens(String model, String version, int tokens) {
    llmPromptTokens.labelValues(model, version).inc(tokens);
  }

  void llmGeneratedToken(String model, String version) {
    llmGeneratedTokens.labelValues(model, version).inc();
  }

  void llmSequences(String model, String version, int running, int waiting) {
    llmRunning.labelValues(model, version).set(running);
    llmWaiting.labelValues(model, version).set(waiting);
  }

  void llmKvCache(String model, String version, double ratio) {
    llmKvCache.labelValues(model, version).set(ratio);
  }
}
