package dev.berth.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * What a server adds to a lone request: one sentence at a time over HTTP to a running server,
 * against the same sentence embedded in process, in alternating short blocks.
 *
 * <p>This machine's speed drifts by tens of percent within minutes, more than the fraction of a
 * millisecond being measured. Blocks of a fraction of a second, taken in turn (in process, over
 * HTTP, over HTTP, in process, ...), see the same machine; the figure is the median over blocks of
 * the HTTP p50 minus the in-process p50 of the blocks beside it. Each in-process layout given (the
 * server's own: one caller with the intra-op threads each of its instances gets; and others, such
 * as ONNX Runtime's choice) is a separate arm in the rotation.
 *
 * <pre>
 * AddedLatency MODEL_DIR URL DURATION OUT.json [--sentences FILE] [--intra-op-threads 1,0]
 *     [--block 250ms] [--warmup 3s] [--handoff] [--paced]
 * </pre>
 *
 * The first {@code --intra-op-threads} layout is the one the goal uses: give the server's, so that
 * the same engine work is on both sides. {@code --handoff} adds an arm that runs the first layout's
 * call on a worker thread the caller waits on; {@code --paced} one that runs it paced as the HTTP
 * arm's requests are (each call starts the last HTTP p50 after the one before), since on a shared
 * host a model call that follows a pause runs slower than one that follows its predecessor at once.
 *
 * <p>When the URL is an OIP v2 infer URL, the server's own statistics ({@code .../stats}, read
 * around each HTTP block) split a lone request's time in the server into queue, inputs, model and
 * outputs, set beside the same stages of the in-process call: whether the model call itself runs
 * slower behind the server, and what the server spends outside it.
 *
 * <p>The HTTP client is a plain keep-alive socket writing prepared OIP v2 JSON requests (the bodies
 * bench/oip.lua sends), so that little client work is counted as the server's.
 */
public final class AddedLatency {
  private AddedLatency() {}

