package dev.berth.store;

import dev.berth.api.BerthException;
import dev.berth.api.InvalidInputException;
import dev.berth.runtime.ModelRepository;
import java.io.IOException;
import java.io.OutputStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Consumer;
import java.util.stream.Stream;
import software.amazon.awssdk.auth.credentials.AwsCredentialsProvider;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.core.exception.SdkClientException;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.regions.providers.AwsProfileRegionProvider;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.GetObjectRequest;
import software.amazon.awssdk.services.s3.model.ListObjectsV2Request;
import software.amazon.awssdk.services.s3.model.S3Exception;
import software.amazon.awssdk.services.s3.model.S3Object;
import software.amazon.awssdk.services.s3.model.ServerSideEncryption;

/**
 * Models in S3 and S3-compatible stores (MinIO, Ceph's RADOS Gateway, ...): {@code
 * s3://BUCKET/PREFIX} holds one model directory ({@code PREFIX/model.yaml} and its version folders)
 * or a repository of them ({@code PREFIX/<model>/model.yaml}). What a model holds is named by the
 * digest of its listing (every key with its size and ETag): a new object, or a new version of one,
 * gives a new digest. Objects are downloaded several at a time, each checked against its size and,
 * when its ETag is the MD5 of its content (a single-part upload), against that; pins in model.yaml
 * and signatures are checked when the model loads, as for a local model.
 *
 * <p>The client is the AWS SDK's, on the JDK's HTTP connection: credentials from the standard chain
 * (the {@code AWS_ACCESS_KEY_ID} variables, {@code ~/.aws/credentials} and {@code AWS_PROFILE}, web
 * identity tokens, container and instance credentials unless {@code AWS_EC2_METADATA_DISABLED}),
 * the region from {@code AWS_REGION}, {@code AWS_DEFAULT_REGION} or the profile (else us-east-1),
 * and for S3-compatible stores an endpoint ({@code --s3-endpoint}, else {@code AWS_ENDPOINT_URL_S3}
 * or {@code AWS_ENDPOINT_URL}) with path-style addressing.
 */
public final class S3Models implements AutoCloseable {
  public static final String SCHEME = "s3://";
  private static final int PARALLEL = 4;

  /** {@code s3://BUCKET/PREFIX}: the prefix without its trailing slash, or empty. */
  public record Location(String bucket, String prefix) {
    public static Location parse(String text) {
      if (!text.startsWith(SCHEME)) {
        throw new InvalidInputException("'" + text + "' is not an s3:// location");
      }
      String rest = text.substring(SCHEME.length());
      int slash = rest.indexOf('/');
      String bucket = slash < 0 ? rest : rest.substring(0, slash);
      String prefix = slash < 0 ? "" : rest.substring(slash + 1);
      while (prefix.endsWith("/")) {
        prefix = prefix.substring(0, prefix.length() - 1);
      }
      if (!bucket.matches("[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")) {
        throw new InvalidInputException(
            "'"
                + text
                + "' names no valid bucket ('"
                + bucket
                + "'); write s3://BUCKET/PREFIX, such as s3://models/team/minilm");
      }
      return new Location(bucket, prefix);
    }

    /** The key prefix of what is under it: {@code PREFIX/}, or empty for the whole bucket. */
    String keyPrefix() {
      return prefix.isEmpty() ? "" : prefix + "/";
    }

    /** The location of a folder under this one. */
    public Location child(String name) {
      return new Location(bucket, prefix.isEmpty() ? name : prefix + "/" + name);
    }

    @Override
    public String toString() {
      return SCHEME + bucket + (prefix.isEmpty() ? "" : "/" + prefix);
    }
  }

  private final S3Client s3;
  private final String endpoint;
  private final Consumer<String> progress;

  S3Models(S3Client s3, String endpoint, Consumer<String> progress) {
    this.s3 = s3;
    this.endpoint = endpoint;
    this.progress = progress;
  }

  /**
   * A client for S3, or for the S3-compatible store at {@code endpoint}.
   *
   * @param endpoint {@code http(s)://host:port}, or null for the environment's ({@code
   *     AWS_ENDPOINT_URL_S3}, {@code AWS_ENDPOINT_URL}) or AWS itself
   */
  public static S3Models connect(String endpoint, Consumer<String> progress) {
    return connect(
        endpoint, DefaultCredentialsProvider.builder().build(), System.getenv(), progress);
  }

