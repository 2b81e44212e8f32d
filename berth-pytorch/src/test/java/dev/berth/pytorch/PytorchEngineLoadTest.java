package dev.berth.pytorch;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.ConfigException;
import dev.berth.api.DataType;
import dev.berth.api.ModelLoadException;
import dev.berth.api.TensorSpec;
import dev.berth.runtime.ModelContext;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What a TorchScript model's signature is, and how a model that cannot serve fails to load. */
class PytorchEngineLoadTest {
  @TempDir Path repo;

  private static final String TWO_INPUTS =
      """
      inputs:
        - {name: ids, datatype: INT64, shape: [-1, 3]}
        - {name: scale, datatype: FP32, shape: [-1, 1]}
      outputs:
        - {name: scaled, datatype: FP32, shape: [-1, 3]}
        - {name: next, datatype: INT64, shape: [-1, 3]}
      """;

  @Test
  void theSignatureIsModelYamlsDeclarations() {
    try (PytorchEngine engine =
        PytorchEngine.load(
            TestModels.model(repo, "two", "two-inputs.pt", TestModels.yaml(TWO_INPUTS)))) {
      assertEquals("pytorch_libtorch", engine.signature().platform());
      assertEquals(
          List.of(
              new TensorSpec("ids", DataType.INT64, new long[] {-1, 3}),
              new TensorSpec("scale", DataType.FP32, new long[] {-1, 1})),
          engine.signature().inputs());
      assertEquals(List.of("scaled", "next"), engine.signature().outputNames());
      assertTrue(engine.signature().batchable());
    }
    String fixed = TWO_INPUTS.replace("[-1, 3]}\n  - {name: scale", "[2, 3]}\n  - {name: scale");
    try (PytorchEngine engine =
        PytorchEngine.load(
            TestModels.model(repo, "fixed", "two-inputs.pt", TestModels.yaml(fixed)))) {
      assertFalse(engine.signature().batchable());
    }
  }

  @Test
  void withoutDeclarationsTheMessageShowsWhatToAdd() {
    ModelContext context = TestModels.model(repo, "bare", "two-inputs.pt", TestModels.yaml(""));
    ConfigException e = assertThrows(ConfigException.class, () -> PytorchEngine.load(context));
    assertEquals("inputs", e.key());
    String m = e.getMessage();
    assertTrue(m.contains("model.yaml"), m);
    assertTrue(m.contains("TorchScript file carries no signature"), m);
    assertTrue(m.contains("forward(ids, scale) -> Tuple[Tensor, Tensor]"), m);
    assertTrue(m.contains("inputs:\n  - name: ids\n    datatype: FP32\n"), m);
    assertTrue(m.contains("  - name: scale\n"), m);

    String inputsOnly = TWO_INPUTS.substring(0, TWO_INPUTS.indexOf("outputs:"));
    ConfigException outputs =
        assertThrows(
            ConfigException.class,
            () ->
                PytorchEngine.load(
                    TestModels.model(repo, "half", "two-inputs.pt", TestModels.yaml(inputsOnly))));
    assertEquals("outputs", outputs.key());
    assertTrue(
        outputs.getMessage().contains("outputs:\n  - name: output__0"), outputs.getMessage());
  }

  @Test
  void declarationsThatDisagreeWithForwardFailAtLoad() {
    String oneInput = TWO_INPUTS.replace("  - {name: scale, datatype: FP32, shape: [-1, 1]}\n", "");
    ConfigException count =
        assertThrows(
            ConfigException.class,
            () ->
                PytorchEngine.load(
                    TestModels.model(repo, "count", "two-inputs.pt", TestModels.yaml(oneInput))));
    assertTrue(
        count.getMessage().contains("declares 1 inputs but forward(ids, scale)"),
        count.getMessage());

    String swapped =
        """
        inputs:
          - {name: scale, datatype: FP32, shape: [-1, 1]}
          - {name: ids, datatype: INT64, shape: [-1, 3]}
        outputs:
          - {name: scaled, datatype: FP32, shape: [-1, 3]}
          - {name: next, datatype: INT64, shape: [-1, 3]}
        """;
    ConfigException order =
        assertThrows(
            ConfigException.class,
            () ->
                PytorchEngine.load(
                    TestModels.model(repo, "order", "two-inputs.pt", TestModels.yaml(swapped))));
    assertTrue(order.getMessage().contains("by position"), order.getMessage());

    String threeOutputs = TWO_INPUTS + "  - {name: more, datatype: FP32, shape: [-1]}\n";
    ConfigException outputs =
        assertThrows(
            ConfigException.class,
            () ->
                PytorchEngine.load(
                    TestModels.model(
                        repo, "outs", "two-inputs.pt", TestModels.yaml(threeOutputs))));
    assertEquals("outputs", outputs.key());
    assertTrue(outputs.getMessage().contains("returns 2"), outputs.getMessage());
  }

