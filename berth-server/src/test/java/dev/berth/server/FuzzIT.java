package dev.berth.server;

import static dev.berth.server.HostileClientServer.request;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.server.HostileClientServer.Answer;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A seeded random walk over the request grammar: valid OIP JSON, binary-extension and TF-Serving
 * requests with bytes flipped, cut, inserted and repeated, tokens swapped for others, and random
 * shapes and datatypes. No answer may be a 5xx, every 4xx carries {@code {"error": ...}}, and the
 * server stays ready. {@code -Dberth.fuzz.iterations=N} runs longer, {@code -Dberth.fuzz.seed=S}
 * replays a run.
 */
class FuzzIT {
  private static final List<String> DATATYPES =
      List.of("FP32", "FP64", "FP16", "INT64", "INT8", "UINT8", "BOOL", "BYTES", "XX", "");
  private static final List<String> TOKENS =
      List.of(
          "{",
          "}",
          "[",
          "]",
          ",",
          ":",
          "\"",
          "null",
          "true",
          "-1",
          "1e999",
          "NaN",
          "\"NaN\"",
          "9223372036854775808",
          "{\"b64\":\"AA==\"}",
          "[[[[[[",
          "\\u0000",
          "\u00e9");

  @TempDir static Path dir;
  private static HostileClientServer server;

  @BeforeAll
  static void start() {
    server = HostileClientServer.start(dir);
  }

  @AfterAll
  static void stop() {
    server.close();
  }

  @Test
  void noMutationGetsA5xxOrStopsTheServer() {
    int iterations = Integer.getInteger("berth.fuzz.iterations", 2000);
    long seed = Long.getLong("berth.fuzz.seed", System.nanoTime());
    Random random = new Random(seed);
    long start = System.nanoTime();
    int[] byClass = new int[6];
    for (int i = 0; i < iterations; i++) {
      byte[] raw = mutant(random);
      Answer a;
      try {
        a = server.exchange(raw);
      } catch (RuntimeException e) {
        throw new AssertionError(replay(seed, i, raw) + ": no answer (" + e.getMessage() + ")", e);
      }
      byClass[a.status() / 100]++;
      int status = a.status();
      int index = i;
      assertTrue(
          status < 500, () -> replay(seed, index, raw) + ": status " + status + " " + a.text());
      if (status >= 400) {
        try {
          a.error();
        } catch (AssertionError e) {
          throw new AssertionError(replay(seed, i, raw) + ": " + e.getMessage(), e);
        }
      }
      if (i % 200 == 199) {
        server.assertServing(true);
      }
    }
    server.assertServing(true);
    System.out.printf(
        "fuzz: %d requests, seed %d, %.1f s; 2xx %d, 4xx %d%n",
        iterations, seed, (System.nanoTime() - start) / 1e9, byClass[2], byClass[4]);
  }

  private static String replay(long seed, int i, byte[] raw) {
    String shown = new String(raw, StandardCharsets.ISO_8859_1);
    return "request "
        + i
        + " of seed "
        + seed
        + " (replay with -Dberth.fuzz.seed="
        + seed
        + "): "
        + (shown.length() > 600 ? shown.substring(0, 600) + "..." : shown);
  }

