package dev.berth.store;

import dev.berth.api.BerthException;
import dev.berth.api.InvalidInputException;
import dev.berth.runtime.ModelRepository;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;

/**
 * One model file at an HTTPS (or HTTP) URL, served as version 1 of a model named after the file:
 * {@code https://example.com/models/minilm.onnx} serves as {@code minilm}, its file saved as {@code
 * 1/model.onnx} so the engine that reads that file serves it. A fragment {@code #sha256=HEX} pins
 * the file's content: the download is checked against it and the cache keys it by it. Without a
 * pin, what the URL holds is named by its {@code ETag}, {@code Last-Modified} and {@code
 * Content-Length} (one HEAD request a poll), and the download is checked against the length.
 */
public final class HttpModel implements ModelSource {
  /** The model files an engine recognises by name, by the extension a URL may end in. */
  static final List<String> EXTENSIONS = List.of("onnx", "gguf", "pt", "json", "ubj");

  private final URI uri;
  // the URL as messages and logs show it: without its query (a presigned URL's signature) or user
  private final String shown;
  private final String pin;
  private final String name;
  private final String extension;
  private final HttpClient http;
  private final Consumer<String> progress;

  private HttpModel(URI uri, String pin, String name, String extension, Consumer<String> progress) {
    this.uri = uri;
    this.shown = redact(uri);
    this.pin = pin;
    this.name = name;
    this.extension = extension;
    this.progress = progress;
    this.http =
        HttpClient.newBuilder()
            .connectTimeout(Duration.ofSeconds(30))
            .followRedirects(HttpClient.Redirect.NORMAL)
            .build();
  }

  /** A URL without its query and user info: what may be logged. */
  public static String redact(URI uri) {
    return uri.getScheme()
        + "://"
        + uri.getHost()
        + (uri.getPort() >= 0 ? ":" + uri.getPort() : "")
        + (uri.getRawPath() == null ? "" : uri.getRawPath())
        + (uri.getRawQuery() == null ? "" : "?...");
  }

  /** Whether a serve argument is a URL this reads. */
  public static boolean isHttp(String source) {
    return source.startsWith("https://") || source.startsWith("http://");
  }

  /**
   * Reads {@code https://HOST/PATH/NAME.EXT[#sha256=HEX]}.
   *
   * @throws InvalidInputException naming what is wrong
   */
  public static HttpModel parse(String text, Consumer<String> progress) {
    URI uri;
    try {
      uri = URI.create(text);
    } catch (IllegalArgumentException e) {
      throw new InvalidInputException("'" + text + "' is not a URL: " + e.getMessage());
    }
    String pin = null;
    if (uri.getFragment() != null) {
      String f = uri.getFragment();
      if (!f.matches("sha256=[0-9a-fA-F]{64}")) {
        throw new InvalidInputException(
            "'"
                + text
                + "' ends in '#"
                + f
                + "'; the only fragment read is #sha256=<64 hex digits>");
      }
      pin = f.substring("sha256=".length()).toLowerCase(Locale.ROOT);
      uri = URI.create(text.substring(0, text.indexOf('#')));
    }
    String path = uri.getPath() == null ? "" : uri.getPath();
    String file = path.substring(path.lastIndexOf('/') + 1);
    int dot = file.indexOf('.');
    String extension =
        dot < 0 ? "" : file.substring(file.lastIndexOf('.') + 1).toLowerCase(Locale.ROOT);
    if (uri.getHost() == null || !EXTENSIONS.contains(extension)) {
      throw new InvalidInputException(
          "'"
              + text
              + "' does not name a model file; give the URL of one ending in "
              + String.join(", ", EXTENSIONS.stream().map(e -> "." + e).toList())
              + " (a whole model directory goes to a registry with berth push, or to S3)");
    }
    String name = file.substring(0, dot).toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9_.-]", "-");
    if (!ModelRepository.isValidModelName(name)) {
      throw new InvalidInputException(
          "'" + file + "' gives no valid model name; rename the file (letters, digits, '-', '_')");
    }
    return new HttpModel(uri, pin, name, extension, progress);
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  public String location() {
    return shown;
  }

