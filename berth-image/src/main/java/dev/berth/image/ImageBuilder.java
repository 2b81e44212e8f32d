package dev.berth.image;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.cloud.tools.jib.api.CacheDirectoryCreationException;
import com.google.cloud.tools.jib.api.Containerizer;
import com.google.cloud.tools.jib.api.ImageReference;
import com.google.cloud.tools.jib.api.InvalidImageReferenceException;
import com.google.cloud.tools.jib.api.Jib;
import com.google.cloud.tools.jib.api.JibContainer;
import com.google.cloud.tools.jib.api.JibContainerBuilder;
import com.google.cloud.tools.jib.api.LogEvent;
import com.google.cloud.tools.jib.api.RegistryException;
import com.google.cloud.tools.jib.api.RegistryImage;
import com.google.cloud.tools.jib.api.TarImage;
import com.google.cloud.tools.jib.api.buildplan.AbsoluteUnixPath;
import com.google.cloud.tools.jib.api.buildplan.FileEntriesLayer;
import com.google.cloud.tools.jib.api.buildplan.FileEntry;
import com.google.cloud.tools.jib.api.buildplan.FilePermissions;
import com.google.cloud.tools.jib.api.buildplan.ImageFormat;
import com.google.cloud.tools.jib.api.buildplan.Platform;
import com.google.cloud.tools.jib.api.buildplan.Port;
import com.google.cloud.tools.jib.event.events.ProgressEvent;
import com.google.cloud.tools.jib.frontend.CredentialRetrieverFactory;
import dev.berth.api.BerthException;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.DoubleAdder;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * Builds a planned image with jib-core, without a Docker daemon: layers are tarred and compressed
 * reproducibly (fixed times and owners, sorted entries), so the same inputs give the same digest,
 * and only changed layers are pushed.
 *
 * <pre>{@code
 * BuiltImage image = ImageBuilder.of(plan)
 *     .base(ImageLocation.parse("eclipse-temurin:21-jre"))
 *     .to(ImageLocation.parse("127.0.0.1:5000/ml/minilm:1"))
 *     .build();
 * }</pre>
 */
public final class ImageBuilder {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final FilePermissions EXECUTABLE = FilePermissions.fromOctalString("755");
  private static final java.util.regex.Pattern BASE_DIGEST =
      java.util.regex.Pattern.compile("Using base image with digest: (sha256:[0-9a-f]{64})");

  private final ImagePlan plan;
  private ImageLocation base;
  private ImageLocation target;
  private List<String> tags = List.of();
  private Path cache =
      Path.of(System.getProperty("user.home"), ".cache", "berth").toAbsolutePath().normalize();
  private boolean allowInsecure;
  private Consumer<String> progress = line -> {};
  private Supplier<ContainerEngine> engine = ContainerEngine::fromEnvironment;
  private Path sbom;

  /** The base image's digest, once known: from the base archive, or as jib-core reports it. */
  private volatile String baseDigest;

  ImageBuilder(ImagePlan plan) {
    this.plan = plan;
    this.base = ImageLocation.parse(plan.service().image().base());
    this.target = ImageLocation.parse(plan.service().image().to());
    this.tags = plan.service().image().tags();
  }

  /** A builder for a planned image; base, target and tags start as the service file says. */
  public static ImageBuilder of(ImagePlan plan) {
    return new ImageBuilder(plan);
  }

  public ImageBuilder base(ImageLocation base) {
    this.base = base;
    return this;
  }

  public ImageBuilder to(ImageLocation target) {
    this.target = target;
    return this;
  }

  /** More tags for the image (registry and engine targets). */
  public ImageBuilder tags(List<String> tags) {
    this.tags = List.copyOf(tags);
    return this;
  }

  /**
   * Where base layers, built layers, linked runtimes and what the SBOM read from each layer ({@code
   * sbom-layers/}) are kept between builds.
   */
  public ImageBuilder cacheDirectory(Path cache) {
    this.cache = cache.toAbsolutePath().normalize();
    return this;
  }

  /**
   * Lets plain-HTTP registries through. Registries on loopback ({@code 127.0.0.1}, {@code
   * localhost}) are always allowed.
   */
  public ImageBuilder allowInsecureRegistries(boolean allow) {
    this.allowInsecure = allow;
    return this;
  }

  /** Receives one line per step: layers, pulls, pushes. */
  public ImageBuilder progress(Consumer<String> progress) {
    this.progress = progress;
    return this;
  }

  /** The container engine for {@code docker://} bases and targets. */
  public ImageBuilder engine(Supplier<ContainerEngine> engine) {
    this.engine = engine;
    return this;
  }

