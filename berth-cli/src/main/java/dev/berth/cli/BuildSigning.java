package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.image.ImageLocation;
import dev.berth.store.ImageSignatures;
import dev.berth.store.OciReference;
import java.nio.file.Path;
import java.security.PrivateKey;

/**
 * {@code berth build --sign KEY.pem}: the key is read and the target checked before anything is
 * built, and the pushed image is signed at the digest the build pushed. Its own class, so that the
 * store's classes load only when a build signs.
 */
final class BuildSigning {
  private BuildSigning() {}

  /**
   * The signing key, for a target that can hold a signature.
   *
   * @param dockerfile {@code --dockerfile}, or null
   * @throws BerthException for {@code --dockerfile}, a {@code tar:} or {@code docker://} target, or
   *     a key that cannot sign images
   */
  static PrivateKey key(Path file, Path dockerfile, ImageLocation target) {
    if (dockerfile != null) {
      throw new BerthException(
          "--sign signs a pushed image; --dockerfile builds none: leave one of them out");
    }
    if (!(target instanceof ImageLocation.Registry r)) {
      throw new BerthException(
          "--sign signs an image in a registry, where its signature is stored next to it; "
              + target
              + " is not one: build with --to REGISTRY/REPO:TAG to sign, or leave --sign out");
    }
    ImageSignatures.reference(r.reference()); // a registry Berth can reach by host
    return ImageSignatures.signingKey(file);
  }

  /** Signs the image the build pushed to {@code target} at {@code digest}. */
  static void sign(ImageLocation target, String digest, PrivateKey key) {
    OciReference ref = ImageSignatures.reference(((ImageLocation.Registry) target).reference());
    SignImageCommand.sign(ref.withDigest(digest), key, System.out);
  }
}
