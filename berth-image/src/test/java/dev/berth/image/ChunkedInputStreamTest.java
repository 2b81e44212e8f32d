package dev.berth.image;

import static java.nio.charset.StandardCharsets.ISO_8859_1;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

/** Decoding of {@code Transfer-Encoding: chunked} bodies. */
class ChunkedInputStreamTest {
  private static InputStream bytes(String text) {
    return new ByteArrayInputStream(text.getBytes(ISO_8859_1));
  }

  @Test
  void joinsChunksSkipsExtensionsAndTrailersAndStopsAtTheEnd() throws IOException {
    InputStream wire =
        bytes("4;name=value\r\nWiki\r\n9\r\npedia in \r\n3\r\nchu\r\n0\r\nX-T: 1\r\n\r\nrest");
    assertEquals(
        "Wikipedia in chu", new String(new ChunkedInputStream(wire).readAllBytes(), ISO_8859_1));
    assertEquals("rest", new String(wire.readAllBytes(), ISO_8859_1));
  }

  @Test
  void aReadReturnsTheCurrentChunkWithoutWaitingForTheNext() throws IOException {
    ChunkedInputStream in = new ChunkedInputStream(bytes("5\r\nhello"));
    byte[] buffer = new byte[100];
    assertEquals(5, in.read(buffer));
    assertArrayEquals("hello".getBytes(ISO_8859_1), Arrays.copyOf(buffer, 5));
    assertThrows(EOFException.class, in::read);
  }

  @Test
  void anEmptyBodyIsJustTheLastChunk() throws IOException {
    assertEquals(-1, new ChunkedInputStream(bytes("0\r\n\r\n")).read());
  }

  @Test
  void truncatedOrMalformedBodiesFail() {
    assertThrows(
        EOFException.class, () -> new ChunkedInputStream(bytes("a\r\nshort")).readAllBytes());
    assertThrows(
        EOFException.class, () -> new ChunkedInputStream(bytes("3\r\nabc\r\n")).readAllBytes());
    IOException bad =
        assertThrows(IOException.class, () -> new ChunkedInputStream(bytes("zz\r\n")).read());
    assertTrue(bad.getMessage().contains("bad chunk size 'zz'"), bad.getMessage());
    assertThrows(
        IOException.class,
        () -> new ChunkedInputStream(bytes("3\r\nabcX\r\n0\r\n\r\n")).readAllBytes());
  }
}
