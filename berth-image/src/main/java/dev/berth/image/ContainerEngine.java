package dev.berth.image;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.MappingIterator;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.berth.api.BerthException;
import dev.berth.image.EngineHttp.Answer;
import dev.berth.image.EngineHttp.AnswerReader;
import dev.berth.image.EngineHttp.Body;
import java.io.IOException;
import java.io.OutputStream;
import java.net.URLEncoder;
import java.nio.channels.AsynchronousCloseException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * A client of the local container engine (Docker, or podman's Docker-compatible socket) through the
 * Docker Engine API 1.41: load and save images, run, inspect, list, stop and remove containers,
 * read their logs. Thread-safe; each call is one connection. {@link #close()} ends calls still
 * streaming (logs with follow).
 */
public final class ContainerEngine implements AutoCloseable {
  static final String DEFAULT_HOST = "unix:///var/run/docker.sock";
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream";

  private final EngineHttp http;

  private ContainerEngine(EngineHttp http) {
    this.http = http;
  }

  /**
   * The engine named by {@code DOCKER_HOST} ({@code unix:///path} or {@code tcp://host:port}), else
   * {@code unix:///var/run/docker.sock}. Docker CLI contexts are not read.
   *
   * @throws ContainerEngineUnavailableException when DOCKER_HOST is of a kind Berth cannot use
   */
  public static ContainerEngine fromEnvironment() {
    return fromEnvironment(System.getenv());
  }

  static ContainerEngine fromEnvironment(Map<String, String> env) {
    String host = env.getOrDefault("DOCKER_HOST", "").strip();
    if (host.isEmpty()) {
      return at(DEFAULT_HOST);
    }
    if (host.startsWith("tcp://") && !env.getOrDefault("DOCKER_TLS_VERIFY", "").isEmpty()) {
      throw ContainerEngineUnavailableException.unsupported(
          host, "DOCKER_TLS_VERIFY is set for " + host, null);
    }
    return at(host);
  }

  /**
   * The engine at {@code unix:///path/to/socket} or {@code tcp://host[:port]}.
   *
   * @throws ContainerEngineUnavailableException for any other kind of address
   */
  public static ContainerEngine at(String host) {
    return new ContainerEngine(EngineHttp.forHost(host));
  }

  /** The engine's address, as given. */
  public String address() {
    return http.address();
  }

  /**
   * Checks that the engine answers and says what it is.
   *
   * @throws ContainerEngineUnavailableException when nothing answers at {@link #address()}
   */
  public EngineInfo ping() {
    String doing = "cannot ask the container engine at " + address() + " for its version";
    JsonNode v = call("GET", "/version", null, doing, a -> json(a, doing, null));
    return new EngineInfo(
        v.path("Version").asText(),
        v.path("ApiVersion").asText(),
        v.path("Os").asText(),
        v.path("Arch").asText());
  }

  /**
   * Loads a {@code docker save}-format tar (as {@code docker load} does), reporting the engine's
   * progress lines to {@code progress}.
   *
   * @return the names the engine says it loaded ({@code berth/minilm:1}, or {@code sha256:...} for
   *     an untagged image)
   */
  public List<String> loadImage(Path tarFile, Consumer<String> progress) {
    String doing = "cannot load " + tarFile + " into the container engine";
    Body body;
    try {
      body = Body.file(tarFile, "application/x-tar");
    } catch (IOException e) {
      throw new BerthException(doing + ": cannot read the file", e);
    }
    return call(
        "POST",
        "/images/load?quiet=0",
        body,
        doing,
        a -> {
          check(a, doing, null);
          List<String> loaded = new ArrayList<>();
          String[] last = {null};
          readProgress(
              a,
              doing,
              line -> {
                String text =
                    line.hasNonNull("stream")
                        ? line.get("stream").asText().strip()
                        : (line.path("status").asText("") + " " + line.path("id").asText(""))
                            .strip();
                if (!text.isEmpty() && !text.equals(last[0])) {
                  progress.accept(text);
                  last[0] = text;
                }
                for (String prefix : List.of("Loaded image: ", "Loaded image ID: ")) {
                  if (text.startsWith(prefix)) { // podman joins several names with commas
                    Stream.of(text.substring(prefix.length()).split(","))
                        .map(String::strip)
                        .forEach(loaded::add);
                  }
                }
              });
          return List.copyOf(loaded);
        });
  }

  /**
   * Pulls an image from its registry (as {@code docker pull} does), with the engine's credentials,
   * reporting its progress lines to {@code progress}.
   */
  public void pullImage(String image, Consumer<String> progress) {
    String doing = "cannot pull " + image;
    // the reference's tag (after the last ':' that follows the last '/'), else latest
    String name = image;
    String tag = "latest";
    int at = image.indexOf('@');
    int colon = image.lastIndexOf(':');
    if (at < 0 && colon > image.lastIndexOf('/')) {
      name = image.substring(0, colon);
      tag = image.substring(colon + 1);
    }
    String target =
        "/images/create?fromImage=" + query(name) + (at < 0 ? "&tag=" + query(tag) : "");
    call(
        "POST",
        target,
        null,
        doing,
        a -> {
          check(a, doing, null);
          String[] last = {null};
          readProgress(
              a,
              doing,
              line -> {
                String text = line.path("status").asText("").strip();
                // per-layer byte counts come many times a second: their start and end are enough
                if (!text.isEmpty()
                    && !text.equals(last[0])
                    && !line.path("progressDetail").has("current")
                    && !text.startsWith("Waiting")) {
                  progress.accept(text + (line.has("id") ? " " + line.get("id").asText() : ""));
                  last[0] = text;
                }
              });
          return null;
        });
  }

  /**
   * Reads an engine's stream of JSON progress lines (a load, a pull), each given to {@code line};
   * an error line fails the call with its message.
   */
  private static void readProgress(EngineHttp.Answer a, String doing, Consumer<JsonNode> line)
      throws IOException {
    try (MappingIterator<JsonNode> lines = JSON.readerFor(JsonNode.class).readValues(a.body())) {
      while (lines.hasNextValue()) {
        JsonNode next = lines.nextValue();
        if (next.hasNonNull("error") || next.hasNonNull("errorDetail")) {
          String message = next.path("errorDetail").path("message").asText("");
          throw new ContainerEngineException(
              a.status(),
              doing + ": " + (message.isEmpty() ? next.path("error").asText() : message));
        }
        line.accept(next);
      }
    }
  }

  /** Writes {@code image} in {@code docker save} format to {@code tarFile}, replacing it. */
  public void saveImage(String image, Path tarFile) {
    String doing = "cannot save image " + image + " to " + tarFile;
    call(
        "GET",
        "/images/" + pathOf(image, true) + "/get",
        null,
        doing,
        a -> {
          check(a, doing, null);
          try {
            Files.copy(a.body(), tarFile, StandardCopyOption.REPLACE_EXISTING);
          } catch (IOException e) {
            Files.deleteIfExists(tarFile);
            throw e;
          }
          return null;
        });
  }

  /** The image named {@code image} (a name, name:tag or id), or empty when the engine lacks it. */
  public Optional<ImageInfo> inspectImage(String image) {
    String doing = "cannot inspect image " + image;
    return call(
        "GET",
        "/images/" + pathOf(image, true) + "/json",
        null,
        doing,
        a -> {
          if (a.status() == 404) {
            return Optional.empty();
          }
          JsonNode i = json(a, doing, null);
          JsonNode config = i.path("Config");
          Set<String> ports = new TreeSet<>();
          config.path("ExposedPorts").fieldNames().forEachRemaining(ports::add);
          List<String> tags = new ArrayList<>();
          i.path("RepoTags").forEach(t -> tags.add(t.asText()));
          return Optional.of(
              new ImageInfo(
                  i.path("Id").asText(),
                  tags,
                  i.path("Size").asLong(),
                  strings(config.path("Labels")),
                  ports));
        });
  }

  /**
   * Creates (does not start) a container.
   *
   * @return the new container's id
   * @throws ContainerEngineException with status 409 when a container of that name exists
   */
  public String createContainer(ContainerSpec spec) {
    String doing = "cannot create a container of " + spec.image();
    ObjectNode body = JSON.createObjectNode().put("Image", spec.image());
    spec.env().forEach((k, v) -> body.withArrayProperty("Env").add(k + "=" + v));
    body.set("Labels", JSON.valueToTree(spec.labels()));
    if (spec.command() != null) {
      body.set("Cmd", JSON.valueToTree(spec.command()));
    }
    if (spec.entrypoint() != null) {
      body.set("Entrypoint", JSON.valueToTree(spec.entrypoint()));
    }
    if (spec.stopTimeout() != null) {
      body.put("StopTimeout", seconds(spec.stopTimeout()));
    }
    ObjectNode host = body.putObject("HostConfig").put("AutoRemove", false);
    for (ContainerSpec.Mount m : spec.mounts()) {
      host.withArrayProperty("Binds")
          .add(m.source() + ":" + m.target() + (m.writable() ? ":rw" : ":ro"));
    }
    if (spec.cpus() > 0) {
      host.put("NanoCpus", Math.round(spec.cpus() * 1e9));
    }
    if (spec.memoryBytes() > 0) {
      host.put("Memory", spec.memoryBytes());
      host.put("MemorySwap", spec.memoryBytes()); // the limit holds: no swap beyond it
    }
    if (spec.gpus() > 0) {
      // as docker run --gpus N: the NVIDIA container runtime hands the container N devices
      ObjectNode request = host.putArray("DeviceRequests").addObject();
      request.put("Driver", "nvidia");
      request.put("Count", spec.gpus());
      request.putArray("Capabilities").addArray().add("gpu");
    }

    for (PortBinding p : spec.ports()) {
      body.withObjectProperty("ExposedPorts").putObject(p.key());
      host.withObjectProperty("PortBindings")
          .withArrayProperty(p.key())
          .addObject()
          .put("HostIp", p.hostIp())
          .put("HostPort", p.hostPort() == 0 ? "" : Integer.toString(p.hostPort()));
    }
    String query = spec.name() == null ? "" : "?name=" + query(spec.name());
    return call(
        "POST",
        "/containers/create" + query,
        Body.json(body.toString().getBytes(StandardCharsets.UTF_8)),
        doing,
        a -> {
          if (a.status() == 409 && spec.name() != null) {
            throw new ContainerEngineException(
                409,
                "A container named '"
                    + spec.name()
                    + "' already exists. Stop and remove it with `berth stop "
                    + spec.name()
                    + "`, or choose another name.");
          }
          return json(a, doing, null).path("Id").asText();
        });
  }

  /** Starts a created or stopped container; one already running is left as it is. */
  public void start(String id) {
    containerCall("POST", id, "/start", "cannot start container " + id);
  }

  /**
   * Stops a container: SIGTERM, then SIGKILL after {@code timeout}. One already stopped is fine.
   */
  public void stop(String id, Duration timeout) {
    containerCall("POST", id, "/stop?t=" + seconds(timeout), "cannot stop container " + id);
  }

  /**
   * Removes a container; {@code force} kills a running one first (else the engine refuses, 409).
   */
  public void remove(String id, boolean force) {
    containerCall("DELETE", id, "?force=" + force, "cannot remove container " + id);
  }

  /**
   * The container's state, ports and labels.
   *
   * @throws ContainerNotFoundException when the engine has no such container
   */
  public ContainerInfo inspectContainer(String id) {
    JsonNode c = inspectJson(id);
    JsonNode state = c.path("State");
    List<PortBinding> ports = new ArrayList<>();
    c.path("NetworkSettings")
        .path("Ports")
        .properties()
        .forEach(
            port -> {
              String[] portAndProtocol = port.getKey().split("/", 2);
              for (JsonNode binding : port.getValue()) { // null (not bound) iterates as empty
                ports.add(
                    new PortBinding(
                        Integer.parseInt(portAndProtocol[0]),
                        portAndProtocol.length > 1 ? portAndProtocol[1] : "tcp",
                        binding.path("HostIp").asText(""),
                        Integer.parseInt(binding.path("HostPort").asText("0"))));
              }
            });
    String name = c.path("Name").asText();
    return new ContainerInfo(
        c.path("Id").asText(),
        name.startsWith("/") ? name.substring(1) : name,
        c.path("Config").path("Image").asText(),
        state.path("Status").asText(),
        state.path("Running").asBoolean(),
        state.path("ExitCode").asInt(),
        instant(state.path("StartedAt").asText("")),
        strings(c.path("Config").path("Labels")),
        ports);
  }

  /**
   * The containers carrying every label in {@code labelFilter} (all containers when it is empty);
   * only running ones unless {@code all}.
   */
  public List<ContainerInfo> listContainers(Map<String, String> labelFilter, boolean all) {
    ObjectNode filters = JSON.createObjectNode();
    labelFilter.forEach(
        (k, v) ->
            filters.withArrayProperty("label").add(v == null || v.isEmpty() ? k : k + "=" + v));
    String target =
        "/containers/json?all="
            + all
            + (filters.isEmpty() ? "" : "&filters=" + query(filters.toString()));
    String doing = "cannot list containers";
    List<String> ids = new ArrayList<>();
    call("GET", target, null, doing, a -> json(a, doing, null))
        .forEach(c -> ids.add(c.path("Id").asText()));
    List<ContainerInfo> containers = new ArrayList<>();
    for (String id : ids) {
      try {
        containers.add(inspectContainer(id));
      } catch (ContainerNotFoundException gone) {
        // removed between listing and inspecting: no longer there to list
      }
    }
    return List.copyOf(containers);
  }

  /**
   * Copies a container's logs to {@code stdout} and {@code stderr} (a container with a TTY has only
   * one stream: all of it goes to {@code stdout}). With {@code follow}, returns when the container
   * stops, the calling thread is interrupted, or this client is closed.
   *
   * @param since only lines from this instant on, or null for all
   * @param tail only the last {@code tail} lines, or -1 for all
   */
  public void logs(
      String id,
      boolean follow,
      Instant since,
      int tail,
      OutputStream stdout,
      OutputStream stderr) {
    String doing = "cannot read the logs of container " + id;
    boolean tty = inspectJson(id).path("Config").path("Tty").asBoolean(false);
    StringBuilder target = new StringBuilder("/containers/").append(pathOf(id, false));
    target.append("/logs?stdout=1&stderr=1&follow=").append(follow ? 1 : 0);
    target.append("&tail=").append(tail < 0 ? "all" : Integer.toString(tail));
    if (since != null) {
      target.append("&since=").append(since.getEpochSecond());
      target.append('.').append(String.format("%09d", since.getNano()));
    }
    try {
      http.exchange(
          "GET",
          target.toString(),
          null,
          a -> {
            check(a, doing, id);
            String type = a.header("Content-Type");
            if (!tty || (type != null && type.startsWith(MULTIPLEXED_STREAM))) {
              LogStreamDemuxer.demux(a.body(), stdout, stderr);
            } else {
              LogStreamDemuxer.copyRaw(a.body(), stdout);
            }
            return null;
          });
    } catch (AsynchronousCloseException stopped) {
      // interrupted (ClosedByInterruptException, interrupt status kept) or closed: stop following
    } catch (IOException e) {
      throw lost(doing, e);
    }
  }

  /** Waits until the container stops and returns its exit code. */
  public int waitFor(String id) {
    String doing = "cannot wait for container " + id;
    String target = "/containers/" + pathOf(id, false) + "/wait?condition=not-running";
    return call("POST", target, null, doing, a -> json(a, doing, id)).path("StatusCode").asInt();
  }

  /** Ends calls still streaming from the engine (logs with follow); the client stays usable. */
  @Override
  public void close() {
    http.close();
  }

  private JsonNode inspectJson(String id) {
    String doing = "cannot inspect container " + id;
    String target = "/containers/" + pathOf(id, false) + "/json";
    return call("GET", target, null, doing, a -> json(a, doing, id));
  }

  /** A call on one container that answers no body; 304 (already started/stopped) is fine. */
  private void containerCall(String method, String id, String suffix, String doing) {
    call(
        method,
        "/containers/" + pathOf(id, false) + suffix,
        null,
        doing,
        a -> {
          if (a.status() != 304) {
            check(a, doing, id);
          }
          return null;
        });
  }

  private <T> T call(String method, String target, Body body, String doing, AnswerReader<T> r) {
    try {
      return http.exchange(method, target, body, r);
    } catch (IOException e) {
      throw lost(doing, e);
    }
  }

  private ContainerEngineException lost(String doing, IOException e) {
    return new ContainerEngineException(
        0, doing + ": the exchange with the container engine at " + address() + " failed: " + e, e);
  }

  /** Throws unless the answer is 2xx: 404 on a container is {@link ContainerNotFoundException}. */
  private static void check(Answer a, String doing, String containerId) throws IOException {
    if (a.ok()) {
      return;
    }
    if (a.status() == 404 && containerId != null) {
      throw new ContainerNotFoundException(containerId);
    }
    byte[] raw = a.body().readNBytes(64 * 1024);
    String message = new String(raw, StandardCharsets.UTF_8).strip();
    try {
      JsonNode error = JSON.readTree(raw);
      if (error != null && error.hasNonNull("message")) {
        message = error.get("message").asText().strip();
      }
    } catch (IOException notJson) {
      // the engine's text as it is
    }
    if (message.isEmpty()) {
      message = "HTTP " + a.status() + " " + a.reason();
    }
    throw new ContainerEngineException(a.status(), doing + ": " + message);
  }

  private static JsonNode json(Answer a, String doing, String containerId) throws IOException {
    check(a, doing, containerId);
    return JSON.readTree(a.body());
  }

  private static Map<String, String> strings(JsonNode object) {
    Map<String, String> map = new LinkedHashMap<>();
    object.properties().forEach(e -> map.put(e.getKey(), e.getValue().asText()));
    return map;
  }

  /** The engine writes year 1 for "never"; podman may write an offset instead of Z. */
  private static Instant instant(String text) {
    if (text.isEmpty()) {
      return null;
    }
    OffsetDateTime time = OffsetDateTime.parse(text);
    return time.getYear() <= 1 ? null : time.toInstant();
  }

  private static long seconds(Duration d) {
    return d.toSeconds() + (d.toNanosPart() > 0 ? 1 : 0);
  }

  private static String query(String value) {
    return URLEncoder.encode(value, StandardCharsets.UTF_8);
  }

  /**
   * An id or name as a path segment; image names keep their '/' and ':' as the docker CLI sends
   * them ({@code /images/registry:5000/team/model:1/json}).
   */
  private static String pathOf(String nameOrId, boolean image) {
    if (nameOrId == null || nameOrId.isEmpty()) {
      throw new IllegalArgumentException("an empty " + (image ? "image" : "container") + " name");
    }
    StringBuilder path = new StringBuilder();
    for (byte b : nameOrId.getBytes(StandardCharsets.UTF_8)) {
      char c = (char) (b & 0xff);
      boolean plain =
          (c >= 'a' && c <= 'z')
              || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9')
              || "-._~".indexOf(c) >= 0
              || (image && "/:@".indexOf(c) >= 0);
      path.append(plain ? String.valueOf(c) : String.format("%%%02X", b & 0xff));
    }
    return path.toString();
  }
}
