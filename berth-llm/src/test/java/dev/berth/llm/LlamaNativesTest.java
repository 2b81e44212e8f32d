package dev.berth.llm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LlamaNativesTest {
  @TempDir Path dir;

  private final UnsatisfiedLinkError linkError =
      new UnsatisfiedLinkError("No native library found for os.name=Linux, os.arch=x86_64");

  @Test
  void aMissingCppRuntimeIsNamedWithItsPackages() throws Exception {
    Path system = Files.createDirectories(dir.resolve("usr/lib"));
    Files.createFile(system.resolve("libgcc_s.so.1"));

    String message = LlamaNatives.explain(linkError, List.of(system));

    assertTrue(message.contains("libstdc++.so.6 (the C++ runtime) is missing from " + system));
    assertTrue(message.contains("Install libstdc++6 (Debian, Ubuntu) or libstdc++ (Fedora, RHEL)"));
    assertTrue(message.contains("image.base"), message);
    assertFalse(message.contains("libgcc_s.so.1"), message);
  }

  @Test
  void everyMissingLibraryIsNamed() {
    String message = LlamaNatives.explain(linkError, List.of(dir));

    assertEquals(
        List.of("libstdc++.so.6", "libgcc_s.so.1"),
        LlamaNatives.missing(List.of(dir)).stream().map(LlamaNatives.Library::soname).toList());
    assertTrue(message.contains("are missing"), message);
    assertTrue(message.contains("Install libstdc++6 libgcc-s1 (Debian, Ubuntu)"), message);
  }

  @Test
  void aLibraryInAnyDirectorySearchedCounts() throws Exception {
    Path a = Files.createDirectories(dir.resolve("a"));
    Path b = Files.createDirectories(dir.resolve("b"));
    Files.createFile(a.resolve("libstdc++.so.6"));
    Files.createFile(b.resolve("libgcc_s.so.1"));

    String message = LlamaNatives.explain(linkError, List.of(a, b));

    assertTrue(LlamaNatives.missing(List.of(a, b)).isEmpty());
    assertTrue(message.contains(linkError.getMessage()), message);
    assertTrue(message.contains("the dynamic loader's reason"), message);
  }

  @Test
  void ldLibraryPathComesFirstAndAbsentDirectoriesAreLeftOut() throws Exception {
    Path mine = Files.createDirectories(dir.resolve("mine"));

    List<Path> dirs = LlamaNatives.libraryDirectories(mine + ":" + dir.resolve("absent") + "::");

    assertEquals(mine, dirs.getFirst());
    assertFalse(dirs.contains(dir.resolve("absent")));
  }

  @Test
  void thisMachinesLibrariesAreFound() {
    // the build machine runs llama.cpp in the other tests, so it has all of them
    assertEquals(List.of(), LlamaNatives.missing(LlamaNatives.libraryDirectories(null)));
  }
}
