package dev.berth.image;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveInputStream;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The container engine client against a real engine (DOCKER_HOST): loads a busybox image it builds
 * itself, then runs, inspects, lists, reads the logs of, stops and removes containers.
 */
class ContainerEngineIT {
  private static final String IMAGE = "berth-it/busybox:1";
  private static final String LABEL = "dev.berth.it";
  private static final Path BUSYBOX = Path.of("/bin/busybox");
  private static final String NO_ENGINE =
      "DOCKER_HOST is not set: ContainerEngineIT needs a real container engine; run it via"
          + " bin/test, or set DOCKER_HOST=unix:///path/to/docker.sock";

  @TempDir static Path dir;
  private static ContainerEngine engine;
  private static EngineInfo info;
  private static List<String> loaded;
  private static final List<String> progress = new ArrayList<>();
  private final String run = UUID.randomUUID().toString();

  @BeforeAll
  static void loadBusyboxImage() throws IOException {
    String host = System.getenv("DOCKER_HOST");
    if (host == null || host.isBlank()) {
      if ("true".equals(System.getenv("CI"))) {
        fail(NO_ENGINE);
      }
      return; // each test is skipped, saying why
    }
    if (!Files.isExecutable(BUSYBOX)) {
      fail(
          "ContainerEngineIT builds its image from a static busybox: apt-get install busybox-static");
    }
    engine = ContainerEngine.fromEnvironment();
    info = engine.ping();
    Path tar = dir.resolve("busybox.tar");
    writeImage(tar, info.arch());
    loaded = engine.loadImage(tar, progress::add);
  }

  @BeforeEach
  void needsAnEngine() {
    assumeTrue(engine != null, NO_ENGINE);
  }

  @AfterEach
  void removeContainersOfThisTest() {
    if (engine == null) {
      return;
    }
    for (ContainerInfo c : engine.listContainers(Map.of(LABEL, run), true)) {
      engine.remove(c.id(), true);
    }
  }

  @Test
  void pingSaysWhatTheEngineIs() {
    assertFalse(info.version().isEmpty());
    assertFalse(info.apiVersion().isEmpty());
    assertEquals("linux", info.os());
  }

  @Test
  void loadedImageIsNamedAndInspectable() {
    assertEquals(List.of(IMAGE), loaded, "loaded names; progress was " + progress);
    ImageInfo image = engine.inspectImage(IMAGE).orElseThrow();
    assertTrue(image.id().startsWith("sha256:"), image.id());
    assertEquals(List.of(IMAGE), image.repoTags());
    assertEquals("busybox", image.labels().get("dev.berth.it.image"));
    assertTrue(image.exposedPorts().contains("8080/tcp"), image.exposedPorts().toString());
    assertTrue(image.sizeBytes() > 0);
    assertTrue(engine.inspectImage("berth-it/no-such-image:1").isEmpty());
  }

  @Test
  void savedImageIsADockerSaveTar() throws IOException {
    Path saved = dir.resolve("saved.tar");
    engine.saveImage(IMAGE, saved);
    List<String> names = new ArrayList<>();
    try (TarArchiveInputStream in = new TarArchiveInputStream(Files.newInputStream(saved))) {
      for (TarArchiveEntry e = in.getNextEntry(); e != null; e = in.getNextEntry()) {
        names.add(e.getName());
      }
    }
    assertTrue(names.contains("manifest.json"), names.toString());
  }

  @Test
  void containerLifecycle() {
    String name = "berth-it-" + run.substring(0, 8);
    ContainerSpec spec =
        ContainerSpec.builder(IMAGE)
            .name(name)
            .label(LABEL, run)
            .env("GREETING", "hello")
            .publish(PortBinding.tcp(8080, "127.0.0.1", 0))
            .command("/bin/busybox", "sh", "-c", "echo $GREETING; echo oops >&2; sleep 30")
            .stopTimeout(Duration.ofSeconds(1))
            .build();
    String id = engine.createContainer(spec);
    assertEquals("created", engine.inspectContainer(id).status());

    ContainerEngineException conflict =
        assertThrows(ContainerEngineException.class, () -> engine.createContainer(spec));
    assertEquals(409, conflict.status());
    assertTrue(conflict.getMessage().contains("berth stop " + name), conflict.getMessage());

    engine.start(id);
    engine.start(id); // already running: fine
    ContainerInfo running = engine.inspectContainer(id);
    assertTrue(running.running(), running.status());
    assertEquals(name, running.name());
    assertEquals(IMAGE, running.image());
    assertEquals(run, running.labels().get(LABEL));
    assertTrue(running.startedAt() != null);
    int hostPort = running.hostPort(8080).orElseThrow(() -> new AssertionError(running.ports()));
    assertTrue(hostPort > 0, running.ports().toString());

    List<ContainerInfo> listed = engine.listContainers(Map.of(LABEL, run), false);
    assertEquals(List.of(id), listed.stream().map(ContainerInfo::id).toList());

    await()
        .atMost(Duration.ofSeconds(20))
        .untilAsserted(
            () -> {
              ByteArrayOutputStream out = new ByteArrayOutputStream();
              ByteArrayOutputStream err = new ByteArrayOutputStream();
              engine.logs(id, false, null, -1, out, err);
              assertEquals("hello\n", out.toString(UTF_8));
              assertEquals("oops\n", err.toString(UTF_8));
            });

    engine.stop(id, Duration.ofSeconds(1));
    engine.stop(id, Duration.ofSeconds(1)); // already stopped: fine
    ContainerInfo stopped = engine.inspectContainer(id);
    assertFalse(stopped.running());
    assertEquals("exited", stopped.status());
    assertTrue(engine.listContainers(Map.of(LABEL, run), false).isEmpty());
    assertEquals(1, engine.listContainers(Map.of(LABEL, run), true).size());

    ByteArrayOutputStream followed = new ByteArrayOutputStream();
    engine.logs(id, true, null, -1, followed, OutputStream.nullOutputStream()); // ends: stopped
    assertEquals("hello\n", followed.toString(UTF_8));

    engine.remove(id, false);
    assertThrows(ContainerNotFoundException.class, () -> engine.inspectContainer(id));
    assertThrows(ContainerNotFoundException.class, () -> engine.remove(id, true));
  }

