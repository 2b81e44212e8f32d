package dev.berth.image;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;

/**
 * Decodes an HTTP/1.1 {@code Transfer-Encoding: chunked} body. A read returns as soon as some data
 * of the current chunk is there, so a streamed answer (logs with follow) reaches the caller at
 * once.
 */
final class ChunkedInputStream extends InputStream {
  private final InputStream in;
  private long remaining;
  private boolean started;
  private boolean done;

  ChunkedInputStream(InputStream in) {
    this.in = in;
  }

  @Override
  public int read() throws IOException {
    byte[] one = new byte[1];
    return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
  }

  @Override
  public int read(byte[] b, int off, int len) throws IOException {
    if (len == 0) {
      return 0;
    }
    while (remaining == 0) {
      if (done) {
        return -1;
      }
      nextChunk();
    }
    int n = in.read(b, off, (int) Math.min(len, remaining));
    if (n < 0) {
      throw new EOFException("chunked body ends inside a chunk (" + remaining + " bytes missing)");
    }
    remaining -= n;
    return n;
  }

  @Override
  public int available() throws IOException {
    return (int) Math.min(in.available(), remaining);
  }

  private void nextChunk() throws IOException {
    String line = EngineHttp.readLine(in);
    if (started && line != null) {
      if (!line.isEmpty()) {
        throw new IOException("chunk data not followed by CRLF");
      }
      line = EngineHttp.readLine(in);
    }
    started = true;
    if (line == null) {
      throw new EOFException("chunked body ends without its last chunk");
    }
    int extension = line.indexOf(';');
    String size = (extension < 0 ? line : line.substring(0, extension)).strip();
    try {
      remaining = Long.parseLong(size, 16);
    } catch (NumberFormatException e) {
      throw new IOException("bad chunk size '" + size + "'", e);
    }
    if (remaining < 0) {
      throw new IOException("bad chunk size '" + size + "'");
    }
    if (remaining == 0) {
      done = true;
      for (String trailer = EngineHttp.readLine(in);
          trailer != null && !trailer.isEmpty();
          trailer = EngineHttp.readLine(in)) {
        // trailers carry nothing the client uses
      }
    }
  }
}
