package dev.berth.client.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.BerthException;
import java.net.URI;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;

class BenchPlanTest {
  @Test
  void defaultsAreTheDocumentedOnes() {
    BenchPlan p = BenchPlan.builder(URI.create("http://127.0.0.1:8080/"), "minilm").build();
    assertEquals(URI.create("http://127.0.0.1:8080"), p.url());
    assertEquals(8080, p.port());
    assertEquals(
        List.of(LoadStep.closed(1), LoadStep.closed(4), LoadStep.closed(16), LoadStep.closed(64)),
        p.steps());
    assertEquals(Duration.ofSeconds(20), p.duration());
    assertEquals(Duration.ofSeconds(2), p.warmup());
    assertEquals(Protocol.REST_JSON, p.protocol());
    assertEquals(1, p.batchSize());
    assertEquals(80, BenchPlan.builder(URI.create("http://localhost"), "m").build().port());
  }

  @Test
  void refusesWhatItCannotBench() {
    assertMessage("not supported", () -> BenchPlan.builder(URI.create("https://h:8443"), "m"));
    assertMessage(
        "base URL", () -> BenchPlan.builder(URI.create("http://h:8080/v2/models/m"), "m"));
    assertMessage("not a server URL", () -> BenchPlan.builder(URI.create("localhost:8080"), "m"));
    BenchPlan.Builder b = BenchPlan.builder(URI.create("http://h:1"), "m");
    assertMessage("--duration", () -> b.duration(Duration.ZERO));
    assertMessage("--batch-size", () -> b.batchSize(0));
    assertMessage("--data", () -> b.data(java.nio.file.Path.of("/no/such/file.jsonl")));
    assertMessage(
        "--protocol must be one of rest-json, rest-binary, tfserving, grpc",
        () -> Protocol.parse("soap"));
  }

  @Test
  void stepsAreLabelled() {
    assertEquals("c=16", LoadStep.closed(16).label());
    assertEquals("rate=250/s", LoadStep.open(250).label());
    assertEquals("rate=12.5/s", LoadStep.open(12.5).label());
    assertThrows(IllegalArgumentException.class, () -> new LoadStep(2, 10));
  }

  private static void assertMessage(String part, Runnable r) {
    BerthException e = assertThrows(BerthException.class, r::run);
    assertTrue(e.getMessage().contains(part), e.getMessage());
  }
}