  public static void main(String[] args) throws Exception {
    if (args.length < 4) {
      System.err.println(
          "usage: AddedLatency MODEL_DIR URL DURATION OUT.json [--sentences FILE]"
              + " [--intra-op-threads 1,0] [--block 250ms] [--warmup 3s] [--handoff] [--paced]");
      System.exit(2);
    }
    Path modelDir = InProcessCeiling.versionDir(Path.of(args[0]));
    URI url = URI.create(args[1]);
    double seconds = InProcessCeiling.seconds(args[2]);
    Path out = Path.of(args[3]);
    Path sentencesFile = null;
    int[] threads = {1};
    double block = 0.25;
    double warmup = 3;
    boolean handoff = false;
    boolean paced = false;
    for (int i = 4; i < args.length; i += 2) {
      if (args[i].equals("--handoff")) {
        handoff = true;
        i--;
        continue;
      }
      if (args[i].equals("--paced")) {
        paced = true;
        i--;
        continue;
      }
      String v = i + 1 < args.length ? args[i + 1] : null;
      if (v == null) {
        throw new IllegalArgumentException(args[i] + " needs a value");
      }
      switch (args[i]) {
        case "--sentences" -> sentencesFile = Path.of(v);
        case "--intra-op-threads" ->
            threads =
                Arrays.stream(v.split(",")).map(String::trim).mapToInt(Integer::parseInt).toArray();
        case "--block" -> block = InProcessCeiling.seconds(v);
        case "--warmup" -> warmup = InProcessCeiling.seconds(v);
        default -> throw new IllegalArgumentException("unknown option " + args[i]);
      }
    }
    List<String> sentences = InProcessCeiling.sentences(sentencesFile);

    List<InProcessCeiling> local = new ArrayList<>();
    ExecutorService worker =
        Executors.newSingleThreadExecutor(Thread.ofPlatform().daemon().factory());
    ServerStats stats = ServerStats.of(url);
    try (Http http = new Http(url, sentences)) {
      // arm 0 is HTTP; the others the in-process layouts
      List<String> labels = new ArrayList<>();
      List<Lone> callers = new ArrayList<>();
      labels.add("http");
      callers.add(http);
      InProcessCeiling.Stages[] stages = {new InProcessCeiling.Stages()};
      for (int t : threads) {
        InProcessCeiling l = InProcessCeiling.open(modelDir, sentences, 1, t);
        local.add(l);
        labels.add(InProcessCeiling.layout(1, t));
        // the server's layout counts where its calls' time goes, to set beside the server's own
        boolean first = local.size() == 1;
        callers.add(() -> l.call(l.caller(), 1, first ? stages[0] : null));
      }
      if (handoff) {
        // The first layout's call, run by a worker thread the caller hands it to and waits on, as
        // a server's request thread hands a request to an engine worker: what the two wake-ups
        // cost on this machine.
        InProcessCeiling l = local.get(0);
        labels.add(InProcessCeiling.layout(1, threads[0]) + ", handed to a worker thread");
        callers.add(
            () ->
                worker
                    .submit(
                        () -> {
                          l.call(l.caller(), 1, null);
                          return null;
                        })
                    .get());
      }
      // The server layout's call again, paced as the server's model calls are: each one starts
      // the HTTP arm's p50 after the one before (the last blocks'), so that the same time passes
      // between two model calls on both sides. On a shared host a model call that follows a
      // pause of a millisecond runs slower than one that follows its predecessor at once (other
      // tenants' work evicts its weights from the shared cache meanwhile), and a lone request
      // over HTTP always follows such a pause: the round trip.
      long[] pace = {0};
      int pacedArm = -1;
      if (paced) {
        InProcessCeiling l = local.get(0);
        labels.add(InProcessCeiling.layout(1, threads[0]) + ", paced as the HTTP arm");
        pacedArm = callers.size();
        long[] last = {0};
        callers.add(
            new Lone() {
              @Override
              public void next() throws Exception {
                last[0] = System.nanoTime();
                l.call(l.caller(), 1, null);
              }

              @Override
              public void before() {
                long until = last[0] + pace[0];
                for (long wait; (wait = until - System.nanoTime()) > 0; ) {
                  java.util.concurrent.locks.LockSupport.parkNanos(wait);
                }
              }
            });
      }
      int arms = callers.size() - 1;
      List<List<long[]>> blocks = new ArrayList<>();
      for (int a = 0; a <= arms; a++) {
        blocks.add(new ArrayList<>());
      }
      long warmupEnd = System.nanoTime() + (long) (warmup * 1e9);
      while (System.nanoTime() < warmupEnd) {
        for (int a = 0; a <= arms; a++) {
          long[] b = measure(callers.get(a), 0.1);
          if (a == 0) {
            pace[0] = p50(b);
          }
        }
      }
      long end = System.nanoTime() + (long) (seconds * 1e9);
      int round = 0;
      System.err.printf(
          Locale.ROOT,
          "  a lone sentence over %s and in process (%s), %.0f ms blocks in turn for %.0f s ...%n",
          url,
          String.join("; ", labels.subList(1, labels.size())),
          block * 1000,
          seconds);
      List<double[]> serverSplits = new ArrayList<>();
      List<double[]> localSplits = new ArrayList<>();
      while (System.nanoTime() < end) {
        // The rotation reverses every round so that no arm always follows the same one.
        for (int k = 0; k <= arms; k++) {
          int a = round % 2 == 0 ? k : arms - k;
          if (a == 0) {
            long[] before = stats == null ? null : stats.read();
            long[] b = measure(callers.get(0), block);
            blocks.get(0).add(b);
            pace[0] = p50(b);
            if (stats != null) {
              serverSplits.add(ServerStats.perRequest(before, stats.read()));
            }
          } else if (a == 1) {
            stages[0] = new InProcessCeiling.Stages();
            long[] b = measure(callers.get(1), block);
            blocks.get(1).add(b);
            localSplits.add(
                new double[] {
                  (stages[0].tokenize + stages[0].tensors) / b.length,
                  stages[0].run / b.length,
                  stages[0].pool / b.length
                });
          } else {
            blocks.get(a).add(measure(callers.get(a), block));
          }
        }
        round++;
      }

      ObjectNode root = new ObjectMapper().createObjectNode();
      root.put("kind", "added-latency");
      root.put("started", Instant.now().toString());
      root.put("url", url.toString());
      root.put("block_s", block);
      root.put("rounds", round);
      root.put("available_processors", Runtime.getRuntime().availableProcessors());
      ObjectNode h = root.putObject("http");
      summary(h, blocks.get(0));
      ArrayNode layouts = root.putArray("in_process");
      for (int a = 1; a <= arms; a++) {
        ObjectNode l = layouts.addObject();
        l.put("layout", labels.get(a));
        // the hand-off arm, after the layouts, runs the first layout's call
        l.put("intra_op_threads", threads[a - 1 < threads.length ? a - 1 : 0]);
        l.put("server_layout", a == 1);
        l.put("paced_as_http", a == pacedArm);
        summary(l, blocks.get(a));
        // HTTP block r against the mean of this arm's blocks r and r+1 (one before, one after
        // it in the alternating order, or the nearest one at the end)
        List<long[]> httpBlocks = blocks.get(0);
        List<long[]> mine = blocks.get(a);
        double[] diffs = new double[Math.min(httpBlocks.size(), mine.size())];
        for (int r = 0; r < diffs.length; r++) {
          double inProcess =
              r + 1 < mine.size()
                  ? (p50(mine.get(r)) + p50(mine.get(r + 1))) / 2
                  : p50(mine.get(r));
          diffs[r] = p50(httpBlocks.get(r)) - inProcess;
        }
        Arrays.sort(diffs);
        ObjectNode added = l.putObject("added_p50_ms");
        added.put("median_of_blocks", ms(median(diffs)));
        added.put("q1", ms(diffs[diffs.length / 4]));
        added.put("q3", ms(diffs[diffs.length * 3 / 4]));
        added.put("pooled", ms(h.path("p50_ns").asLong() - l.path("p50_ns").asLong()));
        System.err.printf(
            Locale.ROOT,
            "  %s: in process p50 %.3f ms, over HTTP %.3f ms; added %.3f ms (median of %d"
                + " blocks; quartiles %.3f to %.3f)%n",
            l.path("layout").asText(),
            l.path("p50_ms").asDouble(),
            h.path("p50_ms").asDouble(),
            ms(median(diffs)),
            diffs.length,
            ms(diffs[diffs.length / 4]),
            ms(diffs[diffs.length * 3 / 4]));
      }
      if (stats != null && !serverSplits.isEmpty()) {
        split(root, serverSplits, localSplits, labels.get(1));
      }
      Path parent = out.toAbsolutePath().getParent();
      if (parent != null) {
        Files.createDirectories(parent);
      }
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(out.toFile(), root);
    } finally {
      worker.shutdownNow();
      for (InProcessCeiling l : local) {
        l.close();
      }
    }
  }

