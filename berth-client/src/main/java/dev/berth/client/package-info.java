/**
 * The client side of Berth: {@code berth bench} (load and latency, package {@code bench}) and
 * {@code berth eval} (accuracy, package {@code eval}) against any OIP v2 or TF-Serving REST server.
 */
package dev.berth.client;