  static S3Models connect(
      String endpoint,
      AwsCredentialsProvider credentials,
      Map<String, String> env,
      Consumer<String> progress) {
    String url = endpoint;
    if (url == null) {
      url = env.get("AWS_ENDPOINT_URL_S3");
    }
    if (url == null) {
      url = env.get("AWS_ENDPOINT_URL");
    }
    var builder =
        S3Client.builder()
            .httpClientBuilder(
                UrlConnectionHttpClient.builder()
                    .connectionTimeout(Duration.ofSeconds(30))
                    .socketTimeout(Duration.ofMinutes(5)))
            // S3-compatible stores (S3Proxy, older MinIO and Ceph) lack the SDK's newer default
            // of a checksum on every request and response
            .requestChecksumCalculation(
                software.amazon.awssdk.core.checksums.RequestChecksumCalculation.WHEN_REQUIRED)
            .responseChecksumValidation(
                software.amazon.awssdk.core.checksums.ResponseChecksumValidation.WHEN_REQUIRED)
            .credentialsProvider(credentials)
            .region(region(env));
    if (url != null) {
      URI uri;
      try {
        uri = URI.create(url);
      } catch (IllegalArgumentException e) {
        throw new InvalidInputException(
            "the S3 endpoint '" + url + "' is not a URL; give http(s)://HOST[:PORT]");
      }
      if (uri.getScheme() == null || uri.getHost() == null) {
        throw new InvalidInputException(
            "the S3 endpoint '" + url + "' is not a URL; give http(s)://HOST[:PORT]");
      }
      builder.endpointOverride(uri).forcePathStyle(true);
    }
    return new S3Models(builder.build(), url == null ? "AWS S3" : url, progress);
  }

  private static Region region(Map<String, String> env) {
    for (String name : List.of("AWS_REGION", "AWS_DEFAULT_REGION")) {
      String r = env.get(name);
      if (r != null && !r.isBlank()) {
        return Region.of(r.strip());
      }
    }
    try {
      Region fromProfile = new AwsProfileRegionProvider().getRegion();
      if (fromProfile != null) {
        return fromProfile;
      }
    } catch (SdkClientException e) {
      // no profile with a region
    }
    return Region.US_EAST_1;
  }

  /** One file of a model: its path in the model directory, key, size and ETag. */
  record Item(String path, String key, long size, String etag) {}

  /**
   * The models under a location: the one model it is, or each model folder of the repository it is.
   *
   * @throws BerthException when it holds neither, or S3 refuses
   */
  public List<ModelSource> sources(Location location) {
    Map<String, List<Item>> byFirst = new TreeMap<>();
    boolean model = false;
    for (Item item : list(location)) {
      if (item.path().equals("model.yaml")) {
        model = true;
      }
      int slash = item.path().indexOf('/');
      if (slash > 0) {
        byFirst.computeIfAbsent(item.path().substring(0, slash), k -> new ArrayList<>()).add(item);
      }
    }
    if (model) {
      String name =
          location.prefix().isEmpty()
              ? location.bucket()
              : location.prefix().substring(location.prefix().lastIndexOf('/') + 1);
      return List.of(source(name, location));
    }
    List<ModelSource> out = new ArrayList<>();
    for (Map.Entry<String, List<Item>> e : byFirst.entrySet()) {
      String name = e.getKey();
      boolean hasYaml = e.getValue().stream().anyMatch(i -> i.path().equals(name + "/model.yaml"));
      if (hasYaml && ModelRepository.isValidModelName(name)) {
        out.add(source(name, location.child(name)));
      }
    }
    if (out.isEmpty()) {
      throw new BerthException(
          location
              + " holds no model: neither "
              + location.keyPrefix()
              + "model.yaml (one model) nor <model>/model.yaml under it (a repository); upload a"
              + " model directory there");
    }
    return out;
  }

  @SuppressWarnings("unchecked")
  private ModelSource source(String name, Location location) {
    return ModelSource.of(
        name,
        location.toString(),
        () -> {
          List<Item> items = list(location);
          if (items.stream().noneMatch(i -> i.path().equals("model.yaml"))) {
            throw new BerthException(location + " has no model.yaml any more");
          }
          StringBuilder text = new StringBuilder();
          for (Item i : items) {
            text.append(i.etag())
                .append(' ')
                .append(i.size())
                .append(' ')
                .append(i.path())
                .append('\n');
          }
          return new ModelSource.Version(
              RegistryClient.sha256(text.toString().getBytes(StandardCharsets.UTF_8)), items);
        },
        (version, dir) -> fetchAll(location, (List<Item>) version.detail(), dir));
  }

