package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.http.HttpClient;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** berth serve https://.../NAME.onnx: one model file from a web server, served as model NAME. */
class ServeFromUrlIT {
  @TempDir Path work;

  @Test
  void aModelFileAtAUrlIsServedUnderItsName() throws Exception {
    byte[] onnx = Files.readAllBytes(BerthProcess.examples().resolve("minilm/1/model.onnx"));
    HttpServer web =
        HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), 0);
    web.createContext(
        "/files/sentence-encoder.onnx",
        x -> {
          x.getResponseHeaders().add("ETag", "\"v1\"");
          if (x.getRequestMethod().equals("HEAD")) {
            x.getResponseHeaders().add("Content-Length", Integer.toString(onnx.length));
            x.sendResponseHeaders(200, -1);
          } else {
            x.sendResponseHeaders(200, onnx.length);
            x.getResponseBody().write(onnx);
          }
          x.close();
        });
    web.start();
    try (HttpClient http = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        BerthProcess server =
            BerthProcess.start(
                work,
                "serve",
                "http://127.0.0.1:" + web.getAddress().getPort() + "/files/sentence-encoder.onnx",
                "--port",
                "0",
                "--grpc-port",
                "0",
                "--model-cache",
                work.resolve("cache").toString())) {
      String url = server.awaitServing();
      assertEquals(
          200, BerthProcess.get(http, url + "/v2/models/sentence-encoder/ready").statusCode());
      String metadata = BerthProcess.get(http, url + "/v2/models/sentence-encoder").body();
      assertTrue(metadata.contains("input_ids"), metadata);
    } finally {
      web.stop(0);
    }
  }
}
