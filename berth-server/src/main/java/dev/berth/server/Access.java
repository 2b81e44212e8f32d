package dev.berth.server;

import dev.berth.api.ConfigException;
import dev.berth.api.PermissionDeniedException;
import dev.berth.api.UnauthenticatedException;
import dev.berth.runtime.ConfigReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.ArrayList;
import java.util.Base64;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Set;

/**
 * Who may call what. Two kinds of credential, both sent as {@code Authorization: Bearer ...} (gRPC:
 * the {@code authorization} metadata key), or as the password of HTTP Basic authentication (any
 * user name), which is how a browser sends one after the status page asked for it:
 *
 * <ul>
 *   <li>the management token, which opens the repository API ({@code /v2/repository/**}) when it is
 *       enabled;
 *   <li>API keys from a file, each with a name and roles ({@code infer}, {@code manage}). With keys
 *       configured, every inference and metadata call needs a key with the infer role; without,
 *       inference is open.
 * </ul>
 *
 * <p>Health endpoints and {@code /metrics} stay open for probes and scrapers. Credentials are kept
 * as SHA-256 digests only and compared with {@link MessageDigest#isEqual}, against every known
 * digest, so the time an answer takes says nothing about how much of a credential was right.
 */
public final class Access {
  /** The environment variable that carries the management token. */
  public static final String TOKEN_ENV = "BERTH_MANAGEMENT_TOKEN";

  /** Shortest management token or API key accepted. */
  static final int MIN_SECRET_LENGTH = 16;

  /** What a credential allows. */
  public enum Role {
    /** Inference and model metadata. */
    INFER,
    /** The repository API: index, load, unload. */
    MANAGE;

    String label() {
      return name().toLowerCase(Locale.ROOT);
    }
  }

  /** An authenticated caller, for the audit log. */
  public record Caller(String name, Set<Role> roles) {
    static final Caller ANONYMOUS = new Caller("anonymous", EnumSet.allOf(Role.class));
  }

  private record Key(String name, byte[] digest, Set<Role> roles) {}

  private static final String MANAGEMENT_TOKEN = "management-token";
  private static final String BEARER = "Bearer ";
  private static final String BASIC = "Basic ";

  private final boolean management;
  private final byte[] tokenDigest;
  private final List<Key> keys;

  private Access(boolean management, byte[] tokenDigest, List<Key> keys) {
    this.management = management;
    this.tokenDigest = tokenDigest;
    this.keys = List.copyOf(keys);
  }

  /** Inference open to all, management off: what {@code berth serve} does with no options. */
  public static Access open() {
    return new Access(false, null, List.of());
  }

  /**
   * @param managementToken the management token, or null to keep the repository API off
   * @param apiKeys the API keys, or null for open inference
   */
  public static Access of(String managementToken, ApiKeys apiKeys) {
    if (managementToken != null) {
      checkSecret(managementToken, "the management token");
    }
    return new Access(
        managementToken != null,
        managementToken == null ? null : sha256(managementToken),
        apiKeys == null ? List.of() : apiKeys.keys);
  }

  /** A new random management token: 32 bytes from {@link SecureRandom}, base64url. */
  public static String generateToken() {
    byte[] bytes = new byte[32];
    new SecureRandom().nextBytes(bytes);
    return Base64.getUrlEncoder().withoutPadding().encodeToString(bytes);
  }

  /** Whether the repository API is served. */
  public boolean managementEnabled() {
    return management;
  }

  /** Whether inference needs an API key. */
  public boolean inferenceProtected() {
    return !keys.isEmpty();
  }

