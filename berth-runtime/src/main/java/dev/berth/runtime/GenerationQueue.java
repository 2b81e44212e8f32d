package dev.berth.runtime;

import dev.berth.api.InvalidInputException;
import dev.berth.api.ModelNotReadyException;
import dev.berth.api.OverloadedException;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.Iterator;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicLong;
import java.util.logging.Level;
import java.util.logging.Logger;

/**
 * Admission for one language model version: at most {@code llm.parallel} generations run at once,
 * the engine batching their tokens together; up to {@code llm.max-waiting} more wait in arrival
 * order, and beyond that a request is refused at once with 429. A waiting request whose caller
 * gives up (its future cancelled) leaves the queue.
 */
final class GenerationQueue {
  private static final Logger LOG = Logger.getLogger(GenerationQueue.class.getName());
  private final String model;
  private final String version;
  private final TextGenerator engine;
  private final LlmConfig config;
  private final ServingMetrics metrics;
  private final ArrayDeque<Pending> waiting = new ArrayDeque<>(); // guarded by this
  private int running; // guarded by this
  private boolean closed; // guarded by this
  private final AtomicLong tokensHeld = new AtomicLong();

  private record Pending(
      TextGenerator.Sampling sampling,
      GenerationRequest request,
      int promptTokens,
      long arrival,
      Runnable onClose,
      RequestTrace trace, // null unless the request is traced
      CompletableFuture<Generation> future) {}

  GenerationQueue(
      String model,
      String version,
      TextGenerator engine,
      LlmConfig config,
      ServingMetrics metrics) {
    this.model = model;
    this.version = version;
    this.engine = engine;
    this.config = config;
    this.metrics = metrics;
  }

  /**
   * Decides the request's prompt and sampling, then starts it or queues it.
   *
   * @param onClose runs once the generation is closed (or never starts)
   * @param trace where its wait and its generation are reported, or null
   * @return completes with the started generation
   * @throws InvalidInputException when the prompt does not fit the context
   * @throws OverloadedException when too many wait already
   */
  CompletableFuture<Generation> submit(
      GenerationRequest request, Runnable onClose, RequestTrace trace) {
    long arrival = System.nanoTime();
    String prompt =
        request.prompt() != null ? request.prompt() : engine.chatPrompt(request.messages());
    int promptTokens = engine.promptTokens(prompt);
    int context = engine.contextSize();
    if (promptTokens >= context) {
      throw new InvalidInputException(
          "the prompt is "
              + promptTokens
              + " tokens, and model '"
              + model
              + "' holds "
              + context
              + " per sequence (llm.context-size in its model.yaml), the answer included;"
              + " send a shorter prompt");
    }
    int maxTokens = request.maxTokens() != null ? request.maxTokens() : config.maxTokens();
    TextGenerator.Sampling sampling =
        new TextGenerator.Sampling(
            prompt,
            Math.min(maxTokens, context - promptTokens),
            request.temperature() != null ? request.temperature() : config.temperature(),
            request.topP() != null ? request.topP() : config.topP(),
            request.seed());
    CompletableFuture<Generation> future = new CompletableFuture<>();
    Pending pending = new Pending(sampling, request, promptTokens, arrival, onClose, trace, future);
    synchronized (this) {
      if (closed) {
        throw new ModelNotReadyException(
            "model '" + model + "' version " + version + " is being unloaded; retry shortly");
      }
      if (running >= engine.parallel()) {
        if (waiting.size() >= config.maxWaiting()) {
          metrics.rejected(model, version, "queue_full");
          throw new OverloadedException(
              "model '"
                  + model
                  + "' is generating for "
                  + running
                  + " requests and "
                  + waiting.size()
                  + " more wait (llm.parallel and llm.max-waiting in its model.yaml); retry"
                  + " shortly",
              Duration.ofSeconds(1));
        }
        waiting.add(pending);
        metrics.llmSequences(model, version, running, waiting.size());
        future.whenComplete((g, e) -> abandoned(pending));
        return future;
      }
      running++;
      metrics.llmSequences(model, version, running, waiting.size());
    }
    start(pending);
    return future;
  }

