package dev.berth.cli;

import dev.berth.api.BerthException;
import dev.berth.image.ImageLocation;
import dev.berth.runtime.ServiceSpec;
import dev.berth.store.ImageSignatures;
import dev.berth.store.OciReference;
import java.nio.file.Path;
import java.security.PrivateKey;

/**
 * {@code berth build --sign KEY.pem} (or {@code image.sign-key}): the key is read and the target
 * checked before anything is built, and the pushed image is signed at the digest the build pushed.
 * Its own class, so that the store's classes load only when a build signs.
 */
final class BuildSigning {
  private BuildSigning() {}

  /**
   * The key a build signs with, or null when it signs nothing: neither {@code --sign} nor {@code
   * image.sign-key} names one, or only the service file does and this build pushes to no registry
   * ({@code --dockerfile}, or a {@code tar:} or {@code docker://} {@code --to}), which is said on
   * stderr.
   *
   * @param sign {@code --sign}, or null
   * @param dockerfile {@code --dockerfile}, or null
   * @param to {@code --to}, or null for {@code image.to}
   * @throws BerthException for {@code --sign} with a build that pushes to no registry, or a key
   *     that cannot sign images
   */
  static PrivateKey key(Path sign, ServiceSpec service, Path dockerfile, String to) {
    Path configured = service.image().signKey();
    if (sign == null && configured == null) {
      return null;
    }
    ImageLocation target = ImageLocation.parse(to != null ? to : service.image().to());
    if (dockerfile != null || !(target instanceof ImageLocation.Registry)) {
      String where =
          dockerfile != null
              ? "--dockerfile builds no image"
              : target + " is not in a registry, where a signature is stored next to its image";
      if (sign != null) {
        throw new BerthException(
            "--sign signs an image pushed to a registry; "
                + where
                + ": build with --to REGISTRY/REPO:TAG to sign, or leave --sign out");
      }
      System.err.println("note: image.sign-key in " + service.file() + " not used: " + where);
      return null;
    }
    ImageSignatures.reference(((ImageLocation.Registry) target).reference()); // names a registry
    try {
      return ImageSigningKeys.read(sign != null ? sign : configured);
    } catch (BerthException e) {
      if (sign != null) {
        throw e;
      }
      throw new BerthException("image.sign-key in " + service.file() + ": " + e.getMessage(), e);
    }
  }

  /** Signs the image the build pushed to {@code target} at {@code digest}. */
  static void sign(ImageLocation target, String digest, PrivateKey key) {
    OciReference ref = ImageSignatures.reference(((ImageLocation.Registry) target).reference());
    SignImageCommand.sign(ref.withDigest(digest), key, System.out);
  }
}