  /**
   * The caller allowed to do what {@code role} covers.
   *
   * @param authorization the {@code Authorization} header or metadata value, or null
   * @throws UnauthenticatedException no credential where one is needed, or an unknown one
   * @throws PermissionDeniedException an API key without the role
   */
  public Caller require(Role role, String authorization) {
    if (role == Role.INFER && keys.isEmpty()) {
      return Caller.ANONYMOUS;
    }
    String what =
        role == Role.MANAGE
            ? "the management token or an API key with the manage role"
            : "an API key with the infer role";
    if (authorization == null || authorization.isBlank()) {
      throw new UnauthenticatedException(
          "this call needs "
              + what
              + "; send it as 'Authorization: Bearer <credential>' (or, from a browser, as the"
              + " password when asked to log in)");
    }
    if (role == Role.MANAGE && sentByBrowser(authorization)) {
      // a browser keeps Basic credentials for the whole origin and sends them on its own: they
      // open inference and the status page, never the repository API
      throw new UnauthenticatedException(
          "the repository API takes its credential as 'Authorization: Bearer <credential>' only,"
              + " not as HTTP Basic");
    }
    String credential = credential(authorization);
    byte[] digest = sha256(credential);
    // Compare against every digest, always, so that timing does not tell which one nearly matched.
    Caller found = null;
    if (role == Role.MANAGE && tokenDigest != null && MessageDigest.isEqual(tokenDigest, digest)) {
      found = new Caller(MANAGEMENT_TOKEN, EnumSet.of(Role.MANAGE));
    }
    for (Key k : keys) {
      if (MessageDigest.isEqual(k.digest(), digest) && found == null) {
        found = new Caller(k.name(), k.roles());
      }
    }
    if (found == null) {
      throw new UnauthenticatedException(
          "the credential sent is not valid here; this call needs " + what);
    }
    if (!found.roles().contains(role)) {
      throw new PermissionDeniedException(
          "API key '"
              + found.name()
              + "' lacks the "
              + role.label()
              + " role; give it that role in the API keys file or use another key");
    }
    return found;
  }

  /** The name a credential belongs to, for the audit log, or null when it is unknown. */
  String nameOf(String authorization) {
    if (authorization == null) {
      return null;
    }
    byte[] digest;
    try {
      digest = sha256(credential(authorization));
    } catch (UnauthenticatedException malformed) {
      return null;
    }
    String name = null;
    if (tokenDigest != null && MessageDigest.isEqual(tokenDigest, digest)) {
      name = MANAGEMENT_TOKEN;
    }
    for (Key k : keys) {
      if (MessageDigest.isEqual(k.digest(), digest) && name == null) {
        name = k.name();
      }
    }
    return name;
  }

  /**
   * Whether a credential is one a browser sends by itself once it has it (HTTP Basic), with any
   * request to this server, including those another site's page makes.
   */
  static boolean sentByBrowser(String authorization) {
    return authorization != null && authorization.strip().regionMatches(true, 0, BASIC, 0, 6);
  }

  /** The credential of an Authorization value: Bearer's, or Basic's password. */
  private static String credential(String authorization) {
    String value = authorization.strip();
    if (value.regionMatches(true, 0, BEARER, 0, BEARER.length())
        && !value.substring(BEARER.length()).isBlank()) {
      return value.substring(BEARER.length()).strip();
    }
    if (value.regionMatches(true, 0, BASIC, 0, BASIC.length())) {
      String userAndPassword;
      try {
        userAndPassword =
            new String(
                Base64.getDecoder().decode(value.substring(BASIC.length()).strip()),
                StandardCharsets.UTF_8);
      } catch (IllegalArgumentException e) {
        userAndPassword = "";
      }
      int colon = userAndPassword.indexOf(':');
      if (colon < 0 || colon == userAndPassword.length() - 1) {
        throw new UnauthenticatedException(
            "the Authorization header's Basic credentials must be base64 of 'user:credential'"
                + " with the API key or token as the password");
      }
      return userAndPassword.substring(colon + 1);
    }
    throw new UnauthenticatedException(
        "the Authorization header must be 'Bearer <credential>' (or HTTP Basic with the"
            + " credential as the password)");
  }