  /**
   * Also writes the image's CycloneDX SBOM ({@link ImageSbom}), read from the built image's layers,
   * to this file. For a registry target the same image is also written into a scratch archive on
   * this machine (its layers come from the cache) and read there. What the SBOM reads from each
   * layer is kept in the cache directory by the layer's digest, so a layer is read only once.
   */
  public ImageBuilder sbom(Path file) {
    this.sbom = file == null ? null : file.toAbsolutePath().normalize();
    return this;
  }

  /** Builds the image and sends it to its target. */
  public BuiltImage build() {
    Path scratch = cache.resolve("scratch");
    List<Path> temporary = new ArrayList<>();
    try {
      Files.createDirectories(scratch);
      JibContainerBuilder jib = jibFrom(scratch, temporary);
      configure(jib);
      return containerize(jib, scratch, temporary);
    } catch (IOException e) {
      throw new BerthException("image build failed: " + e.getMessage(), e);
    } finally {
      for (Path p : temporary) {
        try {
          Files.deleteIfExists(p);
        } catch (IOException ignored) {
          // a leftover scratch file is harmless
        }
      }
    }
  }

  private void configure(JibContainerBuilder jib) {
    List<FileEntriesLayer> layers = new ArrayList<>();
    for (ImagePlan.Layer layer : plan.layers()) {
      FileEntriesLayer.Builder b = FileEntriesLayer.builder().setName(layer.name());
      for (ImagePlan.Entry e : layer.files()) {
        b.addEntry(
            new FileEntry(
                e.source(),
                AbsoluteUnixPath.get(e.path()),
                e.executable() ? EXECUTABLE : FilePermissions.DEFAULT_FILE_PERMISSIONS,
                FileEntriesLayer.DEFAULT_MODIFICATION_TIME));
      }
      layers.add(b.build());
    }
    String[] platform = plan.service().image().platform().split("/");
    Set<Port> ports = new LinkedHashSet<>();
    plan.ports().forEach(p -> ports.add(Port.tcp(p)));
    jib.setFileEntriesLayers(layers)
        .setEntrypoint(plan.entrypoint())
        .setProgramArguments(plan.cmd())
        .setEnvironment(plan.environment())
        .setExposedPorts(ports)
        .setLabels(plan.labels())
        .setUser(plan.user())
        .setWorkingDirectory(AbsoluteUnixPath.get(plan.workingDirectory()))
        .setFormat(ImageFormat.OCI)
        .setPlatforms(Set.of(new Platform(platform[1], platform[0])))
        .setCreationTime(Instant.EPOCH);
  }

  private JibContainerBuilder jibFrom(Path scratch, List<Path> temporary) throws IOException {
    return switch (base) {
      case ImageLocation.Registry r -> {
        int at = r.reference().indexOf("@sha256:");
        baseDigest = at < 0 ? null : r.reference().substring(at + 1);
        yield Jib.from(registryImage(r.reference()));
      }
      case ImageLocation.Archive a -> {
        Path readable = OciArchive.dockerReadable(a.file(), scratch);
        baseDigest = sbom == null ? null : OciArchive.imageDigest(a.file());
        if (!readable.equals(a.file())) {
          temporary.add(readable);
        }
        yield Jib.from(TarImage.at(readable));
      }
      case ImageLocation.Daemon d -> {
        Path saved = Files.createTempFile(scratch, "base-", ".tar");
        temporary.add(saved);
        progress.accept("exporting base image " + d.reference() + " from the container engine");
        engine.get().saveImage(d.reference(), saved);
        baseDigest = sbom == null ? null : OciArchive.imageDigest(saved);
        yield Jib.from(TarImage.at(saved));
      }
    };
  }