  /** One request: a valid one of a random kind, then zero to four random mutations. */
  private static byte[] mutant(Random r) {
    int rows = r.nextInt(4);
    String type = r.nextInt(4) == 0 ? DATATYPES.get(r.nextInt(DATATYPES.size())) : "FP32";
    String shape = r.nextInt(5) == 0 ? randomShape(r) : "[" + rows + ",4]";
    StringBuilder data = new StringBuilder("[");
    for (int i = 0; i < rows * 4; i++) {
      data.append(i == 0 ? "" : ",").append(r.nextInt(3) == 0 ? r.nextGaussian() : r.nextInt(9));
    }
    data.append(']');
    byte[] raw;
    switch (r.nextInt(3)) {
      case 0 -> {
        String json =
            "{\"id\":\"f\",\"inputs\":[{\"name\":\"x\",\"shape\":"
                + shape
                + ",\"datatype\":\""
                + type
                + "\",\"data\":"
                + data
                + "}],\"outputs\":[{\"name\":\"y\"}]}";
        raw = post("/v2/models/vec/infer", mutate(r, json.getBytes(StandardCharsets.UTF_8)), null);
      }
      case 1 -> {
        String json =
            "{\"inputs\":[{\"name\":\"x\",\"shape\":"
                + shape
                + ",\"datatype\":\""
                + type
                + "\",\"parameters\":{\"binary_data_size\":"
                + rows * 16
                + "}}],\"parameters\":{\"binary_data_output\":true}}";
        ByteArrayOutputStream body = new ByteArrayOutputStream();
        body.writeBytes(json.getBytes(StandardCharsets.UTF_8));
        ByteBuffer b = ByteBuffer.allocate(rows * 16).order(ByteOrder.LITTLE_ENDIAN);
        while (b.hasRemaining()) {
          b.putFloat(r.nextInt(8) == 0 ? Float.NaN : r.nextFloat());
        }
        body.writeBytes(b.array());
        int headerLength = r.nextInt(6) == 0 ? r.nextInt(json.length() + 20) : json.length();
        raw =
            post(
                "/v2/models/vec/infer",
                mutate(r, body.toByteArray()),
                Integer.toString(headerLength));
      }
      default -> {
        String json =
            r.nextBoolean()
                ? "{\"instances\":" + nest(r, rows) + "}"
                : "{\"inputs\":" + nest(r, rows) + "}";
        raw =
            post("/v1/models/vec:predict", mutate(r, json.getBytes(StandardCharsets.UTF_8)), null);
      }
    }
    return raw;
  }

  private static String nest(Random r, int rows) {
    StringBuilder sb = new StringBuilder("[");
    for (int i = 0; i < Math.max(rows, 1); i++) {
      sb.append(i == 0 ? "" : ",").append("[1,2,3,").append(r.nextInt(9)).append(']');
    }
    return sb.append(']').toString();
  }

  private static String randomShape(Random r) {
    int rank = r.nextInt(4);
    StringBuilder sb = new StringBuilder("[");
    for (int i = 0; i < rank; i++) {
      long d =
          switch (r.nextInt(5)) {
            case 0 -> -r.nextInt(5);
            case 1 -> Long.MAX_VALUE;
            case 2 -> 1L << r.nextInt(40);
            default -> r.nextInt(6);
          };
      sb.append(i == 0 ? "" : ",").append(d);
    }
    return sb.append(']').toString();
  }

  private static byte[] post(String path, byte[] body, String headerLength) {
    return request(
        "POST",
        path,
        headerLength == null ? Map.of() : Map.of("Inference-Header-Content-Length", headerLength),
        body);
  }

  private static byte[] mutate(Random r, byte[] in) {
    byte[] b = in;
    int mutations = r.nextInt(5);
    for (int m = 0; m < mutations && b.length > 0; m++) {
      int at = r.nextInt(b.length);
      switch (r.nextInt(6)) {
        case 0 -> b[at] = (byte) r.nextInt(256); // flip a byte
        case 1 -> b = java.util.Arrays.copyOf(b, at); // truncate
        case 2 -> b = splice(b, at, 0, new byte[] {(byte) r.nextInt(256)}); // insert a byte
        case 3 -> // swap in a token
            b =
                splice(
                    b,
                    at,
                    Math.min(r.nextInt(4), b.length - at),
                    TOKENS.get(r.nextInt(TOKENS.size())).getBytes(StandardCharsets.UTF_8));
        case 4 -> { // repeat a slice
          int len = Math.min(r.nextInt(16) + 1, b.length - at);
          b = splice(b, at, 0, java.util.Arrays.copyOfRange(b, at, at + len));
        }
        default -> b = splice(b, at, Math.min(r.nextInt(8), b.length - at), new byte[0]); // delete
      }
    }
    return b;
  }

  private static byte[] splice(byte[] b, int at, int remove, byte[] insert) {
    byte[] out = new byte[b.length - remove + insert.length];
    System.arraycopy(b, 0, out, 0, at);
    System.arraycopy(insert, 0, out, at, insert.length);
    System.arraycopy(b, at + remove, out, at + insert.length, b.length - at - remove);
    return out;
  }
}
