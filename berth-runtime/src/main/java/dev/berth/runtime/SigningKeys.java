package dev.berth.runtime;

import dev.berth.api.BerthException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.AlgorithmParameters;
import java.security.GeneralSecurityException;
import java.security.Key;
import java.security.KeyFactory;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.interfaces.ECKey;
import java.security.interfaces.EdECKey;
import java.security.spec.ECGenParameterSpec;
import java.security.spec.ECParameterSpec;
import java.security.spec.KeySpec;
import java.security.spec.PKCS8EncodedKeySpec;
import java.security.spec.X509EncodedKeySpec;
import java.util.Base64;
import java.util.Locale;

/**
 * The keys that sign and verify models: Ed25519 or ECDSA on P-256, in PEM files (a private key as
 * PKCS#8 {@code BEGIN PRIVATE KEY}, a public key as X.509 SubjectPublicKeyInfo {@code BEGIN PUBLIC
 * KEY}, what {@code openssl genpkey} and {@code openssl pkey -pubout} write).
 */
public final class SigningKeys {
  /** Ed25519 signatures. */
  public static final String ED25519 = "Ed25519";

  /** ECDSA over P-256 with SHA-256, signatures DER-encoded. */
  public static final String ECDSA_P256 = "ECDSA-P256";

  private SigningKeys() {}

  /** The signature algorithm of a key ({@link #ED25519} or {@link #ECDSA_P256}). */
  public static String algorithm(Key key) {
    if (key instanceof EdECKey ed && "Ed25519".equals(ed.getParams().getName())) {
      return ED25519;
    }
    if (key instanceof ECKey ec && isP256(ec.getParams())) {
      return ECDSA_P256;
    }
    throw new BerthException(
        "a "
            + key.getAlgorithm()
            + " key cannot sign models; use an Ed25519 or an ECDSA P-256 key"
            + " (berth keygen makes one)");
  }

  /** The JDK's name of the signature algorithm. */
  static String jcaName(String algorithm) {
    return switch (algorithm) {
      case ED25519 -> "Ed25519";
      case ECDSA_P256 -> "SHA256withECDSA";
      default -> throw new IllegalArgumentException("unknown signature algorithm " + algorithm);
    };
  }

  /**
   * Reads a private key from a PKCS#8 PEM file.
   *
   * @throws BerthException naming the file and the fix when it cannot be read or is not an Ed25519
   *     or ECDSA P-256 private key
   */
  public static PrivateKey readPrivate(Path file) {
    byte[] der = pem(file, "PRIVATE KEY");
    PrivateKey key = (PrivateKey) decode(file, new PKCS8EncodedKeySpec(der), true);
    algorithm(file, key);
    return key;
  }

  /**
   * Reads a public key from an X.509 SubjectPublicKeyInfo PEM file.
   *
   * @throws BerthException naming the file and the fix when it cannot be read or is not an Ed25519
   *     or ECDSA P-256 public key
   */
  public static PublicKey readPublic(Path file) {
    byte[] der = pem(file, "PUBLIC KEY");
    PublicKey key = (PublicKey) decode(file, new X509EncodedKeySpec(der), false);
    algorithm(file, key);
    return key;
  }

  private static void algorithm(Path file, Key key) {
    try {
      algorithm(key);
    } catch (BerthException e) {
      throw new BerthException(file + ": " + e.getMessage(), e);
    }
  }

  private static Key decode(Path file, KeySpec spec, boolean privateKey) {
    for (String algorithm : new String[] {"Ed25519", "EC", "RSA", "Ed448"}) {
      try {
        KeyFactory factory = KeyFactory.getInstance(algorithm);
        return privateKey
            ? factory.generatePrivate(spec)
            : factory.generatePublic((X509EncodedKeySpec) spec);
      } catch (GeneralSecurityException | ClassCastException e) {
        // not this algorithm; try the next
      }
    }
    throw new BerthException(
        file
            + " does not hold a usable "
            + (privateKey ? "private" : "public")
            + " key; give an Ed25519 or ECDSA P-256 key in PEM (berth keygen makes one)");
  }

