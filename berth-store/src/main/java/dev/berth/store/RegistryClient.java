package dev.berth.store;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.api.BerthException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.Base64;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.function.LongConsumer;
import java.util.function.Supplier;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The parts of the OCI distribution API a model store needs, over the JDK's HTTP client: manifests
 * by tag or digest, blobs by digest (existence, monolithic upload, verified download), with the
 * registry's own authentication (HTTP Basic, or bearer tokens from its token service, asked with
 * the credentials of {@link DockerCredentials}). Blob downloads follow redirects to a storage
 * service without sending it the registry's credentials.
 */
public final class RegistryClient {
  public static final String OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
  public static final String OCI_INDEX = "application/vnd.oci.image.index.v1+json";
  static final String DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
  static final String DOCKER_MANIFEST_LIST =
      "application/vnd.docker.distribution.manifest.list.v2+json";

  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Pattern CHALLENGE_PARAM = Pattern.compile("(\\w+)=\"([^\"]*)\"");

  /** A manifest as the registry holds it: its bytes, their media type and digest. */
  public record Manifest(byte[] bytes, String mediaType, String digest) {}

  private final OciReference ref;
  private final boolean push;
  private final DockerCredentials credentialFiles;
  // read again at each challenge: credential helpers hand out tokens that expire (ECR, GCR, ACR)
  private volatile Optional<DockerCredentials.Credentials> credentials;
  private final HttpClient http;
  private volatile String authorization;

  /**
   * A client for one repository.
   *
   * @param push whether it will write (tokens are asked for pull and push) or only read
   */
  public RegistryClient(OciReference ref, boolean push, DockerCredentials credentials) {
    this.ref = ref;
    this.push = push;
    this.credentialFiles = credentials;
    this.credentials = credentials.forRegistry(ref.registry());
    this.http =
        HttpClient.newBuilder()
            .version(HttpClient.Version.HTTP_1_1)
            .connectTimeout(Duration.ofSeconds(30))
            .followRedirects(HttpClient.Redirect.NEVER)
            .build();
  }

  /** The manifest at a tag or digest, or empty when the registry has none there. */
  public Optional<Manifest> manifest(String reference) {
    HttpResponse<byte[]> r =
        send(
            () ->
                HttpRequest.newBuilder(uri("manifests/" + reference))
                    // a multi-platform Docker image is a manifest list: asked for as it is, so that
                    // its digest is the one the registry holds (not a converted manifest's)
                    .header(
                        "Accept",
                        String.join(
                            ", ", OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST))
                    .timeout(Duration.ofMinutes(1))
                    .GET(),
            HttpResponse.BodyHandlers.ofByteArray(),
            "read the manifest " + reference);
    if (r.statusCode() == 404) {
      return Optional.empty();
    }
    expect(r, 200, "read the manifest " + reference);
    byte[] bytes = r.body();
    String digest = sha256(bytes);
    if (reference.startsWith("sha256:") && !reference.equals(digest)) {
      throw new BerthException(
          "the registry answered "
              + ref.withDigest(reference)
              + " with a manifest whose digest is "
              + digest
              + "; the registry or something between is altering content");
    }
    String type = r.headers().firstValue("Content-Type").orElse("");
    int semi = type.indexOf(';');
    return Optional.of(
        new Manifest(bytes, (semi < 0 ? type : type.substring(0, semi)).strip(), digest));
  }

  /** Stores a manifest under a tag (or its digest); returns its digest. */
  public String putManifest(String reference, byte[] bytes, String mediaType) {
    storeManifest(reference, bytes, mediaType);
    return sha256(bytes);
  }

  private HttpResponse<byte[]> storeManifest(String reference, byte[] bytes, String mediaType) {
    HttpResponse<byte[]> r =
        send(
            () ->
                HttpRequest.newBuilder(uri("manifests/" + reference))
                    .header("Content-Type", mediaType)
                    .timeout(Duration.ofMinutes(1))
                    .PUT(HttpRequest.BodyPublishers.ofByteArray(bytes)),
            HttpResponse.BodyHandlers.ofByteArray(),
            "store the manifest " + reference);
    expect(r, 201, "store the manifest " + reference);
    return r;
  }

