package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Berth opens no connection its user did not configure. The server runs in a network namespace with
 * loopback only, under strace; it starts, answers inference and chat requests (MiniLM on ONNX
 * Runtime, a GGUF on llama.cpp) for several seconds (ONNX Runtime's telemetry client, when on,
 * resolves its upload host within seconds of start-up), stops, and every connect() it made must
 * have gone to loopback or a local socket. A model of every other engine is loaded and answers too:
 * a TorchScript model on libtorch (DJL), a SavedModel on TensorFlow and an XGBoost model.
 */
class NoPhoneHomeIT {
  private static final Pattern INET =
      Pattern.compile("sa_family=AF_INET, .*?inet_addr\\(\"([^\"]+)\"\\)");
  private static final Pattern INET6 =
      Pattern.compile("sa_family=AF_INET6, .*?inet_pton\\(AF_INET6, \"([^\"]+)\"");

  @TempDir Path work;

  @Test
  void serverConnectsToNothingButLoopback() throws Exception {
    Path trace = work.resolve("connect.trace");
    Path body = work.resolve("body.json");
    Files.writeString(
        body,
        "{\"inputs\":[{\"name\":\"text\",\"shape\":[1],\"datatype\":\"BYTES\",\"data\":[\"offline please\"]}]}");
    // the example models and a language model, so that llama.cpp runs under strace too
    Path repo = Files.createDirectories(work.resolve("repo"));
    Files.createSymbolicLink(repo.resolve("minilm"), BerthProcess.examples().resolve("minilm"));
    Files.createDirectories(repo.resolve("tiny/1"));
    dev.berth.llm.GgufWriter.tiny().write(repo.resolve("tiny/1/model.gguf"));
    Files.writeString(
        repo.resolve("tiny/model.yaml"),
        "apiVersion: berth.dev/v1\nkind: Model\nllm: {context-size: 256, parallel: 2}\n");
    EngineModels.all(repo);
    StringBuilder engineRequests = new StringBuilder();
    for (String model :
        List.of(EngineModels.TORCH, EngineModels.TENSORFLOW, EngineModels.XGBOOST)) {
      Path request = work.resolve(model + ".json");
      Files.writeString(request, EngineModels.request(model));
      engineRequests
          .append(" curl -sf -d @")
          .append(request)
          .append(" http://127.0.0.1:18181/v2/models/")
          .append(model)
          .append("/infer >/dev/null;");
    }
    Path chat = work.resolve("chat.json");
    Files.writeString(
        chat,
        "{\"model\":\"tiny\",\"max_tokens\":8,\"stream\":true,"
            + "\"messages\":[{\"role\":\"user\",\"content\":\"offline please\"}]}");
    String berth =
        String.join(
            " ",
            BerthProcess.command(
                "serve", repo.toString(), "--port", "18181", "--log-format", "json"));
    String script =
        String.join(
            "\n",
            "set -e",
            "ip link set lo up",
            // No opt-outs from outside: Berth must switch ONNX Runtime's and DJL's telemetry off
            // itself.
            "unset ORT_DISABLE_TELEMETRY OPT_OUT_TRACKING",
            "export DJL_CACHE_DIR=" + work.resolve("djl"),
            "strace -f -qq -e trace=connect -o "
                + trace
                + " "
                + berth
                + " 2>"
                + work.resolve("server.log")
                + " &",
            "pid=$!",
            "ok=0",
            "for i in $(seq 1 600); do curl -sf http://127.0.0.1:18181/v2/health/ready >/dev/null && { ok=1; break; }; sleep 0.2; done",
            "[ $ok = 1 ] || { echo 'server never became ready'; cat "
                + work.resolve("server.log")
                + "; exit 3; }",
            // keep it busy for a while: telemetry clients report within seconds of start-up
            "end=$((SECONDS + 6))",
            "while [ $SECONDS -lt $end ]; do curl -sf -d @"
                + body
                + " http://127.0.0.1:18181/v2/models/minilm/infer >/dev/null; curl -sf -d @"
                + chat
                + " http://127.0.0.1:18181/v1/chat/completions | grep -q '^data: \\[DONE\\]';"
                + engineRequests
                + " done",
            // strace shields itself from SIGTERM: signal the traced server (its child) and wait
            "kill -TERM $(pgrep -P $pid)",
            "wait $pid");
    ProcessBuilder pb = new ProcessBuilder("unshare", "-n", "bash", "-c", script);
    Path log = work.resolve("namespace.log");
    pb.redirectErrorStream(true).redirectOutput(log.toFile());
    Process p = pb.start();
    boolean finished = p.waitFor(180, TimeUnit.SECONDS);
    if (!finished) {
      p.descendants().forEach(ProcessHandle::destroyForcibly);
      p.destroyForcibly();
    }
    String output = Files.readString(log);
    assertTrue(finished, "timed out:\n" + output);
    assertEquals(
        0, p.exitValue(), "the namespace run failed (needs unshare, ip, strace, curl):\n" + output);

    List<String> lines = Files.readAllLines(trace);
    assertTrue(
        lines.stream().anyMatch(l -> l.contains("connect(")), "strace saw no connect() at all");
    for (String line : lines) {
      Matcher v4 = INET.matcher(line);
      if (v4.find()) {
        assertTrue(v4.group(1).startsWith("127."), "connect off loopback: " + line);
      }
      Matcher v6 = INET6.matcher(line);
      if (v6.find()) {
        String a = v6.group(1);
        assertTrue(a.equals("::1") || a.startsWith("::ffff:127."), "connect off loopback: " + line);
      }
    }
  }
}
