package dev.berth.image;

import static dev.berth.image.FakeEngine.frame;
import static java.nio.charset.StandardCharsets.UTF_8;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** Splitting the engine's multiplexed log stream into stdout and stderr. */
class LogStreamDemuxerTest {
  private final ByteArrayOutputStream out = new ByteArrayOutputStream();
  private final ByteArrayOutputStream err = new ByteArrayOutputStream();

  private void demux(byte[]... frames) throws IOException {
    ByteArrayOutputStream wire = new ByteArrayOutputStream();
    for (byte[] f : frames) {
      wire.writeBytes(f);
    }
    LogStreamDemuxer.demux(new ByteArrayInputStream(wire.toByteArray()), out, err);
  }

  @Test
  void framesGoToTheirStreamInOrder() throws IOException {
    String big = "x".repeat(70_000); // longer than one buffer, length above 16 bits
    demux(frame(1, "hello\n"), frame(2, "oops\n"), frame(1, ""), frame(0, "in\n"), frame(1, big));
    assertEquals("hello\nin\n" + big, out.toString(UTF_8));
    assertEquals("oops\n", err.toString(UTF_8));
  }

  @Test
  void anEmptyStreamIsNoOutput() throws IOException {
    demux();
    assertEquals(0, out.size() + err.size());
  }

  @Test
  void truncatedFramesFail() {
    byte[] frame = frame(1, "hello\n");
    assertThrows(EOFException.class, () -> demux(Arrays.copyOf(frame, 5)));
    assertThrows(EOFException.class, () -> demux(Arrays.copyOf(frame, 10)));
  }

  @Test
  void anEngineErrorFrameBecomesAnException() {
    ContainerEngineException e =
        assertThrows(ContainerEngineException.class, () -> demux(frame(3, "log driver broke\n")));
    assertTrue(e.getMessage().endsWith("log driver broke"), e.getMessage());
  }

  @Test
  void anUnknownStreamTypeFails() {
    assertThrows(IOException.class, () -> demux(frame(7, "?")));
  }
}
