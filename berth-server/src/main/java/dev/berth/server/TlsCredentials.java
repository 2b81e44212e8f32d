package dev.berth.server;

import dev.berth.api.BerthException;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.PublicKey;
import java.security.SecureRandom;
import java.security.Signature;
import java.security.cert.CertificateException;
import java.security.cert.CertificateExpiredException;
import java.security.cert.CertificateFactory;
import java.security.cert.CertificateNotYetValidException;
import java.security.cert.X509Certificate;
import java.security.interfaces.RSAKey;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Optional;
import java.util.logging.Logger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;

/**
 * A server's TLS identity read from PEM files: its certificate chain and private key, and
 * optionally the certificate authorities whose client certificates it requires (mutual TLS). Both
 * of Berth's fronts (REST and gRPC) take the same credentials.
 *
 * <pre>{@code
 * TlsCredentials tls = TlsCredentials.load(Path.of("cert.pem"), Path.of("key.pem"), Optional.empty());
 * }</pre>
 *
 * <p>Keys: PKCS#8 ({@code PRIVATE KEY}: RSA, EC or EdDSA), PKCS#1 ({@code RSA PRIVATE KEY}) or SEC1
 * ({@code EC PRIVATE KEY}), unencrypted. An expired certificate is refused; one not valid yet is
 * served with a warning (clocks of freshly issued certificates and servers often differ a little).
 */
public final class TlsCredentials {
  private static final Logger LOG = Logger.getLogger(TlsCredentials.class.getName());
  private static final Pattern BLOCK =
      Pattern.compile("-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \\1-----", Pattern.DOTALL);
  private static final String OPENSSL_HINT =
      "; convert it with: openssl pkcs8 -topk8 -nocrypt -in KEY -out key.pem";

  private final List<X509Certificate> chain;
  private final PrivateKey key;
  private final List<X509Certificate> clientCas;
  private final KeyManager[] keyManagers;
  private final TrustManager[] clientTrust;
  private final SSLContext sslContext;

  private TlsCredentials(
      List<X509Certificate> chain, PrivateKey key, List<X509Certificate> clientCas)
      throws GeneralSecurityException, IOException {
    this.chain = List.copyOf(chain);
    this.key = key;
    this.clientCas = List.copyOf(clientCas);
    char[] password = new char[0];
    KeyStore keys = KeyStore.getInstance("PKCS12");
    keys.load(null, null);
    keys.setKeyEntry("berth", key, password, chain.toArray(X509Certificate[]::new));
    KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
    kmf.init(keys, password);
    this.keyManagers = kmf.getKeyManagers();
    if (clientCas.isEmpty()) {
      this.clientTrust = null;
    } else {
      KeyStore trusted = KeyStore.getInstance("PKCS12");
      trusted.load(null, null);
      for (int i = 0; i < clientCas.size(); i++) {
        trusted.setCertificateEntry("client-ca-" + i, clientCas.get(i));
      }
      TrustManagerFactory tmf =
          TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
      tmf.init(trusted);
      this.clientTrust = tmf.getTrustManagers();
    }
    this.sslContext = SSLContext.getInstance("TLS");
    sslContext.init(keyManagers, clientTrust, new SecureRandom());
  }

  /**
   * Reads and checks the PEM files.
   *
   * @param certificateChain the server's certificate first, then any intermediates
   * @param privateKey the key of the server's certificate
   * @param clientCa certificate authorities that sign the client certificates to require; empty:
   *     clients are not asked for a certificate
   * @throws BerthException naming the file and what is wrong with it: missing, not PEM, no
   *     certificate or key in it, an encrypted key, a key that does not belong to the certificate,
   *     an expired certificate
   */
  public static TlsCredentials load(
      Path certificateChain, Path privateKey, Optional<Path> clientCa) {
    List<X509Certificate> chain = certificates(certificateChain, "certificate");
    PrivateKey key = privateKey(privateKey);
    checkPair(chain, key, certificateChain, privateKey);
    for (X509Certificate c : chain) {
      checkValidity(c, certificateChain);
    }
    List<X509Certificate> cas = clientCa.map(p -> certificates(p, "client CA")).orElse(List.of());
    try {
      return new TlsCredentials(chain, key, cas);
    } catch (GeneralSecurityException | IOException e) {
      throw new BerthException(
          "cannot use the TLS key and certificate of "
              + certificateChain
              + " and "
              + privateKey
              + ": "
              + e.getMessage(),
          e);
    }
  }

