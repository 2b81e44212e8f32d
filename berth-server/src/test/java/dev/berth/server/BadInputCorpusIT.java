package dev.berth.server;

import static dev.berth.server.HostileClientServer.request;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import dev.berth.server.HostileClientServer.Answer;
import dev.berth.server.grpcclient.InferTensorContents;
import dev.berth.server.grpcclient.ModelInferRequest;
import dev.berth.server.grpcclient.ModelInferRequest.InferInputTensor;
import dev.berth.server.grpcclient.ModelMetadataRequest;
import dev.berth.server.grpcclient.ModelReadyRequest;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.stub.MetadataUtils;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The bad-input corpus: malformed, truncated, lying, oversized and hostile requests over REST (OIP
 * JSON, the OIP binary extension, TF-Serving) and gRPC, against a real server on real sockets. Each
 * must get a 4xx (or a gRPC status a client can act on) with a message naming what was wrong, never
 * a 5xx or a hang, and after each the server must be ready and still answer good requests.
 */
class BadInputCorpusIT {
  private static final String VEC = "/v2/models/vec/infer";
  private static final String MINILM = "/v2/models/minilm/infer";
  private static final String TF_VEC = "/v1/models/vec:predict";

  @TempDir static Path dir;
  private static HostileClientServer server;
  private static int checked;

  @BeforeAll
  static void start() {
    server = HostileClientServer.start(dir);
  }

  @AfterAll
  static void stop() {
    server.assertServing(true);
    server.close();
  }

  /**
   * One bad REST request.
   *
   * @param status expected status
   * @param mentions regex (case-insensitive) the {@code error} message must contain
   */
  record RestCase(String what, byte[] raw, int status, String mentions) {
    @Override
    public String toString() {
      return what;
    }
  }

  /** One bad gRPC call; {@code call} must throw. */
  record GrpcCase(String what, Callable<?> call, Status.Code code, String mentions) {
    @Override
    public String toString() {
      return what;
    }
  }

  // ---- REST cases ----

  private static RestCase post(String what, String path, String body, int status, String mentions) {
    return new RestCase(
        what,
        request("POST", path, Map.of(), body.getBytes(StandardCharsets.UTF_8)),
        status,
        mentions);
  }

  private static RestCase vec(String what, String body, int status, String mentions) {
    return post("OIP JSON: " + what, VEC, body, status, mentions);
  }

  private static String tensor(String name, String datatype, String shape, String data) {
    return "{\"inputs\":[{\"name\":\""
        + name
        + "\",\"datatype\":\""
        + datatype
        + "\",\"shape\":"
        + shape
        + ",\"data\":"
        + data
        + "}]}";
  }

  private static String x(String shape, String data) {
    return tensor("x", "FP32", shape, data);
  }

  private static String nested(int depth, String inner) {
    return "[".repeat(depth) + inner + "]".repeat(depth);
  }

