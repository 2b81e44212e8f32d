package dev.berth.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.api.BerthException;
import java.io.IOException;
import java.io.PrintStream;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code berth models list|load|unload}: the model-repository API of a running {@code berth serve}
 * ({@code POST /v2/repository/index}, {@code .../models/M/load}, {@code .../models/M/unload}).
 */
@Command(
    name = "models",
    mixinStandardHelpOptions = true,
    description = {
      "List, load and unload the models of a running berth serve (its model-repository API).",
      ""
    },
    subcommands = {
      ModelsCommand.ListCommand.class,
      ModelsCommand.LoadCommand.class,
      ModelsCommand.UnloadCommand.class
    })
final class ModelsCommand implements Runnable {
  private static final ObjectMapper JSON = new ObjectMapper();

  @Override
  public void run() {
    picocli.CommandLine.usage(this, System.out);
  }

  /** Where the server is, and the management token. */
  static final class Connection {
    @Option(
        names = "--url",
        paramLabel = "URL",
        description = "Base URL of the berth serve to manage (default: ${DEFAULT-VALUE}).",
        defaultValue = "http://127.0.0.1:8080")
    String url;

    @Option(
        names = "--token",
        paramLabel = "TOKEN",
        description =
            "Management token, sent as 'Authorization: Bearer TOKEN' (default: the environment"
                + " variable BERTH_MANAGEMENT_TOKEN; none when unset).",
        defaultValue = "${env:BERTH_MANAGEMENT_TOKEN}")
    String token;

    /** POSTs to a repository path and returns the answer's JSON; non-2xx answers are errors. */
    JsonNode post(String path) {
      URI uri;
      try {
        uri = URI.create(url.replaceAll("/+$", "") + path);
        if (uri.getScheme() == null
            || !(uri.getScheme().equals("http") || uri.getScheme().equals("https"))
            || uri.getHost() == null) {
          throw new IllegalArgumentException();
        }
      } catch (IllegalArgumentException e) {
        throw new BerthException(
            "--url '" + url + "' is not an http(s) URL; write e.g. http://127.0.0.1:8080");
      }
      HttpRequest.Builder request =
          HttpRequest.newBuilder(uri)
              .timeout(Duration.ofMinutes(5)) // a load waits for the engines to load
              .header("Content-Type", "application/json")
              .POST(HttpRequest.BodyPublishers.ofString("{}"));
      if (token != null && !token.isEmpty()) {
        request.header("Authorization", "Bearer " + token);
      }
      HttpResponse<String> answer;
      try (HttpClient http =
          HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(10)).build()) {
        answer =
            http.send(request.build(), HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
      } catch (ConnectException e) {
        throw new BerthException(
            "cannot connect to "
                + url
                + " (connection refused); is berth serve running there? give its address with"
                + " --url");
      } catch (HttpTimeoutException e) {
        throw new BerthException("no answer from " + url + " in time (" + e.getMessage() + ")");
      } catch (IOException e) {
        throw new BerthException("cannot reach " + url + ": " + e, e);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new BerthException("interrupted while waiting for " + url);
      }
      JsonNode body = null;
      try {
        body = JSON.readTree(answer.body());
      } catch (IOException e) {
        // not JSON: reported below with the status
      }
      if (answer.statusCode() / 100 != 2) {
        String error =
            body != null && body.hasNonNull("error")
                ? body.get("error").asText()
                : answer.body().isBlank() ? "(no message)" : answer.body().strip();
        throw new BerthException(
            "the server answered " + answer.statusCode() + " to POST " + path + ": " + error);
      }
      if (body == null) {
        throw new BerthException(
            "the server's answer to POST " + path + " is not JSON; is " + url + " berth serve?");
      }
      return body;
    }
  }

  /** Prints rows of model, version, state and reason as a table. */
  static void printTable(PrintStream out, List<JsonNode> rows, String modelName) {
    List<String[]> lines = new ArrayList<>();
    lines.add(new String[] {"MODEL", "VERSION", "STATE", "REASON"});
    for (JsonNode r : rows) {
      lines.add(
          new String[] {
            r.hasNonNull("name") ? r.get("name").asText() : modelName,
            r.path("version").asText(""),
            r.path("state").asText(""),
            r.path("reason").asText("")
          });
    }
    int[] widths = new int[3];
    for (String[] l : lines) {
      for (int i = 0; i < 3; i++) {
        widths[i] = Math.max(widths[i], l[i].length());
      }
    }
    for (String[] l : lines) {
      out.println(
          String.format(
                  "%-" + widths[0] + "s  %-" + widths[1] + "s  %-" + widths[2] + "s  %s",
                  l[0],
                  l[1],
                  l[2],
                  l[3])
              .stripTrailing());
    }
  }

  private static List<JsonNode> elements(JsonNode array) {
    List<JsonNode> out = new ArrayList<>();
    array.forEach(out::add);
    return out;
  }

  @Command(
      name = "list",
      mixinStandardHelpOptions = true,
      description = "List every model version of the server with its state and reason.")
  static final class ListCommand implements Callable<Integer> {
    @Mixin Connection connection;

    @Override
    public Integer call() {
      JsonNode index = connection.post("/v2/repository/index");
      if (!index.isArray()) {
        throw new BerthException("the server's index is not a JSON array: " + index);
      }
      printTable(System.out, elements(index), "");
      return 0;
    }
  }

  @Command(
      name = "load",
      mixinStandardHelpOptions = true,
      description =
          "Load or reload MODEL from the server's repository (model.yaml and version directories"
              + " read again); a version that fails to load leaves the one serving in place.")
  static final class LoadCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "MODEL", description = "Model name.")
    String model;

    @Mixin Connection connection;

    @Override
    public Integer call() {
      JsonNode answer = connection.post("/v2/repository/models/" + encode(model) + "/load");
      System.out.println("loaded model '" + model + "'");
      printTable(System.out, elements(answer.path("versions")), model);
      return 0;
    }
  }

  @Command(
      name = "unload",
      mixinStandardHelpOptions = true,
      description =
          "Unload MODEL: its in-flight requests finish, then its engines are freed; it stays"
              + " unloaded until loaded again.")
  static final class UnloadCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "MODEL", description = "Model name.")
    String model;

    @Mixin Connection connection;

    @Override
    public Integer call() {
      JsonNode answer = connection.post("/v2/repository/models/" + encode(model) + "/unload");
      System.out.println("unloaded model '" + model + "'");
      printTable(System.out, elements(answer.path("versions")), model);
      return 0;
    }
  }

  private static String encode(String model) {
    return java.net.URLEncoder.encode(model, StandardCharsets.UTF_8).replace("+", "%20");
  }
}