  /** The server's certificate (the first of the chain). */
  public X509Certificate certificate() {
    return chain.get(0);
  }

  /** The certificate chain, the server's certificate first. */
  public List<X509Certificate> chain() {
    return chain;
  }

  /** The certificate authorities client certificates must chain to; empty without mutual TLS. */
  public List<X509Certificate> clientCas() {
    return clientCas;
  }

  /** Whether clients must present a certificate signed by one of {@link #clientCas()}. */
  public boolean requiresClientCertificate() {
    return !clientCas.isEmpty();
  }

  /** A server SSL context over these credentials (client authentication is the socket's choice). */
  public SSLContext sslContext() {
    return sslContext;
  }

  /** Key managers serving the certificate chain. */
  public KeyManager[] keyManagers() {
    return keyManagers.clone();
  }

  /** Trust managers for client certificates, or empty without mutual TLS. */
  public Optional<TrustManager[]> clientTrustManagers() {
    return Optional.ofNullable(clientTrust).map(TrustManager[]::clone);
  }

  private static String read(Path file, String what) {
    try {
      return Files.readString(file, StandardCharsets.ISO_8859_1);
    } catch (NoSuchFileException e) {
      throw new BerthException("TLS " + what + " file " + file + " does not exist", e);
    } catch (IOException e) {
      throw new BerthException(
          "cannot read the TLS " + what + " file " + file + " (" + e.getMessage() + ")", e);
    }
  }

  private record Block(String type, String headers, byte[] der) {}

  private static List<Block> blocks(String text, Path file, String what) {
    List<Block> found = new ArrayList<>();
    Matcher m = BLOCK.matcher(text.replace("\r", ""));
    while (m.find()) {
      String body = m.group(2);
      String headers = "";
      int blank = body.indexOf("\n\n");
      if (body.contains(":") && blank >= 0) { // RFC 1421 headers such as Proc-Type
        headers = body.substring(0, blank);
        body = body.substring(blank);
      }
      try {
        found.add(new Block(m.group(1), headers, Base64.getMimeDecoder().decode(body.strip())));
      } catch (IllegalArgumentException e) {
        throw new BerthException(
            "TLS " + what + " file " + file + ": its " + m.group(1) + " block is not valid base64",
            e);
      }
    }
    if (found.isEmpty()) {
      throw new BerthException(
          "TLS "
              + what
              + " file "
              + file
              + " holds no PEM block; give a PEM file (text starting with -----BEGIN ...-----)");
    }
    return found;
  }

  private static List<X509Certificate> certificates(Path file, String what) {
    List<Block> blocks = blocks(read(file, what), file, what);
    List<X509Certificate> certs = new ArrayList<>();
    try {
      CertificateFactory factory = CertificateFactory.getInstance("X.509");
      for (Block b : blocks) {
        if (b.type().equals("CERTIFICATE")) {
          certs.add(
              (X509Certificate) factory.generateCertificate(new ByteArrayInputStream(b.der())));
        }
      }
    } catch (CertificateException e) {
      throw new BerthException(
          "TLS " + what + " file " + file + " holds a CERTIFICATE that cannot be read: " + e, e);
    }
    if (certs.isEmpty()) {
      boolean key = blocks.stream().anyMatch(b -> b.type().endsWith("PRIVATE KEY"));
      throw new BerthException(
          "TLS "
              + what
              + " file "
              + file
              + " holds no CERTIFICATE block"
              + (key ? " but a private key: are --tls-cert and --tls-key swapped?" : ""));
    }
    return certs;
  }

