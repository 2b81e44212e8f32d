package dev.berth.server;

import static org.junit.jupiter.api.Assertions.fail;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.File;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.WebSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.awaitility.Awaitility;
import org.junit.jupiter.api.Assumptions;

/**
 * Debian's {@code chromium}, headless, driven over the Chrome DevTools Protocol on a WebSocket (the
 * JDK's own client): open a page, evaluate JavaScript in it, take a screenshot, and see every
 * request it made. It runs with a fresh profile and the flags that keep it from reaching any host
 * of its own accord (background networking, component updates, sync, first-run tasks, proxies, and
 * every host name made unresolvable), and is stopped with its whole process tree. Seen under strace
 * with these flags: no DNS query, connections to 127.0.0.1 only, besides Chromium's IPv6
 * reachability probe (a UDP socket connected to a public address, through which nothing is sent).
 */
final class HeadlessChromium implements AutoCloseable {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Duration CALL_TIMEOUT = Duration.ofSeconds(30);

  private final Process process;
  private final WebSocket socket;
  private final Path log;
  private final AtomicInteger ids = new AtomicInteger();
  private final Map<Integer, CompletableFuture<JsonNode>> calls = new ConcurrentHashMap<>();
  private final List<JsonNode> events = java.util.Collections.synchronizedList(new ArrayList<>());

  private HeadlessChromium(Process process, int port, Path log) throws IOException {
    this.process = process;
    this.log = log;
    this.socket = attach(port, new Listener(this::received));
  }

  /**
   * Where {@code chromium} is on PATH. Under {@code CI=true} a missing browser fails the test;
   * elsewhere the test is skipped, saying how to install it.
   */
  static Path require() {
    String path = System.getenv().getOrDefault("PATH", "");
    Optional<Path> found =
        Stream.of(path.split(File.pathSeparator))
            .filter(d -> !d.isEmpty())
            .map(d -> Path.of(d, "chromium"))
            .filter(Files::isExecutable)
            .findFirst();
    if (found.isPresent()) {
      return found.get();
    }
    String why =
        "chromium is not on PATH; install Debian's browser with 'sudo apt-get install chromium'"
            + " (.ci/run does) to run the status page's browser test";
    if ("true".equalsIgnoreCase(System.getenv("CI"))) {
      return fail(why);
    }
    Assumptions.abort(why);
    throw new IllegalStateException("not reached");
  }

