package dev.berth.image;

import static dev.berth.image.FakeEngine.answer;
import static dev.berth.image.FakeEngine.chunked;
import static dev.berth.image.FakeEngine.frame;
import static java.nio.charset.StandardCharsets.UTF_8;
import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.URLDecoder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Requests the client sends and how it reads answers, against a fake engine on a real socket. */
class ContainerEngineWireTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String CONTAINER_JSON =
      """
      {"Id": "c0ffee", "Name": "/berth-minilm", "Config": {"Image": "berth/minilm:1", "Tty": %s,
       "Labels": {"dev.berth.model": "minilm"}},
       "State": {"Status": "created", "Running": false, "ExitCode": 0,
                 "StartedAt": "0001-01-01T00:00:00Z"},
       "NetworkSettings": {"Ports": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "49153"}],
                                     "9090/tcp": null}}}
      """;

  @TempDir Path dir;
  private FakeEngine fake;

  private ContainerEngine engine(FakeEngine.Script script) throws IOException {
    fake = new FakeEngine(dir.resolve("e.sock"), script);
    return ContainerEngine.at(fake.host());
  }

  @AfterEach
  void stopFake() throws IOException {
    if (fake != null) {
      fake.close();
    }
  }

  @Test
  void pingSendsAVersionedRequestAndReadsTheVersion() throws IOException {
    ContainerEngine engine =
        engine(
            (r, out) ->
                out.write(
                    answer(
                        200,
                        "application/json",
                        "{\"Version\":\"20.10.24\",\"ApiVersion\":\"1.41\",\"Os\":\"linux\","
                            + "\"Arch\":\"amd64\"}")));
    assertEquals(new EngineInfo("20.10.24", "1.41", "linux", "amd64"), engine.ping());
    FakeEngine.Request request = fake.requests().get(0);
    assertEquals("GET", request.method());
    assertEquals("/v1.41/version", request.target());
    assertEquals("docker", request.headers().get("host"));
    assertEquals("close", request.headers().get("connection"));
  }

  @Test
  void theSameOverTcp() throws IOException {
    fake = new FakeEngine(null, (r, out) -> out.write(answer(200, "application/json", "{}")));
    assertEquals(new EngineInfo("", "", "", ""), ContainerEngine.at(fake.host()).ping());
  }

  @Test
  void inspectImageReadsAChunkedAnswerAndMapsNotFoundToEmpty() throws IOException {
    String image =
        "{\"Id\":\"sha256:abc\",\"RepoTags\":[\"berth/minilm:1\"],\"Size\":1234,"
            + "\"Config\":{\"Labels\":null,\"ExposedPorts\":{\"8080/tcp\":{}}}}";
    ContainerEngine engine =
        engine(
            (r, out) ->
                out.write(
                    r.target().contains("missing")
                        ? answer(404, "application/json", "{\"message\":\"No such image\"}")
                        : chunked(
                            200,
                            "application/json",
                            image.substring(0, 20).getBytes(UTF_8),
                            image.substring(20).getBytes(UTF_8))));
    ImageInfo info = engine.inspectImage("registry:5000/berth/minilm:1").orElseThrow();
    assertEquals(
        new ImageInfo("sha256:abc", List.of("berth/minilm:1"), 1234, Map.of(), Set.of("8080/tcp")),
        info);
    assertEquals(
        "/v1.41/images/registry:5000/berth/minilm:1/json", fake.requests().get(0).target());
    assertTrue(engine.inspectImage("missing").isEmpty());
  }

  @Test
  void createContainerSendsTheSpec() throws IOException {
    ContainerEngine engine =
        engine((r, out) -> out.write(answer(201, "application/json", "{\"Id\":\"c0ffee\"}")));
    String id =
        engine.createContainer(
            ContainerSpec.builder("berth/minilm:1")
                .name("berth minilm")
                .env("JAVA_OPTS", "-Xmx1g")
                .label("dev.berth.model", "minilm")
                .publish(PortBinding.tcp(8080, "127.0.0.1", 0))
                .publish(PortBinding.tcp(8081, "", 18081))
                .command("serve", "/models")
                .stopTimeout(Duration.ofMillis(1500))
                .cpus(1.5)
                .memory(512L << 20)
                .gpus(2)
                .build());
    assertEquals("c0ffee", id);
    FakeEngine.Request request = fake.requests().get(0);
    assertEquals("POST", request.method());
    assertEquals("/v1.41/containers/create?name=berth+minilm", request.target());
    assertEquals("application/json", request.headers().get("content-type"));
    JsonNode body = JSON.readTree(request.body());
    assertEquals("berth/minilm:1", body.get("Image").asText());
    assertEquals("[\"JAVA_OPTS=-Xmx1g\"]", body.get("Env").toString());
    assertEquals("minilm", body.get("Labels").get("dev.berth.model").asText());
    assertEquals("[\"serve\",\"/models\"]", body.get("Cmd").toString());
    assertEquals(2, body.get("StopTimeout").asInt());
    assertTrue(body.get("ExposedPorts").has("8080/tcp"));
    JsonNode host = body.get("HostConfig");
    assertFalse(host.get("AutoRemove").asBoolean());
    assertEquals(1_500_000_000L, host.get("NanoCpus").asLong());
    assertEquals(512L << 20, host.get("Memory").asLong());
    assertEquals(512L << 20, host.get("MemorySwap").asLong(), "no swap beyond the limit");
    assertEquals(
        "[{\"Driver\":\"nvidia\",\"Count\":2,\"Capabilities\":[[\"gpu\"]]}]",
        host.get("DeviceRequests").toString(),
        "as docker run --gpus 2");
    assertEquals(
        "[{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"\"}]",
        host.get("PortBindings").get("8080/tcp").toString());
    assertEquals(
        "[{\"HostIp\":\"\",\"HostPort\":\"18081\"}]",
        host.get("PortBindings").get("8081/tcp").toString());
  }

  @Test
  void aNameConflictSaysHowToStopTheOtherContainer() throws IOException {
    ContainerEngine engine =
        engine(
            (r, out) ->
                out.write(
                    answer(
                        409,
                        "application/json",
                        "{\"message\":\"Conflict. The name is in use\"}")));
    ContainerEngineException e =
        assertThrows(
            ContainerEngineException.class,
            () -> engine.createContainer(ContainerSpec.builder("i").name("minilm").build()));
    assertEquals(409, e.status());
    assertTrue(e.getMessage().contains("'minilm' already exists"), e.getMessage());
    assertTrue(e.getMessage().contains("`berth stop minilm`"), e.getMessage());
  }

  @Test
  void errorsCarryTheEnginesMessageAndStatus() throws IOException {
    ContainerEngine engine =
        engine(
            (r, out) ->
                out.write(
                    switch (r.target()) {
                      case "/v1.41/containers/a/start" ->
                          answer(500, "application/json", "{\"message\":\"driver failed\"}\n");
                      case "/v1.41/containers/b/start" ->
                          answer(500, "text/plain", "plain words\n");
                      case "/v1.41/containers/c/start" -> answer(502, "text/plain", "");
                      default ->
                          answer(404, "application/json", "{\"message\":\"No such container\"}");
                    }));
    ContainerEngineException a =
        assertThrows(ContainerEngineException.class, () -> engine.start("a"));
    assertEquals("cannot start container a: driver failed", a.getMessage());
    assertEquals(500, a.status());
    assertEquals(
        "cannot start container b: plain words",
        assertThrows(ContainerEngineException.class, () -> engine.start("b")).getMessage());
    assertEquals(
        "cannot start container c: HTTP 502 Status",
        assertThrows(ContainerEngineException.class, () -> engine.start("c")).getMessage());
    ContainerNotFoundException missing =
        assertThrows(ContainerNotFoundException.class, () -> engine.start("gone"));
    assertEquals("gone", missing.container());
    assertEquals(404, missing.status());
  }

  @Test
  void stopRoundsTheTimeoutUpAndTakesAlreadyStopped() throws IOException {
    ContainerEngine engine =
        engine((r, out) -> out.write("HTTP/1.1 304 Not Modified\r\n\r\n".getBytes(UTF_8)));
    engine.stop("c0ffee", Duration.ofMillis(1500));
    assertEquals("/v1.41/containers/c0ffee/stop?t=2", fake.requests().get(0).target());
    assertEquals("0", fake.requests().get(0).headers().get("content-length"));
  }

  @Test
  void removeAndWait() throws IOException {
    ContainerEngine engine =
        engine(
            (r, out) ->
                out.write(
                    r.method().equals("DELETE")
                        ? "HTTP/1.1 204 No Content\r\n\r\n".getBytes(UTF_8)
                        : answer(200, "application/json", "{\"StatusCode\":3,\"Error\":null}")));
    engine.remove("c0ffee", true);
    assertEquals("DELETE /v1.41/containers/c0ffee?force=true", line(fake.requests().get(0)));
    assertEquals(3, engine.waitFor("c0ffee"));
    assertEquals(
        "POST /v1.41/containers/c0ffee/wait?condition=not-running", line(fake.requests().get(1)));
  }

  @Test
  void inspectAndListReadStatePortsAndLabels() throws IOException {
    ContainerEngine engine =
        engine(
            (r, out) ->
                out.write(
                    r.target().startsWith("/v1.41/containers/json")
                        ? answer(200, "application/json", "[{\"Id\":\"c0ffee\"},{\"Id\":\"gone\"}]")
                        : r.target().contains("gone")
                            ? answer(404, "application/json", "{\"message\":\"No such container\"}")
                            : answer(200, "application/json", CONTAINER_JSON.formatted("false"))));
    ContainerInfo expected =
        new ContainerInfo(
            "c0ffee",
            "berth-minilm",
            "berth/minilm:1",
            "created",
            false,
            0,
            null,
            Map.of("dev.berth.model", "minilm"),
            List.of(PortBinding.tcp(8080, "127.0.0.1", 49153)));
    assertEquals(expected, engine.inspectContainer("berth-minilm"));
    assertEquals(49153, expected.hostPort(8080).orElseThrow());
    assertTrue(expected.hostPort(9090).isEmpty());

    assertEquals(
        List.of(expected), engine.listContainers(Map.of("dev.berth.model", "minilm"), true));
    String target = fake.requests().get(1).target();
    assertTrue(target.startsWith("/v1.41/containers/json?all=true&filters="), target);
    assertEquals(
        "{\"label\":[\"dev.berth.model=minilm\"]}",
        URLDecoder.decode(target.substring(target.indexOf("filters=") + 8), UTF_8));
  }

  @Test
  void logsAreDemultiplexedUnlessTheContainerHasATty() throws IOException {
    boolean[] tty = {false};
    ContainerEngine engine =
        engine(
            (r, out) ->
                out.write(
                    r.target().contains("/logs")
                        ? tty[0]
                            ? chunked(
                                200, "application/vnd.docker.raw-stream", "raw\n".getBytes(UTF_8))
                            : chunked(
                                200,
                                "application/vnd.docker.raw-stream", // what API 1.41 says for both
                                frame(1, "hello\n"),
                                frame(2, "oops\n"))
                        : answer(200, "application/json", CONTAINER_JSON.formatted(tty[0]))));
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    engine.logs("c0ffee", false, Instant.ofEpochSecond(1700000000, 5), 10, out, err);
    assertEquals("hello\n", out.toString(UTF_8));
    assertEquals("oops\n", err.toString(UTF_8));
    assertEquals(
        "/v1.41/containers/c0ffee/logs?stdout=1&stderr=1&follow=0&tail=10"
            + "&since=1700000000.000000005",
        fake.requests().get(1).target());

    tty[0] = true;
    out.reset();
    engine.logs("c0ffee", true, null, -1, out, err);
    assertEquals("raw\n", out.toString(UTF_8));
    assertEquals(
        "/v1.41/containers/c0ffee/logs?stdout=1&stderr=1&follow=1&tail=all",
        fake.requests().get(3).target());
  }

  @Test
  void followingLogsEndsWhenTheThreadIsInterruptedOrTheClientCloses() throws Exception {
    CountDownLatch engineStops = new CountDownLatch(1);
    ContainerEngine engine =
        engine(
            (r, out) -> {
              if (!r.target().contains("/logs")) {
                out.write(answer(200, "application/json", CONTAINER_JSON.formatted("false")));
                return;
              }
              byte[] first =
                  chunked(200, "application/vnd.docker.multiplexed-stream", frame(1, "line\n"));
              out.write(first, 0, first.length - 5); // without the last chunk: the stream goes on
              out.flush();
              engineStops.await(30, TimeUnit.SECONDS);
            });
    try {
      for (boolean interrupt : new boolean[] {true, false}) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        List<Throwable> failures = new ArrayList<>();
        Thread reader =
            Thread.ofPlatform()
                .start(
                    () -> {
                      try {
                        engine.logs("c0ffee", true, null, -1, out, OutputStream.nullOutputStream());
                      } catch (RuntimeException e) {
                        failures.add(e);
                      }
                    });
        await().atMost(Duration.ofSeconds(10)).until(() -> out.toString(UTF_8).equals("line\n"));
        if (interrupt) {
          reader.interrupt();
        } else {
          engine.close();
        }
        reader.join(Duration.ofSeconds(10));
        assertFalse(reader.isAlive(), "logs still following");
        assertEquals(List.of(), failures);
      }
    } finally {
      engineStops.countDown();
    }
  }

  @Test
  void loadImageStreamsTheTarAndReportsProgressAndNames() throws IOException {
    Path tar = Files.write(dir.resolve("image.tar"), "not really a tar".getBytes(UTF_8));
    ContainerEngine engine =
        engine(
            (r, out) ->
                out.write(
                    chunked(
                        200,
                        "application/json",
                        ("{\"status\":\"Loading layer\",\"progressDetail\":{\"current\":1},\"id\":\"ab\"}\n"
                                + "{\"status\":\"Loading layer\",\"progressDetail\":{\"current\":2},\"id\":\"ab\"}\n")
                            .getBytes(UTF_8),
                        "{\"stream\":\"Loaded image: berth/minilm:1\\n\"}\r\n".getBytes(UTF_8),
                        "{\"stream\":\"Loaded image ID: sha256:abc\\n\"}".getBytes(UTF_8))));
    List<String> progress = new ArrayList<>();
    assertEquals(List.of("berth/minilm:1", "sha256:abc"), engine.loadImage(tar, progress::add));
    assertEquals(
        List.of("Loading layer ab", "Loaded image: berth/minilm:1", "Loaded image ID: sha256:abc"),
        progress);
    FakeEngine.Request request = fake.requests().get(0);
    assertEquals("POST /v1.41/images/load?quiet=0", line(request));
    assertEquals("application/x-tar", request.headers().get("content-type"));
    assertEquals("not really a tar", request.bodyText());
  }

  @Test
  void anErrorLineFailsTheLoad() throws IOException {
    Path tar = Files.write(dir.resolve("image.tar"), new byte[10]);
    ContainerEngine engine =
        engine(
            (r, out) ->
                out.write(
                    chunked(
                        200,
                        "application/json",
                        ("{\"errorDetail\":{\"message\":\"unexpected EOF\"},\"error\":\"unexpected EOF\"}")
                            .getBytes(UTF_8))));
    ContainerEngineException e =
        assertThrows(ContainerEngineException.class, () -> engine.loadImage(tar, line -> {}));
    assertEquals(
        "cannot load " + tar + " into the container engine: unexpected EOF", e.getMessage());
  }

  @Test
  void saveImageWritesTheBodyToTheFile() throws IOException {
    ContainerEngine engine =
        engine(
            (r, out) -> out.write(chunked(200, "application/x-tar", "tar bytes".getBytes(UTF_8))));
    Path tar = dir.resolve("saved.tar");
    engine.saveImage("berth/minilm:1", tar);
    assertEquals("tar bytes", Files.readString(tar));
    assertEquals("GET /v1.41/images/berth/minilm:1/get", line(fake.requests().get(0)));
  }

  @Test
  void aBrokenAnswerIsAnEngineError() throws IOException {
    ContainerEngine engine = engine((r, out) -> out.write("SSH-2.0-OpenSSH\r\n".getBytes(UTF_8)));
    ContainerEngineException e = assertThrows(ContainerEngineException.class, engine::ping);
    assertEquals(0, e.status());
    assertTrue(e.getMessage().contains("not an HTTP answer"), e.getMessage());
  }

  private static String line(FakeEngine.Request request) {
    return request.method() + " " + request.target();
  }
}
