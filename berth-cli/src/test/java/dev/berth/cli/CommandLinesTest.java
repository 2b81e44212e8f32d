package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/** The command a report names: the subcommand and its arguments, quoted for a shell. */
class CommandLinesTest {
  @Test
  void namesTheSubcommandAndQuotesWhatNeedsIt() {
    CommandLine cli = Main.commandLine();
    CommandLine.ParseResult parsed =
        cli.parseArgs("bench", "http://127.0.0.1:1", "-m", "minilm", "--data", "a b's.jsonl");
    CommandLine bench = parsed.subcommand().commandSpec().commandLine();
    assertEquals(
        "berth bench http://127.0.0.1:1 -m minilm --data 'a b'\\''s.jsonl'",
        CommandLines.of(bench.getCommandSpec()));
  }
}
