package dev.berth.runtime;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;

/** Counts work in progress and lets a stopping component wait until none is left. */
public final class InflightTracker {
  private final AtomicInteger count = new AtomicInteger();
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition idle = lock.newCondition();

  public void begin() {
    count.incrementAndGet();
  }

  public void end() {
    if (count.decrementAndGet() == 0) {
      lock.lock();
      try {
        idle.signalAll();
      } finally {
        lock.unlock();
      }
    }
  }

  public int count() {
    return count.get();
  }

  /**
   * Waits until nothing is in progress.
   *
   * @return false if the timeout passed first
   */
  public boolean awaitIdle(Duration timeout) {
    long until = System.nanoTime() + timeout.toNanos();
    lock.lock();
    try {
      while (count.get() > 0) {
        long left = until - System.nanoTime();
        if (left <= 0) {
          return false;
        }
        idle.awaitNanos(left);
      }
      return true;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return false;
    } finally {
      lock.unlock();
    }
  }
}
