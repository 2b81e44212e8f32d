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
  private final Engine engine;
  private final DynamicBatcher batcher;
  private final GenerationQueue generations; // null unless the engine generates text
  // the holders' count, with the sign bit set once retired
  private final AtomicInteger holders = new AtomicInteger();
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition released = lock.newCondition();

  /**
   * @param name model name
   * @param version version
   * @param config its model.yaml
   * @param engine the loaded engine; one that is a {@link TextGenerator} gets a generation queue
   * @param batcher its request queue
   * @param metrics where the generation queue reports
   */
  public LoadedModel(
      String name,
      String version,
      ModelConfig config,
      Engine engine,
      DynamicBatcher batcher,
      ServingMetrics metrics) {
    this.name = name;
    this.version = version;
    this.config = config;
    this.engine = engine;
    this.batcher = batcher;
    this.generations =
        engine instanceof TextGenerator g
            ? new GenerationQueue(name, version, g, config.llm(), metrics)
            : null;
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

  public Engine engine() {
    return engine;
  }

  public DynamicBatcher batcher() {
    return batcher;
  }

  public ModelSignature signature() {
    return engine.signature();
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
    }
    batcher.close(drainTimeout);
    engine.close();
  }

  @Override
  public String toString() {
    return "model '" + name + "' version " + version;
  }
}
