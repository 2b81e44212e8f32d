package dev.berth.store;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import dev.berth.api.BerthException;
import dev.berth.api.InvalidInputException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** One model file over HTTP from a real socket: served, replaced, pinned, missing. */
class HttpModelIT {
  @TempDir Path work;
  private HttpServer server;
  private final AtomicReference<byte[]> file = new AtomicReference<>("first weights".getBytes());
  private final List<String> progress = new ArrayList<>();
  private String base;

  @BeforeEach
  void start() throws Exception {
    server = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    server.createContext(
        "/models/",
        x -> {
          byte[] body = file.get();
          if (!x.getRequestURI().getPath().equals("/models/tiny-net.onnx")) {
            x.sendResponseHeaders(404, -1);
            x.close();
            return;
          }
          x.getResponseHeaders()
              .add(
                  "ETag",
                  "\"" + HexFormat.of().formatHex(RegistryClient.sha256().digest(body)) + "\"");
          if (x.getRequestURI().getQuery() != null && x.getRequestMethod().equals("HEAD")) {
            x.sendResponseHeaders(403, -1); // presigned for GET only
            x.close();
            return;
          }
          String range = x.getRequestHeaders().getFirst("Range");
          if (range != null && range.equals("bytes=0-0")) {
            x.getResponseHeaders().add("Content-Range", "bytes 0-0/" + body.length);
            x.sendResponseHeaders(206, 1);
            x.getResponseBody().write(body, 0, 1);
            x.close();
            return;
          }
          if (x.getRequestMethod().equals("HEAD")) {
            x.getResponseHeaders().add("Content-Length", Integer.toString(body.length));
            x.sendResponseHeaders(200, -1);
          } else {
            x.sendResponseHeaders(200, body.length);
            x.getResponseBody().write(body);
          }
          x.close();
        });
    server.start();
    base = "http://127.0.0.1:" + server.getAddress().getPort();
  }

  @AfterEach
  void stop() {
    server.stop(0);
  }

  @Test
  void aFileIsServedAsVersionOneOfAModelNamedAfterItAndAReplacementIsPickedUp() throws Exception {
    HttpModel source = HttpModel.parse(base + "/models/tiny-net.onnx", progress::add);
    assertEquals("tiny-net", source.name());
    try (RemoteModels remote =
        new RemoteModels(
            List.of(source),
            new ModelCache(work.resolve("cache"), Long.MAX_VALUE),
            Files.createDirectories(work.resolve("repo")))) {
      assertEquals(List.of("tiny-net"), remote.refresh(true));
      Path served = remote.repository().resolve("tiny-net/1/model.onnx");
      assertArrayEquals("first weights".getBytes(), Files.readAllBytes(served));
      assertEquals(List.of(), remote.refresh(false));
      file.set("second weights, longer".getBytes());
      assertEquals(List.of("tiny-net"), remote.refresh(false));
      assertArrayEquals(
          "second weights, longer".getBytes(),
          Files.readAllBytes(remote.repository().resolve("tiny-net/1/model.onnx")));
    }
  }

  @Test
  void aPresignedUrlIsAskedWithARangeAndItsSignatureStaysOutOfMessages() throws Exception {
    HttpModel source =
        HttpModel.parse(base + "/models/tiny-net.onnx?X-Amz-Signature=s3cr3t", progress::add);
    assertFalse(source.location().contains("s3cr3t"), source.location());
    try (RemoteModels remote =
        new RemoteModels(
            List.of(source),
            new ModelCache(work.resolve("cache"), Long.MAX_VALUE),
            Files.createDirectories(work.resolve("repo")))) {
      assertEquals(List.of("tiny-net"), remote.refresh(true));
      assertArrayEquals(
          "first weights".getBytes(),
          Files.readAllBytes(remote.repository().resolve("tiny-net/1/model.onnx")));
    }
    assertTrue(progress.stream().noneMatch(l -> l.contains("s3cr3t")), progress.toString());
  }

  @Test
  void aPinIsCheckedAndAMissingFileIsNamed() throws Exception {
    String right = HexFormat.of().formatHex(RegistryClient.sha256().digest(file.get()));
    ModelCache cache = new ModelCache(work.resolve("cache"), Long.MAX_VALUE);
    try (RemoteModels ok =
        new RemoteModels(
            List.of(HttpModel.parse(base + "/models/tiny-net.onnx#sha256=" + right, progress::add)),
            cache,
            Files.createDirectories(work.resolve("a")))) {
      ok.refresh(true);
      assertEquals("sha256:" + right, ok.digest("tiny-net").orElseThrow());
    }
    String wrong = "0".repeat(64);
    try (RemoteModels pinned =
        new RemoteModels(
            List.of(HttpModel.parse(base + "/models/tiny-net.onnx#sha256=" + wrong, progress::add)),
            cache,
            Files.createDirectories(work.resolve("b")))) {
      BerthException e = assertThrows(BerthException.class, () -> pinned.refresh(true));
      assertTrue(e.getMessage().contains("does not match its pin"), e.getMessage());
      assertFalse(cache.has("sha256:" + wrong));
    }
    try (RemoteModels missing =
        new RemoteModels(
            List.of(HttpModel.parse(base + "/models/gone.onnx", progress::add)),
            cache,
            Files.createDirectories(work.resolve("c")))) {
      BerthException e = assertThrows(BerthException.class, () -> missing.refresh(true));
      assertTrue(e.getMessage().contains("/models/gone.onnx answered HTTP 404"), e.getMessage());
    }
    InvalidInputException notAModel =
        assertThrows(
            InvalidInputException.class,
            () -> HttpModel.parse(base + "/models/readme.txt", l -> {}));
    assertTrue(notAModel.getMessage().contains(".onnx"), notAModel.getMessage());
  }
}