  /**
   * Stores a manifest that names a {@code subject}, and says whether the registry indexed it for
   * the referrers API: an OCI 1.1 registry answers with an {@code OCI-Subject} header; one without
   * the API does not, and its clients keep the referrers under the fallback tag themselves.
   */
  public boolean putReferrer(String reference, byte[] bytes, String mediaType) {
    return storeManifest(reference, bytes, mediaType)
        .headers()
        .firstValue("OCI-Subject")
        .isPresent();
  }

  /**
   * The referrers API's index of the manifests that name {@code digest} as their subject, or empty
   * when the registry has no referrers API (it answers 404, as the distribution spec says such a
   * registry does).
   */
  public Optional<byte[]> referrers(String digest) {
    HttpResponse<byte[]> r =
        send(
            () ->
                HttpRequest.newBuilder(uri("referrers/" + digest))
                    .header("Accept", OCI_INDEX)
                    .timeout(Duration.ofMinutes(1))
                    .GET(),
            HttpResponse.BodyHandlers.ofByteArray(),
            "list the referrers of " + digest);
    // 404 is the spec's answer without the API; older registries say 400, 405 or 501 too
    int code = r.statusCode();
    if (code == 404 || code == 400 || code == 405 || code == 501) {
      return Optional.empty();
    }
    expect(r, 200, "list the referrers of " + digest);
    return Optional.of(r.body());
  }

  /** Whether the repository holds a blob. */
  public boolean hasBlob(String digest) {
    HttpResponse<byte[]> r =
        send(
            () ->
                HttpRequest.newBuilder(uri("blobs/" + digest))
                    .timeout(Duration.ofMinutes(1))
                    .method("HEAD", HttpRequest.BodyPublishers.noBody()),
            HttpResponse.BodyHandlers.ofByteArray(),
            "look for blob " + digest);
    if (r.statusCode() == 404) {
      return false;
    }
    if (r.statusCode() == 200 || r.statusCode() == 307) {
      return true;
    }
    expect(r, 200, "look for blob " + digest);
    return true;
  }

  /**
   * Uploads a blob in one request (the distribution API's monolithic upload).
   *
   * @param body the blob's bytes, asked for again when the registry wants credentials first
   */
  public void pushBlob(String digest, long size, Supplier<HttpRequest.BodyPublisher> body) {
    HttpResponse<byte[]> started =
        send(
            () ->
                HttpRequest.newBuilder(uri("blobs/uploads/"))
                    .timeout(Duration.ofMinutes(1))
                    .POST(HttpRequest.BodyPublishers.noBody()),
            HttpResponse.BodyHandlers.ofByteArray(),
            "start uploading blob " + digest);
    expect(started, 202, "start uploading blob " + digest);
    String location =
        started
            .headers()
            .firstValue("Location")
            .orElseThrow(
                () ->
                    new BerthException(
                        "registry "
                            + ref.registry()
                            + " started an upload without saying where to send it (no"
                            + " Location)"));
    URI upload = started.uri().resolve(location);
    String sep = upload.getRawQuery() == null ? "?" : "&";
    URI put =
        URI.create(upload + sep + "digest=" + URLEncoder.encode(digest, StandardCharsets.UTF_8));
    HttpResponse<byte[]> r =
        send(
            () ->
                HttpRequest.newBuilder(put)
                    .header("Content-Type", "application/octet-stream")
                    .PUT(body.get()),
            HttpResponse.BodyHandlers.ofByteArray(),
            "upload blob " + digest + " (" + size + " bytes)");
    expect(r, 201, "upload blob " + digest);
  }

  /** Reads a blob's bytes as they arrive. */
  @FunctionalInterface
  public interface BlobReader {
    void read(InputStream blob) throws IOException;
  }

  /**
   * Downloads a blob into a file, checking its size and digest as it streams; a blob that does not
   * match leaves no file behind.
   *
   * @param progress told the bytes received so far, now and then
   */
  public void fetchBlob(String digest, long size, Path target, LongConsumer progress) {
    try {
      fetchBlob(
          digest,
          size,
          progress,
          in -> {
            try (OutputStream out = Files.newOutputStream(target)) {
              in.transferTo(out);
            }
          });
    } catch (RuntimeException e) {
      deleteQuietly(target);
      throw e;
    }
  }