  static byte[] sha256(String secret) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(secret.getBytes(StandardCharsets.UTF_8));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JDK has SHA-256", e);
    }
  }

  private static void checkSecret(String secret, String what) {
    if (secret.length() < MIN_SECRET_LENGTH) {
      throw new IllegalArgumentException(
          what
              + " must be at least "
              + MIN_SECRET_LENGTH
              + " characters; generate one with e.g. 'openssl rand -base64 32'");
    }
    if (!secret.strip().equals(secret) || secret.chars().anyMatch(Character::isISOControl)) {
      throw new IllegalArgumentException(
          what + " must not hold spaces at its ends or control characters");
    }
  }

  /**
   * API keys read from a YAML file:
   *
   * <pre>{@code
   * keys:
   *   - name: web-frontend
   *     sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08
   *     roles: [infer]
   *   - name: ops
   *     key: a-long-random-secret-value
   *     roles: [infer, manage]
   * }</pre>
   *
   * Each key gives either its SHA-256 ({@code sha256}, hex; the file then holds no secret) or the
   * key itself ({@code key}).
   */
  public static final class ApiKeys {
    private final List<Key> keys;

    private ApiKeys(List<Key> keys) {
      this.keys = keys;
    }

    public int size() {
      return keys.size();
    }

    /**
     * @throws ConfigException when the file cannot be read or is not as above
     */
    public static ApiKeys load(Path file) {
      ConfigReader root = ConfigReader.readYaml(file, "with a 'keys' list");
      if (root == null) {
        throw new ConfigException(file, "", "is empty; list the API keys under 'keys'");
      }
      root.allowOnly(Set.of("keys"));
      if (!root.has("keys")) {
        throw root.error("keys", "is missing; list the API keys under 'keys'");
      }
      List<ConfigReader> entries = root.sections("keys");
      if (entries.isEmpty()) {
        throw root.error("keys", "is empty; give at least one key");
      }
      List<Key> keys = new ArrayList<>();
      Set<String> names = new HashSet<>();
      Set<String> digests = new HashSet<>();
      for (ConfigReader e : entries) {
        e.allowOnly(Set.of("name", "key", "sha256", "roles"));
        String name = e.requiredString("name", "a name for the audit log, e.g. web-frontend");
        if (!names.add(name)) {
          throw e.error("name", "'" + name + "' names two keys; give each key its own name");
        }
        byte[] digest;
        if (e.has("key") == e.has("sha256")) {
          throw e.error(
              null, "give either 'key' (the key itself) or 'sha256' (its SHA-256, hex), not both");
        }
        if (e.has("key")) {
          String key = e.requiredString("key", "the key");
          try {
            checkSecret(key, "a key");
          } catch (IllegalArgumentException x) {
            throw e.error("key", x.getMessage());
          }
          digest = sha256(key);
        } else {
          String hex = e.requiredString("sha256", "the key's SHA-256 in hex");
          if (!hex.matches("[0-9a-fA-F]{64}")) {
            throw e.error(
                "sha256", "must be 64 hex digits (printf %s KEY | sha256sum), not '" + hex + "'");
          }
          digest = HexFormat.of().parseHex(hex.toLowerCase(Locale.ROOT));
        }
        if (!digests.add(HexFormat.of().formatHex(digest))) {
          throw e.error(null, "key '" + name + "' is the same key as another one");
        }
        Set<Role> roles = EnumSet.noneOf(Role.class);
        for (String r : e.strings("roles")) {
          switch (r.toLowerCase(Locale.ROOT)) {
            case "infer" -> roles.add(Role.INFER);
            case "manage" -> roles.add(Role.MANAGE);
            default -> throw e.error("roles", "'" + r + "' is not a role; roles are infer, manage");
          }
        }
        if (roles.isEmpty()) {
          throw e.error("roles", "is missing; give infer, manage or both");
        }
        keys.add(new Key(name, digest, roles));
      }
      return new ApiKeys(keys);
    }
  }
}