  /** The DER bytes of the one PEM block of the given type in a file. */
  private static byte[] pem(Path file, String type) {
    String text;
    try {
      text = Files.readString(file, StandardCharsets.US_ASCII);
    } catch (IOException e) {
      throw new BerthException("cannot read key file " + file + ": " + e.getMessage(), e);
    }
    String begin = "-----BEGIN " + type + "-----";
    String end = "-----END " + type + "-----";
    int from = text.indexOf(begin);
    int to = from < 0 ? -1 : text.indexOf(end, from);
    if (from < 0 || to < 0) {
      String found = foundBlock(text);
      String hint =
          switch (found) {
            case "EC PRIVATE KEY" ->
                "; convert it to PKCS#8 with 'openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pem'";
            case "ENCRYPTED PRIVATE KEY" ->
                "; encrypted keys are not supported, decrypt it with 'openssl pkcs8 -in KEY -out"
                    + " KEY.pem'";
            case "PRIVATE KEY" -> "; this is a private key, give its public key (KEY.pub)";
            case "PUBLIC KEY" -> "; this is a public key, give the private key";
            default -> "";
          };
      throw new BerthException(
          file
              + " is not a PEM file with a '"
              + begin
              + "' block"
              + (found.isEmpty() ? "" : " (it holds a '" + found + "')")
              + hint);
    }
    String body = text.substring(from + begin.length(), to).replaceAll("\\s", "");
    try {
      return Base64.getDecoder().decode(body);
    } catch (IllegalArgumentException e) {
      throw new BerthException(file + ": the PEM block is not valid base64", e);
    }
  }

  private static String foundBlock(String text) {
    java.util.regex.Matcher m =
        java.util.regex.Pattern.compile("-----BEGIN ([A-Z0-9 ]+)-----").matcher(text);
    return m.find() ? m.group(1) : "";
  }

  /**
   * Makes a new key pair.
   *
   * @param algorithm {@link #ED25519} or {@link #ECDSA_P256} (either case)
   */
  public static KeyPair generate(String algorithm) {
    try {
      String name = algorithm.toUpperCase(Locale.ROOT);
      if (name.equals(ED25519.toUpperCase(Locale.ROOT))) {
        return KeyPairGenerator.getInstance("Ed25519").generateKeyPair();
      }
      if (name.equals(ECDSA_P256.toUpperCase(Locale.ROOT))) {
        KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
        g.initialize(new ECGenParameterSpec("secp256r1"));
        return g.generateKeyPair();
      }
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("the JDK cannot make " + algorithm + " keys", e);
    }
    throw new BerthException(
        "unknown key algorithm '" + algorithm + "'; use " + ED25519 + " or " + ECDSA_P256);
  }

  /** A key as PEM text: PKCS#8 for a private key, SubjectPublicKeyInfo for a public one. */
  public static String pem(Key key) {
    String type = key instanceof PrivateKey ? "PRIVATE KEY" : "PUBLIC KEY";
    return "-----BEGIN "
        + type
        + "-----\n"
        + Base64.getMimeEncoder(64, "\n".getBytes(StandardCharsets.US_ASCII))
            .encodeToString(key.getEncoded())
        + "\n-----END "
        + type
        + "-----\n";
  }

  private static boolean isP256(ECParameterSpec params) {
    try {
      AlgorithmParameters p = AlgorithmParameters.getInstance("EC");
      p.init(new ECGenParameterSpec("secp256r1"));
      ECParameterSpec p256 = p.getParameterSpec(ECParameterSpec.class);
      return p256.getCurve().equals(params.getCurve())
          && p256.getOrder().equals(params.getOrder())
          && p256.getGenerator().equals(params.getGenerator());
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("the JDK does not know P-256", e);
    }
  }
}