  /**
   * Streams a blob to a reader, counting and hashing what passes; after the reader returns, the
   * rest of the blob is read too, and its size and digest checked. A reader that acts on what it
   * read (unpacks it) must undo that when this throws.
   *
   * @param progress told the bytes received so far, now and then
   */
  public void fetchBlob(String digest, long size, LongConsumer progress, BlobReader reader) {
    // HttpURLConnection rather than java.net.http: it reads a big body straight off the socket,
    // several times faster than the JDK client's streamed body (measured in BENCHMARKS.md)
    java.net.HttpURLConnection c = openBlob(digest);
    InputStream body;
    try {
      body = c.getInputStream();
    } catch (IOException e) {
      c.disconnect();
      throw unreachable("download blob " + digest, e);
    }
    MessageDigest sha = sha256();
    CheckedStream counted = new CheckedStream(body, sha, size, progress);
    try (counted) {
      reader.read(counted);
      counted.transferTo(OutputStream.nullOutputStream()); // what the reader left: tar padding
    } catch (IOException e) {
      throw new BerthException(
          "downloading blob "
              + digest
              + " of "
              + ref
              + " failed after "
              + counted.got
              + " of "
              + size
              + " bytes: "
              + e.getMessage(),
          e);
    }
    progress.accept(counted.got);
    String actual = "sha256:" + HexFormat.of().formatHex(sha.digest());
    if (counted.got != size || !actual.equals(digest)) {
      throw new BerthException(
          "blob "
              + digest
              + " of "
              + ref
              + " does not match its manifest: "
              + (counted.got != size
                  ? "got " + counted.got + " bytes where it declares " + size
                  : "its content hashes to " + actual)
              + "; the copy in the registry is damaged or was altered, push the model again");
    }
  }

  /** Hashes and counts what is read, and stops reading past the declared size. */
  private static final class CheckedStream extends java.io.FilterInputStream {
    private final MessageDigest sha;
    private final long size;
    private final LongConsumer progress;
    long got;
    private long reported;

    CheckedStream(InputStream in, MessageDigest sha, long size, LongConsumer progress) {
      super(in);
      this.sha = sha;
      this.size = size;
      this.progress = progress;
    }

    @Override
    public int read() throws IOException {
      byte[] one = new byte[1];
      return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      if (got > size) {
        return -1; // more than declared: the check fails on what was read
      }
      int n = in.read(b, off, len);
      if (n > 0) {
        sha.update(b, off, n);
        got += n;
        if (got - reported >= (8 << 20)) {
          progress.accept(got);
          reported = got;
        }
      }
      return n;
    }

    @Override
    public long skip(long n) throws IOException {
      byte[] buffer = new byte[(int) Math.min(n, 1 << 16)];
      int read = read(buffer, 0, buffer.length);
      return Math.max(read, 0);
    }
  }

  /**
   * Opens a blob's download: with the registry's authorization (answering one 401 challenge), and
   * following redirects to a storage service without it.
   */
  private java.net.HttpURLConnection openBlob(String digest) {
    String what = "download blob " + digest;
    URI target = uri("blobs/" + digest);
    boolean registry = true;
    boolean challenged = false;
    for (int hops = 0; hops < 6; hops++) {
      java.net.HttpURLConnection c;
      int code;
      try {
        c = (java.net.HttpURLConnection) target.toURL().openConnection();
        c.setInstanceFollowRedirects(false);
        c.setConnectTimeout((int) Duration.ofSeconds(30).toMillis());
        c.setReadTimeout((int) Duration.ofMinutes(5).toMillis());
        String a = authorization;
        if (registry && a != null) {
          c.setRequestProperty("Authorization", a);
        }
        code = c.getResponseCode();
      } catch (IOException e) {
        throw unreachable(what, e);
      }
      if (code == 200) {
        return c;
      }
      if (code == 401 && registry && !challenged) {
        String challenge = c.getHeaderField("WWW-Authenticate");
        c.disconnect();
        authorization = authorize(challenge == null ? "" : challenge, what);
        challenged = true;
        continue;
      }
      if (isRedirect(code)) {
        String location = c.getHeaderField("Location");
        c.disconnect();
        if (location == null) {
          throw new BerthException("registry " + ref.registry() + " redirected without a Location");
        }
        target = target.resolve(location);
        registry = false; // storage behind a registry gets no registry credentials
        continue;
      }
      String body = "";
      try (InputStream err = c.getErrorStream()) {
        if (err != null) {
          body = new String(err.readNBytes(2048), StandardCharsets.UTF_8);
        }
      } catch (IOException e) {
        // the status says enough
      }
      c.disconnect();
      throw failure(code, body, what);
    }
    throw new BerthException(
        "registry " + ref.registry() + " redirected " + what + " more than five times");
  }

