package dev.berth.server;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigInteger;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.KeyStore;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.security.interfaces.ECPrivateKey;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.Base64;
import java.util.Date;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import org.bouncycastle.asn1.DERBitString;
import org.bouncycastle.asn1.pkcs.PrivateKeyInfo;
import org.bouncycastle.asn1.sec.SECObjectIdentifiers;
import org.bouncycastle.asn1.x500.X500Name;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.asn1.x509.SubjectPublicKeyInfo;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * Certificates made on the spot for TLS tests: a CA, server certificates for 127.0.0.1 and
 * localhost, client certificates, written as the PEM files a user would give Berth.
 */
public final class TestCertificates {
  private static final AtomicLong SERIAL = new AtomicLong(System.currentTimeMillis());

  private TestCertificates() {}

  /** A certificate and its key pair. */
  public record Issued(X509Certificate certificate, KeyPair keys) {
    /** The certificate as a PEM CERTIFICATE block. */
    public String certificatePem() {
      try {
        return pem("CERTIFICATE", certificate.getEncoded());
      } catch (GeneralSecurityException e) {
        throw new IllegalStateException(e);
      }
    }

    /** The private key as PKCS#8 ({@code PRIVATE KEY}). */
    public String pkcs8Pem() {
      return pem("PRIVATE KEY", keys.getPrivate().getEncoded());
    }

