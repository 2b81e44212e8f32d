package dev.berth.client.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class PrometheusTextTest {
  /** What a Berth server's /metrics holds for two models, before and after a step. */
  private static String scrape(
      double queueSum, long requests, double computeSum, long batches, double rows) {
    return String.join(
        "\n",
        "# HELP berth_queue_duration_seconds Time a request waited in its model's queue",
        "# TYPE berth_queue_duration_seconds histogram",
        "berth_queue_duration_seconds_bucket{model=\"minilm\",version=\"1\",le=\"+Inf\"} "
            + requests,
        "berth_queue_duration_seconds_count{model=\"minilm\",version=\"1\"} " + requests,
        "berth_queue_duration_seconds_sum{model=\"minilm\",version=\"1\"} " + queueSum,
        // another version of the same model: summed in
        "berth_queue_duration_seconds_count{model=\"minilm\",version=\"2\"} 0",
        "berth_queue_duration_seconds_sum{model=\"minilm\",version=\"2\"} 0.0",
        // another model: left out
        "berth_queue_duration_seconds_count{model=\"other\",version=\"1\"} 1000",
        "berth_queue_duration_seconds_sum{model=\"other\",version=\"1\"} 500.0",
        "berth_compute_duration_seconds_count{model=\"minilm\",version=\"1\"} " + batches,
        "berth_compute_duration_seconds_sum{model=\"minilm\",version=\"1\"} " + computeSum,
        "berth_batch_size_count{model=\"minilm\",version=\"1\"} " + batches,
        "berth_batch_size_sum{model=\"minilm\",version=\"1\"} " + rows,
        "berth_request_duration_seconds_count{model=\"minilm\",protocol=\"rest\",version=\"1\"} "
            + requests,
        "berth_request_duration_seconds_sum{model=\"minilm\",protocol=\"rest\",version=\"1\"} "
            + (queueSum + computeSum),
        "berth_requests_total{code=\"200\",model=\"minilm\",protocol=\"rest\",version=\"1\"} "
            + requests
            + ".0",
        "");
  }

  @Test
  void parsesNamesLabelsAndValues() {
    List<PrometheusText.Sample> s =
        PrometheusText.parse(
            "# TYPE x counter\n"
                + "x_total{a=\"1\",b=\"with \\\"quotes\\\", commas and \\\\\"} 3.5 1700000000\n"
                + "plain 42\n"
                + "inf{le=\"+Inf\"} +Inf\n"
                + "not a sample line at all\n"
                + "\n");
    assertEquals(3, s.size(), s.toString());
    assertEquals("x_total", s.get(0).name());
    assertEquals(Map.of("a", "1", "b", "with \"quotes\", commas and \\"), s.get(0).labels());
    assertEquals(3.5, s.get(0).value());
    assertEquals(42, s.get(1).value());
    assertEquals(Double.POSITIVE_INFINITY, s.get(2).value());
  }

  @Test
  void sumsTheSamplesOfOneModelOverItsVersions() {
    List<PrometheusText.Sample> s = PrometheusText.parse(scrape(2.0, 100, 3.0, 40, 100));
    assertEquals(
        100,
        PrometheusText.sum(s, "berth_queue_duration_seconds_count", Map.of("model", "minilm")));
    assertEquals(
        1000,
        PrometheusText.sum(s, "berth_queue_duration_seconds_count", Map.of("model", "other")));
    assertEquals(1100, PrometheusText.sum(s, "berth_queue_duration_seconds_count", Map.of()));
  }

  @Test
  void theSplitIsTheMeanOfWhatHappenedBetweenTwoScrapes() {
    ServerSplit.Snapshot before =
        ServerSplit.Snapshot.of(PrometheusText.parse(scrape(1.0, 100, 2.0, 50, 100)), "minilm");
    // 300 more requests that waited 0.6 s in all, in 60 batches of 5 rows taking 1.2 s in all
    ServerSplit.Snapshot after =
        ServerSplit.Snapshot.of(PrometheusText.parse(scrape(1.6, 400, 3.2, 110, 400)), "minilm");
    ServerSplit split = ServerSplit.between(before, after);
    assertEquals(2.0, split.queueMs(), 1e-9);
    assertEquals(20.0, split.computeMs(), 1e-9);
    assertEquals(5.0, split.batchSize(), 1e-9);
    assertEquals((0.6 + 1.2) / 300 * 1000, split.requestMs(), 1e-9);
  }

  @Test
  void nothingHappenedIsNotANumberAndAServerWithoutBerthMetricsHasNoSnapshot() {
    ServerSplit.Snapshot s =
        ServerSplit.Snapshot.of(PrometheusText.parse(scrape(1.0, 100, 2.0, 50, 100)), "minilm");
    ServerSplit idle = ServerSplit.between(s, s);
    assertTrue(Double.isNaN(idle.queueMs()) && Double.isNaN(idle.batchSize()));
    assertNull(
        ServerSplit.Snapshot.of(
            PrometheusText.parse("# another server\nhttp_requests_total{code=\"200\"} 5\n"),
            "minilm"));
  }

  @Test
  void aLanguageModelsSplitIsTheTimeToItsFirstTokenAndBetweenTokens() {
    ServerSplit.Snapshot before =
        ServerSplit.Snapshot.of(PrometheusText.parse(llmScrape(10, 0.5, 320, 1.6)), "tiny");
    // 20 more generations: 1.0 s to their first tokens, 1,240 tokens 0.031 s apart
    ServerSplit.Snapshot after =
        ServerSplit.Snapshot.of(PrometheusText.parse(llmScrape(30, 1.5, 1560, 40.04)), "tiny");
    ServerSplit split = ServerSplit.between(before, after);
    assertEquals(50.0, split.firstTokenMs(), 1e-9);
    assertEquals(31.0, split.perTokenMs(), 1e-9);
    // a language model has no batches of rows
    assertTrue(Double.isNaN(split.batchSize()) && Double.isNaN(split.queueMs()));
  }

  private static String llmScrape(
      int generations, double firstTokenSeconds, int perTokenCount, double perTokenSeconds) {
    String m = "{model=\"tiny\",version=\"1\"}";
    return "# TYPE berth_llm_time_to_first_token_seconds histogram\n"
        + "berth_llm_time_to_first_token_seconds_count"
        + m
        + " "
        + generations
        + "\n"
        + "berth_llm_time_to_first_token_seconds_sum"
        + m
        + " "
        + firstTokenSeconds
        + "\n"
        + "berth_llm_time_per_output_token_seconds_count"
        + m
        + " "
        + perTokenCount
        + "\n"
        + "berth_llm_time_per_output_token_seconds_sum"
        + m
        + " "
        + perTokenSeconds
        + "\n";
  }
}