  /**
   * Writes the files under a location (a model directory) into {@code emptyDir}, each checked as a
   * served model's are.
   *
   * @return the files' paths relative to the location, sorted; empty when it holds none
   */
  public List<String> downloadTree(Location location, Path emptyDir) {
    List<Item> items = list(location);
    if (!items.isEmpty()) {
      fetchAll(location, items, emptyDir);
    }
    return items.stream().map(Item::path).toList();
  }

  /** The paths of the files under a location, relative to it and sorted. */
  public List<String> paths(Location location) {
    return list(location).stream().map(Item::path).toList();
  }

  /**
   * Uploads every regular file under {@code dir} to the same relative keys under {@code location}.
   * When one fails, those already written are deleted again (as far as S3 lets), so a failed upload
   * leaves nothing behind.
   *
   * @throws BerthException naming the file and what S3 said
   */
  public void uploadTree(Path dir, Location location) {
    List<Path> files;
    try (Stream<Path> walk = Files.walk(dir)) {
      files = walk.filter(Files::isRegularFile).sorted().toList();
    } catch (IOException e) {
      throw new BerthException("cannot read " + dir + ": " + e.getMessage(), e);
    }
    long total = 0;
    for (Path f : files) {
      try {
        total += Files.size(f);
      } catch (IOException e) {
        throw new BerthException("cannot read " + f + ": " + e.getMessage(), e);
      }
    }
    progress.accept(
        String.format(
            Locale.ROOT,
            "pushing %s (%d files, %s)",
            location,
            files.size(),
            OciModelStore.size(total)));
    List<String> written = new ArrayList<>();
    try {
      for (Path f : files) {
        String key = location.keyPrefix() + dir.relativize(f).toString().replace('\\', '/');
        try {
          s3.putObject(
              software.amazon.awssdk.services.s3.model.PutObjectRequest.builder()
                  .bucket(location.bucket())
                  .key(key)
                  .build(),
              software.amazon.awssdk.core.sync.RequestBody.fromFile(f));
        } catch (SdkException e) {
          throw failure(e, "upload " + f + " to " + SCHEME + location.bucket() + "/" + key);
        }
        written.add(key);
      }
    } catch (RuntimeException e) {
      for (String key : written) {
        try {
          s3.deleteObject(
              software.amazon.awssdk.services.s3.model.DeleteObjectRequest.builder()
                  .bucket(location.bucket())
                  .key(key)
                  .build());
        } catch (SdkException ignored) {
          // the upload's own failure is what the caller needs to hear
        }
      }
      throw e;
    }
    progress.accept("pushed " + location);
  }

  /** Deletes these files (paths relative to the location), as far as S3 lets. */
  public void delete(Location location, List<String> paths) {
    for (String path : paths) {
      try {
        s3.deleteObject(
            software.amazon.awssdk.services.s3.model.DeleteObjectRequest.builder()
                .bucket(location.bucket())
                .key(location.keyPrefix() + path)
                .build());
      } catch (SdkException ignored) {
        // what the caller reports is why it deletes
      }
    }
  }

  /** Every object under a location, as model files sorted by path. */
  List<Item> list(Location location) {
    List<Item> items = new ArrayList<>();
    String keyPrefix = location.keyPrefix();
    try {
      for (S3Object o :
          s3.listObjectsV2Paginator(
                  ListObjectsV2Request.builder()
                      .bucket(location.bucket())
                      .prefix(keyPrefix)
                      .build())
              .contents()) {
        String path = o.key().substring(keyPrefix.length());
        if (path.isEmpty() || path.endsWith("/")) {
          continue; // folder markers some tools write
        }
        if (path.startsWith("/")
            || Stream.of(path.split("/"))
                .anyMatch(s -> s.isEmpty() || s.equals(".") || s.equals(".."))) {
          throw new BerthException(
              location + " holds the key '" + o.key() + "', which is not a safe file path");
        }
        items.add(new Item(path, o.key(), o.size(), stripQuotes(o.eTag())));
      }
    } catch (SdkException e) {
      throw failure(e, "list " + location);
    }
    items.sort(java.util.Comparator.comparing(Item::path));
    return items;
  }

