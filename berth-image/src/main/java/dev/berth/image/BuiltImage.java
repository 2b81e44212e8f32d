package dev.berth.image;

/**
 * An image Berth built.
 *
 * @param location where it went
 * @param digest the manifest digest ({@code sha256:...}), the same wherever the image goes
 * @param imageId the config digest, what {@code docker images} shows as IMAGE ID
 * @param compressedBytes manifest, config and compressed layers, or -1 when the registry would not
 *     say
 * @param layers how many layers the image has, base included (or -1 when unknown)
 */
public record BuiltImage(
    ImageLocation location, String digest, String imageId, long compressedBytes, int layers) {}
