package dev.berth.store;

import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** Another process asking whether a lock file is locked: prints "held" or "free". */
public final class LockProbe {
  private LockProbe() {}

  public static void main(String[] args) throws Exception {
    try (FileChannel c = FileChannel.open(Path.of(args[0]), StandardOpenOption.WRITE)) {
      FileLock lock = c.tryLock();
      System.out.println(lock == null ? "held" : "free");
    }
  }
}