  private void fetchAll(Location location, List<Item> items, Path tree) {
    long total = items.stream().mapToLong(Item::size).sum();
    progress.accept(
        String.format(
            Locale.ROOT,
            "pulling %s (%d files, %s)",
            location,
            items.size(),
            OciModelStore.size(total)));
    long start = System.nanoTime();
    ExecutorService pool =
        Executors.newFixedThreadPool(PARALLEL, Thread.ofPlatform().daemon().factory());
    try {
      List<Future<?>> downloads = new ArrayList<>();
      for (Item item : items) {
        downloads.add(pool.submit(() -> fetch(location, item, tree.resolve(item.path()))));
      }
      OciModelStore.awaitAll(downloads);
    } finally {
      pool.shutdownNow();
    }
    progress.accept(
        String.format(
            Locale.ROOT,
            "pulled %s: %d files, %s in %.1f s",
            location,
            items.size(),
            OciModelStore.size(total),
            (System.nanoTime() - start) / 1e9));
  }

  private void fetch(Location location, Item item, Path target) {
    String where = SCHEME + location.bucket() + "/" + item.key();
    MessageDigest md5;
    try {
      md5 = MessageDigest.getInstance("MD5");
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
    long got = 0;
    boolean encrypted = false;
    try {
      Files.createDirectories(target.getParent());
      try (software.amazon.awssdk.core.ResponseInputStream<
                  software.amazon.awssdk.services.s3.model.GetObjectResponse>
              in =
                  s3.getObject(
                      GetObjectRequest.builder()
                          .bucket(location.bucket())
                          .key(item.key())
                          .ifMatch('"' + item.etag() + '"')
                          .build());
          OutputStream out = Files.newOutputStream(target)) {
        // with SSE-KMS or a customer key, even a single-part ETag is not the content's MD5
        encrypted =
            in.response().serverSideEncryption() == ServerSideEncryption.AWS_KMS
                || in.response().serverSideEncryption() == ServerSideEncryption.AWS_KMS_DSSE
                || in.response().sseCustomerAlgorithm() != null;
        byte[] buffer = new byte[1 << 16];
        Progress told = new Progress(item.path(), item.size(), progress);
        for (int n; (n = in.read(buffer)) > 0; ) {
          md5.update(buffer, 0, n);
          out.write(buffer, 0, n);
          got += n;
          told.accept(got);
        }
      }
    } catch (SdkException e) {
      throw failure(e, "download " + where);
    } catch (IOException e) {
      throw new BerthException(
          "downloading " + where + " failed after " + got + " bytes: " + e.getMessage(), e);
    }
    if (got != item.size()) {
      throw new BerthException(
          where + " gave " + got + " bytes where its listing says " + item.size());
    }
    // a single-part upload's ETag is the MD5 of its bytes; a multipart one's has a '-'
    if (!encrypted
        && item.etag().matches("[0-9a-f]{32}")
        && !item.etag().equals(HexFormat.of().formatHex(md5.digest()))) {
      throw new BerthException(
          where
              + " does not match its ETag "
              + item.etag()
              + "; it was altered in transit or in the store");
    }
  }

  private static String stripQuotes(String etag) {
    if (etag == null) {
      return "";
    }
    String e = etag.strip();
    if (e.startsWith("\"") && e.endsWith("\"") && e.length() >= 2) {
      e = e.substring(1, e.length() - 1);
    }
    return e.toLowerCase(Locale.ROOT);
  }

  /** An SDK failure as a message that names the source and what to do; never a stack trace. */
  private BerthException failure(SdkException e, String what) {
    if (e instanceof S3Exception s3e) {
      String code = s3e.awsErrorDetails() == null ? "" : s3e.awsErrorDetails().errorCode();
      String hint =
          switch (code == null ? "" : code) {
            case "NoSuchBucket" -> "the bucket does not exist at " + endpoint;
            case "NoSuchKey" -> "the object is gone (deleted while being read?)";
            case "PreconditionFailed" ->
                "the object changed while being read; the next poll takes the new one";
            case "AccessDenied", "AllAccessDisabled" ->
                "access denied: the credentials may not read it";
            case "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken" ->
                "S3 refused the credentials ("
                    + code
                    + "): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), or"
                    + " a profile in ~/.aws/credentials with AWS_PROFILE";
            default ->
                "S3 answered HTTP "
                    + s3e.statusCode()
                    + (code == null || code.isEmpty() ? "" : " " + code);
          };
      return new BerthException("cannot " + what + ": " + hint, e);
    }
    String message = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
    if (message.contains("Unable to load credentials")) {
      return new BerthException(
          "cannot "
              + what
              + ": no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a"
              + " profile in ~/.aws/credentials (AWS_PROFILE)",
          e);
    }
    return new BerthException("cannot " + what + " at " + endpoint + ": " + firstLine(message), e);
  }

  private static String firstLine(String s) {
    int nl = s.indexOf('\n');
    return nl < 0 ? s : s.substring(0, nl);
  }

  @Override
  public void close() {
    s3.close();
  }
}
