package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The packaged command: help, version, and clear errors with exit code 2. */
class CommandLineIT {
  @TempDir Path work;

  private record Run(int code, String out, String err) {}

  private Run run(String... args) throws Exception {
    ProcessBuilder pb = new ProcessBuilder(BerthProcess.command(args));
    pb.environment().put("ORT_DISABLE_TELEMETRY", "1");
    pb.environment().put("OPT_OUT_TRACKING", "true");
    pb.environment().put("DJL_CACHE_DIR", work.resolve("djl").toString());
    Process p = pb.start();
    byte[] out = p.getInputStream().readAllBytes();
    byte[] err = p.getErrorStream().readAllBytes();
    assertTrue(p.waitFor(60, TimeUnit.SECONDS));
    return new Run(
        p.exitValue(),
        new String(out, StandardCharsets.UTF_8),
        new String(err, StandardCharsets.UTF_8));
  }

  @Test
  void versionPrintsTheVersion() throws Exception {
    Run r = run("--version");
    assertEquals(0, r.code());
    assertTrue(r.out().matches("berth \\d+\\.\\d+\\.\\d+.*\\R"), r.out());
  }

  @Test
  void serveHelpListsEveryOptionWithItsDefault() throws Exception {
    Run r = run("serve", "--help");
    assertEquals(0, r.code());
    for (String option :
        new String[] {
          "--host",
          "--port",
          "--grpc-port",
          "--max-body-size",
          "--drain-timeout",
          "--log-format",
          "--log-level",
          "REPO"
        }) {
      assertTrue(r.out().contains(option), option + " missing from:\n" + r.out());
    }
    for (String dflt :
        new String[] {
          "127.0.0.1", "8080", "8081", "32MiB", "30s", "auto", "info", "examples/models"
        }) {
      assertTrue(r.out().contains(dflt), "default " + dflt + " missing from:\n" + r.out());
    }
    Run top = run("--help");
    assertEquals(0, top.code());
    assertTrue(top.out().contains("serve"), top.out());
  }

  @Test
  void badOptionIsExitCodeTwoWithAMessage() throws Exception {
    Run r = run("serve", "--port", "eighty");
    assertEquals(2, r.code());
    assertTrue(r.err().contains("--port") && r.err().contains("eighty"), r.err());
  }

  @Test
  void missingRepositoryIsExitCodeTwoWithTheFix() throws Exception {
    Run r =
        run("serve", work.resolve("no-such-repo").toString(), "--port", "0", "--grpc-port", "0");
    assertEquals(2, r.code());
    assertTrue(
        r.err().contains("does not exist") && r.err().contains("<model>/<version>/model.onnx"),
        r.err());
  }

  @Test
  void aPortInUseIsExitCodeTwoWithTheFix() throws Exception {
    try (java.net.ServerSocket taken =
        new java.net.ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      Run r =
          run(
              "serve",
              BerthProcess.examples().toString(),
              "--port",
              Integer.toString(taken.getLocalPort()),
              "--grpc-port",
              "0");
      assertEquals(2, r.code(), r.out() + r.err());
      assertTrue(
          r.err().contains("cannot listen on 127.0.0.1:" + taken.getLocalPort())
              && r.err().contains("pick another with --port"),
          r.err());
    }
  }

  @Test
  void aLanguageModelBuildsOnTheDefaultBaseWhichHasWhatLlamaCppNeeds() throws Exception {
    Path service = languageModelService(null);
    Path context = work.resolve("ctx");

    Run r = run("build", service.toString(), "--dockerfile", context.toString());

    assertEquals(0, r.code(), r.out() + r.err());
    assertFalse(r.err().contains("note:"), r.err());
    String dockerfile = Files.readString(context.resolve("Dockerfile"));
    assertTrue(dockerfile.contains("\nFROM eclipse-temurin:21-jre"), dockerfile);
  }

  @Test
  void aLanguageModelImageGetsItsOwnLayerAndANoteOnItsBase() throws Exception {
    Path service = languageModelService("registry.example/llm-base:1");
    Path context = work.resolve("ctx");

    Run r = run("build", service.toString(), "--dockerfile", context.toString());

    assertEquals(0, r.code(), r.err());
    assertTrue(
        r.err().contains("note: this service has a language model")
            && r.err().contains("registry.example/llm-base:1"),
        r.err());
    String dockerfile = Files.readString(context.resolve("Dockerfile"));
    assertTrue(dockerfile.contains("\nFROM registry.example/llm-base:1\n"), dockerfile);
    try (Stream<Path> files = Files.walk(context.resolve("layers"))) {
      List<String> paths = files.map(p -> context.relativize(p).toString()).toList();
      assertTrue(paths.stream().anyMatch(p -> p.endsWith("tiny/1/model.gguf")), paths.toString());
      assertTrue(
          paths.stream().anyMatch(p -> p.matches(".*/berth-llm-[^/]*\\.jar")), paths.toString());
    }
  }

  private Path languageModelService(String base) throws Exception {
    return TinyLlmService.write(
        work, "image:\n  to: berth/tiny-llm:1\n" + (base == null ? "" : "  base: " + base + "\n"));
  }

  @Test
  void anImageCarriesWhatServingNeedsAndNoMore() throws Exception {
    Path service = BerthProcess.examples().resolveSibling("minilm").resolve("berth.yaml");
    Path context = work.resolve("context");
    Run r = run("build", service.toString(), "--dockerfile", context.toString());
    assertEquals(0, r.code(), r.err());
    // the image's file tree: every layer's files, merged as the image stacks them
    Path root = work.resolve("root");
    try (Stream<Path> layers = Files.list(context.resolve("layers"))) {
      for (Path layer : layers.sorted().toList()) {
        try (Stream<Path> files = Files.walk(layer)) {
          for (Path f : files.filter(Files::isRegularFile).toList()) {
            Path to = root.resolve(layer.relativize(f).toString());
            Files.createDirectories(to.getParent());
            Files.copy(f, to);
          }
        }
      }
    }
    List<String> jars;
    try (Stream<Path> lib = Files.list(root.resolve("opt/berth/lib"))) {
      jars = lib.map(p -> p.getFileName().toString()).sorted().toList();
    }
    for (String needed :
        new String[] {
          "onnxruntime-", "helidon-webserver-", "grpc-core-", "berth-server-", "picocli-"
        }) {
      assertTrue(jars.stream().anyMatch(j -> j.startsWith(needed)), needed + " missing: " + jars);
    }
    for (String tooling :
        new String[] {"jib-", "kubernetes-", "berth-image-", "berth-kube-", "vertx-"}) {
      assertTrue(
          jars.stream().noneMatch(j -> j.startsWith(tooling)), tooling + " in the image: " + jars);
    }
    // the image's berth knows it only serves
    ProcessBuilder pb =
        new ProcessBuilder(
            BerthProcess.java(), "-jar", root.resolve("opt/berth/berth.jar").toString(), "--help");
    pb.environment().put("ORT_DISABLE_TELEMETRY", "1");
    pb.environment().put("OPT_OUT_TRACKING", "true");
    pb.redirectErrorStream(true);
    Process p = pb.start();
    String help = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(p.waitFor(60, TimeUnit.SECONDS));
    assertEquals(0, p.exitValue(), help);
    assertTrue(help.contains("serve"), help);
    assertTrue(!help.contains("\n  deploy ") && !help.contains("\n  build "), help);
  }
}