  /**
   * Where a lone request's time goes inside the server (its statistics extension, read around each
   * HTTP block: per request, the whole request, queue wait, inputs, the model, outputs) set beside
   * the same stages of the server-layout call in process (blocks beside each other). The model's
   * time in the server minus its time in process says whether the engine call itself runs slower
   * behind the server.
   */
  private static void split(
      ObjectNode root, List<double[]> server, List<double[]> local, String layout) {
    String[] names = {"request", "queue", "inputs", "model", "outputs"};
    ObjectNode s = root.putObject("server_split_ms");
    s.put(
        "what",
        "per request in the HTTP blocks, from the server's statistics (success, queue,"
            + " compute_input, compute_infer, compute_output): medians over blocks");
    for (int i = 0; i < names.length; i++) {
      int k = i;
      s.put(names[i], ms(median(server.stream().mapToDouble(d -> d[k]).sorted().toArray())));
    }
    ObjectNode l = root.putObject("in_process_split_ms");
    l.put("layout", layout);
    String[] stages = {"inputs", "model", "outputs"};
    for (int i = 0; i < stages.length; i++) {
      int k = i;
      l.put(stages[i], ms(median(local.stream().mapToDouble(d -> d[k]).sorted().toArray())));
    }
    // HTTP block r against the mean of the in-process blocks r and r+1, as for the totals
    int n = Math.min(server.size(), local.size());
    double[] model = new double[n];
    double[] outside = new double[n];
    for (int r = 0; r < n; r++) {
      double[] a = local.get(r);
      double[] b = r + 1 < local.size() ? local.get(r + 1) : a;
      model[r] = server.get(r)[3] - (a[1] + b[1]) / 2;
      outside[r] = server.get(r)[0] - server.get(r)[2] - server.get(r)[3] - server.get(r)[4];
    }
    Arrays.sort(model);
    Arrays.sort(outside);
    ObjectNode d = root.putObject("server_minus_in_process_ms");
    d.put("model", ms(median(model)));
    d.put("model_q1", ms(model[n / 4]));
    d.put("model_q3", ms(model[n * 3 / 4]));
    d.put("request_outside_the_stages", ms(median(outside)));
    System.err.printf(
        Locale.ROOT,
        "  in the server per lone request: %.3f ms in all, queue %.3f, inputs %.3f, model %.3f,"
            + " outputs %.3f; in process (%s): inputs %.3f, model %.3f, outputs %.3f;%n"
            + "  the model call runs %.3f ms slower in the server (median of blocks; quartiles"
            + " %.3f to %.3f); the server's request time outside the stages %.3f ms%n",
        s.path("request").asDouble(),
        s.path("queue").asDouble(),
        s.path("inputs").asDouble(),
        s.path("model").asDouble(),
        s.path("outputs").asDouble(),
        layout,
        l.path("inputs").asDouble(),
        l.path("model").asDouble(),
        l.path("outputs").asDouble(),
        ms(median(model)),
        ms(model[n / 4]),
        ms(model[n * 3 / 4]),
        ms(median(outside)));
  }

