package dev.berth.image;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Splits the engine's multiplexed log stream into stdout and stderr. Each frame is an 8-byte header
 * (stream type: 0 stdin, 1 stdout, 2 stderr, 3 engine error; three zero bytes; payload length as a
 * 4-byte big-endian number) and the payload. A container with a TTY sends raw bytes instead.
 */
final class LogStreamDemuxer {
  private LogStreamDemuxer() {}

  /** Copies frames until the stream ends, flushing after each so followed logs show at once. */
  static void demux(InputStream in, OutputStream stdout, OutputStream stderr) throws IOException {
    byte[] header = new byte[8];
    byte[] buffer = new byte[8192];
    while (true) {
      int n = in.readNBytes(header, 0, header.length);
      if (n == 0) {
        return;
      }
      if (n < header.length) {
        throw new EOFException("log stream ends inside a frame header");
      }
      long length =
          (header[4] & 0xffL) << 24
              | (header[5] & 0xffL) << 16
              | (header[6] & 0xffL) << 8
              | (header[7] & 0xffL);
      if (header[0] == 3) {
        String message = new String(in.readNBytes((int) length), StandardCharsets.UTF_8).strip();
        throw new ContainerEngineException(
            0, "the container engine failed to send logs: " + message);
      }
      OutputStream out =
          switch (header[0]) {
            case 0, 1 -> stdout;
            case 2 -> stderr;
            default -> throw new IOException("unknown log stream type " + header[0]);
          };
      while (length > 0) {
        int read = in.read(buffer, 0, (int) Math.min(buffer.length, length));
        if (read < 0) {
          throw new EOFException("log stream ends inside a frame");
        }
        out.write(buffer, 0, read);
        length -= read;
      }
      out.flush();
    }
  }

  /** Copies a TTY's raw stream to {@code out}, flushing after each read. */
  static void copyRaw(InputStream in, OutputStream out) throws IOException {
    byte[] buffer = new byte[8192];
    for (int n = in.read(buffer); n >= 0; n = in.read(buffer)) {
      out.write(buffer, 0, n);
      out.flush();
    }
  }
}