  static List<RestCase> restCases() {
    List<RestCase> c = new ArrayList<>();
    // bodies that are not a JSON object
    c.add(vec("empty body", "", 400, "JSON object"));
    c.add(vec("whitespace body", "   \n ", 400, "JSON object"));
    for (String v :
        List.of("null", "[]", "\"inputs\"", "42", "true", "[" + HostileClientServer.VEC_OK + "]")) {
      c.add(vec("top level " + v.substring(0, Math.min(12, v.length())), v, 400, "JSON object"));
    }
    // truncated and malformed JSON
    String ok = HostileClientServer.VEC_OK;
    for (int cut : new int[] {1, 2, 10, 11, 25, 40, 55, 70, 80, ok.length() - 3, ok.length() - 1}) {
      c.add(vec("truncated at " + cut, ok.substring(0, cut), 400, "malformed JSON|ends before"));
    }
    c.add(vec("unquoted name", "{inputs: []}", 400, "malformed JSON"));
    c.add(vec("single quotes", "{'inputs': []}", 400, "malformed JSON"));
    c.add(vec("trailing comma", "{\"inputs\": [],}", 400, "malformed JSON"));
    c.add(vec("missing colon", "{\"inputs\" []}", 400, "malformed JSON"));
    c.add(
        vec(
            "unclosed string",
            "{\"inputs\": \"abc}",
            400,
            "malformed JSON|'inputs' must be an array"));
    c.add(
        vec(
            "control char in string",
            "{\"id\": \"a\u0001b\", \"inputs\": []}",
            400,
            "malformed JSON"));
    c.add(vec("comment", "{/* c */ \"inputs\": []}", 400, "malformed JSON"));
    c.add(vec("garbage after object", ok + "xyz", 400, "malformed JSON|after its JSON object"));
    c.add(vec("second object", ok + ok, 400, "after its JSON object"));
    c.add(vec("NaN literal", x("[1,4]", "[NaN,1,2,3]"), 400, "NaN"));
    c.add(vec("Infinity literal", x("[1,4]", "[Infinity,1,2,3]"), 400, "Infinity"));
    c.add(vec("-Infinity literal", x("[1,4]", "[-Infinity,1,2,3]"), 400, "Infinity"));
    c.add(vec("hex number", x("[1,4]", "[0x10,1,2,3]"), 400, "malformed JSON"));
    c.add(vec("leading zeros", x("[1,4]", "[007,1,2,3]"), 400, "malformed JSON"));
    c.add(
        vec("number of 200 digits", x("[1,4]", "[" + "9".repeat(200) + ",1,2,3]"), 400, "number"));
    c.add(
        vec(
            "field name of 5000 chars",
            "{\"" + "n".repeat(5000) + "\": 1, \"inputs\": []}",
            400,
            "name"));
    c.add(
        vec(
            "invalid UTF-8 in JSON",
            "{\"id\": \"\u00ff\", \"inputs\": []}".replace("\u00ff", "\uDC80"),
            400,
            "."));
    // structure and types
    c.add(vec("no inputs", "{}", 400, "no 'inputs'"));
    c.add(vec("misspelt inputs", "{\"input\": []}", 400, "no 'inputs'.*'input'"));
    c.add(vec("inputs empty", "{\"inputs\": []}", 400, "no inputs"));
    c.add(vec("inputs object", "{\"inputs\": {}}", 400, "'inputs' must be an array"));
    c.add(vec("inputs string", "{\"inputs\": \"x\"}", 400, "'inputs' must be an array"));
    c.add(vec("input a number", "{\"inputs\": [1]}", 400, "must be an object"));
    c.add(vec("input null", "{\"inputs\": [null]}", 400, "must be an object"));
    c.add(vec("id a number", "{\"id\": 5, \"inputs\": []}", 400, "'id' must be a string"));
    c.add(
        vec(
            "parameters a list",
            "{\"parameters\": [], \"inputs\": []}",
            400,
            "'parameters' must be an object"));
    c.add(
        vec(
            "binary_data_output a string",
            "{\"parameters\": {\"binary_data_output\": \"yes\"}, \"inputs\": []}",
            400,
            "binary_data_output"));
    c.add(
        vec(
            "name missing",
            "{\"inputs\":[{\"datatype\":\"FP32\",\"shape\":[1,4],\"data\":[1,2,3,4]}]}",
            400,
            "no 'name'"));
    c.add(
        vec(
            "name a number",
            "{\"inputs\":[{\"name\":1,\"datatype\":\"FP32\",\"shape\":[1,4],\"data\":[1,2,3,4]}]}",
            400,
            "name must be a string"));
    c.add(
        vec(
            "datatype missing",
            "{\"inputs\":[{\"name\":\"x\",\"shape\":[1,4],\"data\":[1,2,3,4]}]}",
            400,
            "no 'datatype'"));
    c.add(
        vec(
            "misspelt datatype",
            "{\"inputs\":[{\"name\":\"x\",\"dtype\":\"FP32\",\"shape\":[1,4],\"data\":[1,2,3,4]}]}",
            400,
            "no 'datatype'.*'dtype'"));
    c.add(
        vec(
            "datatype a number",
            "{\"inputs\":[{\"name\":\"x\",\"datatype\":32,\"shape\":[1,4],\"data\":[1,2,3,4]}]}",
            400,
            "datatype must be a string"));
    for (String t : List.of("FP33", "float32", "", "STRING", "FP32 ")) {
      c.add(
          vec(
              "datatype '" + t + "'",
              tensor("x", t, "[1,4]", "[1,2,3,4]"),
              400,
              "unknown datatype"));
    }
    for (String t : List.of("FP64", "INT64", "BYTES", "BOOL", "UINT8", "FP16")) {
      String data =
          t.equals("BYTES")
              ? "[\"a\",\"b\",\"c\",\"d\"]"
              : t.equals("BOOL") ? "[true,false,true,false]" : "[1,2,3,4]";
      c.add(
          vec("wrong datatype " + t, tensor("x", t, "[1,4]", data), 400, "must be FP32, got " + t));
    }
    c.add(
        vec(
            "shape missing",
            "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"data\":[1,2,3,4]}]}",
            400,
            "no 'shape'"));
    c.add(vec("shape a string", x("\"1,4\"", "[1,2,3,4]"), 400, "shape must be an array"));
    c.add(vec("shape an object", x("{}", "[1,2,3,4]"), 400, "shape must be an array"));
    c.add(
        vec("shape with a float", x("[1.5,4]", "[1,2,3,4]"), 400, "shape must hold whole numbers"));
    c.add(
        vec(
            "shape with a string",
            x("[\"1\",4]", "[1,2,3,4]"),
            400,
            "shape must hold whole numbers"));
    c.add(
        vec(
            "negative dimension",
            x("[-1,4]", "[1,2,3,4]"),
            400,
            "shape must hold whole numbers >= 0"));
    c.add(
        vec(
            "dimension -9e18",
            x("[-9000000000000000000,4]", "[1,2,3,4]"),
            400,
            "whole numbers >= 0"));
    c.add(
        vec(
            "dimension beyond int64",
            x("[99999999999999999999,4]", "[1,2,3,4]"),
            400,
            "whole numbers|out of range|shape"));
    c.add(
        vec(
            "huge dimensions",
            x("[9223372036854775807,9223372036854775807]", "[1,2,3,4]"),
            400,
            "more elements than a tensor can"));
    c.add(vec("huge dimension", x("[1000000000000,4]", "[1,2,3,4]"), 400, "more than a body of"));
    c.add(
        vec(
            "huge dimension, data first",
            "{\"inputs\":[{\"data\":[1,2,3,4],\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1000000000000,4]}]}",
            400,
            "1000000000000"));
    c.add(
        vec(
            "shape lies: fewer values",
            x("[1,4]", "[1,2,3]"),
            400,
            "4 elements\\) but its data holds 3"));
    c.add(
        vec(
            "shape lies: more values",
            x("[1,4]", "[1,2,3,4,5]"),
            400,
            "4 elements\\) but its data holds 5"));
    c.add(vec("shape lies: zero rows", x("[0,4]", "[1,2,3,4]"), 400, "0 elements"));
    c.add(vec("wrong rank", x("[4]", "[1,2,3,4]"), 400, "must have shape"));
    c.add(vec("wrong width", x("[2,2]", "[1,2,3,4]"), 400, "must have shape"));
    c.add(vec("rank 5", x("[1,1,1,1,4]", "[1,2,3,4]"), 400, "must have shape"));
    c.add(vec("scalar shape", x("[]", "[1]"), 400, "must have shape"));
    c.add(
        vec(
            "data missing",
            "{\"inputs\":[{\"name\":\"x\",\"datatype\":\"FP32\",\"shape\":[1,4]}]}",
            400,
            "no 'data'"));
    c.add(
        vec(
            "data strings",
            x("[1,4]", "[\"a\",\"b\",\"c\",\"d\"]"),
            400,
            "must be numbers; got \"a\""));
    c.add(
        vec(
            "data booleans",
            x("[1,4]", "[true,false,true,false]"),
            400,
            "must be numbers; got true"));
    c.add(vec("data null", x("[1,4]", "[null,1,2,3]"), 400, "must be numbers; got null"));
    c.add(vec("data object", x("[1,4]", "[{\"a\":1},1,2,3]"), 400, "only BYTES values may be"));
    c.add(
        vec(
            "data b64 for FP32",
            x("[1,4]", "[{\"b64\":\"AAAA\"},1,2,3]"),
            400,
            "only BYTES values may be"));
    c.add(vec("data a string", x("[1,4]", "\"1,2,3,4\""), 400, "must be numbers"));
    c.add(vec("data nested 100 deep", x("[1,4]", nested(100, "1,2,3,4")), 400, "nesting depth"));
    c.add(
        vec(
            "unknown field nested 2000 deep",
            "{\"extra\":" + nested(2000, "") + ",\"inputs\":[]}",
            400,
            "nesting depth"));
    c.add(vec("unknown input", tensor("y", "FP32", "[1,4]", "[1,2,3,4]"), 400, "no input 'y'"));
    c.add(
        vec(
            "input twice",
            "{\"inputs\":["
                + x("[1,4]", "[1,2,3,4]").substring(11, x("[1,4]", "[1,2,3,4]").length() - 2)
                + ","
                + x("[1,4]", "[1,2,3,4]").substring(11, x("[1,4]", "[1,2,3,4]").length() - 2)
                + "]}",
            400,
            "appears twice"));
    c.add(
        vec(
            "unknown output",
            "{\"inputs\":"
                + x("[1,4]", "[1,2,3,4]").substring(10, x("[1,4]", "[1,2,3,4]").length() - 1)
                + ",\"outputs\":[{\"name\":\"z\"}]}",
            400,
            "no output 'z'"));
    c.add(
        vec(
            "outputs an object",
            "{\"outputs\":{},\"inputs\":[]}",
            400,
            "'outputs' must be an array"));
    c.add(
        vec(
            "output without name",
            "{\"outputs\":[{}],\"inputs\":[]}",
            400,
            "needs a string 'name'"));
    c.add(
        vec(
            "output name a number",
            "{\"outputs\":[{\"name\":3}],\"inputs\":[]}",
            400,
            "needs a string 'name'"));
    c.add(
        vec(
            "output parameters a list",
            "{\"outputs\":[{\"name\":\"y\",\"parameters\":[]}],\"inputs\":[]}",
            400,
            "parameters' must be an object"));
    // integer models: range and type
    c.add(
        post(
            "OIP JSON: INT64 beyond range",
            "/v2/models/ids/infer",
            tensor("x", "INT64", "[1,2]", "[99999999999999999999,1]"),
            400,
            "out of range for INT64"));
    c.add(
        post(
            "OIP JSON: INT64 given floats",
            "/v2/models/ids/infer",
            tensor("x", "INT64", "[1,2]", "[1.5,1]"),
            400,
            "must be whole numbers; got 1.5"));
    c.add(
        post(
            "OIP JSON: INT64 given a string",
            "/v2/models/ids/infer",
            tensor("x", "INT64", "[1,2]", "[\"1\",1]"),
            400,
            "must be whole numbers"));
    // limits
    c.add(
        vec(
            "rows over --max-request-rows",
            x("[65,4]", "[" + "1,".repeat(259) + "1]"),
            413,
            "65 rows.*--max-request-rows"));
    c.add(
        post(
            "OIP JSON: elements over --max-tensor-elements",
            "/v2/models/ids/infer",
            tensor("x", "INT64", "[60,2]", "[" + "1,".repeat(119) + "1]")
                .replace("[60,2]", "[60,200]")
                .replace("[" + "1,".repeat(119) + "1]", "[" + "1,".repeat(11_999) + "1]"),
            413,
            "--max-tensor-elements"));
    c.add(
        post(
            "OIP JSON: text over --max-string-size",
            MINILM,
            tensor("text", "BYTES", "[1]", "[\"" + "a".repeat(2000) + "\"]"),
            413,
            "2000 bytes.*--max-string-size"));
    c.add(
        post(
            "OIP JSON: body over --max-body-size",
            VEC,
            x("[1,4]", "[1,2,3,4]") + " ".repeat(HostileClientServer.MAX_BODY_BYTES),
            413,
            "--max-body-size"));
    c.add(
        post(
            "OIP JSON: text given numbers",
            MINILM,
            tensor("text", "BYTES", "[2]", "[1,2]"),
            400,
            "must be strings; got 1"));
    c.add(
        post(
            "OIP JSON: text b64 not base64",
            MINILM,
            tensor("text", "BYTES", "[1]", "[{\"b64\":\"***\"}]"),
            400,
            "not valid base64"));
    c.add(
        post(
            "OIP JSON: text b64 not UTF-8",
            MINILM,
            tensor("text", "BYTES", "[1]", "[{\"b64\":\"//79\"}]"),
            400,
            "not UTF-8"));
    c.add(
        post(
            "OIP JSON: text object without b64",
            MINILM,
            tensor("text", "BYTES", "[1]", "[{\"b65\":\"YQ==\"}]"),
            400,
            "b64"));
    // the binary tensor extension
    c.addAll(binaryCases());
    // TF-Serving
    c.addAll(tfServingCases());
    // paths, names, methods, headers
    c.addAll(pathCases());
    return c;
  }

