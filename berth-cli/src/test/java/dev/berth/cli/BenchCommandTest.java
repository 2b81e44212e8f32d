package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.ServerSocket;
import org.junit.jupiter.api.Test;

/** berth bench's usage errors: a message that says what to change, and exit code 2. */
class BenchCommandTest {
  private record Run(int code, String out, String err) {}

  private static Run run(String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    picocli.CommandLine cli = Main.commandLine();
    cli.setOut(new PrintWriter(out, true));
    cli.setErr(new PrintWriter(err, true));
    int code = cli.execute(args);
    return new Run(code, out.toString(), err.toString());
  }

  private static void assertUsageError(String expected, String... args) {
    Run r = run(args);
    assertEquals(2, r.code(), r.err());
    assertTrue(r.err().contains(expected), "'" + expected + "' missing from: " + r.err());
  }

  @Test
  void helpListsEveryOptionWithItsDefault() {
    Run r = run("bench", "--help");
    assertEquals(0, r.code());
    for (String s :
        new String[] {
          "TARGET",
          "--model",
          "--concurrency",
          "--rate",
          "--duration",
          "20s",
          "--warmup",
          "2s",
          "--protocol",
          "rest-json",
          "--data",
          "--input",
          "--batch-size",
          "--timeout",
          "30s",
          "--grpc-port",
          "8081",
          "--max-connections",
          "256",
          "--seed",
          "--report"
        }) {
      assertTrue(r.out().contains(s), s + " missing from:\n" + r.out());
    }
  }

  @Test
  void badStepListsAreRefused() {
    String url = "http://127.0.0.1:1";
    assertUsageError("--concurrency takes whole numbers", "bench", url, "-m", "m", "-c", "1,x");
    assertUsageError("--concurrency takes whole numbers", "bench", url, "-m", "m", "-c", "0");
    assertUsageError("--concurrency takes a list", "bench", url, "-m", "m", "-c", "1,,4");
    assertUsageError("--rate takes requests per second", "bench", url, "-m", "m", "--rate", "-5");
    assertUsageError("not both", "bench", url, "-m", "m", "-c", "1", "--rate", "10");
    assertUsageError(
        "--protocol must be one of rest-json, rest-binary, tfserving, grpc",
        "bench",
        url,
        "-m",
        "m",
        "--protocol",
        "soap");
    assertUsageError("--duration", "bench", url, "-m", "m", "-d", "soon");
  }

  @Test
  void theTargetMustBeAUrlOrAServiceFile() {
    assertUsageError("--model", "bench", "http://127.0.0.1:1");
    assertUsageError(
        "neither a server URL (http://HOST:PORT) nor a service file",
        "bench",
        "no-such-berth.yaml");
    assertUsageError("https is not supported", "bench", "https://127.0.0.1:1", "-m", "m");
  }

  @Test
  void anUnreachableServerIsAUsageError() throws Exception {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    assertUsageError(
        "cannot reach http://127.0.0.1:" + port + " (refused",
        "bench",
        "http://127.0.0.1:" + port,
        "-m",
        "minilm",
        "-c",
        "1",
        "-d",
        "1s");
  }
}