  private BuiltImage containerize(JibContainerBuilder jib, Path scratch, List<Path> temporary)
      throws IOException {
    String name = tarName();
    Containerizer containerizer;
    Path jibTar = null;
    switch (target) {
      case ImageLocation.Registry r ->
          containerizer = Containerizer.to(registryImage(r.reference()));
      case ImageLocation.Archive a -> {
        jibTar = Files.createTempFile(scratch, "image-", ".tar");
        containerizer = Containerizer.to(TarImage.at(jibTar).named(parse(name)));
      }
      case ImageLocation.Daemon d -> {
        jibTar = Files.createTempFile(scratch, "image-", ".tar");
        containerizer = Containerizer.to(TarImage.at(jibTar).named(parse(name)));
      }
    }
    if (jibTar != null) {
      temporary.add(jibTar);
    }
    if (target instanceof ImageLocation.Registry) {
      for (String tag : tags) {
        containerizer.withAdditionalTag(tag);
      }
    }
    JibContainer built = run(jib, containerizer, progress);
    String digest = built.getDigest().toString();
    String imageId = built.getImageId().toString();
    return switch (target) {
      case ImageLocation.Registry r -> {
        long[] size = registrySize(r.reference(), digest);
        if (sbom != null) {
          // The image is pushed: a failure here must not fail the build, whose caller still
          // records, signs and reports what was pushed. It is said, and no SBOM file is left.
          try {
            // the same image again, into an archive here: it has the pushed image's digest
            Path copy = Files.createTempFile(scratch, "sbom-", ".tar");
            temporary.add(copy);
            progress.accept("writing the pushed image into an archive here for its SBOM");
            JibContainer local =
                run(
                    jib,
                    Containerizer.to(TarImage.at(copy).named(parse(r.reference()))),
                    line -> {});
            if (!local.getDigest().toString().equals(digest)) {
              throw new BerthException(
                  "the image rebuilt for its SBOM has the digest "
                      + local.getDigest()
                      + ", not the pushed "
                      + digest);
            }
            writeSbom(copy);
          } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(sbom);
            progress.accept(
                "warning: the SBOM of the pushed image was not written: " + e.getMessage());
          }
        }
        yield new BuiltImage(target, digest, imageId, size[0], (int) size[1]);
      }
      case ImageLocation.Archive a -> {
        Files.createDirectories(a.file().toAbsolutePath().getParent());
        OciArchive.Contents c = OciArchive.addDockerManifest(jibTar, a.file(), repoTags(name));
        writeSbom(a.file());
        yield new BuiltImage(target, digest, imageId, c.totalSize(), c.layerSizes().size());
      }
      case ImageLocation.Daemon d -> {
        Path loadable = Files.createTempFile(scratch, "load-", ".tar");
        temporary.add(loadable);
        OciArchive.Contents c = OciArchive.addDockerManifest(jibTar, loadable, repoTags(name));
        writeSbom(loadable);
        progress.accept("loading the image into the container engine");
        engine.get().loadImage(loadable, line -> progress.accept("  " + line));
        yield new BuiltImage(target, digest, imageId, c.totalSize(), c.layerSizes().size());
      }
    };
  }

  /** Runs jib-core with Berth's settings: caches, tool name, progress lines to {@code lines}. */
  private JibContainer run(
      JibContainerBuilder jib, Containerizer containerizer, Consumer<String> lines)
      throws IOException {
    containerizer
        .setAllowInsecureRegistries(allowInsecure || loopback(base) || loopback(target))
        .setBaseImageLayersCache(cache.resolve("jib").resolve("base"))
        .setApplicationLayersCache(cache.resolve("jib").resolve("layers"))
        .setToolName("berth")
        .setToolVersion(plan.labels().getOrDefault("dev.berth.version", "dev"));
    Progress meter = new Progress(lines);
    containerizer.addEventHandler(LogEvent.class, meter::log);
    containerizer.addEventHandler(LogEvent.class, this::noteBaseDigest);
    containerizer.addEventHandler(ProgressEvent.class, meter::progress);
    try {
      return jib.containerize(containerizer);
    } catch (ExecutionException e) {
      Throwable cause = e.getCause() == null ? e : e.getCause();
      throw new BerthException("image build failed: " + describe(cause), cause);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new BerthException("image build interrupted", e);
    } catch (RegistryException | CacheDirectoryCreationException e) {
      throw new BerthException("image build failed: " + describe(e), e);
    }
  }

  /** jib-core says which digest a registry base resolved to, once it has pulled it. */
  private void noteBaseDigest(LogEvent e) {
    java.util.regex.Matcher m = BASE_DIGEST.matcher(e.getMessage());
    if (baseDigest == null && m.find()) {
      baseDigest = m.group(1);
    }
  }

  /** Writes the SBOM of the image in this archive to {@link #sbom}, if one is wanted. */
  private void writeSbom(Path archive) {
    if (sbom == null) {
      return;
    }
    progress.accept("writing the SBOM " + sbom);
    byte[] json =
        ImageSbom.of(plan)
            .base(base.toString(), baseDigest)
            .warnings(line -> progress.accept("warning: " + line))
            .layerCache(cache.resolve("sbom-layers"))
            .describe(archive);
    Path tmp = sbom.resolveSibling(sbom.getFileName() + ".tmp");
    try {
      Files.createDirectories(sbom.getParent());
      Files.write(tmp, json);
      Files.move(
          tmp,
          sbom,
          java.nio.file.StandardCopyOption.REPLACE_EXISTING,
          java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw new BerthException("cannot write the SBOM " + sbom + ": " + e.getMessage(), e);
    }
  }

  /** The name an archive or engine image carries. */
  private String tarName() {
    return switch (target) {
      case ImageLocation.Daemon d -> d.reference();
      case ImageLocation.Registry r -> r.reference();
      case ImageLocation.Archive a -> {
        ImageLocation configured = ImageLocation.parse(plan.service().image().to());
        yield configured instanceof ImageLocation.Archive
            ? "berth/" + plan.service().name() + ":latest"
            : configured instanceof ImageLocation.Daemon d
                ? d.reference()
                : ((ImageLocation.Registry) configured).reference();
      }
    };
  }

  private List<String> repoTags(String name) {
    List<String> out = new ArrayList<>();
    ImageReference ref = parse(name);
    out.add(ref.toStringWithQualifier());
    for (String tag : tags) {
      out.add(ref.withQualifier(tag).toStringWithQualifier());
    }
    return out;
  }

  private static RegistryImage registryImage(String reference) {
    ImageReference ref = parse(reference);
    return RegistryImage.named(ref)
        .addCredentialRetriever(
            CredentialRetrieverFactory.forImage(ref, event -> {}).dockerConfig());
  }

  private static ImageReference parse(String reference) {
    try {
      return ImageReference.parse(reference);
    } catch (InvalidImageReferenceException e) {
      throw new BerthException("'" + reference + "' is not an image reference", e);
    }
  }

  private static boolean loopback(ImageLocation location) {
    if (!(location instanceof ImageLocation.Registry r)) {
      return false;
    }
    String host = parse(r.reference()).getRegistry().toLowerCase(Locale.ROOT);
    return host.startsWith("127.") || host.startsWith("localhost") || host.startsWith("[::1]");
  }

  /**
   * Reads the pushed manifest back for the image's size: {manifest, config and layer bytes; layer
   * count}, or {-1, -1} when the registry wants credentials for it.
   */
  private long[] registrySize(String reference, String digest) {
    ImageReference ref = parse(reference);
    String registry = ref.getRegistry();
    HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    List<String> schemes =
        loopback(target) || allowInsecure ? List.of("https", "http") : List.of("https");
    for (String scheme : schemes) {
      try {
        HttpRequest request =
            HttpRequest.newBuilder(
                    URI.create(
                        scheme
                            + "://"
                            + registry
                            + "/v2/"
                            + ref.getRepository()
                            + "/manifests/"
                            + digest))
                .header(
                    "Accept",
                    "application/vnd.oci.image.manifest.v1+json,"
                        + "application/vnd.docker.distribution.manifest.v2+json")
                .timeout(Duration.ofSeconds(10))
                .build();
        HttpResponse<byte[]> response = http.send(request, HttpResponse.BodyHandlers.ofByteArray());
        if (response.statusCode() != 200) {
          return new long[] {-1, -1};
        }
        JsonNode manifest = JSON.readTree(response.body());
        long total = response.body().length + manifest.path("config").path("size").asLong();
        int layers = 0;
        for (JsonNode layer : manifest.path("layers")) {
          total += layer.path("size").asLong();
          layers++;
        }
        return new long[] {total, layers};
      } catch (IOException e) {
        // try the next scheme
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    return new long[] {-1, -1};
  }

  private static String describe(Throwable e) {
    String message = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    if (e instanceof com.google.cloud.tools.jib.api.InsecureRegistryException) {
      return message + "; for a plain-HTTP registry pass --allow-insecure-registries";
    }
    if (e instanceof com.google.cloud.tools.jib.api.RegistryUnauthorizedException) {
      return message + "; log in first (credentials are read from ~/.docker/config.json)";
    }
    if (e instanceof java.net.UnknownHostException || e instanceof java.net.ConnectException) {
      return "cannot reach the registry (" + message + ")";
    }
    return message;
  }

  /** Turns jib's events into progress lines: each step once, with the share of work done. */
  private static final class Progress {
    private final Consumer<String> out;
    private final DoubleAdder done = new DoubleAdder();
    private final Set<String> seen = ConcurrentHashMap.newKeySet();

    Progress(Consumer<String> out) {
      this.out = out;
    }

    void log(LogEvent e) {
      if (e.getLevel() == LogEvent.Level.ERROR || e.getLevel() == LogEvent.Level.WARN) {
        // jib colours some messages for terminals; progress lines are plain text
        String message = e.getMessage().replaceAll("\u001B\\[[0-9;]*m", "").strip();
        out.accept(e.getLevel().name().toLowerCase(Locale.ROOT) + ": " + message);
      }
    }

    void progress(ProgressEvent e) {
      var allocation = e.getAllocation();
      if (allocation.getAllocationUnits() > 0) {
        done.add(allocation.getFractionOfRoot() * e.getUnits() / allocation.getAllocationUnits());
      }
      String what = allocation.getDescription();
      if (what != null && !what.isBlank() && seen.add(what) && interesting(what)) {
        out.accept(
            String.format(Locale.ROOT, "[%3.0f%%] %s", Math.min(100, done.sum() * 100), what));
      }
    }

    private static boolean interesting(String what) {
      return what.startsWith("building ")
          || what.startsWith("pushing ")
          || what.startsWith("pulling ")
          || what.startsWith("writing ")
          || what.startsWith("loading ");
    }
  }
}
