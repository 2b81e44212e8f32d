package dev.berth.cli;

import static org.awaitility.Awaitility.await;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.net.http.HttpClient;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** SIGTERM: readiness turns false, new requests are refused, in-flight ones finish, exit code 0. */
class GracefulShutdownIT {
  @TempDir Path work;

  private static String longRequest(int client) {
    StringBuilder data = new StringBuilder();
    for (int i = 0; i < 32; i++) {
      if (i > 0) {
        data.append(',');
      }
      data.append("\"Client ")
          .append(client)
          .append(" sentence ")
          .append(i)
          .append(": the quick brown fox jumps over the lazy dog while the model server keeps")
          .append(" answering every request it has accepted before it stops.\"");
    }
    return "{\"inputs\":[{\"name\":\"text\",\"shape\":[32],\"datatype\":\"BYTES\",\"data\":["
        + data
        + "]}]}";
  }

  @Test
  void sigtermDrainsInFlightRequestsAndExitsZero() throws Exception {
    try (BerthProcess berth =
            BerthProcess.start(
                work,
                "serve",
                BerthProcess.examples().toString(),
                "--port",
                "0",
                "--grpc-port",
                "0",
                "--log-format",
                "json");
        HttpClient http =
            HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(5))
                .build();
        ExecutorService clients = Executors.newVirtualThreadPerTaskExecutor()) {
      String url = berth.awaitServing();
      assertEquals(200, BerthProcess.get(http, url + "/v2/health/ready").statusCode());

      List<CompletableFuture<HttpResponse<String>>> inflight = new ArrayList<>();
      for (int c = 0; c < 12; c++) {
        String body = longRequest(c);
        inflight.add(
            CompletableFuture.supplyAsync(
                () -> {
                  try {
                    return BerthProcess.post(http, url + "/v2/models/minilm/infer", body);
                  } catch (IOException | InterruptedException e) {
                    throw new RuntimeException(e);
                  }
                },
                clients));
      }
      // Every request accepted by the server (answered, or counted in flight) before the signal.
      await()
          .atMost(Duration.ofSeconds(30))
          .pollInterval(Duration.ofMillis(10))
          .until(
              () -> {
                long done = inflight.stream().filter(CompletableFuture::isDone).count();
                double running = inflightGauge(http, url);
                return running > 0 && running + done >= inflight.size();
              });
      berth.process.destroy(); // SIGTERM

      // Readiness off and new requests refused (503 while draining, or no listener once stopped).
      await()
          .atMost(Duration.ofSeconds(30))
          .pollInterval(Duration.ofMillis(20))
          .until(() -> !ready(http, url));
      int refused = statusOrRefused(http, url + "/v2/models/minilm/infer", longRequest(99));
      assertTrue(refused == 503 || refused == -1, "a request after SIGTERM got " + refused);

      for (CompletableFuture<HttpResponse<String>> f : inflight) {
        HttpResponse<String> r;
        try {
          r = f.get(60, TimeUnit.SECONDS);
        } catch (java.util.concurrent.ExecutionException e) {
          berth.process.waitFor(60, TimeUnit.SECONDS);
          throw new AssertionError(
              "an accepted request failed; server log:\n" + Files.readString(berth.stderr), e);
        }
        assertEquals(200, r.statusCode(), r.body());
        assertTrue(r.body().contains("\"shape\":[32,384]"), r.body());
      }
      assertTrue(berth.process.waitFor(60, TimeUnit.SECONDS), "berth did not exit after SIGTERM");
      assertEquals(0, berth.process.exitValue(), Files.readString(berth.stderr));
      String log = Files.readString(berth.stderr);
      assertTrue(log.contains("every in-flight request was answered"), log);
    }
  }

  private static double inflightGauge(HttpClient http, String url) throws Exception {
    for (String line : BerthProcess.get(http, url + "/metrics").body().split("\n")) {
      if (line.startsWith("berth_inflight_requests{")) {
        return Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
      }
    }
    return 0;
  }

  private static boolean ready(HttpClient http, String url) {
    try {
      return BerthProcess.get(http, url + "/v2/health/ready").statusCode() == 200;
    } catch (IOException | InterruptedException e) {
      return false;
    }
  }

  private static int statusOrRefused(HttpClient http, String url, String body) {
    try {
      return BerthProcess.post(http, url, body).statusCode();
    } catch (IOException | InterruptedException e) {
      return -1;
    }
  }
}
