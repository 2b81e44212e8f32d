package dev.berth.server;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.berth.api.BerthException;
import dev.berth.server.TestCertificates.Issued;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.Optional;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Reading the PEM files of {@code --tls-cert}, {@code --tls-key} and {@code --tls-client-ca}. */
class TlsCredentialsTest {
  @TempDir Path dir;
  private static Issued ca;
  private static Issued server;

  @BeforeAll
  static void issue() {
    ca = TestCertificates.rsaCa("CN=Test CA");
    server = TestCertificates.server(ca);
  }

  private Path file(String name, String text) {
    return TestCertificates.writeString(dir.resolve(name), text);
  }

  private String refused(Path cert, Path key) {
    return assertThrows(
            BerthException.class, () -> TlsCredentials.load(cert, key, Optional.empty()))
        .getMessage();
  }

  @Test
  void readsPkcs8RsaKeyAndChain() {
    Path cert = file("chain.pem", server.certificatePem() + ca.certificatePem());
    TlsCredentials tls =
        TlsCredentials.load(cert, file("key.pem", server.pkcs8Pem()), Optional.empty());
    assertEquals(server.certificate(), tls.certificate());
    assertEquals(2, tls.chain().size());
    assertFalse(tls.requiresClientCertificate());
    assertTrue(tls.clientTrustManagers().isEmpty());
  }

  @Test
  void readsPkcs1RsaKey() {
    TlsCredentials tls =
        TlsCredentials.load(
            file("cert.pem", server.certificatePem()),
            file("key.pem", server.pkcs1Pem()),
            Optional.empty());
    assertEquals(server.certificate(), tls.certificate());
  }

  @Test
  void readsEcKeysAsPkcs8AndSec1() {
    Issued ec =
        TestCertificates.server(
            ca, TestCertificates.ecP256(), Instant.now().minusSeconds(60), Duration.ofDays(1));
    Path cert = file("cert.pem", ec.certificatePem());
    assertEquals(
        ec.certificate(),
        TlsCredentials.load(cert, file("k8.pem", ec.pkcs8Pem()), Optional.empty()).certificate());
    assertEquals(
        ec.certificate(),
        TlsCredentials.load(cert, file("sec1.pem", ec.sec1Pem()), Optional.empty()).certificate());
  }

  @Test
  void clientCaTurnsOnClientCertificates() {
    TlsCredentials tls =
        TlsCredentials.load(
            file("cert.pem", server.certificatePem()),
            file("key.pem", server.pkcs8Pem()),
            Optional.of(file("ca.pem", ca.certificatePem())));
    assertTrue(tls.requiresClientCertificate());
    assertEquals(1, tls.clientCas().size());
    assertTrue(tls.clientTrustManagers().isPresent());
  }

  @Test
  void missingFileIsNamed() {
    Path missing = dir.resolve("nope.pem");
    String m = refused(missing, file("key.pem", server.pkcs8Pem()));
    assertTrue(m.contains("certificate file " + missing + " does not exist"), m);
  }

  @Test
  void garbageIsNotPem() {
    String m =
        refused(file("cert.pem", "hello, not a certificate"), file("key.pem", server.pkcs8Pem()));
    assertTrue(m.contains("holds no PEM block"), m);
  }

  @Test
  void brokenCertificateBlock() {
    String m =
        refused(
            file("cert.pem", TestCertificates.pem("CERTIFICATE", new byte[] {1, 2, 3, 4})),
            file("key.pem", server.pkcs8Pem()));
    assertTrue(m.contains("holds a CERTIFICATE that cannot be read"), m);
  }

  @Test
  void brokenKeyBlock() {
    String m =
        refused(
            file("cert.pem", server.certificatePem()),
            file("key.pem", TestCertificates.pem("PRIVATE KEY", new byte[] {1, 2, 3, 4})));
    assertTrue(m.contains("holds a key that cannot be read"), m);
    m =
        refused(
            file("cert.pem", server.certificatePem()),
            file("key2.pem", TestCertificates.pem("EC PRIVATE KEY", new byte[] {0x30, 0x01, 9})));
    assertTrue(m.contains("EC PRIVATE KEY is malformed"), m);
  }

  @Test
  void swappedFilesAreNamed() {
    String m =
        refused(file("key.pem", server.pkcs8Pem()), file("cert.pem", server.certificatePem()));
    assertTrue(m.contains("are --tls-cert and --tls-key swapped?"), m);
  }

  @Test
  void keyOfAnotherCertificate() {
    Issued other = TestCertificates.server(ca);
    String m =
        refused(file("cert.pem", server.certificatePem()), file("key.pem", other.pkcs8Pem()));
    assertTrue(m.contains("does not belong to the certificate"), m);
    // an EC key against an RSA certificate
    Issued ec =
        TestCertificates.server(
            ca, TestCertificates.ecP256(), Instant.now().minusSeconds(60), Duration.ofDays(1));
    m = refused(file("cert.pem", server.certificatePem()), file("ec.pem", ec.pkcs8Pem()));
    assertTrue(m.contains("does not belong to the certificate"), m);
  }

  @Test
  void chainInTheWrongOrder() {
    Issued intermediateSigned = TestCertificates.server(ca);
    String m =
        refused(
            file("chain.pem", ca.certificatePem() + intermediateSigned.certificatePem()),
            file("key.pem", intermediateSigned.pkcs8Pem()));
    assertTrue(m.contains("put the server's own certificate first"), m);
  }

  @Test
  void encryptedKeyIsRefusedWithTheFix() {
    String m =
        refused(
            file("cert.pem", server.certificatePem()),
            file("key.pem", TestCertificates.pem("ENCRYPTED PRIVATE KEY", new byte[] {0x30, 0})));
    assertTrue(m.contains("is encrypted") && m.contains("openssl pkcs8 -topk8 -nocrypt"), m);
  }

  @Test
  void expiredCertificateIsRefused() {
    Issued expired =
        TestCertificates.server(
            ca,
            TestCertificates.rsa(),
            Instant.now().minus(Duration.ofDays(3)),
            Duration.ofDays(1));
    String m =
        refused(file("cert.pem", expired.certificatePem()), file("key.pem", expired.pkcs8Pem()));
    assertTrue(m.contains("expired on") && m.contains("renew it"), m);
  }

  @Test
  void certificateNotValidYetIsServed() {
    Issued future =
        TestCertificates.server(
            ca,
            TestCertificates.rsa(),
            Instant.now().plus(Duration.ofHours(1)),
            Duration.ofDays(1));
    TlsCredentials tls =
        TlsCredentials.load(
            file("cert.pem", future.certificatePem()),
            file("key.pem", future.pkcs8Pem()),
            Optional.empty());
    assertEquals(future.certificate(), tls.certificate());
  }

  @Test
  void clientCaWithoutCertificates() {
    String m =
        assertThrows(
                BerthException.class,
                () ->
                    TlsCredentials.load(
                        file("cert.pem", server.certificatePem()),
                        file("key.pem", server.pkcs8Pem()),
                        Optional.of(file("ca.pem", server.pkcs8Pem()))))
            .getMessage();
    assertTrue(m.contains("client CA file") && m.contains("holds no CERTIFICATE block"), m);
  }
}
