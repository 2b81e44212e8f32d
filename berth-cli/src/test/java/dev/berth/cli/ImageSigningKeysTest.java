package dev.berth.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.berth.api.BerthException;
import dev.berth.runtime.SigningKeys;
import dev.berth.store.ImageSignatures;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.Signature;
import java.util.Base64;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Image signing keys from cosign's encrypted key files: {@code src/test/resources/cosign} holds one
 * written by libsodium's secretbox and Python's scrypt (make-cosign-key.py), not by Berth.
 */
class ImageSigningKeysTest {
  private static final Path COSIGN = Path.of("src/test/resources/cosign");

  @Test
  void opensCosignsKeyFileWithItsPassword() throws Exception {
    PrivateKey key =
        ImageSigningKeys.read(
            COSIGN.resolve("cosign.key"), Map.of("COSIGN_PASSWORD", "berth-test"));
    assertEquals(SigningKeys.ECDSA_P256, SigningKeys.algorithm(key));
    // the key it holds signs what cosign.pub verifies
    PublicKey pub = ImageSignatures.verifyingKey(COSIGN.resolve("cosign.pub"));
    byte[] payload = "a payload".getBytes(StandardCharsets.UTF_8);
    Signature s = Signature.getInstance("SHA256withECDSA");
    s.initSign(key);
    s.update(payload);
    byte[] signature = s.sign();
    Signature v = Signature.getInstance("SHA256withECDSA");
    v.initVerify(pub);
    v.update(payload);
    assertTrue(v.verify(signature));
  }

  @Test
  void aWrongOrMissingPasswordIsNamed() {
    Path file = COSIGN.resolve("cosign.key");
    BerthException wrong =
        assertThrows(
            BerthException.class,
            () -> ImageSigningKeys.read(file, Map.of("COSIGN_PASSWORD", "not-it")));
    assertTrue(wrong.getMessage().contains("the password is wrong"), wrong.getMessage());
    BerthException missing =
        assertThrows(BerthException.class, () -> ImageSigningKeys.read(file, Map.of()));
    assertTrue(missing.getMessage().contains("set COSIGN_PASSWORD"), missing.getMessage());
  }

  @Test
  void aDamagedFileIsRefused(@TempDir Path dir) throws Exception {
    String text = Files.readString(COSIGN.resolve("cosign.key"), StandardCharsets.US_ASCII);
    String body = text.replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
    ObjectNode json = (ObjectNode) new ObjectMapper().readTree(Base64.getDecoder().decode(body));
    byte[] sealed = Base64.getDecoder().decode(json.path("ciphertext").asText());
    sealed[sealed.length - 1] ^= 1; // the Poly1305 tag no longer matches
    json.put("ciphertext", Base64.getEncoder().encodeToString(sealed));
    Path file =
        Files.writeString(
            dir.resolve("damaged.key"),
            "-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"
                + Base64.getEncoder().encodeToString(new ObjectMapper().writeValueAsBytes(json))
                + "\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n");
    BerthException e =
        assertThrows(
            BerthException.class,
            () -> ImageSigningKeys.read(file, Map.of("COSIGN_PASSWORD", "berth-test")));
    assertTrue(e.getMessage().contains("cannot open " + file), e.getMessage());
  }

  @Test
  void berthsOwnKeyFilesStillRead(@TempDir Path dir) throws Exception {
    var pair = SigningKeys.generate(SigningKeys.ECDSA_P256);
    Path pem = Files.writeString(dir.resolve("k.pem"), SigningKeys.pem(pair.getPrivate()));
    assertEquals(pair.getPrivate(), ImageSigningKeys.read(pem, Map.of()));
  }
}
