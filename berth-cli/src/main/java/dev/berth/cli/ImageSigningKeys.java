package dev.berth.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.berth.api.BerthException;
import dev.berth.runtime.SigningKeys;
import dev.berth.store.ImageSignatures;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.MessageDigest;
import java.security.PrivateKey;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.Arrays;
import java.util.Base64;
import java.util.Map;
import org.bouncycastle.crypto.engines.XSalsa20Engine;
import org.bouncycastle.crypto.generators.SCrypt;
import org.bouncycastle.crypto.macs.Poly1305;
import org.bouncycastle.crypto.params.KeyParameter;
import org.bouncycastle.crypto.params.ParametersWithIV;

/**
 * The private key that signs images, from Berth's PEM file ({@code berth keygen --algorithm
 * ECDSA-P256}) or from cosign's own ({@code cosign generate-key-pair}): {@code BEGIN ENCRYPTED
 * SIGSTORE PRIVATE KEY} (older cosign: {@code ENCRYPTED COSIGN PRIVATE KEY}), whose base64 body is
 * JSON holding the key's PKCS#8 DER sealed with NaCl's secretbox (XSalsa20-Poly1305) under a key
 * scrypt derives from the password. The password comes from {@code COSIGN_PASSWORD}, as for cosign
 * in a script (Berth does not prompt). BouncyCastle provides scrypt and XSalsa20-Poly1305, which
 * the JDK lacks; it is a CLI dependency only, never in an image.
 */
final class ImageSigningKeys {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String[] COSIGN_TYPES = {
    "ENCRYPTED SIGSTORE PRIVATE KEY", "ENCRYPTED COSIGN PRIVATE KEY"
  };

  private ImageSigningKeys() {}

  /** Reads the key, asking for a cosign key file's password in this process's environment. */
  static PrivateKey read(Path file) {
    return read(file, System.getenv());
  }

  /**
   * Reads the key.
   *
   * @param env where {@code COSIGN_PASSWORD} is looked up
   * @throws BerthException naming the file and the fix
   */
  static PrivateKey read(Path file, Map<String, String> env) {
    String text;
    try {
      text = Files.readString(file, StandardCharsets.US_ASCII);
    } catch (IOException e) {
      throw new BerthException("cannot read key file " + file + ": " + e.getMessage(), e);
    }
    for (String type : COSIGN_TYPES) {
      String begin = "-----BEGIN " + type + "-----";
      int from = text.indexOf(begin);
      int to = from < 0 ? -1 : text.indexOf("-----END " + type + "-----", from);
      if (from >= 0 && to > from) {
        String body = text.substring(from + begin.length(), to).replaceAll("\\s", "");
        return cosignKey(file, body, password(file, env));
      }
    }
    return ImageSignatures.signingKey(file);
  }

  private static char[] password(Path file, Map<String, String> env) {
    String password = env.get("COSIGN_PASSWORD");
    if (password == null) {
      // no prompt: a build or a CI job would wait on it, and a redirected terminal cannot answer
      throw new BerthException(
          file + " is cosign's encrypted key file: set COSIGN_PASSWORD to its password");
    }
    return password.toCharArray();
  }

  /** Opens cosign's sealed key with a password. */
  static PrivateKey cosignKey(Path file, String base64Body, char[] password) {
    JsonNode box;
    byte[] salt;
    byte[] nonce;
    byte[] sealed;
    try {
      box = JSON.readTree(Base64.getDecoder().decode(base64Body));
      salt = Base64.getDecoder().decode(box.path("kdf").path("salt").asText());
      nonce = Base64.getDecoder().decode(box.path("cipher").path("nonce").asText());
      sealed = Base64.getDecoder().decode(box.path("ciphertext").asText());
    } catch (IOException | IllegalArgumentException e) {
      throw new BerthException(file + " is not a cosign key file: " + e.getMessage(), e);
    }
    JsonNode kdf = box.path("kdf");
    JsonNode params = kdf.path("params");
    int n = params.path("N").asInt();
    int r = params.path("r").asInt();
    int p = params.path("p").asInt();
    if (!"scrypt".equals(kdf.path("name").asText())
        || !"nacl/secretbox".equals(box.path("cipher").path("name").asText())
        || nonce.length != 24
        || sealed.length < 16
        || n < 2
        || Integer.bitCount(n) != 1
        || n > (1 << 20)
        || r < 1
        || r > 32
        || p < 1
        || p > 16) {
      throw new BerthException(
          file
              + " is a cosign key file Berth cannot open: it reads scrypt with nacl/secretbox"
              + " (what cosign generate-key-pair writes)");
    }
    byte[] secret = new String(password).getBytes(StandardCharsets.UTF_8);
    byte[] key = SCrypt.generate(secret, salt, n, r, p, 32);
    Arrays.fill(secret, (byte) 0);
    byte[] der = secretboxOpen(key, nonce, sealed);
    Arrays.fill(key, (byte) 0);
    if (der == null) {
      throw new BerthException(
          "cannot open " + file + ": the password is wrong (COSIGN_PASSWORD) or the file damaged");
    }
    PrivateKey privateKey;
    try {
      privateKey = KeyFactory.getInstance("EC").generatePrivate(new PKCS8EncodedKeySpec(der));
    } catch (GeneralSecurityException e) {
      throw new BerthException(
          file + " holds a key that is not ECDSA: Berth signs images with ECDSA P-256 keys", e);
    } finally {
      Arrays.fill(der, (byte) 0);
    }
    boolean p256;
    try {
      p256 = SigningKeys.ECDSA_P256.equals(SigningKeys.algorithm(privateKey));
    } catch (BerthException e) {
      p256 = false;
    }
    if (!p256) {
      throw new BerthException(
          file + " holds an EC key that is not on P-256: Berth signs images with ECDSA P-256 keys");
    }
    return privateKey;
  }

  /**
   * NaCl's {@code crypto_secretbox_open}: {@code sealed} is the Poly1305 tag then the message
   * XOR'ed with XSalsa20's stream from its 33rd byte (the first 32 are the Poly1305 key).
   *
   * @return the message, or null when the tag does not match
   */
  static byte[] secretboxOpen(byte[] key, byte[] nonce, byte[] sealed) {
    XSalsa20Engine stream = new XSalsa20Engine();
    stream.init(false, new ParametersWithIV(new KeyParameter(key), nonce));
    byte[] macKey = new byte[32];
    stream.processBytes(new byte[32], 0, 32, macKey, 0);
    Poly1305 mac = new Poly1305();
    mac.init(new KeyParameter(macKey));
    mac.update(sealed, 16, sealed.length - 16);
    byte[] tag = new byte[16];
    mac.doFinal(tag, 0);
    if (!MessageDigest.isEqual(tag, Arrays.copyOf(sealed, 16))) {
      return null;
    }
    byte[] message = new byte[sealed.length - 16];
    stream.processBytes(sealed, 16, message.length, message, 0);
    return message;
  }
}
