package dev.berth.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.BerthException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.apache.commons.compress.archivers.tar.TarArchiveEntry;
import org.apache.commons.compress.archivers.tar.TarArchiveOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelArtifactTest {
  @TempDir Path work;

  private Path model() throws Exception {
    Path dir = work.resolve("m");
    Files.createDirectories(dir.resolve("1"));
    Files.createDirectories(dir.resolve("10"));
    Files.createDirectories(dir.resolve("2"));
    Files.writeString(dir.resolve("model.yaml"), "apiVersion: berth.dev/v1\nkind: Model\n");
    Files.writeString(dir.resolve("1/model.onnx"), "one");
    Files.writeString(dir.resolve("2/model.onnx"), "two");
    Files.writeString(dir.resolve("10/model.onnx"), "ten");
    return dir;
  }

  @Test
  void layersAreTheModelsOwnFilesThenEachVersionInNumericOrderAndReproducible() throws Exception {
    Path dir = model();
    assertEquals(Arrays.asList(null, "1", "2", "10"), ModelArtifact.parts(dir));
    ModelArtifact.Layer a = ModelArtifact.writeLayer(dir, "2", work.resolve("a.tar"));
    Files.setLastModifiedTime(
        dir.resolve("2/model.onnx"), java.nio.file.attribute.FileTime.fromMillis(123456789));
    ModelArtifact.Layer b = ModelArtifact.writeLayer(dir, "2", work.resolve("b.tar"));
    assertEquals(a.digest(), b.digest(), "file times do not change a layer");
    assertEquals(Files.size(work.resolve("a.tar")), a.size());

    ModelArtifact.Layer own = ModelArtifact.writeLayer(dir, null, work.resolve("own.tar"));
    Path out = Files.createDirectories(work.resolve("out"));
    ModelArtifact.unpack(
        OciReference.parse("oci://localhost/m"),
        new ModelArtifact.Descriptor(own.digest(), own.size(), null),
        own.file(),
        out);
    assertTrue(Files.exists(out.resolve("model.yaml")));
    assertFalse(Files.exists(out.resolve("1")), "the model's own layer holds no version");
  }

  @Test
  void aLinkedVersionFolderIsRefusedRatherThanPushedEmpty() throws Exception {
    Path dir = model();
    Path elsewhere = Files.createDirectories(work.resolve("elsewhere/3"));
    Files.writeString(elsewhere.resolve("model.onnx"), "three");
    Files.createSymbolicLink(dir.resolve("3"), elsewhere);
    BerthException e =
        assertThrows(
            BerthException.class,
            () -> ModelArtifact.writeLayer(dir, "3", work.resolve("three.tar")));
    assertTrue(e.getMessage().contains("link to a folder"), e.getMessage());
  }

  private Path tar(String name, boolean link) throws Exception {
    Path file = work.resolve("evil-" + System.nanoTime() + ".tar");
    try (OutputStream os = Files.newOutputStream(file);
        TarArchiveOutputStream tar = new TarArchiveOutputStream(os)) {
      TarArchiveEntry e;
      if (link) {
        e = new TarArchiveEntry(name, TarArchiveEntry.LF_SYMLINK);
        e.setLinkName("/etc/passwd");
        tar.putArchiveEntry(e);
      } else {
        e = new TarArchiveEntry(name);
        byte[] b = "x".getBytes(StandardCharsets.UTF_8);
        e.setSize(b.length);
        tar.putArchiveEntry(e);
        tar.write(b);
      }
      tar.closeArchiveEntry();
    }
    return file;
  }

  @Test
  void unpackingRefusesPathsOutsideTheLayersPartLinksAndTraversal() throws Exception {
    OciReference ref = OciReference.parse("oci://localhost/m");
    Path out = Files.createDirectories(work.resolve("out"));
    for (Object[] c :
        List.of(
            new Object[] {"../evil", "1", false, "unsafe path"},
            // the tar writer stores absolute names relative: it lands outside the part
            new Object[] {"/etc/evil", "1", false, "outside version folder 1"},
            new Object[] {"2/model.onnx", "1", false, "outside version folder 1"},
            new Object[] {"1/model.onnx", null, false, "outside the model's own files"},
            new Object[] {"1/link", "1", true, "not a file or folder"})) {
      Path t = tar((String) c[0], (Boolean) c[2]);
      BerthException e =
          assertThrows(
              BerthException.class,
              () ->
                  ModelArtifact.unpack(
                      ref,
                      new ModelArtifact.Descriptor("sha256:" + "0".repeat(64), 1, (String) c[1]),
                      t,
                      out),
              (String) c[0]);
      assertTrue(e.getMessage().contains((String) c[3]), c[0] + ": " + e.getMessage());
    }
    assertFalse(Files.exists(work.resolve("evil")));
  }
}
