package dev.berth.image;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.StringReader;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.Properties;

/**
 * The upstream project and version of a native library a jar carries, from what the jar itself
 * says: DJL's {@code tokenizers.properties} and {@code pytorch.properties}, XGBoost's {@code
 * xgboost4j-version.properties}, llama.cpp's release in berth-llm's {@code llama.cpp.info.json},
 * Netty's {@code netty.versions.properties}; ONNX Runtime's and JNA's jars have the version of the
 * library they carry, and TensorFlow Java's release notes name the TensorFlow each release is built
 * from.
 */
final class NativeVersions {
  private static final ObjectMapper JSON = new ObjectMapper();

  static final String TOKENIZERS = "native/lib/tokenizers.properties";
  static final String LIBTORCH = "native/lib/pytorch.properties";
  static final String DJL_TORCH_JNI = "jnilib/pytorch.properties";
  static final String XGBOOST = "xgboost4j-version.properties";
  static final String LLAMA_CPP = "llama.cpp.info.json";
  static final String LLAMA_CPP_COMMIT = "llama.cpp.commit";

  /** Netty's versions file, also in jars that shade Netty (grpc-netty-shaded). */
  static final String NETTY = "netty.versions.properties";

  /** TensorFlow Java release to the TensorFlow it bundles (from TensorFlow Java's README). */
  private static final Map<String, String> TENSORFLOW = Map.of("1.1.0", "2.18.0");

  private NativeVersions() {}

  /**
   * Upstream of a native library.
   *
   * @param project the upstream project, e.g. {@code onnxruntime}
   * @param version its version, or null when the jar does not say
   * @param commit the upstream commit it was built from, or null when the jar does not say
   */
  record Upstream(String project, String version, String commit) {
    Upstream(String project, String version) {
      this(project, version, null);
    }
  }

  /**
   * Whether a jar entry is metadata the SBOM reads (kept whole while the jar is scanned). A change
   * here changes what a layer's scan keeps: raise {@link LayerScanCache#FORMAT} with it.
   */
  static boolean isMetadata(String entry) {
    return entry.startsWith("META-INF/maven/") && entry.endsWith("/pom.properties")
        || entry.equals(ImageSbom.DEPENDENCIES_RESOURCE)
        || entry.equals(TOKENIZERS)
        || entry.equals(LIBTORCH)
        || entry.equals(DJL_TORCH_JNI)
        || entry.equals(XGBOOST)
        || entry.endsWith("/" + LLAMA_CPP)
        || entry.endsWith("/" + LLAMA_CPP_COMMIT)
        || entry.startsWith("META-INF/") && entry.endsWith(NETTY);
  }

  /**
   * The upstream of a native library in a jar, or null when nothing says.
   *
   * @param group the jar's Maven group, or null
   * @param artifact the jar's Maven artifact id, or null
   * @param version the jar's version, or null
   * @param entry the library's entry in the jar
   * @param metadata the jar's metadata entries ({@link #isMetadata})
   */
  static Upstream of(
      String group, String artifact, String version, String entry, Map<String, byte[]> metadata) {
    String name = entry.substring(entry.lastIndexOf('/') + 1);
    String dir = entry.contains("/") ? entry.substring(0, entry.lastIndexOf('/') + 1) : "";
    if (metadata.containsKey(TOKENIZERS) && name.contains("tokenizers")) {
      // version=0.21.0-0.38.0: Hugging Face tokenizers 0.21.0, built for DJL 0.38.0
      return new Upstream(
          "huggingface-tokenizers", head(property(metadata, TOKENIZERS, "version")));
    }
    if (metadata.containsKey(LIBTORCH) && entry.startsWith("pytorch/")) {
      // version=2.7.1-20250812: libtorch 2.7.1 (and the OpenMP runtime it ships with)
      return new Upstream("libtorch", head(property(metadata, LIBTORCH, "version")));
    }
    if (metadata.containsKey(DJL_TORCH_JNI) && entry.startsWith("jnilib/")) {
      return new Upstream("djl-pytorch-jni", property(metadata, DJL_TORCH_JNI, "jni_version"));
    }
    if (metadata.containsKey(XGBOOST) && name.contains("xgboost")) {
      return new Upstream("xgboost", property(metadata, XGBOOST, "version"));
    }
    byte[] llama = metadata.get(dir + LLAMA_CPP);
    if (llama != null && !name.startsWith("libberth_")) {
      byte[] commit = metadata.get(dir + LLAMA_CPP_COMMIT);
      String hash = commit == null ? "" : new String(commit, StandardCharsets.UTF_8).strip();
      return new Upstream(
          "llama.cpp", llamaCppTag(llama), hash.matches("[0-9a-f]{40}") ? hash : null);
    }
    if (name.contains("netty_transport_native")) {
      // Netty's own transport library, of the Netty the jar carries (or shades)
      return new Upstream("netty", nettyVersion(metadata));
    }
    if (name.contains("netty_tcnative")) {
      return new Upstream("netty-tcnative", null);
    }
    if ("net.java.dev.jna".equals(group)) {
      // JNA's dispatch library is built from JNA's own sources, at its version
      return new Upstream("jna", version);
    }
    if ("com.microsoft.onnxruntime".equals(group)) {
      return new Upstream("onnxruntime", version);
    }
    if ("org.tensorflow".equals(group) && "tensorflow-core-native".equals(artifact)) {
      return new Upstream("tensorflow", version == null ? null : TENSORFLOW.get(version));
    }
    return null;
  }

  private static String nettyVersion(Map<String, byte[]> metadata) {
    for (String entry : metadata.keySet()) {
      if (entry.endsWith(NETTY)) {
        return property(metadata, entry, "netty-common.version");
      }
    }
    return null;
  }

  private static String property(Map<String, byte[]> metadata, String entry, String key) {
    Properties p = new Properties();
    try {
      p.load(new StringReader(new String(metadata.get(entry), StandardCharsets.UTF_8)));
    } catch (IOException | IllegalArgumentException e) {
      return null;
    }
    String value = p.getProperty(key);
    return value == null || value.isBlank() ? null : value.strip();
  }

  private static String head(String version) {
    if (version == null) {
      return null;
    }
    int dash = version.indexOf('-');
    return dash > 0 ? version.substring(0, dash) : version;
  }

  private static String llamaCppTag(byte[] info) {
    try {
      JsonNode tag = JSON.readTree(info).path("tag");
      return tag.isTextual() && !tag.asText().isBlank() ? tag.asText() : null;
    } catch (IOException e) {
      return null;
    }
  }
}
