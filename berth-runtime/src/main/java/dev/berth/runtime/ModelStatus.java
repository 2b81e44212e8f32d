package dev.berth.runtime;

/**
 * Where one model version stands, for the repository index and TF-Serving's version status.
 *
 * @param name model name
 * @param version version, or empty when the model has no usable version at all
 * @param state its state
 * @param reason why it is not ready, or empty
 */
public record ModelStatus(
    String name, String version, ServingMetrics.ModelState state, String reason) {}