  private static PrivateKey privateKey(Path file) {
    List<Block> blocks = blocks(read(file, "private key"), file, "private key");
    Block b =
        blocks.stream()
            .filter(x -> x.type().endsWith("PRIVATE KEY"))
            .findFirst()
            .orElseThrow(
                () ->
                    new BerthException(
                        "TLS private key file "
                            + file
                            + " holds no PRIVATE KEY block"
                            + (blocks.stream().anyMatch(x -> x.type().equals("CERTIFICATE"))
                                ? " but a certificate: are --tls-cert and --tls-key swapped?"
                                : "")));
    if (b.type().equals("ENCRYPTED PRIVATE KEY") || b.headers().contains("ENCRYPTED")) {
      throw new BerthException(
          "TLS private key file "
              + file
              + " is encrypted; Berth reads unencrypted keys"
              + OPENSSL_HINT);
    }
    byte[] pkcs8;
    try {
      pkcs8 =
          switch (b.type()) {
            case "PRIVATE KEY" -> b.der();
            case "RSA PRIVATE KEY" -> Der.pkcs8(Der.RSA_ALGORITHM, b.der());
            case "EC PRIVATE KEY" -> Der.pkcs8(Der.ecAlgorithm(b.der()), b.der());
            default ->
                throw new BerthException(
                    "TLS private key file "
                        + file
                        + " holds a '"
                        + b.type()
                        + "' block; Berth reads PRIVATE KEY (PKCS#8), RSA PRIVATE KEY or EC PRIVATE"
                        + " KEY"
                        + OPENSSL_HINT);
          };
    } catch (IllegalArgumentException e) {
      throw new BerthException(
          "TLS private key file " + file + ": its " + b.type() + " is malformed" + OPENSSL_HINT, e);
    }
    for (String algorithm : List.of("RSA", "EC", "EdDSA", "RSASSA-PSS", "XDH")) {
      try {
        return KeyFactory.getInstance(algorithm).generatePrivate(new PKCS8EncodedKeySpec(pkcs8));
      } catch (GeneralSecurityException e) {
        // not this algorithm; try the next
      }
    }
    throw new BerthException(
        "TLS private key file "
            + file
            + " holds a key that cannot be read (give an RSA, EC or EdDSA key)"
            + OPENSSL_HINT);
  }

  private static void checkPair(
      List<X509Certificate> chain, PrivateKey key, Path certFile, Path keyFile) {
    for (int i = 0; i < chain.size(); i++) {
      if (matches(chain.get(i).getPublicKey(), key)) {
        if (i == 0) {
          return;
        }
        throw new BerthException(
            "TLS certificate file "
                + certFile
                + ": the key of "
                + keyFile
                + " belongs to its certificate number "
                + (i + 1)
                + "; put the server's own certificate first, then its intermediates");
      }
    }
    throw new BerthException(
        "the TLS private key "
            + keyFile
            + " does not belong to the certificate in "
            + certFile
            + " ("
            + chain.get(0).getSubjectX500Principal().getName()
            + "); give the key the certificate was issued for");
  }

  private static boolean matches(PublicKey pub, PrivateKey key) {
    if (pub instanceof RSAKey rp && key instanceof RSAKey rk) {
      return rp.getModulus().equals(rk.getModulus());
    }
    if (!pub.getAlgorithm().equals(key.getAlgorithm())) {
      return false;
    }
    String signing = key.getAlgorithm().equals("EC") ? "SHA256withECDSA" : key.getAlgorithm();
    try {
      byte[] probe = "berth key check".getBytes(StandardCharsets.US_ASCII);
      Signature sign = Signature.getInstance(signing);
      sign.initSign(key);
      sign.update(probe);
      byte[] signature = sign.sign();
      Signature verify = Signature.getInstance(signing);
      verify.initVerify(pub);
      verify.update(probe);
      return verify.verify(signature);
    } catch (GeneralSecurityException | IllegalArgumentException e) {
      return false; // e.g. an EC key of another curve
    }
  }

  private static void checkValidity(X509Certificate c, Path file) {
    try {
      c.checkValidity();
    } catch (CertificateExpiredException e) {
      throw new BerthException(
          "TLS certificate "
              + c.getSubjectX500Principal().getName()
              + " in "
              + file
              + " expired on "
              + c.getNotAfter().toInstant()
              + "; renew it",
          e);
    } catch (CertificateNotYetValidException e) {
      LOG.warning(
          "TLS certificate "
              + c.getSubjectX500Principal().getName()
              + " in "
              + file
              + " is not valid before "
              + c.getNotBefore().toInstant()
              + "; clients will refuse it until then (is this machine's clock right?)");
    }
  }

