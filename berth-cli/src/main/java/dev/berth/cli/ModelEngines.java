package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.runtime.EngineProvider;
import dev.berth.runtime.ModelConfig;
import dev.berth.runtime.ModelContext;
import dev.berth.runtime.ServiceSpec;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.ServiceLoader;
import java.util.Set;
import java.util.TreeSet;

/**
 * Which engines a service's models need, decided as the server will decide it: model.yaml's {@code
 * engine} key, else the first engine that recognises a version's files. An image carries only these
 * engines' libraries and native code.
 */
final class ModelEngines {
  private ModelEngines() {}

  static Set<String> needed(ServiceSpec service) {
    return needed(service, null);
  }

  /**
   * The same, with a note on {@code err} (when given) for each remote model whose engine is assumed
   * rather than known.
   */
  static Set<String> needed(ServiceSpec service, java.io.PrintStream err) {
    List<EngineProvider> providers = new ArrayList<>();
    ServiceLoader.load(EngineProvider.class).forEach(providers::add);
    Set<String> out = new TreeSet<>();
    for (ServiceSpec.ServiceModel model : service.models()) {
      if (model.modelYaml().get("engine") instanceof String named) {
        out.add(named);
        continue;
      }
      ModelConfig config = ModelConfig.defaults(model.dir());
      for (var version : model.versions()) {
        ModelContext context =
            new ModelContext(model.name(), version.label(), version.dir(), config);
        providers.stream()
            .filter(p -> p.canLoad(context))
            .findFirst()
            .ifPresent(p -> out.add(p.name()));
      }
    }
    for (ServiceSpec.RemoteModel model : service.remoteModels()) {
      out.add(of(model));
      if (err != null && model.engine() == null && model.source().startsWith("s3://")) {
        err.println(
            "note: model '"
                + model.name()
                + "' ("
                + model.source()
                + ") names no engine; the image carries ONNX Runtime for it (add engine: llama,"
                + " pytorch, tensorflow or xgboost to its entry for another)");
      }
    }
    return out;
  }

  /**
   * The engine a remote model needs: the entry's {@code engine}, else for {@code oci://} what
   * {@code berth push} recorded in the manifest (one request to the registry), else by an HTTPS
   * file's extension, else ONNX.
   */
  static String of(ServiceSpec.RemoteModel model) {
    if (model.engine() != null) {
      return model.engine();
    }
    String source = model.source();
    if (source.startsWith("oci://")) {
      try {
        var resolved =
            new dev.berth.store.OciModelStore(
                    dev.berth.store.DockerCredentials.fromEnvironment(), line -> {})
                .resolve(dev.berth.store.OciReference.parse(source));
        String engine = resolved.annotations().get(dev.berth.store.ModelArtifact.ENGINE);
        return engine == null || engine.isEmpty() ? "onnx" : engine;
      } catch (dev.berth.api.BerthException e) {
        throw new dev.berth.api.BerthException(
            "model '"
                + model.name()
                + "': cannot ask "
                + source
                + " which engine serves it ("
                + e.getMessage()
                + "); name it in berth.yaml (engine: onnx, llama, pytorch, tensorflow or xgboost)",
            e);
      }
    }
    String path = source.replaceFirst("[?#].*$", "");
    if (!source.startsWith("http")) {
      return "onnx"; // an S3 prefix: its files are not listed at build time
    }
    return switch (path.substring(path.lastIndexOf('.') + 1).toLowerCase(java.util.Locale.ROOT)) {
      case "gguf" -> "llama";
      case "pt" -> "pytorch";
      case "json", "ubj" -> "xgboost";
      default -> "onnx";
    };
  }

  /**
   * The engine that serves a model directory: model.yaml's {@code engine}, else the first engine
   * that recognises its first version's files; null when none does.
   */
  static String of(java.nio.file.Path modelDir, String name) {
    ModelConfig config = ModelConfig.load(modelDir);
    if (config.engine() != null) {
      return config.engine();
    }
    List<EngineProvider> providers = new ArrayList<>();
    ServiceLoader.load(EngineProvider.class).forEach(providers::add);
    try (java.util.stream.Stream<java.nio.file.Path> s = java.nio.file.Files.list(modelDir)) {
      for (java.nio.file.Path v :
          s.filter(
                  p ->
                      java.nio.file.Files.isDirectory(p)
                          && dev.berth.runtime.ModelRepository.isValidVersion(
                              p.getFileName().toString()))
              .sorted()
              .toList()) {
        ModelContext context = new ModelContext(name, v.getFileName().toString(), v, config);
        for (EngineProvider p : providers) {
          if (p.canLoad(context)) {
            return p.name();
          }
        }
      }
    } catch (java.io.IOException e) {
      return null;
    }
    return null;
  }

  /** The engine serving the model: model.yaml's, else by its first version's files. */
  static String of(ServiceSpec.ServiceModel model) {
    Object engine = model.modelYaml().get("engine");
    if (engine != null) {
      return engine.toString();
    }
    Path version = model.versions().get(0).dir();
    if (Files.exists(version.resolve("model.onnx"))) {
      return "onnx";
    }
    if (Files.exists(version.resolve("model.gguf"))) {
      return "llama";
    }
    if (Files.exists(version.resolve("model.pt"))) {
      return "pytorch";
    }
    if (Files.isDirectory(version.resolve("model.savedmodel"))) {
      return "tensorflow";
    }
    if (Files.exists(version.resolve("model.json")) || Files.exists(version.resolve("model.ubj"))) {
      return "xgboost";
    }
    throw new BerthException(
        "cannot tell which engine serves " + version + "; set engine: in its model.yaml");
  }
}