    /** An RSA key as PKCS#1 ({@code RSA PRIVATE KEY}), as {@code openssl genrsa} wrote it. */
    public String pkcs1Pem() {
      try {
        byte[] der =
            PrivateKeyInfo.getInstance(keys.getPrivate().getEncoded())
                .parsePrivateKey()
                .toASN1Primitive()
                .getEncoded();
        return pem("RSA PRIVATE KEY", der);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    /**
     * A P-256 key as SEC1 ({@code EC PRIVATE KEY}) with its curve and public key, as OpenSSL writes
     * it.
     */
    public String sec1Pem() {
      try {
        byte[] point =
            SubjectPublicKeyInfo.getInstance(keys.getPublic().getEncoded())
                .getPublicKeyData()
                .getBytes();
        byte[] der =
            new org.bouncycastle.asn1.sec.ECPrivateKey(
                    256,
                    ((ECPrivateKey) keys.getPrivate()).getS(),
                    new DERBitString(point),
                    SECObjectIdentifiers.secp256r1)
                .getEncoded();
        return pem("EC PRIVATE KEY", der);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    /**
     * Writes the certificate to {@code dir/name.crt} and the PKCS#8 key to {@code dir/name.key}.
     */
    public PemFiles write(Path dir, String name) {
      Path cert = dir.resolve(name + ".crt");
      Path key = dir.resolve(name + ".key");
      writeString(cert, certificatePem());
      writeString(key, pkcs8Pem());
      return new PemFiles(cert, key);
    }
  }

  /** Where {@link Issued#write} put the certificate and the key. */
  public record PemFiles(Path certificate, Path key) {}

  public static Issued rsaCa(String name) {
    KeyPair keys = rsa();
    return new Issued(
        sign(name, keys, name, keys, Kind.CA, Instant.now(), Duration.ofDays(2)), keys);
  }

  /** A server certificate (RSA) for 127.0.0.1 and localhost, valid from an hour ago for a day. */
  public static Issued server(Issued ca) {
    return server(ca, rsa(), Instant.now().minus(Duration.ofHours(1)), Duration.ofDays(1));
  }

  /** A server certificate for 127.0.0.1 and localhost with the given key and validity. */
  public static Issued server(Issued ca, KeyPair keys, Instant notBefore, Duration validity) {
    return new Issued(
        sign(
            ca.certificate().getSubjectX500Principal().getName(),
            ca.keys(),
            "CN=localhost",
            keys,
            Kind.SERVER,
            notBefore,
            validity),
        keys);
  }

  /** A client certificate (RSA) with the given common name. */
  public static Issued client(Issued ca, String commonName) {
    KeyPair keys = rsa();
    return new Issued(
        sign(
            ca.certificate().getSubjectX500Principal().getName(),
            ca.keys(),
            "CN=" + commonName,
            keys,
            Kind.CLIENT,
            Instant.now().minus(Duration.ofHours(1)),
            Duration.ofDays(1)),
        keys);
  }

  public static KeyPair rsa() {
    try {
      KeyPairGenerator g = KeyPairGenerator.getInstance("RSA");
      g.initialize(2048);
      return g.generateKeyPair();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
  }

  public static KeyPair ecP256() {
    try {
      KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
      g.initialize(new ECGenParameterSpec("secp256r1"));
      return g.generateKeyPair();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * A client-side SSL context that trusts {@code ca} and, when {@code identity} is not null,
   * presents that certificate.
   */
  public static SSLContext clientContext(Issued ca, Issued identity) {
    try {
      KeyStore trust = KeyStore.getInstance("PKCS12");
      trust.load(null, null);
      trust.setCertificateEntry("ca", ca.certificate());
      TrustManagerFactory tmf =
          TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      tmf.init(trust);
      KeyManagerFactory kmf = null;
      if (identity != null) {
        KeyStore keys = KeyStore.getInstance("PKCS12");
        keys.load(null, null);
        keys.setKeyEntry(
            "me",
            identity.keys().getPrivate(),
            new char[0],
            new X509Certificate[] {identity.certificate()});
        kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(keys, new char[0]);
      }
      SSLContext ctx = SSLContext.getInstance("TLS");
      ctx.init(kmf == null ? null : kmf.getKeyManagers(), tmf.getTrustManagers(), null);
      return ctx;
    } catch (GeneralSecurityException | IOException e) {
      throw new IllegalStateException(e);
    }
  }

  public static String pem(String type, byte[] der) {
    return "-----BEGIN "
        + type
        + "-----\n"
        + Base64.getMimeEncoder(64, new byte[] {'\n'}).encodeToString(der)
        + "\n-----END "
        + type
        + "-----\n";
  }

  public static Path writeString(Path file, String text) {
    try {
      return Files.writeString(file, text, StandardCharsets.US_ASCII);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private enum Kind {
    CA,
    SERVER,
    CLIENT
  }

  private static X509Certificate sign(
      String issuer,
      KeyPair issuerKeys,
      String subject,
      KeyPair subjectKeys,
      Kind kind,
      Instant notBefore,
      Duration validity) {
    try {
      X509v3CertificateBuilder b =
          new JcaX509v3CertificateBuilder(
              new X500Name(issuer),
              BigInteger.valueOf(SERIAL.incrementAndGet()),
              Date.from(notBefore),
              Date.from(notBefore.plus(validity)),
              new X500Name(subject),
              subjectKeys.getPublic());
      switch (kind) {
        case CA -> {
          b.addExtension(Extension.basicConstraints, true, new BasicConstraints(true));
          b.addExtension(
              Extension.keyUsage, true, new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
        }
        case SERVER -> {
          b.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
          b.addExtension(
              Extension.subjectAlternativeName,
              false,
              new GeneralNames(
                  List.of(
                          new GeneralName(GeneralName.iPAddress, "127.0.0.1"),
                          new GeneralName(GeneralName.dNSName, "localhost"))
                      .toArray(GeneralName[]::new)));
          b.addExtension(
              Extension.extendedKeyUsage,
              false,
              new ExtendedKeyUsage(KeyPurposeId.id_kp_serverAuth));
        }
        case CLIENT -> {
          b.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
          b.addExtension(
              Extension.extendedKeyUsage,
              false,
              new ExtendedKeyUsage(KeyPurposeId.id_kp_clientAuth));
        }
      }
      String algorithm =
          issuerKeys.getPrivate().getAlgorithm().equals("EC") ? "SHA256withECDSA" : "SHA256withRSA";
      return new JcaX509CertificateConverter()
          .getCertificate(
              b.build(
                  new JcaContentSignerBuilder(algorithm)
                      .setSecureRandom(new SecureRandom())
                      .build(issuerKeys.getPrivate())));
    } catch (IOException | GeneralSecurityException | OperatorCreationException e) {
      throw new IllegalStateException(e);
    }
  }
}
