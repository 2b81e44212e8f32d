package dev.berth.image;

/**
 * What a container engine says about itself.
 *
 * @param version the engine's release ({@code 20.10.24+dfsg1}, or podman's)
 * @param apiVersion the newest Docker Engine API version it speaks ({@code 1.41})
 * @param os the operating system its containers run ({@code linux})
 * @param arch the architecture its containers run ({@code amd64}, {@code arm64})
 */
public record EngineInfo(String version, String apiVersion, String os, String arch) {}
