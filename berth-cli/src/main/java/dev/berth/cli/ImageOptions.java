package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.image.BerthDistribution;
import dev.berth.image.BuiltImage;
import dev.berth.image.ClassDataArchive;
import dev.berth.image.ImageBuilder;
import dev.berth.image.ImageLocation;
import dev.berth.image.ImagePlan;
import dev.berth.image.JlinkRuntime;
import dev.berth.runtime.ServiceSpec;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.Option;

/** The image options {@code berth build} and {@code berth run} share, and the build they drive. */
final class ImageOptions {

  @Option(
      names = "--base",
      paramLabel = "REF",
      description =
          "Base image: a registry reference, docker://NAME:TAG or tar:PATH. Default: image.base in"
              + " the service file (eclipse-temurin:21-jre).")
  String base;

  @Option(
      names = "--runtime",
      paramLabel = "base|jlink",
      description =
          "base: run on the base image's Java (21+); jlink: bring a minimal Java runtime, so any"
              + " glibc base works. Default: image.runtime in the service file (base).")
  String runtime;

  @Option(
      names = "--no-class-data-sharing",
      description =
          "With --runtime jlink, leave out the class-data sharing archive that a training run of"
              + " the server makes for a faster start (image.class-data-sharing).")
  boolean noClassDataSharing;

  @Option(
      names = "--allow-insecure-registries",
      description = "Allow plain-HTTP registries (loopback registries always are).")
  boolean allowInsecure;

  @Option(
      names = "--cache-dir",
      paramLabel = "DIR",
      description = "Layer and runtime cache (default: ${DEFAULT-VALUE}).",
      defaultValue = "${env:XDG_CACHE_HOME:-${sys:user.home}/.cache}/berth")
  Path cacheDir;

  /** The base image the command line or the service file names. */
  ImageLocation base(ServiceSpec service) {
    return ImageLocation.parse(base != null ? base : service.image().base());
  }

  /** Plans the service's image, linking a Java runtime first when it brings one. */
  ImagePlan plan(ServiceSpec service, PrintStream err) {
    ServiceSpec.Runtime mode = service.image().runtime();
    if (runtime != null) {
      mode = ServiceSpec.Runtime.parse(runtime);
      if (mode == null) {
        throw new BerthException("--runtime must be base or jlink, not '" + runtime + "'");
      }
    }
    for (ServiceSpec.RemoteModel m : service.remoteModels()) {
      if (m.source().startsWith("http") && m.source().contains("?")) {
        err.println(
            "warning: model '"
                + m.name()
                + "': the image's service file holds its URL with its query ("
                + m.shown()
                + "?...); a presigned URL's signature then travels in the image and expires."
                + " Prefer a URL that needs none, or s3://");
      }
    }
    java.util.Set<String> engines = ModelEngines.needed(service, err);
    String chosenBase = base != null ? base : service.image().base();
    if (engines.contains("llama")) {
      checkLanguageModelBase(chosenBase, err);
    } else if (engines.contains("xgboost")) {
      checkOpenMpBase(
          chosenBase, "an XGBoost model (model.json or model.ubj), and XGBoost's library", err);
    }
    BerthDistribution berth =
        BerthDistribution.ofLauncher(
            BerthDistribution.currentLauncher(Main.class),
            Main.Version.get(),
            engines,
            !service.remoteModels().isEmpty());
    Path javaRuntime = null;
    if (mode == ServiceSpec.Runtime.JLINK) {
      if (!service.image().platform().equals(hostPlatform())) {
        throw new BerthException(
            "'runtime: jlink' links this machine's Java ("
                + hostPlatform()
                + "), which cannot run on "
                + service.image().platform()
                + "; use 'runtime: base' with a base image that has Java for that platform");
      }
      // models that take image files decode them with the JDK's image I/O (java.desktop), and so
      // does a gate's evaluation (a model fetched at start may be either: what it holds is not
      // known when the image is built)
      boolean images =
          !service.remoteModels().isEmpty()
              || service.models().stream()
                  .anyMatch(
                      m ->
                          m.modelYaml().containsKey("gate")
                              || m.modelYaml().get("preprocessing")
                                      instanceof java.util.Map<?, ?> pre
                                  && "image".equals(pre.get("type")));
      List<String> modules = new ArrayList<>(JlinkRuntime.MODULES);
      if (images) {
        modules.add("java.desktop");
      }
      if (!service.remoteModels().isEmpty()) {
        // the model store: the AWS SDK's XML (java.xml); its registry client's java.net.http is in
        // every image
        modules.addAll(JlinkRuntime.STORE_MODULES);
      }
      err.println("linking a Java runtime (" + String.join(",", modules) + ")...");
      javaRuntime = JlinkRuntime.create(cacheDir, modules);
    }
    ServiceSpec.Image i = service.image();
    ServiceSpec built =
        new ServiceSpec(
            service.file(),
            service.name(),
            service.description(),
            service.models(),
            service.remoteModels(),
            service.serving(),
            new ServiceSpec.Image(
                base(service).toString(),
                i.to(),
                i.tags(),
                i.platform(),
                mode,
                i.user(),
                i.labels(),
                i.jvmOptions(),
                i.classDataSharing(),
                i.signKey(),
                i.requireSigned(),
                i.trust()),
            service.deploy());
    Path classData = null;
    if (javaRuntime != null && i.classDataSharing() && !noClassDataSharing) {
      classData =
          ClassDataArchive.create(
              javaRuntime,
              berth,
              built,
              ImagePlan.jvmOptions(built),
              cacheDir,
              line -> err.println(line));
    }
    return ImagePlan.of(built, berth, javaRuntime, classData, cacheDir);
  }

