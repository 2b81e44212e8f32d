package dev.berth.pytorch;

import ai.djl.engine.Engine;
import ai.djl.pytorch.jni.JniUtils;
import dev.berth.api.ModelLoadException;
import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.util.Collections;
import java.util.Properties;

/**
 * The one libtorch of this process, started through DJL's PyTorch engine from the jars on the class
 * path, and never from the network.
 *
 * <p>DJL downloads libtorch from its servers when no native jar is on the class path, or when
 * {@code PYTORCH_VERSION} names another version than the bundled one, and its engine lookup reports
 * usage to AWS unless opted out. So before any DJL class loads, this sets {@code ai.djl.offline}
 * and {@code OPT_OUT_TRACKING}, and refuses to start when the bundled jar is missing or would be
 * bypassed, saying what to put on the class path instead. The bundled CPU libtorch unpacks (about
 * 430 MB) into {@code DJL_CACHE_DIR/pytorch/} on first use.
 */
final class Libtorch {
  /** The libtorch version of the pytorch-native jar Berth ships with. */
  static final String BUNDLED_VERSION = "2.7.1";

  private static Engine engine;

  private Libtorch() {}

  /** DJL's PyTorch engine, started on first call. */
  static synchronized Engine engine() {
    if (engine == null) {
      // before the first DJL class reads them
      if (System.getProperty("ai.djl.offline") == null) {
        System.setProperty("ai.djl.offline", "true");
      }
      System.setProperty("OPT_OUT_TRACKING", "true");
      checkNoDownload();
      try {
        engine = Engine.getEngine("PyTorch");
      } catch (RuntimeException | UnsatisfiedLinkError e) {
        throw new ModelLoadException(
            "libtorch (DJL's PyTorch engine) did not start: "
                + e
                + "; check that DJL_CACHE_DIR is writable with about 500 MB free",
            e);
      }
    }
    return engine;
  }

  /** Fails unless DJL would take libtorch from the class path or PYTORCH_LIBRARY_PATH. */
  private static void checkNoDownload() {
    if (System.getenv("PYTORCH_LIBRARY_PATH") != null) {
      return; // a libtorch the user installed
    }
    String override = System.getenv("PYTORCH_VERSION");
    if (override == null) {
      override = System.getProperty("PYTORCH_VERSION");
    }
    String bundled = bundledVersion();
    if (bundled == null) {
      throw new ModelLoadException(
          "no libtorch on the class path: add ai.djl.pytorch:pytorch-native-cpu:"
              + BUNDLED_VERSION
              + " (classifier linux-x86_64), or set PYTORCH_LIBRARY_PATH to an unpacked libtorch "
              + BUNDLED_VERSION
              + "; Berth does not let DJL download one");
    }
    if (override != null && !override.isEmpty() && !bundled.startsWith(override)) {
      throw new ModelLoadException(
          "PYTORCH_VERSION is "
              + override
              + " but the bundled libtorch is "
              + bundled
              + "; DJL would download "
              + override
              + ", which Berth does not allow: unset PYTORCH_VERSION, or set PYTORCH_LIBRARY_PATH"
              + " to an unpacked libtorch");
    }
  }

  /** The version of the first non-placeholder pytorch-native jar on the class path, or null. */
  private static String bundledVersion() {
    try {
      ClassLoader loader = Libtorch.class.getClassLoader();
      for (URL url : Collections.list(loader.getResources("native/lib/pytorch.properties"))) {
        Properties p = new Properties();
        try (InputStream in = url.openStream()) {
          p.load(in);
        }
        if (p.getProperty("placeholder") == null && p.getProperty("version") != null) {
          return p.getProperty("version");
        }
      }
      return null;
    } catch (IOException e) {
      return null;
    }
  }

  /** Whether this libtorch was built with CUDA and sees a GPU. */
  static boolean cudaAvailable() {
    Engine e = engine();
    return e.hasCapability(ai.djl.engine.StandardCapabilities.CUDA) && e.getGpuCount() > 0;
  }

  /**
   * Sets libtorch's inter-op pool size. libtorch has one pool per process, sized once before its
   * first parallel work: the first model to ask sets it, a later model must ask for the same size.
   *
   * @return null when set or already of that size, else the size it keeps
   */
  static synchronized Integer interOpThreads(int threads) {
    engine();
    int current = JniUtils.getNumInteropThreads();
    if (current == threads) {
      return null;
    }
    try {
      JniUtils.setNumInteropThreads(threads);
      return null;
    } catch (RuntimeException e) {
      return JniUtils.getNumInteropThreads();
    }
  }
}