  private BerthException unreachable(String what, IOException e) {
    return new BerthException(
        "cannot "
            + what
            + " at "
            + ref
            + ": registry "
            + ref.registry()
            + " cannot be reached over "
            + (ref.plainHttp() ? "HTTP" : "HTTPS")
            + " ("
            + (e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage())
            + "); check that it runs and that the reference is right",
        e);
  }

  private static boolean isRedirect(int code) {
    return code == 301 || code == 302 || code == 303 || code == 307 || code == 308;
  }

  private URI uri(String path) {
    return URI.create(ref.apiBase() + path);
  }

  /**
   * Sends a request with the current authorization; on 401 answers the registry's challenge (a
   * bearer token from its token service, or Basic) and sends it once more.
   */
  private <T> HttpResponse<T> send(
      Supplier<HttpRequest.Builder> request, HttpResponse.BodyHandler<T> handler, String what) {
    HttpResponse<T> r = sendRaw(withAuth(request.get()).build(), handler, what);
    if (r.statusCode() != 401) {
      return r;
    }
    String challenge = r.headers().firstValue("WWW-Authenticate").orElse("");
    closeBody(r);
    authorization = authorize(challenge, what);
    return sendRaw(withAuth(request.get()).build(), handler, what);
  }

  /**
   * The request with the registry's authorization, only when it goes to the registry itself: an
   * upload location or a redirect may name another host, which gets no credentials.
   */
  private HttpRequest.Builder withAuth(HttpRequest.Builder b) {
    String a = authorization;
    if (a == null) {
      return b;
    }
    HttpRequest built = b.build();
    URI base = URI.create(ref.apiBase());
    URI to = built.uri();
    boolean registry =
        base.getScheme().equalsIgnoreCase(to.getScheme())
            && base.getHost().equalsIgnoreCase(to.getHost())
            && port(base) == port(to);
    HttpRequest.Builder copy = HttpRequest.newBuilder(built, (name, value) -> true);
    return registry ? copy.header("Authorization", a) : copy;
  }

  private static int port(URI u) {
    return u.getPort() >= 0 ? u.getPort() : "https".equalsIgnoreCase(u.getScheme()) ? 443 : 80;
  }