  /** Just enough DER to wrap PKCS#1 and SEC1 keys into PKCS#8. */
  private static final class Der {
    /** AlgorithmIdentifier rsaEncryption with NULL parameters. */
    static final byte[] RSA_ALGORITHM =
        sequence(
            new byte[] {
              0x06, 0x09, 0x2a, (byte) 0x86, 0x48, (byte) 0x86, (byte) 0xf7, 0x0d, 0x01, 0x01, 0x01
            },
            new byte[] {0x05, 0x00});

    /** OID 1.2.840.10045.2.1, id-ecPublicKey. */
    static final byte[] EC_PUBLIC_KEY = {
      0x06, 0x07, 0x2a, (byte) 0x86, 0x48, (byte) 0xce, 0x3d, 0x02, 0x01
    };

    /** AlgorithmIdentifier id-ecPublicKey with the curve named in a SEC1 ECPrivateKey. */
    static byte[] ecAlgorithm(byte[] sec1) {
      // ECPrivateKey ::= SEQUENCE { version INTEGER, privateKey OCTET STRING,
      //                             parameters [0] ECParameters OPTIONAL, publicKey [1] ... }
      int[] seq = header(sec1, 0, 0x30);
      int pos = seq[0];
      for (int field = 0; field < 2; field++) { // version, privateKey
        int[] h = header(sec1, pos, -1);
        pos = h[0] + h[1];
      }
      int[] params = header(sec1, pos, 0xa0);
      int[] oid = header(sec1, params[0], 0x06);
      byte[] curve = Arrays.copyOfRange(sec1, params[0], oid[0] + oid[1]);
      return sequence(EC_PUBLIC_KEY, curve);
    }

    /** PrivateKeyInfo ::= SEQUENCE { version 0, algorithm, privateKey OCTET STRING }. */
    static byte[] pkcs8(byte[] algorithm, byte[] key) {
      return sequence(new byte[] {0x02, 0x01, 0x00}, algorithm, tagged(0x04, key));
    }

    static byte[] sequence(byte[]... parts) {
      ByteArrayOutputStream body = new ByteArrayOutputStream();
      for (byte[] p : parts) {
        body.writeBytes(p);
      }
      return tagged(0x30, body.toByteArray());
    }

    static byte[] tagged(int tag, byte[] content) {
      ByteArrayOutputStream out = new ByteArrayOutputStream(content.length + 6);
      out.write(tag);
      int n = content.length;
      if (n < 0x80) {
        out.write(n);
      } else {
        int bytes = (32 - Integer.numberOfLeadingZeros(n) + 7) / 8;
        out.write(0x80 | bytes);
        for (int i = bytes - 1; i >= 0; i--) {
          out.write(n >>> (8 * i));
        }
      }
      out.writeBytes(content);
      return out.toByteArray();
    }

    /**
     * The element at {@code pos}: {content offset, content length}; {@code tag} -1 takes any.
     *
     * @throws IllegalArgumentException when the bytes are not the DER expected
     */
    static int[] header(byte[] der, int pos, int tag) {
      if (pos + 2 > der.length || (tag >= 0 && (der[pos] & 0xff) != tag)) {
        throw new IllegalArgumentException("unexpected DER at " + pos);
      }
      int len = der[pos + 1] & 0xff;
      int start = pos + 2;
      if (len >= 0x80) {
        int bytes = len & 0x7f;
        if (bytes == 0 || bytes > 3 || start + bytes > der.length) {
          throw new IllegalArgumentException("unexpected DER length at " + pos);
        }
        len = 0;
        for (int i = 0; i < bytes; i++) {
          len = (len << 8) | (der[start + i] & 0xff);
        }
        start += bytes;
      }
      if (start + len > der.length) {
        throw new IllegalArgumentException("truncated DER at " + pos);
      }
      return new int[] {start, len};
    }
  }
}