  private static byte[] le(int floats) {
    ByteBuffer b = ByteBuffer.allocate(floats * 4).order(ByteOrder.LITTLE_ENDIAN);
    for (int i = 0; i < floats; i++) {
      b.putFloat(i);
    }
    return b.array();
  }

  private static byte[] strings(byte[]... values) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (byte[] v : values) {
      out.writeBytes(
          ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putInt(v.length).array());
      out.writeBytes(v);
    }
    return out.toByteArray();
  }

  /** A binary-extension request: {@code headerLength} null means the JSON's own length. */
  private static RestCase binary(
      String what,
      String path,
      String json,
      byte[] data,
      String headerLength,
      int status,
      String mentions) {
    byte[] head = json.getBytes(StandardCharsets.UTF_8);
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    body.writeBytes(head);
    body.writeBytes(data);
    Map<String, String> headers = new LinkedHashMap<>();
    headers.put("Content-Type", "application/octet-stream");
    headers.put(
        "Inference-Header-Content-Length",
        headerLength == null ? Integer.toString(head.length) : headerLength);
    return new RestCase(
        "OIP binary: " + what,
        request("POST", path, headers, body.toByteArray()),
        status,
        mentions);
  }

  private static String bin(String name, String type, String shape, long size) {
    return "{\"inputs\":[{\"name\":\""
        + name
        + "\",\"datatype\":\""
        + type
        + "\",\"shape\":"
        + shape
        + ",\"parameters\":{\"binary_data_size\":"
        + size
        + "}}]}";
  }

  static List<RestCase> binaryCases() {
    List<RestCase> c = new ArrayList<>();
    String h = bin("x", "FP32", "[1,4]", 16);
    c.add(
        binary(
            "header length not a number",
            VEC,
            h,
            le(4),
            "abc",
            400,
            "Inference-Header-Content-Length must be a whole number"));
    c.add(
        binary(
            "header length negative",
            VEC,
            h,
            le(4),
            "-5",
            400,
            "Inference-Header-Content-Length must be a whole number"));
    c.add(
        binary(
            "header length beyond int",
            VEC,
            h,
            le(4),
            "99999999999",
            400,
            "Inference-Header-Content-Length must be a whole number"));
    c.add(
        binary(
            "header length beyond the body", VEC, h, le(4), "5000", 400, "but the body has only"));
    c.add(binary("header length cuts the JSON", VEC, h, le(4), "20", 400, "malformed JSON"));
    c.add(binary("header length zero", VEC, h, le(4), "0", 400, "JSON object"));
    c.add(
        binary(
            "header length takes data",
            VEC,
            h,
            le(4),
            Integer.toString(h.length() + 4),
            400,
            "binary_data_size 16 but only 12 bytes"));
    c.add(
        binary(
            "shape lies: fewer bytes",
            VEC,
            bin("x", "FP32", "[1,4]", 12),
            le(3),
            null,
            400,
            "takes 16 bytes, but its binary data has 12"));
    c.add(
        binary(
            "shape lies: more bytes",
            VEC,
            bin("x", "FP32", "[1,4]", 20),
            le(5),
            null,
            400,
            "takes 16 bytes, but its binary data has 20"));
    c.add(
        binary(
            "size beyond the body",
            VEC,
            bin("x", "FP32", "[1,4]", 1600),
            le(4),
            null,
            400,
            "declares binary_data_size 1600 but only 16"));
    c.add(binary("bytes left over", VEC, h, le(6), null, 400, "8 bytes of binary data follow"));
    c.add(
        binary(
            "size negative",
            VEC,
            bin("x", "FP32", "[1,4]", -16),
            le(4),
            null,
            400,
            "binary_data_size must be a whole number >= 0"));
    c.add(
        binary(
            "size a string",
            VEC,
            h.replace("16}", "\"16\"}"),
            le(4),
            null,
            400,
            "binary_data_size must be a whole number"));
    c.add(
        binary(
            "size and data",
            VEC,
            h.replace("}}]}", "},\"data\":[1,2,3,4]}]}"),
            le(4),
            null,
            400,
            "both 'data' and parameters.binary_data_size"));
    c.add(
        binary(
            "huge dimensions",
            VEC,
            bin("x", "FP32", "[9223372036854775807,2]", 16),
            le(4),
            null,
            400,
            "more elements than a tensor can"));
    c.add(
        binary(
            "wrong datatype",
            VEC,
            bin("x", "FP64", "[1,2]", 16),
            le(4),
            null,
            400,
            "must be FP32, got FP64"));
    c.add(
        binary(
            "rows over --max-request-rows",
            VEC,
            bin("x", "FP32", "[100,4]", 1600),
            le(400),
            null,
            413,
            "--max-request-rows"));
    c.add(
        new RestCase(
            "OIP binary: size without the header",
            request("POST", VEC, Map.of(), (h).getBytes(StandardCharsets.UTF_8)),
            400,
            "no Inference-Header-Content-Length"));
    c.add(
        new RestCase(
            "OIP binary: data without the header",
            request(
                "POST",
                VEC,
                Map.of(),
                concat(x("[1,4]", "[1,2,3,4]").getBytes(StandardCharsets.UTF_8), le(4))),
            400,
            "Inference-Header-Content-Length"));
    byte[] two =
        strings("a".getBytes(StandardCharsets.UTF_8), "b".getBytes(StandardCharsets.UTF_8));
    c.add(
        binary(
            "BYTES count lies",
            MINILM,
            bin("text", "BYTES", "[3]", two.length),
            two,
            null,
            400,
            "3 elements\\) but its binary data holds 2"));
    c.add(
        binary(
            "BYTES more elements",
            MINILM,
            bin("text", "BYTES", "[1]", two.length),
            two,
            null,
            400,
            "1 elements\\) but its binary data holds more"));
    c.add(
        binary(
            "BYTES cut-off length prefix",
            MINILM,
            bin("text", "BYTES", "[1]", 2),
            new byte[] {1, 0},
            null,
            400,
            "cut-off length prefix"));
    c.add(
        binary(
            "BYTES length prefix lies",
            MINILM,
            bin("text", "BYTES", "[1]", 5),
            new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff, (byte) 0xff, 'a'},
            null,
            400,
            "says 4294967295 bytes but only 1"));
    byte[] latin1 = strings("caf\u00e9".getBytes(StandardCharsets.ISO_8859_1));
    c.add(
        binary(
            "BYTES not UTF-8",
            MINILM,
            bin("text", "BYTES", "[1]", latin1.length),
            latin1,
            null,
            400,
            "not UTF-8"));
    byte[] lone = strings(new byte[] {'a', (byte) 0xc3});
    c.add(
        binary(
            "BYTES cut UTF-8 sequence",
            MINILM,
            bin("text", "BYTES", "[1]", lone.length),
            lone,
            null,
            400,
            "not UTF-8"));
    byte[] surrogate = strings(new byte[] {(byte) 0xed, (byte) 0xa0, (byte) 0x80});
    c.add(
        binary(
            "BYTES encoded surrogate",
            MINILM,
            bin("text", "BYTES", "[1]", surrogate.length),
            surrogate,
            null,
            400,
            "not UTF-8"));
    byte[] big = strings("b".repeat(1500).getBytes(StandardCharsets.UTF_8));
    c.add(
        binary(
            "BYTES over --max-string-size",
            MINILM,
            bin("text", "BYTES", "[1]", big.length),
            big,
            null,
            413,
            "1500 bytes.*--max-string-size"));
    return c;
  }

  private static byte[] concat(byte[] a, byte[] b) {
    byte[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  private static RestCase tf(String what, String body, int status, String mentions) {
    return post("TF-Serving: " + what, TF_VEC, body, status, mentions);
  }

  static List<RestCase> tfServingCases() {
    List<RestCase> c = new ArrayList<>();
    c.add(tf("empty body", "", 400, "JSON object"));
    c.add(tf("not an object", "[[1,2,3,4]]", 400, "JSON object"));
    c.add(tf("truncated", "{\"instances\": [[1,2,3,", 400, "malformed JSON"));
    c.add(
        tf(
            "neither instances nor inputs",
            "{\"signature_name\": \"x\"}",
            400,
            "exactly one of 'instances'"));
    c.add(
        tf(
            "both instances and inputs",
            "{\"instances\": [[1,2,3,4]], \"inputs\": [[1,2,3,4]]}",
            400,
            "exactly one of 'instances'"));
    c.add(tf("instances empty", "{\"instances\": []}", 400, "non-empty list"));
    c.add(tf("instances an object", "{\"instances\": {}}", 400, "non-empty list"));
    c.add(tf("instances a number", "{\"instances\": 5}", 400, "non-empty list"));
    c.add(tf("ragged rows", "{\"instances\": [[1,2,3,4],[1,2]]}", 400, "differ in shape"));
    c.add(
        tf(
            "uneven nesting",
            "{\"instances\": [[1,[2],3,4]]}",
            400,
            "nested unevenly|not rectangular"));
    c.add(tf("row too narrow", "{\"instances\": [[1,2,3]]}", 400, "must have shape"));
    c.add(tf("strings", "{\"instances\": [[\"a\",2,3,4]]}", 400, "must be numbers"));
    c.add(tf("NaN literal", "{\"instances\": [[NaN,2,3,4]]}", 400, "NaN"));
    c.add(tf("nested 100 deep", "{\"instances\": " + nested(100, "1") + "}", 400, "nesting depth"));
    c.add(
        tf("unknown named input", "{\"instances\": [{\"zz\": [1,2,3,4]}]}", 400, "no input 'zz'"));
    c.add(
        tf(
            "named rows missing an input",
            "{\"inputs\": {\"x\": [[1,2,3,4]], \"zz\": [1]}}",
            400,
            "no input 'zz'"));
    c.add(tf("columnar wrong width", "{\"inputs\": [[1,2,3]]}", 400, "must have shape"));
    c.add(
        tf(
            "rows over --max-request-rows",
            "{\"instances\": [" + "[1,2,3,4],".repeat(99) + "[1,2,3,4]]}",
            413,
            "--max-request-rows"));
    c.add(
        post(
            "TF-Serving: INT64 out of range",
            "/v1/models/ids:predict",
            "{\"instances\": [[1, 99999999999999999999]]}",
            400,
            "out of range"));
    c.add(
        post(
            "TF-Serving: :classify",
            "/v1/models/vec:classify",
            "{\"instances\": [[1,2,3,4]]}",
            400,
            ":classify' is not supported"));
    c.add(
        post(
            "TF-Serving: traversal name",
            "/v1/models/%2e%2e:predict",
            "{\"instances\": [[1,2,3,4]]}",
            400,
            "not a valid model name"));
    c.add(
        post(
            "TF-Serving: slash in name",
            "/v1/models/..%2f..%2fetc:predict",
            "{\"instances\": [[1,2,3,4]]}",
            400,
            "not a valid model name"));
    c.add(
        post(
            "TF-Serving: traversal version",
            "/v1/models/vec/versions/%2e%2e:predict",
            "{\"instances\": [[1,2,3,4]]}",
            400,
            "not a valid version"));
    c.add(
        post(
            "TF-Serving: version zero",
            "/v1/models/vec/versions/0:predict",
            "{\"instances\": [[1,2,3,4]]}",
            400,
            "not a valid version"));
    c.add(
        post(
            "TF-Serving: unknown model",
            "/v1/models/nope:predict",
            "{\"instances\": [[1,2,3,4]]}",
            404,
            "nope"));
    return c;
  }

  static List<RestCase> pathCases() {
    List<RestCase> c = new ArrayList<>();
    String body = HostileClientServer.VEC_OK;
    for (String[] p :
        new String[][] {
          {"%2e%2e", "model name"},
          {"%2E%2E", "model name"},
          {".%2e", "model name"},
          {"..%2f..%2fetc", "model name"},
          {"%2fetc%2fpasswd", "model name"},
          {"a%5cb", "model name"},
          {"a%00b", "model name"},
          {"%20vec", "model name"},
          {"-vec", "model name"},
          {"v%C3%A9c", "model name"},
          {"x".repeat(200), "model name"},
          {"%zz", "not valid HTTP"},
          {"vec%", "not valid HTTP"},
        }) {
      c.add(
          post(
              "path: model '" + p[0].substring(0, Math.min(20, p[0].length())) + "'",
              "/v2/models/" + p[0] + "/infer",
              body,
              400,
              p[1]));
    }
    for (String v :
        List.of("0", "-1", "%2e%2e", "..%2f1", "1e3", "abc", "01", "99999999999999999999")) {
      c.add(
          post(
              "path: version '" + v + "'",
              "/v2/models/vec/versions/" + v + "/infer",
              body,
              400,
              "not a valid version"));
    }
    c.add(
        new RestCase(
            "path: metadata of '%2e%2e'",
            request("GET", "/v2/models/%2e%2e", Map.of(), null), 400, "model name"));
    c.add(
        new RestCase(
            "path: ready of '%2e%2e'",
            request("GET", "/v2/models/%2e%2e/ready", Map.of(), null), 400, "model name"));
    c.add(
        new RestCase(
            "path: raw '..' segment",
            request(
                "POST",
                "/v2/models/../models/vec/infer",
                Map.of(),
                body.getBytes(StandardCharsets.UTF_8)),
            400,
            "."));
    c.add(
        new RestCase(
            "path: unknown version",
            request(
                "POST",
                "/v2/models/vec/versions/7/infer",
                Map.of(),
                body.getBytes(StandardCharsets.UTF_8)),
            404,
            "7"));
    c.add(new RestCase("method: GET on infer", request("GET", VEC, Map.of(), null), 405, "POST"));
    c.add(
        new RestCase(
            "method: PUT on infer",
            request("PUT", VEC, Map.of(), body.getBytes(StandardCharsets.UTF_8)),
            405,
            "POST"));
    c.add(
        new RestCase(
            "method: DELETE on a model",
            request("DELETE", "/v2/models/vec", Map.of(), null),
            405,
            "GET"));
    c.add(
        new RestCase(
            "path: unknown endpoint",
            request("GET", "/v3/x", Map.of(), null),
            404,
            "no such endpoint"));
    c.add(
        new RestCase(
            "header: 6 KiB value",
            request(
                "POST",
                VEC,
                Map.of("X-Big", "a".repeat(6000)),
                body.getBytes(StandardCharsets.UTF_8)),
            400,
            "header"));
    Map<String, String> many = new LinkedHashMap<>();
    for (int i = 0; i < 400; i++) {
      many.put("X-H" + i, "v");
    }
    c.add(
        new RestCase(
            "header: 400 headers",
            request("POST", VEC, many, body.getBytes(StandardCharsets.UTF_8)),
            400,
            "header"));
    c.add(
        new RestCase(
            "request line of 8 KiB",
            request("GET", "/v2/models/" + "a".repeat(8000), Map.of(), null),
            414,
            "."));
    c.add(
        new RestCase(
            "header without colon",
            "POST /v2/models/vec/infer HTTP/1.1\r\nHost: x\r\nbroken header\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
                .getBytes(StandardCharsets.ISO_8859_1),
            400,
            "."));
    c.add(
        new RestCase(
            "bad Content-Length",
            "POST /v2/models/vec/infer HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\nConnection: close\r\n\r\n{}"
                .getBytes(StandardCharsets.ISO_8859_1),
            400,
            "."));
    c.add(
        new RestCase(
            "negative Content-Length",
            "POST /v2/models/vec/infer HTTP/1.1\r\nHost: x\r\nContent-Length: -2\r\nConnection: close\r\n\r\n{}"
                .getBytes(StandardCharsets.ISO_8859_1),
            400,
            "."));
    c.add(
        new RestCase(
            "bad chunk size",
            "POST /v2/models/vec/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
                .getBytes(StandardCharsets.ISO_8859_1),
            400,
            "chunked transfer encoding is malformed"));
    return c;
  }

  // ---- gRPC cases ----

  private static InferInputTensor.Builder in(String name, String type, long... shape) {
    InferInputTensor.Builder b = InferInputTensor.newBuilder().setName(name).setDatatype(type);
    for (long d : shape) {
      b.addShape(d);
    }
    return b;
  }

  private static InferTensorContents.Builder fp32(float... v) {
    InferTensorContents.Builder b = InferTensorContents.newBuilder();
    for (float f : v) {
      b.addFp32Contents(f);
    }
    return b;
  }

  private static GrpcCase infer(
      String what, ModelInferRequest.Builder r, Status.Code code, String mentions) {
    return new GrpcCase("gRPC: " + what, () -> server.stub().modelInfer(r.build()), code, mentions);
  }

  private static ModelInferRequest.Builder vecCall(InferInputTensor.Builder input) {
    return ModelInferRequest.newBuilder().setModelName("vec").addInputs(input);
  }

  private static ModelInferRequest.Builder raw(
      String model, InferInputTensor.Builder input, byte[] data) {
    return ModelInferRequest.newBuilder()
        .setModelName(model)
        .addInputs(input)
        .addRawInputContents(ByteString.copyFrom(data));
  }

  static List<GrpcCase> grpcCases() {
    List<GrpcCase> c = new ArrayList<>();
    InferInputTensor.Builder good = in("x", "FP32", 1, 4).setContents(fp32(1, 2, 3, 4));
    Status.Code bad = Status.Code.INVALID_ARGUMENT;
    for (String name :
        List.of(
            "",
            "..",
            "../vec",
            "a/b",
            "/etc/passwd",
            "a\\b",
            "a\u0000b",
            "x".repeat(200),
            " vec")) {
      c.add(
          infer(
              "model name '" + name.substring(0, Math.min(12, name.length())) + "'",
              vecCall(good).setModelName(name),
              bad,
              "not a valid model name"));
      c.add(
          new GrpcCase(
              "gRPC: metadata of '" + name.substring(0, Math.min(12, name.length())) + "'",
              () ->
                  server
                      .stub()
                      .modelMetadata(ModelMetadataRequest.newBuilder().setName(name).build()),
              bad,
              "not a valid model name"));
    }
    for (String v : List.of("0", "-1", "..", "../1", "1/2", "abc", "01", "99999999999999999999")) {
      c.add(
          infer(
              "version '" + v + "'", vecCall(good).setModelVersion(v), bad, "not a valid version"));
      c.add(
          new GrpcCase(
              "gRPC: ready of version '" + v + "'",
              () ->
                  server
                      .stub()
                      .modelReady(
                          ModelReadyRequest.newBuilder().setName("vec").setVersion(v).build()),
              bad,
              "not a valid version"));
    }
    c.add(
        infer("unknown model", vecCall(good).setModelName("nope"), Status.Code.NOT_FOUND, "nope"));
    c.add(infer("unknown version", vecCall(good).setModelVersion("7"), Status.Code.NOT_FOUND, "7"));
    c.add(infer("no inputs", ModelInferRequest.newBuilder().setModelName("vec"), bad, "no inputs"));
    c.add(
        infer(
            "unknown input",
            vecCall(in("y", "FP32", 1, 4).setContents(fp32(1, 2, 3, 4))),
            bad,
            "no input 'y'"));
    c.add(infer("input twice", vecCall(good).addInputs(good), bad, "appears twice"));
    c.add(
        infer(
            "unknown output",
            vecCall(good)
                .addOutputs(ModelInferRequest.InferRequestedOutputTensor.newBuilder().setName("z")),
            bad,
            "no output 'z'"));
    c.add(
        infer(
            "datatype FP33",
            vecCall(in("x", "FP33", 1, 4).setContents(fp32(1, 2, 3, 4))),
            bad,
            "unknown datatype 'FP33'"));
    c.add(
        infer(
            "datatype empty",
            vecCall(in("x", "", 1, 4).setContents(fp32(1, 2, 3, 4))),
            bad,
            "unknown datatype"));
    c.add(
        infer(
            "wrong datatype",
            vecCall(
                in("x", "FP64", 1, 4)
                    .setContents(
                        InferTensorContents.newBuilder()
                            .addFp64Contents(1)
                            .addFp64Contents(2)
                            .addFp64Contents(3)
                            .addFp64Contents(4))),
            bad,
            "must be FP32, got FP64"));
    c.add(
        infer(
            "contents in the wrong field",
            vecCall(
                in("x", "FP32", 1, 4)
                    .setContents(
                        InferTensorContents.newBuilder()
                            .addInt64Contents(1)
                            .addInt64Contents(2)
                            .addInt64Contents(3)
                            .addInt64Contents(4))),
            bad,
            "FP32 contents hold 0"));
    c.add(
        infer(
            "shape lies: fewer values",
            vecCall(in("x", "FP32", 1, 4).setContents(fp32(1, 2, 3))),
            bad,
            "4 elements\\) but its FP32 contents hold 3"));
    c.add(
        infer(
            "shape lies: more values",
            vecCall(in("x", "FP32", 1, 4).setContents(fp32(1, 2, 3, 4, 5))),
            bad,
            "contents hold 5"));
    c.add(
        infer(
            "negative dimension",
            vecCall(in("x", "FP32", -1, 4).setContents(fp32(1, 2, 3, 4))),
            bad,
            "negative dimension"));
    c.add(
        infer(
            "huge dimensions",
            vecCall(in("x", "FP32", Long.MAX_VALUE, Long.MAX_VALUE).setContents(fp32(1, 2, 3, 4))),
            bad,
            "more elements than a tensor can"));
    c.add(
        infer(
            "huge dimension",
            vecCall(in("x", "FP32", 1L << 40, 4).setContents(fp32(1, 2, 3, 4))),
            bad,
            "contents hold 4"));
    c.add(
        infer(
            "wrong rank",
            vecCall(in("x", "FP32", 4).setContents(fp32(1, 2, 3, 4))),
            bad,
            "must have shape"));
    c.add(
        infer(
            "FP16 typed contents",
            vecCall(in("x", "FP16", 1, 4)),
            bad,
            "FP16, which has no typed contents"));
    c.add(
        infer(
            "raw: shape lies, fewer bytes",
            raw("vec", in("x", "FP32", 1, 4), le(3)),
            bad,
            "takes 16 bytes, but its binary data has 12"));
    c.add(
        infer(
            "raw: shape lies, more bytes",
            raw("vec", in("x", "FP32", 1, 4), le(5)),
            bad,
            "binary data has 20"));
    c.add(
        infer(
            "raw: empty",
            raw("vec", in("x", "FP32", 1, 4), new byte[0]),
            bad,
            "binary data has 0"));
    c.add(
        infer(
            "raw: huge dimensions",
            raw("vec", in("x", "FP32", Long.MAX_VALUE, 2), le(4)),
            bad,
            "more elements than a tensor can"));
    c.add(
        infer(
            "raw: more contents than inputs",
            raw("vec", in("x", "FP32", 1, 4), le(4))
                .addRawInputContents(ByteString.copyFrom(le(4))),
            bad,
            "raw_input_contents has 2 entries for 1 inputs"));
    c.add(
        infer(
            "raw and typed contents",
            raw("vec", in("x", "FP32", 1, 4).setContents(fp32(1, 2, 3, 4)), le(4)),
            bad,
            "contents and raw_input_contents"));
    c.add(
        infer(
            "raw: rows over --max-request-rows",
            raw("vec", in("x", "FP32", 100, 4), le(400)),
            Status.Code.RESOURCE_EXHAUSTED,
            "--max-request-rows"));
    c.add(
        infer(
            "raw: elements over --max-tensor-elements",
            raw("ids", in("x", "INT64", 60, 200), new byte[60 * 200 * 8]),
            Status.Code.RESOURCE_EXHAUSTED,
            "--max-tensor-elements"));
    c.add(
        infer(
            "message over the size limit",
            raw("vec", in("x", "FP32", 64, 1100), le(64 * 1100)),
            Status.Code.RESOURCE_EXHAUSTED,
            "."));
    byte[] latin1 = strings("caf\u00e9".getBytes(StandardCharsets.ISO_8859_1));
    c.add(
        infer(
            "raw BYTES not UTF-8",
            raw("minilm", in("text", "BYTES", 1), latin1),
            bad,
            "not UTF-8"));
    c.add(
        infer(
            "raw BYTES cut-off prefix",
            raw("minilm", in("text", "BYTES", 1), new byte[] {3, 0}),
            bad,
            "cut-off length prefix"));
    c.add(
        infer(
            "raw BYTES prefix lies",
            raw("minilm", in("text", "BYTES", 1), new byte[] {9, 0, 0, 0, 'a'}),
            bad,
            "says 9 bytes but only 1"));
    c.add(
        infer(
            "raw BYTES count lies",
            raw("minilm", in("text", "BYTES", 2), strings(new byte[] {'a'})),
            bad,
            "holds 1"));
    c.add(
        infer(
            "BYTES contents not UTF-8",
            ModelInferRequest.newBuilder()
                .setModelName("minilm")
                .addInputs(
                    in("text", "BYTES", 1)
                        .setContents(
                            InferTensorContents.newBuilder()
                                .addBytesContents(
                                    ByteString.copyFrom(new byte[] {(byte) 0xff, 'a'})))),
            bad,
            "not UTF-8"));
    c.add(
        infer(
            "BYTES over --max-string-size",
            ModelInferRequest.newBuilder()
                .setModelName("minilm")
                .addInputs(
                    in("text", "BYTES", 1)
                        .setContents(
                            InferTensorContents.newBuilder()
                                .addBytesContents(ByteString.copyFromUtf8("c".repeat(3000))))),
            Status.Code.RESOURCE_EXHAUSTED,
            "3000 bytes.*--max-string-size"));
    c.add(
        infer(
            "text given FP32",
            ModelInferRequest.newBuilder()
                .setModelName("minilm")
                .addInputs(in("text", "FP32", 1).setContents(fp32(1))),
            bad,
            "must be BYTES, got FP32"));
    c.add(
        infer(
            "INT8 out of range",
            ModelInferRequest.newBuilder()
                .setModelName("ids")
                .addInputs(
                    in("x", "INT8", 1, 2)
                        .setContents(
                            InferTensorContents.newBuilder()
                                .addIntContents(300)
                                .addIntContents(1))),
            bad,
            "300 is out of range for INT8"));
    Metadata big = new Metadata();
    big.put(Metadata.Key.of("x-big", Metadata.ASCII_STRING_MARSHALLER), "a".repeat(8000));
    c.add(
        new GrpcCase(
            "gRPC: metadata over --max-header-size",
            () ->
                server
                    .stub()
                    .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(big))
                    .modelInfer(vecCall(good).build()),
            Status.Code.RESOURCE_EXHAUSTED,
            "metadata is \\d+ bytes, over the server's --max-header-size of 4096"));
    Metadata binary = new Metadata();
    binary.put(Metadata.Key.of("x-big-bin", Metadata.BINARY_BYTE_MARSHALLER), new byte[4000]);
    c.add(
        new GrpcCase(
            "gRPC: binary metadata over --max-header-size once in base64",
            () ->
                server
                    .stub()
                    .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(binary))
                    .modelInfer(vecCall(good).build()),
            Status.Code.RESOURCE_EXHAUSTED,
            "--max-header-size"));
    Metadata huge = new Metadata();
    huge.put(Metadata.Key.of("x-huge", Metadata.ASCII_STRING_MARSHALLER), "a".repeat(70_000));
    c.add(
        new GrpcCase(
            "gRPC: metadata over the HTTP/2 codec's ceiling",
            () ->
                server
                    .stub()
                    .withInterceptors(MetadataUtils.newAttachHeadersInterceptor(huge))
                    .modelInfer(vecCall(good).build()),
            // the server advertises its codec's ceiling (65536) in its HTTP/2 SETTINGS, and
            // grpc-java's client refuses to send over it: the call fails in the client, as INTERNAL
            // "http2 exception" caused by "Header size exceeded max allowed size (65536)"
            Status.Code.INTERNAL,
            "http2 exception"));
    for (String method : List.of("ModelInfer", "ModelMetadata", "ModelReady", "ServerMetadata")) {
      for (byte[] garbage :
          List.of(
              new byte[] {(byte) 0xff, (byte) 0xff, (byte) 0xff},
              new byte[] {0x0a, 0x7f, 'm'},
              "not protobuf at all".getBytes(StandardCharsets.UTF_8))) {
        c.add(
            new GrpcCase(
                "gRPC: " + method + " with bytes that are not protobuf (" + garbage.length + ")",
                () -> server.rawCall(method, garbage),
                Status.Code.INVALID_ARGUMENT,
                method + " request is not a valid protobuf message"));
      }
    }
    return c;
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("grpcCases")
  void grpcCaseGetsAClearStatus(GrpcCase c) {
    StatusRuntimeException e = assertThrows(StatusRuntimeException.class, c.call()::call);

    assertEquals(c.code(), e.getStatus().getCode(), () -> "status: " + e.getStatus());
    String message = String.valueOf(e.getStatus().getDescription());
    assertTrue(
        Pattern.compile(c.mentions(), Pattern.CASE_INSENSITIVE | Pattern.DOTALL)
            .matcher(message)
            .find(),
        () -> "the message '" + message + "' does not mention /" + c.mentions() + "/");
    server.assertServing(++checked % 10 == 0);
  }

  @Test
  void corpusHasAtLeast150Cases() {
    assertTrue(
        restCases().size() + grpcCases().size() >= 150,
        "only " + (restCases().size() + grpcCases().size()));
  }

  @Test
  void nanAndInfinityInBinaryFp32AreNumbersTheModelRuns() {
    ByteBuffer b = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN);
    b.putFloat(Float.NaN)
        .putFloat(Float.POSITIVE_INFINITY)
        .putFloat(Float.NEGATIVE_INFINITY)
        .putFloat(1);
    RestCase c = binary("NaN", VEC, bin("x", "FP32", "[1,4]", 16), b.array(), null, 200, "");

    Answer a = server.exchange(c.raw());

    assertEquals(200, a.status(), a.text());
    assertTrue(a.text().contains("[\"NaN\",\"Infinity\",\"-Infinity\",1.0]"), a.text());
  }

  /**
   * Clients that send half a body and stall hold one request slot each and block nobody else; once
   * every slot is held, further requests get 503 with Retry-After at once rather than waiting, and
   * when the stalled clients go away the server answers everyone again.
   */
  @Test
  void stalledClientsBlockNobodyAndExcessRequestsGet503() throws Exception {
    List<Socket> stalled = new ArrayList<>();
    byte[] half =
        request("POST", VEC, Map.of(), HostileClientServer.VEC_OK.getBytes(StandardCharsets.UTF_8));
    half = java.util.Arrays.copyOf(half, half.length - 20);
    // the slots are counted from an idle server: an exchange of an earlier test may still be ending
    org.awaitility.Awaitility.await()
        .atMost(java.time.Duration.ofSeconds(30))
        .until(() -> server.rest.exchangesInFlight() == 0);
    try {
      // Two slots left, not one: the server gives a request's slot back just after its answer
      // has left, so a client that sends its next request at once can find the last slot taken.
      for (int i = 0; i < HostileClientServer.LIMITS.maxConcurrentRequests() - 2; i++) {
        Socket s = server.connect();
        OutputStream out = s.getOutputStream();
        out.write(half);
        out.flush();
        stalled.add(s);
      }
      server.assertServing(false); // good requests still go through
      for (int i = 0; i < 2; i++) {
        Socket last = server.connect();
        last.getOutputStream().write(half);
        last.getOutputStream().flush();
        stalled.add(last);
      }
      org.awaitility.Awaitility.await()
          .atMost(java.time.Duration.ofSeconds(10))
          .until(() -> server.post(VEC, HostileClientServer.VEC_OK).status() == 503);
      Answer refused = server.post(VEC, HostileClientServer.VEC_OK);
      assertEquals(503, refused.status(), refused.text());
      assertEquals("1", refused.headers().get("retry-after"));
      assertTrue(refused.error().contains("retry"), refused.error());
    } finally {
      for (Socket s : stalled) {
        s.close();
      }
    }
    org.awaitility.Awaitility.await()
        .atMost(java.time.Duration.ofSeconds(30))
        .until(() -> server.post(VEC, HostileClientServer.VEC_OK).status() == 200);
    server.assertServing(true);
  }

  /** A gRPC client's deadline bounds the server's work: a call past it is not answered late. */
  @Test
  void grpcClientDeadlineIsHonoured() {
    StatusRuntimeException e =
        assertThrows(
            StatusRuntimeException.class,
            () ->
                server
                    .stub
                    .withDeadlineAfter(1, TimeUnit.NANOSECONDS)
                    .modelInfer(
                        vecCall(in("x", "FP32", 1, 4).setContents(fp32(1, 2, 3, 4))).build()));
    assertEquals(Status.Code.DEADLINE_EXCEEDED, e.getStatus().getCode());
    server.assertServing(false);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("restCases")
  void restCaseGetsAClearClientError(RestCase c) {
    Answer a = server.exchange(c.raw());

    assertEquals(c.status(), a.status(), () -> "status; body: " + a.text());
    String error = a.error();
    assertTrue(
        Pattern.compile(c.mentions(), Pattern.CASE_INSENSITIVE | Pattern.DOTALL)
            .matcher(error)
            .find(),
        () -> "the message '" + error + "' does not mention /" + c.mentions() + "/");
    assertTrue(!error.contains("Exception") && !error.contains("\tat "), error);
    server.assertServing(++checked % 10 == 0);
  }
}
