package dev.berth.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.BerthException;
import dev.berth.api.ModelIntegrityException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PublicKey;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * berth.sig: sign, write, read and verify, and every way a model can differ from what was signed.
 */
class ModelSigningTest {
  @TempDir Path dir;
  private Path model;

  @BeforeEach
  void files() throws IOException {
    model = dir.resolve("m");
    Files.createDirectories(model.resolve("1"));
    Files.createDirectories(model.resolve("2/sub"));
    Files.writeString(model.resolve("model.yaml"), "apiVersion: berth.dev/v1\nkind: Model\n");
    Files.writeString(model.resolve("1/model.onnx"), "weights one");
    Files.writeString(model.resolve("2/model.onnx"), "weights two");
    Files.writeString(model.resolve("2/sub/vocab.txt"), "a b");
  }

  private KeyPair signWith(String algorithm) throws IOException {
    KeyPair keys = SigningKeys.generate(algorithm);
    Path priv = dir.resolve(algorithm + ".pem");
    Files.writeString(priv, SigningKeys.pem(keys.getPrivate()));
    SignedManifest.sign(ModelManifest.of(model), SigningKeys.readPrivate(priv))
        .write(model.resolve(ModelManifest.SIGNATURE_FILE));
    return keys;
  }

  private static ModelIntegrity requiring(PublicKey... keys) {
    return ModelIntegrity.trusting(List.of(keys), true);
  }

  private void verify(ModelIntegrity integrity, String version) {
    integrity.verify(model, ModelConfig.load(model), version);
  }

  private ModelIntegrityException refused(ModelIntegrity integrity, String version) {
    return assertThrows(ModelIntegrityException.class, () -> verify(integrity, version));
  }

  @ParameterizedTest
  @ValueSource(strings = {"Ed25519", "ECDSA-P256"})
  void signedModelVerifiesThroughPemFilesAndTheJsonFile(String algorithm) throws IOException {
    KeyPair keys = signWith(algorithm);
    Path pub = dir.resolve("key.pub");
    Files.writeString(pub, SigningKeys.pem(keys.getPublic()));
    SignedManifest read = SignedManifest.read(model.resolve(ModelManifest.SIGNATURE_FILE));
    assertEquals(algorithm, read.algorithm());
    assertEquals(
        List.of("1/model.onnx", "2/model.onnx", "2/sub/vocab.txt", "model.yaml"),
        List.copyOf(read.manifest().files().keySet()));
    assertEquals(ModelManifest.of(model), read.manifest());
    assertTrue(read.verifiedBy(List.of(SigningKeys.readPublic(pub))));
    verify(requiring(SigningKeys.readPublic(pub)), "1");
    verify(requiring(SigningKeys.readPublic(pub)), "2");
  }

  @ParameterizedTest
  @ValueSource(strings = {"Ed25519", "ECDSA-P256"})
  void aChangedByteIsRefusedWithBothDigests(String algorithm) throws IOException {
    KeyPair keys = signWith(algorithm);
    String before = ModelManifest.sha256(model.resolve("2/sub/vocab.txt"));
    byte[] bytes = Files.readAllBytes(model.resolve("2/sub/vocab.txt"));
    bytes[0] ^= 1;
    Files.write(model.resolve("2/sub/vocab.txt"), bytes);
    ModelIntegrityException e = refused(requiring(keys.getPublic()), "2");
    assertEquals("2/sub/vocab.txt", e.file());
    assertTrue(e.getMessage().contains("expected sha256 " + before), e.getMessage());
    assertTrue(
        e.getMessage().contains("found " + ModelManifest.sha256(model.resolve("2/sub/vocab.txt"))));
    verify(requiring(keys.getPublic()), "1"); // version 1 is untouched
  }