  @Test
  void unsupportedTypesOptionsAndDevicesAreRefusedWithTheFix() {
    String int16 = TWO_INPUTS.replace("name: ids, datatype: INT64", "name: ids, datatype: INT16");
    ConfigException type =
        assertThrows(
            ConfigException.class,
            () ->
                PytorchEngine.load(
                    TestModels.model(repo, "int16", "two-inputs.pt", TestModels.yaml(int16))));
    assertEquals("inputs[0].datatype", type.key());

    ConfigException option =
        assertThrows(
            ConfigException.class,
            () ->
                PytorchEngine.load(
                    TestModels.model(
                        repo,
                        "opt",
                        "two-inputs.pt",
                        TestModels.yaml(TWO_INPUTS + "options:\n  threads: 2\n"))));
    assertTrue(option.getMessage().contains("threads"), option.getMessage());

    // this machine's libtorch is the CPU build
    ConfigException cuda =
        assertThrows(
            ConfigException.class,
            () ->
                PytorchEngine.load(
                    TestModels.model(
                        repo,
                        "gpu",
                        "two-inputs.pt",
                        TestModels.yaml(TWO_INPUTS + "options:\n  execution-provider: cuda\n"))));
    assertEquals("options.execution-provider", cuda.key());
    assertTrue(cuda.getMessage().contains("CUDA build of libtorch"), cuda.getMessage());
    assertTrue(cuda.getMessage().contains("PYTORCH_LIBRARY_PATH"), cuda.getMessage());
  }

  @Test
  void aFileThatIsNotTorchScriptFailsNamingIt() throws Exception {
    ModelContext garbage = TestModels.model(repo, "garbage", "mlp.pt", TestModels.MLP_YAML);
    Path file = garbage.versionDir().resolve("model.pt");
    Files.write(file, "not a zip archive at all".getBytes(java.nio.charset.StandardCharsets.UTF_8));
    ModelLoadException e =
        assertThrows(ModelLoadException.class, () -> PytorchEngine.load(garbage));
    assertTrue(e.getMessage().contains(file.toString()), e.getMessage());
    assertTrue(e.getMessage().contains("zip archive"), e.getMessage());
    assertTrue(e.getMessage().contains("torch.jit.save"), e.getMessage());

    ModelContext truncated = TestModels.model(repo, "truncated", "mlp.pt", TestModels.MLP_YAML);
    Path cut = truncated.versionDir().resolve("model.pt");
    byte[] whole = Files.readAllBytes(cut);
    Files.write(cut, Arrays.copyOf(whole, whole.length / 2));
    ModelLoadException t =
        assertThrows(ModelLoadException.class, () -> PytorchEngine.load(truncated));
    assertTrue(t.getMessage().contains(cut.toString()), t.getMessage());
  }

  @Test
  void theArchiveSaysForwardsParametersAndReturnType() {
    TorchScriptArchive.Forward f =
        TorchScriptArchive.forward(TestModels.files().resolve("bert.pt")).orElseThrow();
    assertEquals(List.of("input_ids", "attention_mask", "token_type_ids"), f.parameters());
    assertEquals(3, f.required());
    assertEquals("Tensor", f.returnType());
    assertEquals(
        List.of("Tensor", "Tensor"),
        TorchScriptArchive.forward(TestModels.files().resolve("tuple.pt"))
            .orElseThrow()
            .tupleElements());
    assertEquals(
        "Dict[str, Tensor]",
        TorchScriptArchive.forward(TestModels.files().resolve("dict.pt"))
            .orElseThrow()
            .returnType());
    TorchScriptArchive.Forward optional =
        TorchScriptArchive.parse(
                "class N(Module):\n  def forward(self: __torch__.N,\n    x: Tensor,\n"
                    + "    mask: Optional[Tensor]=None) -> Tuple[Tensor, Dict[str, Tensor]]:\n"
                    + "    return x\n",
                "N")
            .orElseThrow();
    assertEquals(List.of("x", "mask"), optional.parameters());
    assertEquals(1, optional.required());
    assertEquals(List.of("Tensor", "Dict[str, Tensor]"), optional.tupleElements());
    assertArrayEquals(
        new Object[0], TorchScriptArchive.parse("nothing here", "N").stream().toArray());
  }
}