  /** A waiting request whose caller gave up leaves the queue. */
  private void abandoned(Pending pending) {
    if (pending.future().isCancelled()) {
      synchronized (this) {
        waiting.remove(pending);
        metrics.llmSequences(model, version, running, waiting.size());
      }
    }
  }

  private void start(Pending pending) {
    long started = System.nanoTime();
    if (pending.trace() != null) {
      report(() -> pending.trace().step(RequestTrace.Step.QUEUE, pending.arrival(), started));
    }
    Generation generation;
    try {
      TextGenerator.TokenStream tokens = engine.start(pending.sampling());
      generation =
          new Generation(
              model,
              version,
              tokens,
              pending.request().stop(),
              pending.sampling().maxTokens(),
              pending.promptTokens(),
              new Tracking(pending, started));
    } catch (RuntimeException e) {
      pending.future().completeExceptionally(e);
      sequenceFree();
      return;
    }
    tokensHeld.addAndGet(pending.promptTokens());
    metrics.llmPromptTokens(model, version, pending.promptTokens());
    if (!pending.future().complete(generation)) {
      generation.close(); // the caller gave up as it started
    }
  }

  /** Hands a freed sequence to the first request still waiting, or counts it free. */
  private void sequenceFree() {
    Pending next = null;
    synchronized (this) {
      for (Iterator<Pending> it = waiting.iterator(); it.hasNext(); ) {
        Pending p = it.next();
        it.remove();
        if (!p.future().isDone()) {
          next = p;
          break;
        }
      }
      if (next == null) {
        running--;
      }
      metrics.llmSequences(model, version, running, waiting.size());
    }
    if (next != null) {
      start(next);
    }
  }

  /** Refuses the requests still waiting; those running finish. */
  void close() {
    synchronized (this) {
      closed = true;
      for (Pending p : waiting) {
        p.future()
            .completeExceptionally(
                new ModelNotReadyException(
                    "model '" + model + "' version " + version + " was unloaded; retry"));
      }
      waiting.clear();
      metrics.llmSequences(model, version, running, 0);
    }
  }

  /**
   * Runs a report into a trace: one that fails is logged, and never fails the generation. An {@link
   * Error} is caught too: thrown under the queue's lock or on a generation's thread, it would leave
   * the generation or its sequence stranded.
   */
  private void report(Runnable report) {
    try {
      report.run();
    } catch (Throwable e) {
      LOG.log(
          Level.WARNING,
          "model '" + model + "' version " + version + ": a request's trace was not recorded",
          e);
    }
  }

  private void kvCache() {
    metrics.llmKvCache(
        model, version, tokensHeld.get() / ((double) engine.contextSize() * engine.parallel()));
  }

  /** One generation's metrics and the freeing of its sequence. */
  private final class Tracking implements Generation.Listener {
    private final Pending pending;
    private final long started;
    private long first;
    private long last;

    Tracking(Pending pending, long started) {
      this.pending = pending;
      this.started = started;
    }

    @Override
    public void token(int completionTokens) {
      long now = System.nanoTime();
      if (completionTokens == 1) {
        first = now;
        metrics.llmTimeToFirstToken(model, version, now - pending.arrival());
      } else {
        metrics.llmTimePerOutputToken(model, version, now - last);
      }
      last = now;
      metrics.llmGeneratedToken(model, version);
      tokensHeld.incrementAndGet();
      kvCache();
    }

    @Override
    public void ended(int completionTokens, Generation.FinishReason reason) {
      long now = System.nanoTime();
      tokensHeld.addAndGet(-(pending.promptTokens() + (long) completionTokens));
      kvCache();
      sequenceFree();
      if (pending.trace() != null) {
        TextGenerator.Sampling sampling = pending.sampling();
        RequestTrace.Generated generated =
            new RequestTrace.Generated(
                model,
                version,
                pending.request().messages() != null,
                pending.arrival(),
                started,
                first,
                now,
                pending.promptTokens(),
                completionTokens,
                sampling.maxTokens(),
                sampling.temperature(),
                sampling.topP(),
                sampling.seed(),
                reason);
        report(() -> pending.trace().generation(generated));
      }
    }

    @Override
    public void closed() {
      pending.onClose().run();
    }
  }
}