  @Test
  void aChangedModelYamlIsRefusedForEveryVersion() throws IOException {
    KeyPair keys = signWith("Ed25519");
    Files.writeString(
        model.resolve("model.yaml"), "apiVersion: berth.dev/v1\nkind: Model\ninstances: 4\n");
    assertEquals("model.yaml", refused(requiring(keys.getPublic()), "1").file());
    assertEquals("model.yaml", refused(requiring(keys.getPublic()), "2").file());
  }

  @Test
  void anAddedFileIsRefused() throws IOException {
    KeyPair keys = signWith("Ed25519");
    Files.writeString(model.resolve("1/extra.onnx"), "more");
    ModelIntegrityException e = refused(requiring(keys.getPublic()), "1");
    assertEquals("1/extra.onnx", e.file());
    assertTrue(e.getMessage().contains("not in the signed manifest"), e.getMessage());
    Files.createDirectories(model.resolve("3"));
    Files.writeString(model.resolve("3/model.onnx"), "new version");
    assertEquals("3/model.onnx", refused(requiring(keys.getPublic()), "3").file());
  }

  @Test
  void aRemovedFileIsRefused() throws IOException {
    KeyPair keys = signWith("ECDSA-P256");
    Files.delete(model.resolve("1/model.onnx"));
    ModelIntegrityException e = refused(requiring(keys.getPublic()), "1");
    assertEquals("1/model.onnx", e.file());
    assertTrue(e.getMessage().contains("missing"), e.getMessage());
  }

  @Test
  void aSignatureByAnUntrustedKeyIsRefused() throws IOException {
    signWith("Ed25519");
    KeyPair other = SigningKeys.generate("Ed25519");
    KeyPair ec = SigningKeys.generate("ECDSA-P256");
    ModelIntegrityException e = refused(requiring(other.getPublic(), ec.getPublic()), "1");
    assertEquals(ModelManifest.SIGNATURE_FILE, e.file());
    assertTrue(e.getMessage().contains("does not verify with any trusted key"), e.getMessage());
  }

  @Test
  void aSecondTrustedKeyIsEnough() throws IOException {
    KeyPair keys = signWith("ECDSA-P256");
    verify(requiring(SigningKeys.generate("Ed25519").getPublic(), keys.getPublic()), "1");
  }

  @Test
  void aGarbageOrEditedSignatureFileIsRefused() throws IOException {
    KeyPair keys = signWith("Ed25519");
    Path sig = model.resolve(ModelManifest.SIGNATURE_FILE);
    String json = Files.readString(sig);
    String signature = json.replaceAll("(?s).*\"signature\" : \"([^\"]+)\".*", "$1");
    Files.writeString(sig, json.replace(signature, "AAAA" + signature.substring(4)));
    assertTrue(refused(requiring(keys.getPublic()), "1").getMessage().contains("does not verify"));
    Files.writeString(sig, json.replace(signature, "bm90IGEgc2lnbmF0dXJl"));
    assertTrue(refused(requiring(keys.getPublic()), "1").getMessage().contains("does not verify"));
    // a manifest edited to match a tampered file no longer matches its signature
    Files.writeString(model.resolve("1/model.onnx"), "other weights");
    String newDigest = ModelManifest.sha256(model.resolve("1/model.onnx"));
    String oldDigest =
        SignedManifest.read(model.resolve(ModelManifest.SIGNATURE_FILE))
            .manifest()
            .files()
            .get("1/model.onnx");
    Files.writeString(sig, json.replace(oldDigest, newDigest));
    assertTrue(refused(requiring(keys.getPublic()), "1").getMessage().contains("does not verify"));
    Files.writeString(sig, "{not json");
    assertEquals(ModelManifest.SIGNATURE_FILE, refused(requiring(keys.getPublic()), "1").file());
  }