  @Test
  void aMissingImageIsNamedInTheError() {
    ContainerEngineException e =
        assertThrows(
            ContainerEngineException.class,
            () -> engine.createContainer(ContainerSpec.builder("berth-it/absent:1").build()));
    assertEquals(404, e.status());
    assertTrue(e.getMessage().contains("berth-it/absent:1"), e.getMessage());
  }

  @Test
  void waitForReturnsTheExitCode() {
    String id =
        engine.createContainer(
            ContainerSpec.builder(IMAGE)
                .label(LABEL, run)
                .command("/bin/busybox", "sh", "-c", "exit 3")
                .build());
    engine.start(id);
    assertEquals(3, engine.waitFor(id));
    assertEquals(3, engine.inspectContainer(id).exitCode());
  }

  /**
   * A docker-save tar: manifest.json, the image config, and one layer with busybox and links. The
   * same bytes every run (fixed times, sorted keys), so reloading it leaves no dangling image.
   */
  private static void writeImage(Path tar, String arch) throws IOException {
    ByteArrayOutputStream layer = new ByteArrayOutputStream();
    try (TarArchiveOutputStream out = new TarArchiveOutputStream(layer)) {
      out.putArchiveEntry(entry("bin/", TarArchiveEntry.LF_DIR, 040755, 0));
      out.closeArchiveEntry();
      out.putArchiveEntry(
          entry("bin/busybox", TarArchiveEntry.LF_NORMAL, 0100755, Files.size(BUSYBOX)));
      try (InputStream in = Files.newInputStream(BUSYBOX)) {
        in.transferTo(out);
      }
      out.closeArchiveEntry();
      for (String applet : List.of("sh", "echo", "sleep", "cat")) {
        TarArchiveEntry link = entry("bin/" + applet, TarArchiveEntry.LF_SYMLINK, 0120777, 0);
        link.setLinkName("busybox");
        out.putArchiveEntry(link);
        out.closeArchiveEntry();
      }
    }
    String layerDigest = sha256(layer.toByteArray());
    ObjectMapper json =
        new ObjectMapper().configure(SerializationFeature.ORDER_MAP_ENTRIES_BY_KEYS, true);
    byte[] config =
        json.writeValueAsBytes(
            Map.of(
                "architecture",
                arch,
                "os",
                "linux",
                "config",
                Map.of(
                    "Cmd", List.of("/bin/sh"),
                    "Env", List.of("PATH=/bin"),
                    "Labels", Map.of("dev.berth.it.image", "busybox"),
                    "ExposedPorts", Map.of("8080/tcp", Map.of())),
                "rootfs",
                Map.of("type", "layers", "diff_ids", List.of("sha256:" + layerDigest))));
    String configName = sha256(config) + ".json";
    String layerName = layerDigest + "/layer.tar";
    byte[] manifest =
        json.writeValueAsBytes(
            List.of(
                Map.of(
                    "Config",
                    configName,
                    "RepoTags",
                    List.of(IMAGE),
                    "Layers",
                    List.of(layerName))));
    try (TarArchiveOutputStream out = new TarArchiveOutputStream(Files.newOutputStream(tar))) {
      for (Map.Entry<String, byte[]> file :
          Map.of("manifest.json", manifest, configName, config, layerName, layer.toByteArray())
              .entrySet()) {
        out.putArchiveEntry(
            entry(file.getKey(), TarArchiveEntry.LF_NORMAL, 0100644, file.getValue().length));
        out.write(file.getValue());
        out.closeArchiveEntry();
      }
    }
  }

  private static TarArchiveEntry entry(String name, byte type, int mode, long size) {
    TarArchiveEntry entry = new TarArchiveEntry(name, type);
    entry.setMode(mode);
    entry.setSize(size);
    entry.setModTime(FileTime.fromMillis(0));
    entry.setUserName("root");
    entry.setGroupName("root");
    return entry;
  }

  private static String sha256(byte[] bytes) {
    try {
      return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
    } catch (NoSuchAlgorithmException e) {
      throw new AssertionError("every JDK has SHA-256", e);
    }
  }
}
