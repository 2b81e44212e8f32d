/**
 * Layered OCI images of a Berth model service, built with jib-core without a Docker daemon; their
 * CycloneDX SBOMs, read from the built layers; the equivalent Dockerfile export; and a client of
 * the local container engine's API.
 */
package dev.berth.image;
