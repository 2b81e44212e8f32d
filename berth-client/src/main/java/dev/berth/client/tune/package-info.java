/**
 * {@code berth tune}: a search for the serving settings of one model (instances, engine threads,
 * batching) that give the most throughput while a latency goal holds, each setting measured with
 * {@code berth bench}'s closed- and open-loop steps, and the deployment sized from the winner's
 * figures.
 */
package dev.berth.client.tune;
