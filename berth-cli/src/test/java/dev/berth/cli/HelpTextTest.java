package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * Every command's --help prints its usage and nothing else: picocli reports a description it cannot
 * format (an unescaped {@code %}, a bad format specifier) as a warning on System.err.
 */
class HelpTextTest {
  @Test
  void everyCommandsHelpPrintsWithoutWarnings() {
    List<List<String>> commands = new ArrayList<>();
    collect(Main.commandLine(), new ArrayList<>(), commands);
    assertTrue(commands.size() > 10, "commands found: " + commands);
    PrintStream stderr = System.err;
    for (List<String> command : commands) {
      ByteArrayOutputStream warnings = new ByteArrayOutputStream();
      StringWriter out = new StringWriter();
      StringWriter err = new StringWriter();
      int code;
      System.setErr(new PrintStream(warnings, true, StandardCharsets.UTF_8));
      try {
        CommandLine cli = Main.commandLine();
        cli.setOut(new PrintWriter(out, true));
        cli.setErr(new PrintWriter(err, true));
        List<String> args = new ArrayList<>(command);
        args.add("--help");
        code = cli.execute(args.toArray(new String[0]));
      } finally {
        System.setErr(stderr);
      }
      String name = "berth " + String.join(" ", command) + " --help";
      assertEquals(0, code, name + ": " + err);
      assertEquals("", warnings.toString(StandardCharsets.UTF_8), name + " warned");
      assertEquals("", err.toString(), name + " wrote to stderr");
      assertFalse(out.toString().isBlank(), name + " printed nothing");
    }
  }

  private static void collect(CommandLine cli, List<String> path, List<List<String>> commands) {
    for (var sub : cli.getSubcommands().entrySet()) {
      if (sub.getKey().equals("help") || !sub.getValue().getCommandName().equals(sub.getKey())) {
        continue; // the help command takes no --help; aliases repeat their command
      }
      List<String> command = new ArrayList<>(path);
      command.add(sub.getKey());
      commands.add(command);
      collect(sub.getValue(), command, commands);
    }
  }
}
