package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.image.BerthDistribution;
import dev.berth.image.BuiltImage;
import dev.berth.image.ImagePlan;
import dev.berth.runtime.ServiceSpec;
import dev.berth.runtime.TrainingJob;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Berth's own image, as this installation is: its launcher and every module and library (every
 * engine, the model store, the image builder and the Kubernetes client), on a base image with Java,
 * run as {@code java -jar /opt/berth/berth.jar} by an unprivileged user. A training Job's pod
 * publishes with it ({@code berth train --on kubernetes}): the same checks, gate and publication as
 * on a workstation.
 */
final class BerthImage {
  private BerthImage() {}

  /**
   * Builds the image and pushes it to {@code to}, a registry reference.
   *
   * @param base the base image (with java on its PATH)
   * @return the reference pinned to the digest pushed
   */
  static String push(String to, String base, Path cacheDir, PrintStream err) {
    Path launcher = BerthDistribution.currentLauncher(Main.class);
    BerthDistribution berth = BerthDistribution.whole(launcher, Main.Version.get());
    List<ImagePlan.Entry> libraries = new ArrayList<>();
    for (Path jar : berth.libraries()) {
      libraries.add(entry(jar, ImagePlan.HOME + "/lib/" + jar.getFileName()));
    }
    List<ImagePlan.Entry> own = new ArrayList<>();
    for (Path jar : berth.modules()) {
      own.add(entry(jar, ImagePlan.HOME + "/lib/" + jar.getFileName()));
    }
    own.add(entry(berth.launcher(), ImagePlan.HOME + "/berth.jar"));
    libraries.sort(java.util.Comparator.comparing(ImagePlan.Entry::path));
    own.sort(java.util.Comparator.comparing(ImagePlan.Entry::path));
    ServiceSpec spec =
        TrainerImage.imageOnly(Path.of("berth.yaml").toAbsolutePath(), "berth", base, to);
    Map<String, String> env = new LinkedHashMap<>();
    env.put("HOME", "/tmp");
    env.put("ORT_DISABLE_TELEMETRY", "1");
    env.put("OPT_OUT_TRACKING", "true");
    ImagePlan plan =
        new ImagePlan(
            spec,
            List.of(new ImagePlan.Layer("libraries", libraries), new ImagePlan.Layer("berth", own)),
            List.of("java", "-jar", ImagePlan.HOME + "/berth.jar"),
            List.of("--help"),
            env,
            List.of(),
            ServiceSpec.Image.DEFAULT_USER,
            "/tmp",
            Map.of("dev.berth.version", berth.version()));
    err.println(
        "building Berth's own image ("
            + (libraries.size() + own.size())
            + " files, every engine) on "
            + base
            + " for "
            + to
            + " ...");
    BuiltImage built = TrainerImage.build(plan, base, to, cacheDir, err);
    return TrainerImage.pinned(to, built.digest());
  }

  /** The default base: the one Java trainers get. */
  static String defaultBase() {
    return TrainingJob.Java.DEFAULT_BASE;
  }

  private static ImagePlan.Entry entry(Path file, String target) {
    try {
      return new ImagePlan.Entry(file, target, false, Files.size(file));
    } catch (IOException e) {
      throw new BerthException("cannot read " + file + ": " + e.getMessage(), e);
    }
  }
}