  /**
   * The server's statistics extension for the model a URL infers with ({@code
   * /v2/models/M[/versions/V]/stats}), read over its own connection between blocks.
   */
  record ServerStats(java.net.http.HttpClient client, URI uri) {
    static ServerStats of(URI infer) {
      String path = infer.getRawPath();
      if (!path.startsWith("/v2/models/") || !path.endsWith("/infer")) {
        return null;
      }
      return new ServerStats(
          java.net.http.HttpClient.newHttpClient(),
          infer.resolve(path.substring(0, path.length() - "/infer".length()) + "/stats"));
    }

    /** Counts and nanoseconds: success, queue, compute_input, compute_infer, compute_output. */
    long[] read() throws IOException, InterruptedException {
      java.net.http.HttpResponse<String> r =
          client.send(
              java.net.http.HttpRequest.newBuilder(uri).build(),
              java.net.http.HttpResponse.BodyHandlers.ofString());
      if (r.statusCode() != 200) {
        throw new IOException(uri + " answered " + r.statusCode() + ": " + r.body());
      }
      String[] names = {"success", "queue", "compute_input", "compute_infer", "compute_output"};
      long[] sums = new long[names.length * 2];
      for (com.fasterxml.jackson.databind.JsonNode m :
          new ObjectMapper().readTree(r.body()).path("model_stats")) {
        for (int i = 0; i < names.length; i++) {
          com.fasterxml.jackson.databind.JsonNode d = m.path("inference_stats").path(names[i]);
          sums[2 * i] += d.path("count").asLong();
          sums[2 * i + 1] += d.path("ns").asLong();
        }
      }
      return sums;
    }

    /** Mean nanoseconds per count of each stage between two readings. */
    static double[] perRequest(long[] before, long[] after) {
      double[] means = new double[before.length / 2];
      for (int i = 0; i < means.length; i++) {
        long count = after[2 * i] - before[2 * i];
        means[i] =
            count == 0 ? Double.NaN : (after[2 * i + 1] - before[2 * i + 1]) / (double) count;
      }
      return means;
    }
  }

  /** Something that answers one sentence at a time. */
  interface Lone {
    void next() throws Exception;

    /** Runs before each call, outside its time. */
    default void before() {}
  }

