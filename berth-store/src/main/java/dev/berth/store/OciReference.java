package dev.berth.store;

import dev.berth.api.InvalidInputException;
import java.net.InetAddress;
import java.net.UnknownHostException;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * Where a model lives in an OCI registry: {@code oci://HOST[:PORT]/REPOSITORY[:TAG][@sha256:HEX]}.
 * Without a tag or digest the tag is {@code latest}. As the Docker engine does, a registry on a
 * loopback address ({@code localhost}, {@code 127.0.0.0/8}, {@code ::1}) is spoken to over plain
 * HTTP and every other over HTTPS.
 *
 * @param registry host, with its port when one was given
 * @param repository the repository path ({@code team/minilm})
 * @param tag the tag, or null when only a digest was given
 * @param digest {@code sha256:...}, or null
 */
public record OciReference(String registry, String repository, String tag, String digest) {
  public static final String SCHEME = "oci://";

  // the distribution spec's grammar for repository path components and tags
  private static final Pattern REPOSITORY =
      Pattern.compile(
          "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*");
  private static final Pattern TAG = Pattern.compile("[A-Za-z0-9_][A-Za-z0-9._-]{0,127}");
  private static final Pattern DIGEST = Pattern.compile("sha256:[0-9a-f]{64}");
  private static final Pattern HOST =
      Pattern.compile("[A-Za-z0-9.-]+(?::[0-9]{1,5})?|\\[[0-9a-fA-F:]+\\](?::[0-9]{1,5})?");

  /** Whether a model source names an OCI registry. */
  public static boolean isOci(String source) {
    return source.startsWith(SCHEME);
  }

  /**
   * Reads {@code oci://HOST[:PORT]/REPOSITORY[:TAG][@sha256:HEX]}.
   *
   * @throws InvalidInputException naming what is wrong and the form expected
   */
  public static OciReference parse(String text) {
    if (!isOci(text)) {
      throw bad(text, "it does not start with " + SCHEME);
    }
    String rest = text.substring(SCHEME.length());
    int slash = rest.indexOf('/');
    if (slash <= 0 || slash == rest.length() - 1) {
      throw bad(text, "it names no registry host and repository");
    }
    String registry = rest.substring(0, slash);
    if (!HOST.matcher(registry).matches()) {
      throw bad(text, "'" + registry + "' is not a registry host[:port]");
    }
    String path = rest.substring(slash + 1);
    String digest = null;
    int at = path.indexOf('@');
    if (at >= 0) {
      digest = path.substring(at + 1);
      path = path.substring(0, at);
      if (!DIGEST.matcher(digest).matches()) {
        throw bad(text, "'" + digest + "' is not a digest of the form sha256:<64 hex digits>");
      }
    }
    String tag = null;
    int colon = path.lastIndexOf(':');
    if (colon >= 0) {
      tag = path.substring(colon + 1);
      path = path.substring(0, colon);
      if (!TAG.matcher(tag).matches()) {
        throw bad(text, "'" + tag + "' is not a valid tag (letters, digits, '_', '.', '-')");
      }
    }
    if (!REPOSITORY.matcher(path).matches()) {
      throw bad(
          text,
          "'"
              + path
              + "' is not a valid repository (lowercase letters, digits and separators, such as"
              + " team/minilm)");
    }
    if (tag == null && digest == null) {
      tag = "latest";
    }
    return new OciReference(registry, path, tag, digest);
  }

  private static InvalidInputException bad(String text, String why) {
    return new InvalidInputException(
        "'"
            + text
            + "' is not an OCI reference: "
            + why
            + "; write oci://HOST[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST], such as"
            + " oci://registry.example.com/team/minilm:1.0");
  }

  /** The tag or digest to fetch the manifest by (the digest when both are given). */
  public String manifestReference() {
    return digest != null ? digest : tag;
  }

  /** The same repository at a digest. */
  public OciReference withDigest(String newDigest) {
    return new OciReference(registry, repository, tag, newDigest);
  }

  /** The registry's host, without its port. */
  public String host() {
    if (registry.startsWith("[")) {
      return registry.substring(1, registry.indexOf(']'));
    }
    int colon = registry.indexOf(':');
    return colon < 0 ? registry : registry.substring(0, colon);
  }

  /** Whether the registry is spoken to over plain HTTP: a loopback host, as Docker allows. */
  public boolean plainHttp() {
    String host = host().toLowerCase(Locale.ROOT);
    if (host.equals("localhost")) {
      return true;
    }
    if (!host.matches("[0-9.]+|[0-9a-f:]+")) {
      return false; // a name: never resolved here just to choose the scheme
    }
    try {
      return InetAddress.getByName(host).isLoopbackAddress();
    } catch (UnknownHostException e) {
      return false;
    }
  }

  /** {@code http(s)://REGISTRY/v2/REPOSITORY/} */
  public String apiBase() {
    return (plainHttp() ? "http://" : "https://") + registry + "/v2/" + repository + "/";
  }

  @Override
  public String toString() {
    return SCHEME
        + registry
        + "/"
        + repository
        + (tag == null ? "" : ":" + tag)
        + (digest == null ? "" : "@" + digest);
  }
}
