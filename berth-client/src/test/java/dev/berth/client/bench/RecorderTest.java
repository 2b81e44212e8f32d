package dev.berth.client.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/** A language model's answers say their tokens; the recorder adds them up. */
class RecorderTest {
  private static long field(String json, String name) {
    return Recorder.usageField(json.getBytes(StandardCharsets.UTF_8), name);
  }

  @Test
  void theUsageKeyNotTheSameWordsInsideTheText() {
    String answer =
        "{\"id\":\"cmpl-1\",\"choices\":[{\"text\":\"say \\\"completion_tokens\\\": 999\","
            + "\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\": 12,"
            + "\n \"completion_tokens\" :16,\"total_tokens\":28}}";
    assertEquals(12, field(answer, "prompt_tokens"));
    assertEquals(16, field(answer, "completion_tokens"));
    assertEquals(-1, field("{\"object\":\"list\"}", "completion_tokens"));
    assertEquals(-1, field("{\"completion_tokens\":null}", "completion_tokens"));
  }

  private static ResponseParser answered(String body) throws java.io.IOException {
    ResponseParser p = new ResponseParser();
    p.start(true);
    byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
    p.feed(
        ByteBuffer.wrap(
            ("HTTP/1.1 200 OK\r\nContent-Length: " + bytes.length + "\r\n\r\n" + body)
                .getBytes(StandardCharsets.UTF_8)));
    return p;
  }

  @Test
  void answersAreSummedAcrossLoopsAndTheLongestSequenceKept() throws Exception {
    Recorder a = new Recorder();
    a.readUsage();
    a.answer(
        200, 1_000_000, 1, answered("{\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":16}}"));
    a.answer(
        200, 1_000_000, 2, answered("{\"usage\":{\"prompt_tokens\":30,\"completion_tokens\":4}}"));
    Recorder b = new Recorder();
    b.readUsage();
    b.answer(
        200, 1_000_000, 3, answered("{\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":16}}"));
    Recorder.Merged m = Recorder.merge(List.of(a, b));
    assertEquals(60, m.promptTokens());
    assertEquals(36, m.completionTokens());
    assertEquals(36, m.longestSequence());

    // one answer without usage: no token figures rather than wrong ones
    b.answer(200, 1_000_000, 4, answered("{\"choices\":[]}"));
    assertEquals(-1, Recorder.merge(List.of(a, b)).completionTokens());
    // a model whose answers are not read has none
    Recorder tensor = new Recorder();
    tensor.answer(200, 1_000_000, 1, answered("{\"outputs\":[]}"));
    assertEquals(-1, Recorder.merge(List.of(tensor)).longestSequence());
  }
}