  /** Calls {@code lone} back to back for {@code seconds}; returns each call's nanoseconds. */
  static long[] measure(Lone call, double seconds) throws Exception {
    long[] took = new long[256];
    int n = 0;
    long end = System.nanoTime() + (long) (seconds * 1e9);
    long t;
    do {
      call.before();
      long t0 = System.nanoTime();
      call.next();
      t = System.nanoTime();
      if (n == took.length) {
        took = Arrays.copyOf(took, n * 2);
      }
      took[n++] = t - t0;
    } while (t < end);
    long[] done = Arrays.copyOf(took, n);
    Arrays.sort(done);
    return done;
  }

  private static void summary(ObjectNode to, List<long[]> blocks) {
    long[] all = blocks.stream().flatMapToLong(Arrays::stream).sorted().toArray();
    to.put("calls", all.length);
    to.put("p50_ns", InProcessCeiling.percentile(all, 50));
    to.put("p50_ms", ms(InProcessCeiling.percentile(all, 50)));
    to.put("p99_ms", ms(InProcessCeiling.percentile(all, 99)));
  }

  private static long p50(long[] sorted) {
    return InProcessCeiling.percentile(sorted, 50);
  }

  private static double median(double[] sorted) {
    int n = sorted.length;
    return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  }

  private static double ms(double nanos) {
    return InProcessCeiling.round(nanos / 1e6, 3);
  }

  /** One keep-alive connection POSTing each sentence in turn as an OIP v2 JSON request. */
  static final class Http implements Lone, AutoCloseable {
    private final Socket socket;
    private final OutputStream out;
    private final InputStream in;
    private final byte[][] requests;
    private int cursor;

    Http(URI url, List<String> sentences) throws IOException {
      if (!"http".equals(url.getScheme())) {
        throw new IllegalArgumentException("an http:// URL, not " + url);
      }
      socket = new Socket();
      socket.setTcpNoDelay(true);
      socket.connect(new InetSocketAddress(url.getHost(), url.getPort() < 0 ? 80 : url.getPort()));
      out = socket.getOutputStream();
      in = new BufferedInputStream(socket.getInputStream(), 64 * 1024);
      ObjectMapper json = new ObjectMapper();
      requests = new byte[sentences.size()][];
      for (int i = 0; i < requests.length; i++) {
        ObjectNode body = json.createObjectNode();
        ObjectNode input = body.putArray("inputs").addObject();
        input.put("name", "text");
        input.putArray("shape").add(1);
        input.put("datatype", "BYTES");
        input.putArray("data").add(sentences.get(i));
        byte[] b = json.writeValueAsBytes(body);
        String head =
            "POST "
                + url.getRawPath()
                + " HTTP/1.1\r\nHost: "
                + url.getHost()
                + ":"
                + url.getPort()
                + "\r\nContent-Type: application/json\r\nContent-Length: "
                + b.length
                + "\r\n\r\n";
        byte[] h = head.getBytes(StandardCharsets.US_ASCII);
        requests[i] = Arrays.copyOf(h, h.length + b.length);
        System.arraycopy(b, 0, requests[i], h.length, b.length);
      }
    }

    @Override
    public void next() throws IOException {
      out.write(requests[cursor]);
      out.flush();
      cursor = (cursor + 1) % requests.length;
      String status = line();
      long length = -1;
      for (String header = line(); !header.isEmpty(); header = line()) {
        int colon = header.indexOf(':');
        if (colon > 0 && header.substring(0, colon).trim().equalsIgnoreCase("content-length")) {
          length = Long.parseLong(header.substring(colon + 1).trim());
        }
      }
      if (length < 0) {
        throw new IOException("the server's answer has no Content-Length: " + status);
      }
      byte[] body = in.readNBytes((int) length);
      if (!status.startsWith("HTTP/1.1 200")) {
        throw new IOException(status + ": " + new String(body, StandardCharsets.UTF_8));
      }
    }

    private String line() throws IOException {
      StringBuilder s = new StringBuilder();
      int c;
      while ((c = in.read()) != '\n') {
        if (c < 0) {
          throw new IOException("the server closed the connection");
        }
        if (c != '\r') {
          s.append((char) c);
        }
      }
      return s.toString();
    }

    @Override
    public void close() throws IOException {
      socket.close();
    }
  }
}