  @Override
  public Version resolve() {
    if (pin != null) {
      return new Version("sha256:" + pin, null); // the content itself is named
    }
    HttpResponse<Void> r =
        send(
            HttpRequest.newBuilder(uri).method("HEAD", HttpRequest.BodyPublishers.noBody()),
            HttpResponse.BodyHandlers.discarding(),
            "ask");
    long length = r.headers().firstValueAsLong("Content-Length").orElse(-1);
    if (r.statusCode() == 403 || r.statusCode() == 405) {
      // a presigned URL is signed for GET only: ask for its first byte instead
      r =
          send(
              HttpRequest.newBuilder(uri).header("Range", "bytes=0-0").GET(),
              HttpResponse.BodyHandlers.discarding(),
              "ask");
      String range = r.headers().firstValue("Content-Range").orElse("");
      int slash = range.lastIndexOf('/');
      length =
          r.statusCode() == 206 && slash > 0 && range.substring(slash + 1).matches("[0-9]+")
              ? Long.parseLong(range.substring(slash + 1))
              : r.headers().firstValueAsLong("Content-Length").orElse(-1);
    }
    if (r.statusCode() != 200 && r.statusCode() != 206) {
      throw new BerthException(
          shown + " answered HTTP " + r.statusCode() + " to a HEAD request; check the URL");
    }
    String validators =
        uri
            + "\n"
            + r.headers().firstValue("ETag").orElse("")
            + "\n"
            + r.headers().firstValue("Last-Modified").orElse("")
            + "\n"
            + length;
    return new Version(RegistryClient.sha256(validators.getBytes(StandardCharsets.UTF_8)), length);
  }

  @Override
  public void download(Version version, Path emptyDir) {
    Path target = emptyDir.resolve("1").resolve("model." + extension);
    HttpResponse<InputStream> r =
        send(
            HttpRequest.newBuilder(uri).GET(),
            HttpResponse.BodyHandlers.ofInputStream(),
            "download");
    if (r.statusCode() != 200) {
      try (InputStream in = r.body()) {
        in.readNBytes(4096);
      } catch (IOException e) {
        // the status says enough
      }
      throw new BerthException("cannot download " + shown + ": HTTP " + r.statusCode());
    }
    long expected = r.headers().firstValueAsLong("Content-Length").orElse(-1);
    progress.accept(
        "pulling "
            + shown
            + (expected >= 0 ? " (" + OciModelStore.size(expected) + ")" : "")
            + " as model '"
            + name
            + "'");
    long start = System.nanoTime();
    MessageDigest sha = RegistryClient.sha256();
    long got = 0;
    try {
      Files.createDirectories(target.getParent());
      try (InputStream in = r.body();
          OutputStream out = Files.newOutputStream(target)) {
        byte[] buffer = new byte[1 << 16];
        Progress told = new Progress("model '" + name + "'", expected, progress);
        for (int n; (n = in.read(buffer)) > 0; ) {
          sha.update(buffer, 0, n);
          out.write(buffer, 0, n);
          got += n;
          told.accept(got);
        }
      }
    } catch (IOException e) {
      throw new BerthException(
          "downloading " + shown + " failed after " + got + " bytes: " + e.getMessage(), e);
    }
    if (expected >= 0 && got != expected) {
      throw new BerthException(
          shown + " gave " + got + " bytes where its Content-Length said " + expected);
    }
    String actual = HexFormat.of().formatHex(sha.digest());
    if (pin != null && !pin.equals(actual)) {
      throw new BerthException(
          shown + " does not match its pin #sha256=" + pin + ": its content hashes to " + actual);
    }
    progress.accept(
        String.format(
            Locale.ROOT,
            "pulled %s: %s in %.1f s (sha256 %s)",
            shown,
            OciModelStore.size(got),
            (System.nanoTime() - start) / 1e9,
            actual));
  }

  private <T> HttpResponse<T> send(
      HttpRequest.Builder request, HttpResponse.BodyHandler<T> handler, String what) {
    try {
      return http.send(request.timeout(Duration.ofMinutes(30)).build(), handler);
    } catch (IOException e) {
      throw new BerthException(
          "cannot "
              + what
              + " "
              + shown
              + ": "
              + (e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage()),
          e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new BerthException("interrupted while trying to " + what + " " + shown, e);
    }
  }
}