  private String authorize(String challenge, String what) {
    credentials = credentialFiles.forRegistry(ref.registry());
    String scheme = challenge.split(" ", 2)[0].toLowerCase(Locale.ROOT);
    if (scheme.equals("basic")) {
      DockerCredentials.Credentials c =
          credentials.orElseThrow(
              () ->
                  new BerthException(
                      "registry "
                          + ref.registry()
                          + " wants credentials to "
                          + what
                          + "; log in first (docker login "
                          + ref.registry()
                          + "; Berth reads ~/.docker/config.json)"));
      return basic(c);
    }
    if (!scheme.equals("bearer")) {
      throw new BerthException(
          "registry "
              + ref.registry()
              + " asks for '"
              + challenge
              + "' authentication, which Berth does not speak (Basic and Bearer)");
    }
    Map<String, String> params = new LinkedHashMap<>();
    Matcher m = CHALLENGE_PARAM.matcher(challenge);
    while (m.find()) {
      params.put(m.group(1).toLowerCase(Locale.ROOT), m.group(2));
    }
    String realm = params.get("realm");
    if (realm == null) {
      throw new BerthException(
          "registry " + ref.registry() + " asks for a bearer token but names no token service");
    }
    StringBuilder query = new StringBuilder();
    if (params.containsKey("service")) {
      query
          .append("service=")
          .append(URLEncoder.encode(params.get("service"), StandardCharsets.UTF_8));
    }
    String scope = "repository:" + ref.repository() + ":" + (push ? "pull,push" : "pull");
    query
        .append(query.isEmpty() ? "" : "&")
        .append("scope=")
        .append(URLEncoder.encode(scope, StandardCharsets.UTF_8));
    HttpRequest.Builder token =
        HttpRequest.newBuilder(URI.create(realm + (realm.contains("?") ? "&" : "?") + query))
            .timeout(Duration.ofMinutes(1))
            .GET();
    credentials.ifPresent(c -> token.header("Authorization", basic(c)));
    HttpResponse<byte[]> r =
        sendRaw(token.build(), HttpResponse.BodyHandlers.ofByteArray(), "get a token to " + what);
    if (r.statusCode() == 401 || r.statusCode() == 403) {
      throw new BerthException(
          "registry "
              + ref.registry()
              + "'s token service refused "
              + (credentials.isPresent()
                  ? "the credentials of '" + credentials.get().username() + "'"
                  : "an anonymous request")
              + " for "
              + scope
              + "; log in with docker login "
              + ref.registry());
    }
    expect(r, 200, "get a token to " + what);
    try {
      JsonNode body = JSON.readTree(r.body());
      String t = body.path("token").asText(body.path("access_token").asText(""));
      if (t.isEmpty()) {
        throw new BerthException("registry " + ref.registry() + "'s token service gave no token");
      }
      return "Bearer " + t;
    } catch (IOException e) {
      throw new BerthException(
          "registry " + ref.registry() + "'s token service answered no JSON: " + e.getMessage(), e);
    }
  }

  private static String basic(DockerCredentials.Credentials c) {
    return "Basic "
        + Base64.getEncoder()
            .encodeToString((c.username() + ":" + c.secret()).getBytes(StandardCharsets.UTF_8));
  }

  private <T> HttpResponse<T> sendRaw(
      HttpRequest request, HttpResponse.BodyHandler<T> handler, String what) {
    try {
      return http.send(request, handler);
    } catch (IOException e) {
      throw unreachable(what, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new BerthException("interrupted while trying to " + what + " at " + ref, e);
    }
  }

  private void expect(HttpResponse<byte[]> r, int code, String what) {
    if (r.statusCode() != code) {
      throw failure(r.statusCode(), new String(r.body(), StandardCharsets.UTF_8), what);
    }
  }

  private BerthException failure(int code, String body, String what) {
    String hint =
        switch (code) {
          case 401 ->
              "; the registry wants credentials Berth does not have or refused them: log in with"
                  + " docker login "
                  + ref.registry();
          case 403 ->
              "; the credentials may not "
                  + (push ? "push to" : "pull from")
                  + " "
                  + ref.repository();
          case 404 -> "; " + ref.repository() + " or what it names does not exist";
          default -> "";
        };
    String said = body.strip();
    if (said.length() > 300) {
      said = said.substring(0, 300) + "...";
    }
    return new BerthException(
        "registry "
            + ref.registry()
            + " refused to "
            + what
            + " of "
            + ref.repository()
            + ": HTTP "
            + code
            + (said.isEmpty() ? "" : " " + said)
            + hint);
  }

  private static void closeBody(HttpResponse<?> r) {
    if (r.body() instanceof InputStream in) {
      closeQuietly(in);
    }
  }

  private static void closeQuietly(InputStream in) {
    try {
      in.close();
    } catch (IOException e) {
      // nothing to do
    }
  }

  private static void deleteQuietly(Path p) {
    try {
      Files.deleteIfExists(p);
    } catch (IOException e) {
      // the caller's temporary directory goes too
    }
  }

  static MessageDigest sha256() {
    try {
      return MessageDigest.getInstance("SHA-256");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** {@code sha256:<hex>} of bytes. */
  public static String sha256(byte[] bytes) {
    return "sha256:" + HexFormat.of().formatHex(sha256().digest(bytes));
  }
}