  /** Builds a planned image into {@code target}, with its layers and progress on {@code err}. */
  BuiltImage build(ImagePlan plan, ImageLocation target, List<String> tags, PrintStream err) {
    return build(plan, target, tags, null, err);
  }

  /**
   * Builds a planned image into {@code target}, with its layers and progress on {@code err}, and
   * writes its SBOM to {@code sbom} (none when null).
   */
  BuiltImage build(
      ImagePlan plan, ImageLocation target, List<String> tags, Path sbom, PrintStream err) {
    ServiceSpec service = plan.service();
    err.println("building " + service.name() + " (" + service.file() + ")");
    err.println(
        "  base    "
            + service.image().base()
            + (service.image().runtime() == ServiceSpec.Runtime.JLINK
                ? " (Java: a jlink runtime Berth brings)"
                : " (Java: the base image's)"));
    err.println("  target  " + target);
    int n = 0;
    for (ImagePlan.Layer layer : plan.layers()) {
      n++;
      err.printf(
          Locale.ROOT,
          "  layer %d/%d  %-18s %5d file%s %10s%n",
          n,
          plan.layers().size(),
          layer.name(),
          layer.files().size(),
          layer.files().size() == 1 ? " " : "s",
          bytes(layer.size()));
    }
    return ImageBuilder.of(plan)
        .base(base(service))
        .to(target)
        .tags(tags)
        .cacheDirectory(cacheDir)
        .allowInsecureRegistries(allowInsecure)
        .sbom(sbom)
        .progress(line -> err.println("  " + line))
        .build();
  }

  /**
   * llama.cpp's libraries need the C++ runtime, which the default base (eclipse-temurin's JRE
   * image) and glibc images generally have, and distroless or static bases lack: a base of the
   * user's own gets a note.
   */
  static void checkLanguageModelBase(String base, PrintStream err) {
    if (!base.equals(ServiceSpec.Image.DEFAULT_BASE)) {
      err.println(
          "note: this service has a language model (model.gguf): llama.cpp needs libstdc++.so.6"
              + " and libgcc_s.so.1 in the base image "
              + base
              + " (Debian and Ubuntu packages libstdc++6 and libgcc-s1); without them the model"
              + " will not load");
    }
  }

  /**
   * XGBoost's library links the OpenMP runtime ({@code libgomp.so.1}), which the default base
   * (eclipse-temurin's JRE image, like most Java images) lacks: its model would never load, so the
   * build stops here and says how to get a base that has it.
   *
   * @param what "a ... model, and its library", for the messages
   */
  static void checkOpenMpBase(String base, String what, PrintStream err) {
    if (base.equals(ServiceSpec.Image.DEFAULT_BASE)) {
      throw new BerthException(
          "this service has "
              + what
              + " needs the OpenMP runtime libgomp.so.1, which the default base "
              + base
              + " lacks: its model would not load in the image; build a base that has it, for"
              + " example FROM "
              + ServiceSpec.Image.DEFAULT_BASE
              + " with 'RUN apt-get update && apt-get install -y --no-install-recommends libgomp1',"
              + " push it, and name it in image.base or --base");
    }
    err.println(
        "note: this service has "
            + what
            + " needs libgomp.so.1 in the base image "
            + base
            + " (Debian and Ubuntu package libgomp1); without it the model will not load");
  }

  static String hostPlatform() {
    String arch = System.getProperty("os.arch");
    return "linux/" + (arch.equals("aarch64") ? "arm64" : arch.equals("x86_64") ? "amd64" : arch);
  }

  static String bytes(long n) {
    if (n < 1024) {
      return n + " B";
    }
    if (n < 1024 * 1024) {
      return String.format(Locale.ROOT, "%.1f KiB", n / 1024.0);
    }
    return String.format(Locale.ROOT, "%.1f MiB", n / (1024.0 * 1024));
  }
}
