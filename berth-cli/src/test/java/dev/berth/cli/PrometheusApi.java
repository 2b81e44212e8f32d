package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;

/** A client of a Prometheus server's HTTP API, for the tests that run one. */
final class PrometheusApi {
  private static final HttpClient HTTP = HttpClient.newHttpClient();
  private static final ObjectMapper JSON = new ObjectMapper();

  private final String base;

  PrometheusApi(String base) {
    this.base = base;
  }

  /** A port free on 127.0.0.1 now, for a server that cannot bind port 0 and say which it got. */
  static int freePort() throws IOException {
    try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return socket.getLocalPort();
    }
  }

  /** The status of a GET of {@code path}. */
  int status(String path) throws IOException, InterruptedException {
    return HTTP.send(
            HttpRequest.newBuilder(URI.create(base + path)).build(),
            HttpResponse.BodyHandlers.discarding())
        .statusCode();
  }

  /** The JSON answer to a GET of {@code path}, which must succeed. */
  JsonNode get(String path) throws IOException, InterruptedException {
    HttpResponse<String> r =
        HTTP.send(
            HttpRequest.newBuilder(URI.create(base + path)).build(),
            HttpResponse.BodyHandlers.ofString());
    assertEquals(200, r.statusCode(), path + ": " + r.body());
    return JSON.readTree(r.body());
  }

  /** The samples of an instant query of {@code expr}. */
  JsonNode query(String expr) throws IOException, InterruptedException {
    return get("/api/v1/query?query=" + URLEncoder.encode(expr, StandardCharsets.UTF_8))
        .path("data")
        .path("result");
  }

  /** Whether an instant query of {@code expr} returns at least one sample that is a number. */
  boolean hasData(String expr) throws IOException, InterruptedException {
    for (JsonNode sample : query(expr)) {
      if (!sample.path("value").path(1).asText().equals("NaN")) {
        return true;
      }
    }
    return false;
  }

  /** The rules of the group {@code name} as Prometheus evaluates them, empty when not loaded. */
  JsonNode rules(String group) throws IOException, InterruptedException {
    for (JsonNode g : get("/api/v1/rules").path("data").path("groups")) {
      if (g.path("name").asText().equals(group)) {
        return g.path("rules");
      }
    }
    return JSON.createArrayNode();
  }
}
