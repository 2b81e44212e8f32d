package dev.berth.store;

import java.io.ByteArrayOutputStream;
import java.net.http.HttpRequest;
import java.util.Optional;

/**
 * One repository of a registry over its distribution API, as image signatures and attachments use
 * it: reads with a pull token, and writes with a push token asked for on the first write.
 */
final class RemoteRepository implements ImageSignatures.Registry, ImageAttachments.Registry {
  private final RegistryClient reader;
  private final OciReference ref;
  private final DockerCredentials credentials;
  private RegistryClient writer;

  RemoteRepository(OciReference ref, DockerCredentials credentials) {
    this.ref = ref;
    this.credentials = credentials;
    this.reader = new RegistryClient(ref, false, credentials);
  }

  private RegistryClient writer() {
    if (writer == null) {
      writer = new RegistryClient(ref, true, credentials);
    }
    return writer;
  }

  @Override
  public Optional<RegistryClient.Manifest> manifest(String reference) {
    return reader.manifest(reference);
  }

  @Override
  public void putManifest(String reference, byte[] bytes, String mediaType) {
    writer().putManifest(reference, bytes, mediaType);
  }

  @Override
  public boolean putReferrer(String reference, byte[] bytes, String mediaType) {
    return writer().putReferrer(reference, bytes, mediaType);
  }

  @Override
  public Optional<byte[]> referrers(String digest) {
    return reader.referrers(digest);
  }

  @Override
  public void putBlob(String digest, byte[] bytes) {
    if (!writer().hasBlob(digest)) {
      writer().pushBlob(digest, bytes.length, () -> HttpRequest.BodyPublishers.ofByteArray(bytes));
    }
  }

  @Override
  public byte[] blob(String digest, long size) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    reader.fetchBlob(digest, size, got -> {}, in -> in.transferTo(out));
    return out.toByteArray();
  }
}