  @Test
  void unsignedModelsAreRefusedOnlyWhenSignaturesAreRequired() {
    KeyPair keys = SigningKeys.generate("Ed25519");
    ModelIntegrityException e = refused(requiring(keys.getPublic()), "1");
    assertNull(e.file());
    assertTrue(e.getMessage().contains("not signed"), e.getMessage());
    assertTrue(e.getMessage().contains("berth sign"), e.getMessage());
    verify(ModelIntegrity.trusting(List.of(keys.getPublic()), false), "1");
    verify(ModelIntegrity.pinsOnly(), "1");
  }

  @Test
  void aTamperedSignedModelIsRefusedWhenKeysAreGivenEvenIfNotRequired() throws IOException {
    KeyPair keys = signWith("Ed25519");
    Files.writeString(model.resolve("1/model.onnx"), "other weights");
    refused(ModelIntegrity.trusting(List.of(keys.getPublic()), false), "1");
    verify(ModelIntegrity.pinsOnly(), "1"); // without keys the signature is not looked at
  }

  @Test
  void manifestTextIsSha256sumFormatAndParsesBack() {
    ModelManifest m = ModelManifest.of(model);
    String text = m.text();
    assertTrue(
        text.startsWith(ModelManifest.sha256(model.resolve("1/model.onnx")) + "  1/model.onnx\n"));
    assertEquals(m, ModelManifest.parse(text));
    assertThrows(IllegalArgumentException.class, () -> ModelManifest.parse("abc  x\n"));
    String[] lines = text.split("\n");
    assertThrows(
        IllegalArgumentException.class,
        () -> ModelManifest.parse(lines[1] + "\n" + lines[0] + "\n"));
  }

  @Test
  void keyFilesOfTheWrongKindGetClearErrors() throws Exception {
    KeyPairGenerator rsa = KeyPairGenerator.getInstance("RSA");
    rsa.initialize(2048);
    KeyPair r = rsa.generateKeyPair();
    Path rsaPem = dir.resolve("rsa.pem");
    Files.writeString(rsaPem, SigningKeys.pem(r.getPrivate()));
    BerthException e = assertThrows(BerthException.class, () -> SigningKeys.readPrivate(rsaPem));
    assertTrue(e.getMessage().contains("RSA key cannot sign models"), e.getMessage());

    KeyPair ed = SigningKeys.generate("Ed25519");
    Path priv = dir.resolve("ed.pem");
    Files.writeString(priv, SigningKeys.pem(ed.getPrivate()));
    e = assertThrows(BerthException.class, () -> SigningKeys.readPublic(priv));
    assertTrue(e.getMessage().contains("give its public key"), e.getMessage());

    Path sec1 = dir.resolve("sec1.pem");
    Files.writeString(sec1, "-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n");
    e = assertThrows(BerthException.class, () -> SigningKeys.readPrivate(sec1));
    assertTrue(e.getMessage().contains("openssl pkcs8 -topk8"), e.getMessage());

    Path garbage = dir.resolve("garbage.pem");
    Files.writeString(
        garbage,
        "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n",
        StandardCharsets.US_ASCII);
    e = assertThrows(BerthException.class, () -> SigningKeys.readPublic(garbage));
    assertTrue(e.getMessage().contains("does not hold a usable public key"), e.getMessage());

    e =
        assertThrows(
            BerthException.class, () -> SigningKeys.readPublic(dir.resolve("missing.pub")));
    assertTrue(e.getMessage().contains("cannot read key file"), e.getMessage());

    KeyPairGenerator p384 = KeyPairGenerator.getInstance("EC");
    p384.initialize(new java.security.spec.ECGenParameterSpec("secp384r1"));
    Path p384Pub = dir.resolve("p384.pub");
    Files.writeString(p384Pub, SigningKeys.pem(p384.generateKeyPair().getPublic()));
    e = assertThrows(BerthException.class, () -> SigningKeys.readPublic(p384Pub));
    assertTrue(e.getMessage().contains("Ed25519 or an ECDSA P-256"), e.getMessage());
    assertFalse(e.getMessage().isBlank());
  }
}
