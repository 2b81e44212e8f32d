package dev.berth.store;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.stream.Stream;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;

/**
 * A real S3 API server for tests: S3Proxy (its own process, {@code java -jar}, the jar the build
 * copies into target/s3proxy) with a filesystem backend on 127.0.0.1 and a free port, signing
 * checked (AWS v2 or v4) against one access key.
 */
public final class TestS3 implements AutoCloseable {
  public static final String ACCESS_KEY = "berth-test";
  public static final String SECRET_KEY = "berth-test-secret";

  private final Process process;
  private final String endpoint;
  private final S3Client client;

  private TestS3(Process process, String endpoint) {
    this.process = process;
    this.endpoint = endpoint;
    this.client =
        S3Client.builder()
            .httpClientBuilder(UrlConnectionHttpClient.builder())
            .region(Region.US_EAST_1)
            .endpointOverride(java.net.URI.create(endpoint))
            // S3-compatible stores (S3Proxy, older MinIO and Ceph) lack the SDK's newer default
            // of a checksum on every request and response
            .requestChecksumCalculation(
                software.amazon.awssdk.core.checksums.RequestChecksumCalculation.WHEN_REQUIRED)
            .responseChecksumValidation(
                software.amazon.awssdk.core.checksums.ResponseChecksumValidation.WHEN_REQUIRED)
            .forcePathStyle(true)
            .credentialsProvider(
                StaticCredentialsProvider.create(
                    AwsBasicCredentials.create(ACCESS_KEY, SECRET_KEY)))
            .build();
  }

  public static TestS3 start(Path dir) throws IOException, InterruptedException {
    Path jar = Path.of("target/s3proxy/s3proxy.jar").toAbsolutePath();
    if (!Files.isRegularFile(jar)) {
      fail(jar + " is missing; the build copies S3Proxy there (mvn generate-test-resources)");
    }
    int port;
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      port = s.getLocalPort();
    }
    Path data = Files.createDirectories(dir.resolve("s3-data"));
    Path properties = dir.resolve("s3proxy.properties");
    String endpoint = "http://127.0.0.1:" + port;
    Files.writeString(
        properties,
        String.join(
            "\n",
            "s3proxy.endpoint=" + endpoint,
            "s3proxy.authorization=aws-v2-or-v4",
            "s3proxy.identity=" + ACCESS_KEY,
            "s3proxy.credential=" + SECRET_KEY,
            "jclouds.provider=filesystem",
            "jclouds.filesystem.basedir=" + data,
            ""));
    Path log = dir.resolve("s3proxy.log");
    Process p =
        new ProcessBuilder(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-jar",
                jar.toString(),
                "--properties",
                properties.toString())
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
    int listening = port;
    try {
      org.awaitility.Awaitility.await()
          .atMost(Duration.ofSeconds(60))
          .pollInterval(Duration.ofMillis(50))
          .until(
              () -> {
                if (!p.isAlive()) {
                  return true;
                }
                try {
                  new Socket(InetAddress.getLoopbackAddress(), listening).close();
                  return true;
                } catch (IOException notYet) {
                  return false;
                }
              });
    } catch (org.awaitility.core.ConditionTimeoutException e) {
      p.destroyForcibly();
    }
    if (!p.isAlive()) {
      fail("S3Proxy did not start: " + Files.readString(log, StandardCharsets.UTF_8));
    }
    return new TestS3(p, endpoint);
  }

  /**
   * The environment of a client of this server: its key in the standard AWS variables, and no AWS
   * file or instance role of this host ({@code work} holds the files that do not exist).
   */
  public static java.util.Map<String, String> clientEnvironment(Path work) {
    return java.util.Map.of(
        "AWS_ACCESS_KEY_ID",
        ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY",
        SECRET_KEY,
        "AWS_EC2_METADATA_DISABLED",
        "true",
        "AWS_CONFIG_FILE",
        work.resolve("no-aws-config").toString(),
        "AWS_SHARED_CREDENTIALS_FILE",
        work.resolve("no-aws-credentials").toString());
  }

  /** {@code http://127.0.0.1:PORT} */
  public String endpoint() {
    return endpoint;
  }

  /** A client with the server's key, to set up buckets and objects. */
  public S3Client client() {
    return client;
  }

  /** Uploads every file of a directory under {@code prefix/} in a bucket (created if missing). */
  public void upload(Path dir, String bucket, String prefix) throws IOException {
    if (client.listBuckets().buckets().stream().noneMatch(b -> b.name().equals(bucket))) {
      client.createBucket(b -> b.bucket(bucket));
    }
    try (Stream<Path> walk = Files.walk(dir)) {
      for (Path f : walk.filter(Files::isRegularFile).toList()) {
        String key = prefix + "/" + dir.relativize(f).toString().replace('\\', '/');
        client.putObject(b -> b.bucket(bucket).key(key), RequestBody.fromFile(f));
      }
    }
  }

  @Override
  public void close() {
    client.close();
    TestRegistry.stop(process);
  }
}
