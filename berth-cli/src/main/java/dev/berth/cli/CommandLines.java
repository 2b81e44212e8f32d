package dev.berth.cli;

import java.util.List;
import java.util.stream.Collectors;
import picocli.CommandLine.Model.CommandSpec;

/** The command a report says produced it, as a user could paste it back into a shell. */
final class CommandLines {
  private CommandLines() {}

  /**
   * {@code berth NAME ARGS...}: the subcommand's original arguments (without the options given
   * before it), each quoted for a POSIX shell where it needs to be.
   */
  static String of(CommandSpec spec) {
    List<String> all = spec.commandLine().getParseResult().originalArgs();
    // the original arguments start with the options before the subcommand and its name
    List<String> args = all.subList(all.indexOf(spec.name()) + 1, all.size());
    return "berth "
        + spec.name()
        + args.stream()
            .map(
                a ->
                    " "
                        + (a.matches("[A-Za-z0-9_./:=,@%+-]+")
                            ? a
                            : "'" + a.replace("'", "'\\''") + "'"))
            .collect(Collectors.joining());
  }
}
