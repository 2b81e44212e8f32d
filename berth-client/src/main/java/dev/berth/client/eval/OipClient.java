package dev.berth.client.eval;

import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.api.BerthException;
import java.io.IOException;
import java.net.ConnectException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpConnectTimeoutException;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.net.http.HttpTimeoutException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLException;

/** Open Inference Protocol v2 REST calls over the JDK's HTTP client. */
final class OipClient implements ModelEndpoint {
  private static final ObjectMapper JSON = new ObjectMapper();

  private final String base;
  private final String model;
  private final String version;
  private final Duration timeout;
  private final HttpClient http;

  OipClient(URI url, String model, String version, Duration timeout, SSLContext sslContext) {
    String u = url.toString();
    while (u.endsWith("/")) {
      u = u.substring(0, u.length() - 1);
    }
    this.base = u;
    this.model = model;
    this.version = version;
    this.timeout = timeout;
    HttpClient.Builder http =
        HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(10));
    if (sslContext != null) {
      http.sslContext(sslContext);
    }
    this.http = http.build();
  }

  @Override
  public URI url() {
    return URI.create(base);
  }

  @Override
  public String modelPath() {
    return base + "/v2/models/" + model + (version == null ? "" : "/versions/" + version);
  }

  /**
   * The model's metadata.
   *
   * @throws BerthException when the server cannot be reached, does not have the model, or does not
   *     answer OIP v2 metadata
   */
  @Override
  public ModelSignature metadata() throws InterruptedException {
    Answer a;
    try {
      a = send(HttpRequest.newBuilder(URI.create(modelPath())).GET());
    } catch (IOException e) {
      throw unreachable(e);
    }
    if (a.status() == 404) {
      String models = servedModels();
      throw new BerthException(
          "the server at "
              + base
              + " has no model '"
              + model
              + "'"
              + (version == null ? "" : " version " + version)
              + " (it answered 404: "
              + a.error()
              + ")"
              + (models.isEmpty() ? "" : "; it serves: " + models)
              + "; check --model and --model-version");
    }
    if (a.status() != 200) {
      throw new BerthException("GET " + modelPath() + " answered " + a.status() + ": " + a.error());
    }
    try {
      return ModelSignature.parse(model, JSON.readTree(a.body()));
    } catch (IOException e) {
      throw new BerthException(
          "GET "
              + modelPath()
              + " did not answer JSON; is "
              + base
              + " an Open Inference Protocol v2 server? It said: "
              + ModelSignature.abbreviate(a.text()),
          e);
    }
  }

  /** The models the repository index lists, or "" when the server has no index. */
  private String servedModels() throws InterruptedException {
    try {
      Answer a =
          send(
              HttpRequest.newBuilder(URI.create(base + "/v2/repository/index"))
                  .header("Content-Type", "application/json")
                  .POST(HttpRequest.BodyPublishers.ofString("{}")));
      if (a.status() != 200) {
        return "";
      }
      Set<String> names = new LinkedHashSet<>();
      JSON.readTree(a.body()).forEach(m -> names.add(m.path("name").asText()));
      names.remove("");
      return String.join(", ", names);
    } catch (IOException e) {
      return "";
    }
  }

  /**
   * Posts an inference request.
   *
   * @param body the request body: JSON, or a JSON header and raw tensor data
   * @param jsonLength the JSON header's length when binary data follows it, else -1
   */
  @Override
  public Answer infer(byte[] body, int jsonLength) throws IOException, InterruptedException {
    HttpRequest.Builder b =
        HttpRequest.newBuilder(URI.create(modelPath() + "/infer"))
            .POST(HttpRequest.BodyPublishers.ofByteArray(body));
    if (jsonLength >= 0) {
      b.header("Content-Type", "application/octet-stream");
      b.header("Inference-Header-Content-Length", Integer.toString(jsonLength));
    } else {
      b.header("Content-Type", "application/json");
    }
    return send(b);
  }

  private Answer send(HttpRequest.Builder request) throws IOException, InterruptedException {
    HttpResponse<byte[]> r =
        http.send(request.timeout(timeout).build(), HttpResponse.BodyHandlers.ofByteArray());
    return new Answer(r.statusCode(), r.body());
  }

  /** A message for a request that got no answer. */
  static String describe(IOException e) {
    if (e instanceof HttpConnectTimeoutException) {
      return "connection timed out";
    }
    if (e instanceof HttpTimeoutException) {
      return "no answer within the request timeout (--timeout)";
    }
    List<String> messages = new ArrayList<>();
    for (Throwable t = e; t != null && messages.size() < 3; t = t.getCause()) {
      String m =
          t.getClass().getSimpleName() + (t.getMessage() == null ? "" : ": " + t.getMessage());
      if (!messages.contains(m)) {
        messages.add(m);
      }
    }
    return String.join(" <- ", messages);
  }

  private BerthException unreachable(IOException e) {
    boolean refused = e instanceof ConnectException || e.getCause() instanceof ConnectException;
    if (e instanceof SSLException || e.getCause() instanceof SSLException) {
      return new BerthException(
          "TLS with the server at "
              + base
              + " failed ("
              + describe(e)
              + "); if its certificate comes from a private CA, give that CA with --cacert",
          e);
    }
    return new BerthException(
        "cannot reach the server at "
            + base
            + " ("
            + (refused ? "connection refused" : describe(e))
            + "); check the URL, or start a server with 'berth serve'",
        e);
  }

  @Override
  public void close() {
    http.close();
  }
}
