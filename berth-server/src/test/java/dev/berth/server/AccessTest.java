package dev.berth.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.ConfigException;
import dev.berth.api.PermissionDeniedException;
import dev.berth.api.UnauthenticatedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

class AccessTest {
  @TempDir Path dir;

  private Access.ApiKeys keys(String yaml) throws Exception {
    Path file = dir.resolve("keys.yaml");
    Files.writeString(file, yaml);
    return Access.ApiKeys.load(file);
  }

  @Test
  void openAccessLetsEveryoneInferAndHasNoManagement() {
    Access open = Access.open();
    assertFalse(open.managementEnabled());
    assertFalse(open.inferenceProtected());
    assertEquals("anonymous", open.require(Access.Role.INFER, null).name());
    assertThrows(UnauthenticatedException.class, () -> open.require(Access.Role.MANAGE, null));
  }

  @Test
  void theTokenOpensManagementOnly() throws Exception {
    Access a =
        Access.of(
            "sixteen-chars-at-least",
            keys("keys: [{name: app, key: the-key-of-the-app, roles: [infer]}]"));
    assertTrue(a.managementEnabled());
    assertEquals(
        "management-token", a.require(Access.Role.MANAGE, "Bearer sixteen-chars-at-least").name());
    assertEquals(
        "management-token",
        a.require(Access.Role.MANAGE, "bearer   sixteen-chars-at-least ").name());
    assertThrows(
        UnauthenticatedException.class,
        () -> a.require(Access.Role.INFER, "Bearer sixteen-chars-at-least"));
    assertThrows(
        PermissionDeniedException.class,
        () -> a.require(Access.Role.MANAGE, "Bearer the-key-of-the-app"));
    assertEquals("app", a.require(Access.Role.INFER, "Bearer the-key-of-the-app").name());
    assertEquals(
        Set.of(Access.Role.INFER),
        a.require(Access.Role.INFER, "Bearer the-key-of-the-app").roles());
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "''|needs",
        "Bearer|must be 'Bearer <credential>'",
        "'Bearer   '|must be 'Bearer <credential>'",
        "Token the-key-of-the-app|must be 'Bearer <credential>'",
        "Bearer the-key-of-the-ap|not valid here",
        "Bearer the-key-of-the-app2|not valid here"
      })
  void badCredentialsAreUnauthenticated(String header, String message) throws Exception {
    Access a =
        Access.of(null, keys("keys: [{name: app, key: the-key-of-the-app, roles: [infer]}]"));
    UnauthenticatedException e =
        assertThrows(UnauthenticatedException.class, () -> a.require(Access.Role.INFER, header));
    assertTrue(e.getMessage().contains(message), e.getMessage());
  }

  @Test
  void shortOrPaddedTokensAreRefused() {
    assertTrue(
        assertThrows(IllegalArgumentException.class, () -> Access.of("short", null))
            .getMessage()
            .contains("at least 16"));
    assertThrows(IllegalArgumentException.class, () -> Access.of(" sixteen-chars-at-least", null));
  }

  @Test
  void generatedTokensAreLongAndDiffer() {
    String t = Access.generateToken();
    assertEquals(43, t.length());
    assertNotEquals(t, Access.generateToken());
    Access.of(t, null); // acceptable as a token
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "keys: []|is empty",
        "other: 1|unknown key",
        "keys: [{name: a, roles: [infer]}]|either 'key'",
        "keys: [{name: a, key: long-enough-key-value, sha256: ab, roles: [infer]}]|either 'key'",
        "keys: [{name: a, key: short, roles: [infer]}]|at least 16",
        "keys: [{name: a, sha256: abc, roles: [infer]}]|64 hex digits",
        "keys: [{name: a, key: long-enough-key-value}]|roles",
        "keys: [{name: a, key: long-enough-key-value, roles: [admin]}]|'admin' is not a role",
        "keys: [{key: long-enough-key-value, roles: [infer]}]|name",
        "keys: [{name: a, key: long-enough-key-value, roles: [infer]}, {name: a, key: another-long-key-value, roles: [infer]}]|names two keys",
        "keys: [{name: a, key: long-enough-key-value, roles: [infer]}, {name: b, key: long-enough-key-value, roles: [infer]}]|same key"
      })
  void badKeyFilesSayWhatIsWrong(String yaml, String message) {
    ConfigException e = assertThrows(ConfigException.class, () -> keys(yaml));
    assertTrue(e.getMessage().contains(message), e.getMessage());
  }

  @Test
  void aKeyGivenByItsDigestMatchesTheKey() throws Exception {
    String hex = java.util.HexFormat.of().formatHex(Access.sha256("the-key-of-the-app"));
    Access a =
        Access.of(
            null,
            keys("keys: [{name: app, sha256: " + hex.toUpperCase() + ", roles: [infer, manage]}]"));
    assertEquals("app", a.require(Access.Role.MANAGE, "Bearer the-key-of-the-app").name());
  }

  private static String basic(String userAndPassword) {
    return "Basic "
        + java.util.Base64.getEncoder()
            .encodeToString(userAndPassword.getBytes(java.nio.charset.StandardCharsets.UTF_8));
  }

  @Test
  void aCredentialMayBeTheBasicPasswordWhateverTheUser() throws Exception {
    Access a =
        Access.of(
            "sixteen-chars-at-least",
            keys("keys: [{name: app, key: the-key-of-the-app, roles: [infer]}]"));
    assertEquals("app", a.require(Access.Role.INFER, basic("me:the-key-of-the-app")).name());
    assertEquals("app", a.require(Access.Role.INFER, basic(":the-key-of-the-app")).name());
    // a password may hold colons; the user name may not (RFC 7617)
    assertThrows(
        UnauthenticatedException.class,
        () -> a.require(Access.Role.INFER, basic("the-key-of-the-app:x")));
    // the repository API takes Bearer only: a browser's remembered Basic credentials never open it
    UnauthenticatedException basicManagement =
        assertThrows(
            UnauthenticatedException.class,
            () ->
                a.require(
                    Access.Role.MANAGE,
                    " basic " + basic("x:sixteen-chars-at-least").substring(6)));
    assertTrue(basicManagement.getMessage().contains("Bearer"), basicManagement.getMessage());
    assertEquals(
        "management-token", a.require(Access.Role.MANAGE, "Bearer sixteen-chars-at-least").name());
    assertEquals("app", a.nameOf(basic("u:the-key-of-the-app")));
    assertEquals(null, a.nameOf("Basic %%%"));
    assertTrue(Access.sentByBrowser(basic("u:p")));
    assertFalse(Access.sentByBrowser("Bearer the-key-of-the-app"));
    assertFalse(Access.sentByBrowser(null));
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "Basic|must be 'Bearer <credential>'",
        "Basic %%%|base64 of 'user:credential'",
        "Basic dGhlLWtleS1vZi10aGUtYXBw|base64 of 'user:credential'", // no colon
        "Basic dXNlcjo=|base64 of 'user:credential'" // "user:", no password
      })
  void malformedBasicCredentialsAreUnauthenticated(String header, String message) throws Exception {
    Access a =
        Access.of(null, keys("keys: [{name: app, key: the-key-of-the-app, roles: [infer]}]"));
    UnauthenticatedException e =
        assertThrows(UnauthenticatedException.class, () -> a.require(Access.Role.INFER, header));
    assertTrue(e.getMessage().contains(message), e.getMessage());
  }
}
