// bench/IdentityModel.java: writes a one-node ONNX model, y = Identity(x), x and y FP32 [-1, 4],
// for bench/bench-vs-wrk: a model so fast that HTTP, JSON and the load generator are the cost.
//
//   java -cp berth-onnx/target/berth-onnx-*-tests.jar bench/IdentityModel.java OUT.onnx
//
// It uses the test helper that writes ONNX models without protobuf (dev.berth.onnx.testing).
import dev.berth.onnx.testing.OnnxModelWriter;
import java.nio.file.Path;

class IdentityModel {
  public static void main(String[] args) {
    if (args.length != 1) {
      System.err.println("usage: IdentityModel OUT.onnx");
      System.exit(2);
    }
    OnnxModelWriter.identity(OnnxModelWriter.ElemType.FLOAT, -1, 4).write(Path.of(args[0]));
  }
}
