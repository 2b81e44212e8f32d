package dev.berth.runtime;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A model version that is ready: its engine, its batcher and its settings.
 *
 * <p>Each request holds the model from the moment it is resolved until it is answered ({@link
 * #acquire()} / {@link #release()}). A model that is replaced by a reload or unloaded is first
 * retired: it takes no new holders, and its engine is freed only once the last holder has released
 * it, so a version switch fails no request.
 */
public final class LoadedModel {
  private static final int RETIRED = Integer.MIN_VALUE;

  private final String name;
  private final String version;
  private final ModelConfig config;
  private final TensorPipeline pipeline; // null for a language model
  private final DynamicBatcher batcher; // null for a language model
  private final GenerationQueue generations; // null unless the engine generates text
  private final TextGenerator generator; // null unless the engine generates text
  // the holders' count, with the sign bit set once retired
  private final AtomicInteger holders = new AtomicInteger();
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition released = lock.newCondition();

  // what a gate measured on this engine, and on what
  private record GateFigure(ModelGate gate, String data, double figure) {}

  private volatile GateFigure gateFigure;

  private LoadedModel(
      String name,
      String version,
      ModelConfig config,
      TensorPipeline pipeline,
      DynamicBatcher batcher,
      TextGenerator generator,
      ServingMetrics metrics) {
    this.name = name;
    this.version = version;
    this.config = config;
    this.pipeline = pipeline;
    this.batcher = batcher;
    this.generator = generator;
    this.generations =
        generator == null
            ? null
            : new GenerationQueue(name, version, generator, config.llm(), metrics);
  }

  /**
   * A tensor model: its requests are batched by {@code batcher}, which runs {@code pipeline}.
   *
   * @param name model name
   * @param version version
   * @param config its model.yaml
   */
  public static LoadedModel ofTensors(
      String name,
      String version,
      ModelConfig config,
      TensorPipeline pipeline,
      DynamicBatcher batcher) {
    return new LoadedModel(name, version, config, pipeline, batcher, null, null);
  }

  /**
   * A language model: its generations are admitted by a queue of their own.
   *
   * @param metrics where the generation queue reports
   */
  public static LoadedModel ofGenerator(
      String name,
      String version,
      ModelConfig config,
      TextGenerator generator,
      ServingMetrics metrics) {
    return new LoadedModel(name, version, config, null, null, generator, metrics);
  }

  /**
   * What this gate measured on this engine, or NaN when it was not measured with these settings and
   * data files as they are now.
   */
  double gateFigure(ModelGate gate) {
    GateFigure g = gateFigure;
    return g != null && g.gate().equals(gate) && g.data().equals(gate.dataStamp())
        ? g.figure()
        : Double.NaN;
  }

  void gateFigure(ModelGate gate, double figure) {
    this.gateFigure = new GateFigure(gate, gate.dataStamp(), figure);
  }

  /** Whether the model generates text (a language model). */
  public boolean generatesText() {
    return generations != null;
  }

  /** The admission queue of a language model, or null. */
  GenerationQueue generations() {
    return generations;
  }

  public String name() {
    return name;
  }

  public String version() {
    return version;
  }

  public ModelConfig config() {
    return config;
  }

  /** The request queue of a tensor model, or null for a language model. */
  public DynamicBatcher batcher() {
    return batcher;
  }

  /** The tensors clients send and get (for a tensor model, around its pre- and post-processing). */
  public ModelSignature signature() {
    return pipeline != null ? pipeline.signature() : generator.signature();
  }

  /** Tokens the texts take for a model that tokenizes text itself; empty otherwise. */
  public java.util.OptionalInt countTokens(java.util.List<String> texts) {
    return pipeline != null ? pipeline.countTokens(texts) : java.util.OptionalInt.empty();
  }

  /**
   * Holds the model for one request.
   *
   * @return false when it is retired: resolve the model again
   */
  boolean acquire() {
    while (true) {
      int n = holders.get();
      if (n < 0) {
        return false;
      }
      if (holders.compareAndSet(n, n + 1)) {
        return true;
      }
    }
  }

  /** Ends a hold taken by {@link #acquire()}. */
  void release() {
    if (holders.decrementAndGet() == RETIRED) {
      lock.lock();
      try {
        released.signalAll();
      } finally {
        lock.unlock();
      }
    }
  }

  /** Requests holding the model now. */
  int holders() {
    return holders.get() & Integer.MAX_VALUE;
  }

  /**
   * Takes no new holders, waits until the current ones have released the model (up to {@code
   * timeout}), then finishes its queue and frees its engine.
   *
   * @return whether every holder released it in time
   */
  boolean retire(Duration timeout) {
    holders.getAndUpdate(n -> n | RETIRED);
    long until = System.nanoTime() + timeout.toNanos();
    boolean idle = true;
    lock.lock();
    try {
      while (holders.get() != RETIRED) {
        long left = until - System.nanoTime();
        if (left <= 0) {
          idle = false;
          break;
        }
        released.awaitNanos(left);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      idle = false;
    } finally {
      lock.unlock();
    }
    close(Duration.ofNanos(Math.max(0, until - System.nanoTime())));
    return idle;
  }

  void close(Duration drainTimeout) {
    if (generations != null) {
      generations.close();
      generator.close();
    } else {
      batcher.close(drainTimeout);
      pipeline.close();
    }
  }

  @Override
  public String toString() {
    return "model '" + name + "' version " + version;
  }
}
