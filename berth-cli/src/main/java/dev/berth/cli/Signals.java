package dev.berth.cli;

import java.lang.reflect.InvocationHandler;
import java.lang.reflect.Proxy;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * SIGTERM and SIGINT start an orderly stop: drain, free the engines, exit 0.
 *
 * <p>This cannot run as a JVM shutdown hook: ONNX Runtime registers its own hook that frees its
 * native environment, and hooks run concurrently, so a drain inside one would run sessions on a
 * freed environment. The signals are therefore handled before the JVM starts shutting down, through
 * {@code sun.misc.Signal} (module jdk.unsupported, exported for exactly this use), reached
 * reflectively because javac has no switch to silence its warning for that API.
 */
final class Signals {
  private Signals() {}

  static void onTerminate(Runnable stop) {
    onTerminate(stop, () -> {});
  }

  /**
   * The same, with {@code again} run (on the signal's thread) for every later SIGTERM or SIGINT:
   * e.g. a second Ctrl-C that should not wait for the orderly stop.
   */
  static void onTerminate(Runnable stop, Runnable again) {
    AtomicBoolean started = new AtomicBoolean();
    Runnable once =
        () -> {
          if (started.compareAndSet(false, true)) {
            Thread.ofPlatform().name("berth-shutdown").start(stop);
          } else {
            again.run();
          }
        };
    try {
      Class<?> signal = Class.forName("sun.misc.Signal");
      Class<?> handler = Class.forName("sun.misc.SignalHandler");
      InvocationHandler call =
          (proxy, method, args) -> {
            if (method.getName().equals("handle")) {
              once.run();
            }
            return null;
          };
      Object proxy =
          Proxy.newProxyInstance(Signals.class.getClassLoader(), new Class<?>[] {handler}, call);
      for (String name : new String[] {"TERM", "INT"}) {
        Object sig = signal.getConstructor(String.class).newInstance(name);
        signal.getMethod("handle", signal, handler).invoke(null, sig, proxy);
      }
    } catch (ReflectiveOperationException e) {
      throw new IllegalStateException("cannot install the SIGTERM handler", e);
    }
  }
}
