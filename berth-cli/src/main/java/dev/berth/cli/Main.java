package dev.berth.cli;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The {@code berth} command. */
@Command(
    name = "berth",
    mixinStandardHelpOptions = true,
    versionProvider = Main.Version.class,
    description = "Serve, package, deploy and measure AI models.",
    subcommands = {ServeCommand.class, SignCommand.class, KeygenCommand.class})
public final class Main implements Runnable {

  public static void main(String[] args) throws Exception {
    if (!TelemetryOptOut.inEffect()) {
      System.exit(TelemetryOptOut.rerunOptedOut(args));
    }
    // Before any DJL class loads: no usage reporting (see DJL's OPT_OUT_TRACKING).
    System.setProperty("OPT_OUT_TRACKING", "true");
    System.setProperty("java.util.logging.manager", BerthLogManager.class.getName());
    System.exit(commandLine().execute(args));
  }

  static CommandLine commandLine() {
    CommandLine cli = new CommandLine(new Main());
    // An image carries only what serving needs (BerthDistribution): the image, Kubernetes and
    // client (eval) commands join when their modules are on the class path, so picocli never
    // reflects on a
    // class whose types are missing.
    // 'berth models' speaks HTTP through java.net.http, which an image's linked runtime leaves out
    if (ModuleLayer.boot().findModule("java.net.http").isPresent()) {
      cli.addSubcommand(new ModelsCommand());
    }
    if (onClassPath("dev.berth.image.ImageBuilder")) {
      cli.addSubcommand(new BuildCommand());
      cli.addSubcommand(new RunCommand());
      cli.addSubcommand(new PsCommand());
      cli.addSubcommand(new LogsCommand());
      cli.addSubcommand(new StopCommand());
      cli.addSubcommand(new TrainCommand());
    }
    // models as OCI artifacts: the store's HTTP client is java.net.http too
    if (onClassPath("dev.berth.store.OciModelStore")
        && ModuleLayer.boot().findModule("java.net.http").isPresent()) {
      cli.addSubcommand(new PushCommand());
      cli.addSubcommand(new PullCommand());
      cli.addSubcommand(new SignImageCommand());
      cli.addSubcommand(new VerifyCommand());
      cli.addSubcommand(new SbomCommand());
    }
    if (onClassPath("dev.berth.kube.ManifestGenerator")) {
      KubeCommands.addTo(cli);
    }
    if (onClassPath("dev.berth.client.bench.Bench")) {
      cli.addSubcommand(new BenchCommand());
      cli.addSubcommand(new TuneCommand());
    }
    if (onClassPath("dev.berth.client.eval.Evaluation")) {
      cli.addSubcommand(new EvalCommand());
    }
    cli.addSubcommand(new CommandLine.HelpCommand());
    cli.setCaseInsensitiveEnumValuesAllowed(true);
    // '@FILE' is an option value ('berth eval --labels @classes.txt'), not a picocli argument file
    cli.setExpandAtFiles(false);
    cli.setExecutionExceptionHandler(
        (e, cmd, parsed) -> {
          if (e instanceof SignedImages.Refused) {
            cmd.getErr().println("berth: " + e.getMessage());
            return 1;
          }
          if (e instanceof dev.berth.api.BerthException) {
            cmd.getErr().println("berth: " + e.getMessage());
            return 2;
          }
          throw e;
        });
    cli.setParameterExceptionHandler(
        (e, args) -> {
          CommandLine cmd = e.getCommandLine();
          cmd.getErr().println("berth: " + e.getMessage());
          cmd.getErr().println("Try '" + cmd.getCommandSpec().qualifiedName() + " --help'.");
          return 2;
        });
    return cli;
  }

  static boolean onClassPath(String className) {
    return Main.class.getClassLoader().getResource(className.replace('.', '/') + ".class") != null;
  }

  @Override
  public void run() {
    CommandLine.usage(this, System.out);
  }

  /** Reads the version Maven wrote into the jar. */
  static final class Version implements CommandLine.IVersionProvider {
    static String get() {
      Properties p = new Properties();
      try (InputStream in = Main.class.getResourceAsStream("version.properties")) {
        if (in != null) {
          p.load(in);
        }
      } catch (IOException e) {
        // fall through to "dev"
      }
      return p.getProperty("version", "dev");
    }

    @Override
    public String[] getVersion() {
      return new String[] {"berth " + get()};
    }
  }
}