  /**
   * Starts the browser on a blank page with a new profile in {@code profile} and attaches to that
   * page.
   */
  static HeadlessChromium start(Path chromium, Path profile) {
    try {
      Files.createDirectories(profile);
      Path log = profile.resolve("chromium.log");
      Process process =
          new ProcessBuilder(
                  chromium.toString(),
                  "--headless",
                  "--no-sandbox",
                  "--disable-gpu",
                  "--disable-background-networking",
                  "--disable-component-update",
                  "--disable-sync",
                  "--no-first-run",
                  "--no-default-browser-check",
                  "--no-proxy-server",
                  // the flags above still leave Chromium 156 looking up update.googleapis.com,
                  // clients2.google.com and accounts.google.com: no name resolves, so no query
                  // leaves the machine
                  "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                  "--user-data-dir=" + profile.toAbsolutePath(),
                  "--remote-debugging-address=127.0.0.1",
                  "--remote-debugging-port=0",
                  "--window-size=1280,900",
                  "about:blank")
              .redirectErrorStream(true)
              .redirectOutput(log.toFile())
              .start();
      try {
        Path portFile = profile.resolve("DevToolsActivePort");
        Awaitility.await("chromium's DevToolsActivePort (see " + log + ")")
            .atMost(Duration.ofSeconds(30))
            .pollInterval(Duration.ofMillis(50))
            .until(() -> !process.isAlive() || lines(portFile).size() >= 2);
        if (!process.isAlive()) {
          throw new IllegalStateException(
              "chromium exited with code " + process.exitValue() + ": " + Files.readString(log));
        }
        int port = Integer.parseInt(lines(portFile).get(0).strip());
        return new HeadlessChromium(process, port, log);
      } catch (RuntimeException | IOException e) {
        stop(process);
        throw e;
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static List<String> lines(Path file) {
    try {
      return Files.isRegularFile(file) ? Files.readAllLines(file) : List.of();
    } catch (IOException e) {
      return List.of();
    }
  }

  /** Opens a WebSocket to the browser's first page target. */
  private static WebSocket attach(int port, WebSocket.Listener listener) throws IOException {
    HttpClient http = HttpClient.newHttpClient();
    JsonNode targets;
    try {
      targets =
          JSON.readTree(
              http.send(
                      HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/json/list"))
                          .timeout(CALL_TIMEOUT)
                          .build(),
                      HttpResponse.BodyHandlers.ofString())
                  .body());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
    for (JsonNode t : targets) {
      if (t.path("type").asText().equals("page")) {
        return http.newWebSocketBuilder()
            .connectTimeout(CALL_TIMEOUT)
            .buildAsync(URI.create(t.path("webSocketDebuggerUrl").asText()), listener)
            .join();
      }
    }
    throw new IllegalStateException("chromium shows no page to attach to: " + targets);
  }

  /** Joins each message's fragments and hands the whole message on. */
  private static final class Listener implements WebSocket.Listener {
    private final StringBuilder message = new StringBuilder();
    private final Consumer<String> sink;

    Listener(Consumer<String> sink) {
      this.sink = sink;
    }

    @Override
    public CompletionStage<?> onText(WebSocket ws, CharSequence data, boolean last) {
      message.append(data);
      if (last) {
        String whole = message.toString();
        message.setLength(0);
        sink.accept(whole);
      }
      ws.request(1);
      return null;
    }
  }

  private void received(String text) {
    JsonNode message;
    try {
      message = JSON.readTree(text);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    if (message.has("id")) {
      CompletableFuture<JsonNode> call = calls.remove(message.get("id").asInt());
      if (call != null) {
        call.complete(message);
      }
    } else {
      events.add(message);
    }
  }

  /** Calls a DevTools method and returns its result; an error answer fails the test. */
  JsonNode call(String method, Map<String, ?> params) {
    int id = ids.incrementAndGet();
    CompletableFuture<JsonNode> answer = new CompletableFuture<>();
    calls.put(id, answer);
    ObjectNode request = JSON.createObjectNode();
    request.put("id", id);
    request.put("method", method);
    request.set("params", JSON.valueToTree(params));
    socket.sendText(request.toString(), true).join();
    JsonNode message;
    try {
      message = answer.get(CALL_TIMEOUT.toSeconds(), TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    } catch (ExecutionException | TimeoutException e) {
      throw new AssertionError(method + ": no answer from chromium (see " + log + ")", e);
    }
    if (message.has("error")) {
      throw new AssertionError(method + " failed: " + message.get("error"));
    }
    return message.path("result");
  }

  /**
   * The value of a JavaScript expression in the page (a promise is awaited); an exception thrown by
   * it fails the test.
   */
  JsonNode evaluate(String expression) {
    JsonNode result =
        call(
            "Runtime.evaluate",
            Map.of("expression", expression, "returnByValue", true, "awaitPromise", true));
    if (result.has("exceptionDetails")) {
      throw new AssertionError(
          "the page threw on " + expression + ": " + result.get("exceptionDetails"));
    }
    return result.path("result").path("value");
  }

  /** The whole page, as wide as the window and as long as the page, as a PNG. */
  byte[] screenshot() {
    int width = evaluate("document.documentElement.clientWidth").asInt();
    int height = evaluate("document.documentElement.scrollHeight").asInt();
    Map<String, Object> clip = Map.of("x", 0, "y", 0, "width", width, "height", height, "scale", 1);
    return Base64.getDecoder()
        .decode(
            call(
                    "Page.captureScreenshot",
                    Map.of("format", "png", "captureBeyondViewport", true, "clip", clip))
                .path("data")
                .asText());
  }

  /** The DevTools events received so far (those of the domains enabled). */
  List<JsonNode> events() {
    synchronized (events) {
      return List.copyOf(events);
    }
  }

  @Override
  public void close() {
    try {
      socket.abort();
    } finally {
      stop(process);
    }
  }

  /** Stops the browser and every process it started, which outlive it when left alone. */
  private static void stop(Process process) {
    List<ProcessHandle> tree =
        Stream.concat(Stream.of(process.toHandle()), process.descendants()).toList();
    tree.forEach(ProcessHandle::destroy);
    try {
      if (!process.waitFor(10, TimeUnit.SECONDS)) {
        tree.forEach(ProcessHandle::destroyForcibly);
        process.waitFor(10, TimeUnit.SECONDS);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    for (ProcessHandle p : tree) {
      if (p.isAlive()) {
        p.destroyForcibly();
      }
    }
  }
}
