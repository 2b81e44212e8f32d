package dev.berth.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.ConfigException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** model.yaml's version-policy: how it reads, what it selects, and what it refuses. */
class VersionPolicyTest {
  private static final String HEADER = "apiVersion: berth.dev/v1\nkind: Model\n";
  private static final List<Long> ON_DISK = List.of(1L, 2L, 3L, 7L);

  @TempDir Path dir;

  private VersionPolicy policy(String line) throws IOException {
    Files.writeString(dir.resolve("model.yaml"), HEADER + line + "\n");
    return ModelConfig.load(dir).versionPolicy();
  }

  @Test
  void withoutTheKeyEveryVersionIsServed() {
    assertEquals(VersionPolicy.ALL, ModelConfig.load(dir).versionPolicy());
    assertEquals(Set.of(1L, 2L, 3L, 7L), VersionPolicy.ALL.select(ON_DISK));
  }

  @Test
  void allLatestAndSpecificSelectTheirVersions() throws IOException {
    assertEquals(Set.of(1L, 2L, 3L, 7L), policy("version-policy: all").select(ON_DISK));
    VersionPolicy latest = policy("version-policy: {latest: 2}");
    assertEquals(VersionPolicy.latest(2), latest);
    assertEquals(Set.of(3L, 7L), latest.select(ON_DISK));
    assertEquals(Set.of(1L), latest.select(List.of(1L)));
    VersionPolicy specific = policy("version-policy: {specific: [3, 1, 9]}");
    assertEquals(List.of(1L, 3L, 9L), specific.specific());
    assertEquals(Set.of(1L, 3L), specific.select(ON_DISK));
    assertEquals("{specific: [1, 3, 9]}", specific.toString());
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "version-policy: newest | 'newest' is not a version policy",
        "version-policy: [1, 2] | is not a version policy",
        "version-policy: {latest: 0} | must be between 1 and 1000",
        "version-policy: {latest: two} | expected a whole number",
        "version-policy: {latest: 1, specific: [1]} | exactly one of latest or specific",
        "version-policy: {} | exactly one of latest or specific",
        "version-policy: {newest: 1} | unknown key",
        "version-policy: {specific: []} | lists no version",
        "version-policy: {specific: 3} | a list of version numbers",
        "version-policy: {specific: [1, -2]} | '-2' is not a version",
        "version-policy: {specific: [../1]} | '../1' is not a version",
      })
  void badPoliciesAreRefusedNamingTheKeyAndTheFix(String line, String problem) {
    ConfigException e = assertThrows(ConfigException.class, () -> policy(line));
    assertTrue(e.getMessage().contains("version-policy"), e.getMessage());
    assertTrue(e.getMessage().contains(problem), e.getMessage());
    assertTrue(e.getMessage().contains("model.yaml"), e.getMessage());
  }
}
