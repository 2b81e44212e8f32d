package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * berth tune's usage errors about the requests: a language model is tuned over its OpenAI API with
 * completion requests, a tensor model over its own protocols; each refused before any server
 * starts, with exit code 2.
 */
class TuneCommandTest {
  @TempDir Path work;

  private static String[] run(String... args) {
    StringWriter err = new StringWriter();
    picocli.CommandLine cli = Main.commandLine();
    cli.setErr(new PrintWriter(err, true));
    int code = cli.execute(args);
    return new String[] {Integer.toString(code), err.toString()};
  }

  private static void assertUsageError(String expected, String... args) {
    String[] r = run(args);
    assertEquals("2", r[0], r[1]);
    assertTrue(r[1].contains(expected), "'" + expected + "' missing from: " + r[1]);
  }

  @Test
  void aLanguageModelTakesCompletionRequestsOnly() throws Exception {
    String service = TinyLlmService.write(work, "").toString();
    assertUsageError("give a language model's goal on the whole answer's latency", "tune", service);
    assertUsageError(
        "a language model is tuned over its OpenAI-compatible API",
        "tune",
        service,
        "--p99",
        "10s",
        "--protocol",
        "grpc");
    assertUsageError(
        "--batch-size shapes a tensor model's requests",
        "tune",
        service,
        "--p99",
        "10s",
        "--batch-size",
        "4");
    assertUsageError(
        "--max-tokens shapes generated requests; the --data file brings its own",
        "tune",
        service,
        "--p99",
        "10s",
        "--data",
        service,
        "--max-tokens",
        "8");
  }

  @Test
  void aTensorModelTakesNoCompletionOptions() {
    String service =
        BerthProcess.examples().resolveSibling("minilm").resolve("berth.yaml").toString();
    assertUsageError(
        "--max-tokens shapes a language model's requests", "tune", service, "--max-tokens", "8");
    assertUsageError(
        "--protocol openai is a language model's", "tune", service, "--protocol", "openai");
  }
}
